"""``lasium-repro gan-curve`` (:mod:`lasium.repro.gan_curve`): accuracy against GAN training, one point per
snapshot ``lasium-fit --keep-epochs`` left. Snapshot discovery, the page (the published curve beside ours), and
(slow) a quick run of the real stages on a one-epoch GAN with its untrained snapshot, resumed without running
anything again."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lasium.repro.gan_curve import CURVE_BUDGET, NAME, CurveOptions, chosen_snapshots, frechet_distance, render
from lasium.repro.gan_curve import snapshots as find_snapshots
from lasium.repro.published import PUBLISHED_GAN_CURVE

REPRO = [sys.executable, "-m", "lasium.repro.cli"]
LASIUM_FIT = "import sys; sys.argv[0] = 'lasium-fit'; from lasium.generate.models.fit_cli import main; main()"


def fake_snapshot(folder: Path, epochs: int, fd: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"epochs_done": epochs}))
    if fd is not None:
        (folder / "fid.json").write_text(json.dumps({"fd_generated_vs_test": fd}))
    return folder


def test_snapshots_are_the_kept_epochs_and_the_final_model(tmp_path):
    from lasium.errors import ConfigError

    fit = tmp_path / "fit"
    fake_snapshot(fit / "epoch-0000", 0, fd=250.0)
    fake_snapshot(fit / "epoch-0010", 10)
    (fit / "epoch-0050").mkdir()  # a snapshot being written (no config yet) is not one
    fake_snapshot(fit, 37)
    found = find_snapshots(fit)
    assert found == {0: fit / "epoch-0000", 10: fit / "epoch-0010", 37: fit}
    assert frechet_distance(found[0]) == 250.0 and frechet_distance(found[10]) is None
    assert find_snapshots(tmp_path / "nothing") == {}
    assert chosen_snapshots(CurveOptions(fit=fit, epochs=(0, 37))) == {0: found[0], 37: fit}
    with pytest.raises(ConfigError, match=r"\[50\].*found \[0, 10, 37\]"):
        chosen_snapshots(CurveOptions(fit=fit, epochs=(0, 50)))
    with pytest.raises(ConfigError, match="no GAN snapshots under"):
        chosen_snapshots(CurveOptions(fit=tmp_path))


def test_page_puts_each_epochs_figures_beside_the_published_ones():
    def row(epochs, one, five, fd=None, status="ok"):
        val = {"1": {"accuracy_pct": one, "ci95_pct": 0.6}, "5": {"accuracy_pct": five, "ci95_pct": 0.4}}
        return {"gan_epochs": epochs, "status": status, "val": val if status == "ok" else {}, "frechet_distance": fd}

    results = {
        "command": "lasium-repro gan-curve --fit runs/bundled/omniglot-gan",
        "device": "NVIDIA H200",
        "fit": "runs/bundled/omniglot-gan",
        "sizes": {"tasks": 4000, "iterations": 1000, "meta_batch": 4, "val_tasks": 1000, "seed": 0},
        "rows": [row(0, 55.1, 75.2, fd=240.5), row(10, 80.0, 93.0), row(37, 0, 0, status="failed")],
    }
    table = {int(line.split("|")[1]): line for line in render(results).splitlines() if re.match(r"^\| \d+ \|", line)}
    assert sorted(table) == [0, 10, 37, 50, 200, 400]  # ours and the published epochs
    assert re.findall(r"\d+\.\d+", table[0]) == [f"{PUBLISHED_GAN_CURVE[0]:.2f}", "55.10", "0.60", "75.20", "0.40",
                                                 "240.5"]  # fmt: skip
    assert re.findall(r"\d+\.\d+", table[10])[:2] == [f"{PUBLISHED_GAN_CURVE[10]:.2f}", "80.00"]
    assert "failed" in table[37] and re.findall(r"\d+\.\d+", table[37]) == []
    for epochs in (50, 200, 400):  # published points without a snapshot still show
        assert re.findall(r"\d+\.\d+", table[epochs]) == [f"{PUBLISHED_GAN_CURVE[epochs]:.2f}"]


def test_options_record_the_command_that_gives_them(tmp_path):
    options = CurveOptions(fit=tmp_path / "gan", epochs=(0, 10), resume=True)
    assert options.command_line() == f"lasium-repro gan-curve --fit {tmp_path / 'gan'} --epochs 0,10 --resume"
    assert json.loads(json.dumps(options.to_json()))["budget"]["tasks"] == CURVE_BUDGET.tasks == 4000


@pytest.mark.slow
@pytest.mark.omniglot
def test_quick_curve_scores_each_snapshot_and_resumes(tmp_path, omniglot_root, monkeypatch):
    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fit = tmp_path / "gan"
    fitted = subprocess.run(
        [sys.executable, "-c", LASIUM_FIT,
         "--model", "gan", "--dataset", "omniglot", "--epochs", "1", "--batch-size", "32", "--limit", "128",
         "--keep-epochs", "0", "--device", "cpu", "--quiet", "--out", str(fit)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["gan-curve", "--quick", "--fit", str(fit), "--work", str(work), "--results", str(results)]
    args += ["--device", "cpu"]

    def curve(*extra):
        return subprocess.run([*REPRO, *args, *extra], capture_output=True, text=True, timeout=1200, cwd=tmp_path)

    first = curve()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    data = json.loads((results / f"{NAME}.json").read_text())
    assert [(r["gan_epochs"], r["status"]) for r in data["rows"]] == [(0, "ok"), (1, "ok")]
    for r in data["rows"]:
        assert set(r["val"]) == {"1", "5"} and 0 <= r["val"]["1"]["accuracy_pct"] <= 100
        gen = next(s for s in r["stages"] if s["name"].startswith("gen-"))
        assert f"--generator {r['snapshot']}" in gen["command"]  # each point trains on its own snapshot's tasks
    assert (results / f"{NAME}.png").stat().st_size > 1000
    md = (results / f"{NAME}.md").read_text()
    assert f"{data['rows'][0]['val']['1']['accuracy_pct']:.2f}" in md

    again = curve("--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count(": reused (") == 6, again.stdout  # 2 snapshots × gen, train, eval: nothing rerun
    assert json.loads((results / f"{NAME}.json").read_text())["rows"][0]["val"] == data["rows"][0]["val"]

    bad = curve("--resume", "--epochs", "0,10")
    assert bad.returncode == 2 and "no snapshot for GAN epochs [10]" in bad.stderr
