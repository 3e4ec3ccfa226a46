"""``benchmarks/gan_epoch_curve.py``: accuracy against GAN training, one point per snapshot ``lasium-fit
--keep-epochs`` left. The page (published values beside ours), snapshot discovery, and (slow) a --quick run of
the real stages on a one-epoch GAN with its untrained snapshot, resumed without running anything again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gan_epoch_curve import PUBLISHED_CURVE, frechet_distance, render, snapshots

SCRIPT = "benchmarks/gan_epoch_curve.py"
LASIUM_FIT = "import sys; sys.argv[0] = 'lasium-fit'; from lasium.generate.models.fit_cli import main; main()"


def fake_snapshot(folder: Path, epochs: int, fd: float | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"epochs_done": epochs}))
    if fd is not None:
        (folder / "fid.json").write_text(json.dumps({"fd_generated_vs_test": fd}))
    return folder


def test_snapshots_are_the_kept_epochs_and_the_final_model(tmp_path):
    fit = tmp_path / "fit"
    fake_snapshot(fit / "epoch-0000", 0, fd=250.0)
    fake_snapshot(fit / "epoch-0010", 10)
    (fit / "epoch-0050").mkdir()  # a snapshot being written (no config yet) is not one
    fake_snapshot(fit, 37)
    found = snapshots(fit)
    assert found == {0: fit / "epoch-0000", 10: fit / "epoch-0010", 37: fit}
    assert frechet_distance(found[0]) == 250.0 and frechet_distance(found[10]) is None
    assert snapshots(tmp_path / "nothing") == {}


def test_page_puts_published_values_beside_ours():
    def row(epochs, one, five, fd=None, status="ok"):
        val = {"1": {"accuracy_pct": one, "ci95_pct": 0.6}, "5": {"accuracy_pct": five, "ci95_pct": 0.4}}
        return {"gan_epochs": epochs, "status": status, "val": val if status == "ok" else {}, "frechet_distance": fd}

    results = {
        "command": "python benchmarks/gan_epoch_curve.py --fit runs/bundled/omniglot-gan",
        "device": "NVIDIA H200",
        "fit": "runs/bundled/omniglot-gan",
        "sizes": {"tasks": 4000, "iterations": 1000, "meta_batch": 4, "val_tasks": 1000, "seed": 0},
        "rows": [row(0, 55.1, 75.2, fd=240.5), row(10, 80.0, 93.0), row(37, 0, 0, status="failed")],
    }
    page = render(results)
    lines = page.splitlines()
    assert "| 0 | 51.95 | 55.10 ± 0.60 | 75.20 ± 0.40 | 240.5 | ok |" in lines
    assert "| 10 | 67.50 | 80.00 ± 0.60 | 93.00 ± 0.40 | – | ok |" in lines
    assert "| 37 | – | – | – | – | failed |" in lines
    for epochs in (50, 200, 400):  # published points without a snapshot still show
        assert f"| {epochs} | {PUBLISHED_CURVE[epochs]:.2f} | – | – | – | no snapshot |" in lines
    assert "4,000 tasks" in page and "1,000 iterations × meta-batch 4" in page and "--split val" in page


def run_curve(args, env_root):
    return subprocess.run([sys.executable, SCRIPT, *args], cwd=env_root, capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
@pytest.mark.omniglot
def test_quick_curve_scores_each_snapshot_and_resumes(tmp_path, repo_root, omniglot_root, monkeypatch):
    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fit = tmp_path / "gan"
    fitted = subprocess.run(
        [sys.executable, "-c", LASIUM_FIT,
         "--model", "gan", "--dataset", "omniglot", "--epochs", "1", "--batch-size", "32", "--limit", "128",
         "--keep-epochs", "0", "--device", "cpu", "--quiet", "--out", str(fit)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,  # cwd: no source folder shadows the package
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["--quick", "--fit", str(fit), "--work", str(work), "--results", str(results), "--device", "cpu"]
    first = run_curve(args, repo_root)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    data = json.loads((results / "accuracy-vs-gan-epochs.json").read_text())
    assert [(r["gan_epochs"], r["status"]) for r in data["rows"]] == [(0, "ok"), (1, "ok")]
    for r in data["rows"]:
        assert set(r["val"]) == {"1", "5"} and 0 <= r["val"]["1"]["accuracy_pct"] <= 100
        gen = next(s for s in r["stages"] if s["name"].startswith("gen-"))
        assert f"--generator {r['snapshot']}" in gen["command"]  # each point trains on its own snapshot's tasks
    assert (results / "accuracy-vs-gan-epochs.png").stat().st_size > 1000
    assert "| 0 | 51.95 |" in (results / "accuracy-vs-gan-epochs.md").read_text()

    again = run_curve([*args, "--resume"], repo_root)
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count(": reused (") == 6, again.stdout  # 2 snapshots × gen, train, eval: nothing rerun
    assert json.loads((results / "accuracy-vs-gan-epochs.json").read_text())["rows"][0]["val"] == data["rows"][0]["val"]

    bad = run_curve([*args, "--resume", "--epochs", "0,10"], repo_root)
    assert bad.returncode != 0 and "no snapshot for GAN epochs [10]" in bad.stderr and "found [0, 1]" in bad.stderr
    empty = run_curve(["--quick", "--fit", str(tmp_path), "--work", str(tmp_path / "w2")], repo_root)
    assert empty.returncode != 0 and "no GAN snapshots under" in empty.stderr
