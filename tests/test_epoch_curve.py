"""``lasium-repro epoch-curve`` (:mod:`lasium.repro.epoch_curve`, its page :mod:`lasium.repro.curve_page`): accuracy
against generator training, one point per snapshot ``lasium-fit --keep-epochs`` left, for a GAN or a VAE (the fit's
``config.json`` says which). Snapshot discovery for both kinds, the pages (the published GAN curve beside ours; a VAE
page without one), points kept from an earlier curve, the one-line errors for a folder that names no kind and for
points of another kind or budget, and (slow) quick runs of the real stages: a one-epoch GAN with its untrained
snapshot, resumed without running anything again, and a one-epoch VAE (σ: the VAE's value)."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_line_error
from click.testing import CliRunner

from lasium.errors import ConfigError
from lasium.repro.cli import main as repro_main
from lasium.repro.curve_page import page_name, render, results_format
from lasium.repro.epoch_curve import (
    CURVE_BUDGET,
    CurveOptions,
    chosen_snapshots,
    fit_kind,
    frechet_distance,
    kept_points,
)
from lasium.repro.epoch_curve import snapshots as find_snapshots
from lasium.repro.pages import PAGES, redraw_page
from lasium.repro.published import PUBLISHED_GAN_CURVE

REPRO = [sys.executable, "-m", "lasium.repro.cli"]
LASIUM_FIT = "import sys; sys.argv[0] = 'lasium-fit'; from lasium.generate.models.fit_cli import main; main()"
TABLE_ROW = r"^\| \d+ \|"


def fake_snapshot(folder: Path, epochs: int, kind: str | None = "gan", fd: float | None = None) -> Path:
    """A snapshot folder as far as the curve reads it: lasium-fit's config.json (kind, epochs done), fid.json."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"epochs_done": epochs} | ({"kind": kind} if kind is not None else {})
    (folder / "config.json").write_text(json.dumps(config))
    if fd is not None:
        (folder / "fid.json").write_text(json.dumps({"fd_generated_vs_test": fd}))
    return folder


@pytest.mark.parametrize(("kind", "label"), [("gan", "GAN"), ("vae", "VAE")])
def test_snapshots_are_the_kept_epochs_and_the_final_model(tmp_path, kind, label):
    fit = tmp_path / "fit"
    fake_snapshot(fit / "epoch-0000", 0, kind, fd=250.0)
    fake_snapshot(fit / "epoch-0010", 10, kind)
    (fit / "epoch-0050").mkdir()  # a snapshot being written (no config yet) is not one
    fake_snapshot(fit, 37, kind)
    assert fit_kind(fit) == kind
    found = find_snapshots(fit, kind)
    assert found == {0: fit / "epoch-0000", 10: fit / "epoch-0010", 37: fit}
    assert frechet_distance(found[0]) == 250.0 and frechet_distance(found[10]) is None
    assert find_snapshots(tmp_path / "nothing") == {}
    assert chosen_snapshots(CurveOptions(fit=fit, epochs=(0, 37)), kind) == {0: found[0], 37: fit}
    with pytest.raises(ConfigError, match=rf"no snapshot for {label} epochs \[50\].*found \[0, 10, 37\]"):
        chosen_snapshots(CurveOptions(fit=fit, epochs=(0, 50)), kind)
    with pytest.raises(ConfigError, match=f"no {label} snapshots under"):
        chosen_snapshots(CurveOptions(fit=tmp_path), kind)
    # the work folder follows the kind unless given
    assert CurveOptions(fit=fit).work_folder(kind) == Path("runs") / f"{kind}-curve"
    assert CurveOptions(fit=fit, work=tmp_path / "w").work_folder(kind) == tmp_path / "w"


def test_the_kind_is_the_fit_configs_never_the_path(tmp_path):
    vae = fake_snapshot(tmp_path / "omniglot-gan", 3, "vae")  # a VAE fit in a folder named like a GAN
    assert fit_kind(vae) == "vae"
    fake_snapshot(vae / "epoch-0000", 0, "gan")  # a snapshot of another generator inside it
    with pytest.raises(ConfigError, match="records generator kind 'gan', but the fit .* is a 'vae'"):
        find_snapshots(vae, "vae")
    for config, said in (({"epochs_done": 3}, "records no generator kind"), ({"kind": "flow"}, "kind 'flow'")):
        (tmp_path / "odd").mkdir(exist_ok=True)
        (tmp_path / "odd" / "config.json").write_text(json.dumps(config))
        with pytest.raises(ConfigError, match=said):
            fit_kind(tmp_path / "odd")
    with pytest.raises(ConfigError, match="has no config.json: give a lasium-fit output folder"):
        fit_kind(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("config", "said"),
    [
        ({"epochs_done": 1}, "records no generator kind; give a lasium-fit output folder"),
        (None, "has no config.json: give a lasium-fit output folder"),
        ("{not json", "is not readable JSON"),
    ],
)
def test_a_fit_folder_without_a_kind_is_a_one_line_error(tmp_path, config, said):
    fit = tmp_path / "fit"
    fit.mkdir()
    fake_snapshot(fit / "epoch-0000", 0, kind=None)
    if config is not None:
        (fit / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["epoch-curve", "--fit", str(fit), "--work", str(work), "--results", str(results), "--quick"]
    line = one_line_error(CliRunner().invoke(repro_main, args))
    assert said in line, line
    assert not work.exists() and not results.exists()  # nothing written, nothing that looks like a result


def _row(epochs, one, five, fd=None, status="ok", sigma=None, key="epochs"):
    val = {"1": {"accuracy_pct": one, "ci95_pct": 0.6}, "5": {"accuracy_pct": five, "ci95_pct": 0.4}}
    row = {key: epochs, "status": status, "val": val if status == "ok" else {}, "frechet_distance": fd}
    return row | ({"sigma": sigma} if sigma is not None else {})


def _results(kind: str | None, rows: list[dict]) -> dict:
    fit = f"runs/bundled/omniglot-{kind or 'gan'}"
    out = {
        "format": results_format(kind or "gan"),
        "command": f"lasium-repro epoch-curve --fit {fit}",
        "device": "NVIDIA H200",
        "fit": fit,
        "sizes": {"tasks": 4000, "iterations": 1000, "meta_batch": 4, "val_tasks": 1000, "seed": 0},
        "rows": rows,
    }
    return out | ({"kind": kind} if kind is not None else {})


def _table(page: str) -> dict[int, str]:
    return {int(line.split("|")[1]): line for line in page.splitlines() if re.match(TABLE_ROW, line)}


def test_gan_page_puts_each_epochs_figures_beside_the_published_ones():
    rows = [_row(0, 55.1, 75.2, fd=240.5, sigma=0.5), _row(10, 80.0, 93.0, sigma=0.5), _row(37, 0, 0, status="failed")]
    page = render(_results("gan", rows))
    assert page.startswith("# Accuracy against GAN training (LASIUM-N + ProtoNets, Omniglot validation tasks)")
    assert "| GAN epochs | published 1-shot |" in page and "GAN fit: `runs/bundled/omniglot-gan`" in page
    assert "σ of every point: 0.5 (the `--tuned-for protonets` value for a GAN" in page
    assert "Published: the LASIUM authors' figure data" in page
    assert "![accuracy against GAN epochs](accuracy-vs-gan-epochs.png)" in page
    table = _table(page)
    assert sorted(table) == [0, 10, 37, 50, 200, 400]  # ours and the published epochs
    assert re.findall(r"\d+\.\d+", table[0]) == [f"{PUBLISHED_GAN_CURVE[0]:.2f}", "55.10", "0.60", "75.20", "0.40",
                                                 "240.5"]  # fmt: skip
    assert re.findall(r"\d+\.\d+", table[10])[:2] == [f"{PUBLISHED_GAN_CURVE[10]:.2f}", "80.00"]
    assert "failed" in table[37] and re.findall(r"\d+\.\d+", table[37]) == []
    for epochs in (50, 200, 400):  # published points without a snapshot still show
        assert re.findall(r"\d+\.\d+", table[epochs]) == [f"{PUBLISHED_GAN_CURVE[epochs]:.2f}"]


def test_vae_page_has_no_published_curve():
    stall = "error: anchor sampling stalls: epsilon 38.4521 accepts 0.0000% of candidate tuples (0 of 131072)"
    failed = _row(1, 0, 0, status="failed") | {"stages": [{"name": "gen-n-sigma-preset", "status": "failed",
                                                          "note": stall}]}  # fmt: skip
    rows = [_row(0, 30.5, 41.0, sigma=2.0), failed, _row(45, 70.25, 88.0, fd=120.0, sigma=2.0)]
    page = render(_results("vae", rows))
    assert page.startswith("# Accuracy against VAE training (LASIUM-N + ProtoNets, Omniglot validation tasks)")
    assert "| VAE epochs | published 1-shot |" in page and "VAE fit: `runs/bundled/omniglot-vae`" in page
    assert "GAN epochs" not in page and "GAN fit" not in page
    assert "Published: none" in page and "covers their GAN only" in page
    assert "σ of every point: 2.0 (the `--tuned-for protonets` value for a VAE" in page
    assert "![accuracy against VAE epochs](accuracy-vs-vae-epochs.png)" in page
    table = _table(page)
    assert sorted(table) == [0, 1, 45]  # ours only: no published epochs join the table
    assert [line.split("|")[2].strip() for line in table.values()] == ["–", "–", "–"]  # no published column values
    assert "failed" in table[1] and f"- 1 VAE epochs, `gen-n-sigma-preset`: {stall}" in page  # why, under the table
    assert re.findall(r"\d+\.\d+", table[45]) == ["70.25", "0.60", "88.00", "0.40", "120.0"]


def test_page_registry_redraws_both_kinds_and_results_written_before_the_vae(tmp_path):
    assert {results_format("gan"), results_format("vae")} <= set(PAGES)
    assert results_format("gan") == "lasium-accuracy-vs-gan-epochs"
    # results written by gan-curve: rows keyed gan_epochs, no kind, no σ: the same page as before
    before = _results(None, [_row(0, 55.1, 75.2, key="gan_epochs"), _row(10, 80.0, 93.0, key="gan_epochs")])
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "accuracy-vs-gan-epochs.json").write_text(json.dumps(before))
    written = redraw_page(tmp_path / "old" / "accuracy-vs-gan-epochs.json")
    assert written[0] == tmp_path / "old" / "accuracy-vs-gan-epochs.md"
    old_page = written[0].read_text()
    now = _results("gan", [_row(0, 55.1, 75.2), _row(10, 80.0, 93.0)])
    assert _table(old_page) == _table(render(now)) and "# Accuracy against GAN training" in old_page
    assert "σ of every point: the `--tuned-for protonets` value for a GAN" in old_page  # and says it was not recorded

    vae = _results("vae", [_row(0, 30.5, 41.0, sigma=2.0)])
    (tmp_path / "vae").mkdir()
    (tmp_path / "vae" / "curve.json").write_text(json.dumps(vae))
    written = redraw_page(tmp_path / "vae" / "curve.json")
    assert written[0] == tmp_path / "vae" / f"{page_name('vae')}.md"
    assert written[0].read_text() == render(vae, tuple(p.name for p in written[1:]))
    charts = {"accuracy-vs-vae-epochs.png"} if importlib.util.find_spec("matplotlib") else set()
    assert {p.name for p in written[1:]} == charts  # drawn without a published series

    (tmp_path / "odd.json").write_text(json.dumps(_results("vae", []) | {"kind": "flow"}))
    with pytest.raises(ConfigError, match="kind 'flow'"):
        redraw_page(tmp_path / "odd.json")


def test_options_record_the_command_that_gives_them(tmp_path):
    options = CurveOptions(fit=tmp_path / "vae", epochs=(0, 10), resume=True)
    assert options.command_line() == f"lasium-repro epoch-curve --fit {tmp_path / 'vae'} --epochs 0,10 --resume"
    given = CurveOptions(fit=tmp_path / "gan", work=tmp_path / "w", threads=1)
    assert (
        given.command_line() == f"lasium-repro epoch-curve --fit {tmp_path / 'gan'} --work {tmp_path / 'w'} --threads 1"
    )
    stored = json.loads(json.dumps(options.to_json()))
    assert stored["budget"]["tasks"] == CURVE_BUDGET.tasks == 4000 and stored["work"] is None


SIZES = {"tasks": 4000, "iterations": 1000, "meta_batch": 4, "val_tasks": 1000, "seed": 0}


def test_kept_points_name_their_fit_and_leave_failures_behind(tmp_path):
    earlier = _results("gan", [_row(10, 89.1, 96.4), _row(15, 0, 0, status="failed"), _row(20, 91.7, 97.4)])
    earlier["rows"][2]["kept_from"] = {"fit": "first", "command": "lasium-repro epoch-curve --fit first"}
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(earlier))
    kept = kept_points(path, "gan", SIZES, "runs/gan-cont")
    assert [(r["epochs"], r["kept_from"]["fit"]) for r in kept] == [(10, earlier["fit"]), (20, "first")]
    assert kept[0]["kept_from"]["command"] == earlier["command"]
    # the curve's own fit again (a later --epochs run of the same fit): its points are its own, unmarked
    assert [r.get("kept_from") for r in kept_points(path, "gan", SIZES, earlier["fit"])] == [None, {"fit": "first",
            "command": "lasium-repro epoch-curve --fit first"}]  # fmt: skip
    page = render(_results("gan", [*kept, _row(32, 93.0, 98.0)]))
    table = _table(page)
    assert table[10].endswith(f"| ok (fit `{earlier['fit']}`) |") and table[32].endswith("| ok |")
    assert f"epochs 10 from fit `{earlier['fit']}` (`{earlier['command']}`)" in page
    assert "epochs 20 from fit `first`" in page and 15 not in table


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda r: r["sizes"].update(iterations=500), "another budget: iterations 500 (now 1000)"),
        (lambda r: r.update(kind="vae", format=results_format("vae")), "is a vae curve, but --fit is a gan fit"),
        (lambda r: r.pop("rows"), "holds no curve"),
    ],
)
def test_kept_points_of_another_kind_or_budget_are_refused(tmp_path, change, said):
    results = _results("gan", [_row(10, 89.1, 96.4)])
    change(results)
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(results))
    with pytest.raises(ConfigError, match=re.escape(said)):
        kept_points(path, "gan", SIZES, "runs/gan-cont")


def test_curve_keeps_earlier_points_in_the_file_it_rewrites(tmp_path, monkeypatch):
    """The run itself, with the stages replaced: the earlier points stay at the epochs the fit does not score, the
    fit's own point wins where both have one, and a bad --keep-points is one line with nothing written."""
    import lasium.repro.epoch_curve as curve

    fit = tmp_path / "gan-cont"
    fake_snapshot(fit / "epoch-0020", 20)
    fake_snapshot(fit, 40)
    report = {"results": [{"shots": s, "accuracy_pct": 90.0 + s, "ci95_pct": 0.5, "tasks": 10} for s in (1, 5)]}
    report["episode_digest"] = "0" * 64
    monkeypatch.setattr(curve, "run_point", lambda *a: report)
    monkeypatch.setattr(curve, "shard_sigma", lambda shards: 0.5)
    results = tmp_path / "results"
    results.mkdir()
    stored = results / "accuracy-vs-gan-epochs.json"
    stored.write_text(json.dumps(_results("gan", [_row(10, 89.1, 96.4), _row(20, 91.7, 97.4)])))
    options = CurveOptions(fit=fit, work=tmp_path / "work", results=results, keep_points=stored)
    written = curve.run(options)
    assert [(r["epochs"], r.get("kept_from", {}).get("fit")) for r in written["rows"]] == [
        (10, "runs/bundled/omniglot-gan"), (20, None), (40, None)]  # fmt: skip
    assert written["rows"][1]["val"]["1"]["accuracy_pct"] == 91.0  # the fit's own point at 20, not the earlier one
    assert json.loads(stored.read_text()) == written and "--keep-points" in written["command"]
    assert "ok (fit `runs/bundled/omniglot-gan`)" in (results / "accuracy-vs-gan-epochs.md").read_text()

    (tmp_path / "bad.json").write_text("{")
    args = ["epoch-curve", "--fit", str(fit), "--work", str(tmp_path / "w2"), "--results", str(tmp_path / "r2")]
    line = one_line_error(CliRunner().invoke(repro_main, [*args, "--keep-points", str(tmp_path / "bad.json")]))
    assert "--keep-points" in line and "is not readable JSON" in line
    assert not (tmp_path / "w2").exists() and not (tmp_path / "r2").exists()


def _fit(tmp_path: Path, model: str, *keep: str) -> Path:
    fit = tmp_path / model
    fitted = subprocess.run(
        [sys.executable, "-c", LASIUM_FIT,
         "--model", model, "--dataset", "omniglot", "--epochs", "1", "--batch-size", "32", "--limit", "128",
         *keep, "--device", "cpu", "--quiet", "--out", str(fit)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stderr[-2000:]
    return fit


@pytest.mark.slow
@pytest.mark.omniglot
def test_quick_gan_curve_scores_each_snapshot_and_resumes(tmp_path, omniglot_root, monkeypatch):
    from lasium.generate import STRATEGY_PARAMETERS

    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fit = _fit(tmp_path, "gan", "--keep-epochs", "0")
    work, results = tmp_path / "work", tmp_path / "results"
    args = ["epoch-curve", "--quick", "--fit", str(fit), "--work", str(work), "--results", str(results)]
    args += ["--device", "cpu"]

    def curve(*extra):
        return subprocess.run([*REPRO, *args, *extra], capture_output=True, text=True, timeout=1200, cwd=tmp_path)

    first = curve()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    name = page_name("gan")
    data = json.loads((results / f"{name}.json").read_text())
    assert data["format"] == "lasium-accuracy-vs-gan-epochs" and data["kind"] == "gan"
    assert [(r["epochs"], r["status"]) for r in data["rows"]] == [(0, "ok"), (1, "ok")]
    for r in data["rows"]:
        assert set(r["val"]) == {"1", "5"} and 0 <= r["val"]["1"]["accuracy_pct"] <= 100
        gen = next(s for s in r["stages"] if s["name"].startswith("gen-"))
        assert f"--generator {r['snapshot']}" in gen["command"]  # each point trains on its own snapshot's tasks
        assert r["sigma"] == STRATEGY_PARAMETERS["protonets"]["gan"]["n"]  # the GAN's σ, from its shard set
    assert (results / f"{name}.png").stat().st_size > 1000
    md = (results / f"{name}.md").read_text()
    assert f"{data['rows'][0]['val']['1']['accuracy_pct']:.2f}" in md and "GAN training" in md

    again = curve("--resume")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count(": reused (") == 6, again.stdout  # 2 snapshots × gen, train, eval: nothing rerun
    assert json.loads((results / f"{name}.json").read_text())["rows"][0]["val"] == data["rows"][0]["val"]

    bad = curve("--resume", "--epochs", "0,10")
    assert bad.returncode == 2 and "no snapshot for GAN epochs [10]" in bad.stderr


@pytest.mark.slow
@pytest.mark.omniglot
def test_quick_vae_curve_uses_the_vae_sigma(tmp_path, omniglot_root, monkeypatch):
    """The bundled VAE's folder (lasium-fit's final model, 45 epochs) as a one-snapshot VAE fit. A one-epoch VAE fit
    would not do: its encoded anchors lie so close together that the default ε rejects every candidate
    (lasium-gen: "anchor sampling stalls"), so its point fails, as the page then says."""
    import shutil

    from lasium.generate import STRATEGY_PARAMETERS
    from lasium.generate.models.bundled_registry import bundled_folder

    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    fit = shutil.copytree(bundled_folder("omniglot-vae"), tmp_path / "fit")  # a folder name that says no kind
    epochs = json.loads((fit / "config.json").read_text())["epochs_done"]
    results = tmp_path / "results"
    args = ["epoch-curve", "--quick", "--fit", str(fit), "--work", str(tmp_path / "work"), "--results", str(results)]
    ran = subprocess.run([*REPRO, *args, "--device", "cpu"], capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert not (results / f"{page_name('gan')}.json").exists()
    data = json.loads((results / f"{page_name('vae')}.json").read_text())
    assert data["format"] == "lasium-accuracy-vs-vae-epochs" and data["kind"] == "vae" and data["published"] == {}
    assert [(r["epochs"], r["status"]) for r in data["rows"]] == [(epochs, "ok")]
    assert 0 <= data["rows"][0]["val"]["1"]["accuracy_pct"] <= 100
    # lasium-gen chose σ from the snapshot's kind: the VAE's ProtoNets value (2.0), not the GAN's
    assert data["rows"][0]["sigma"] == STRATEGY_PARAMETERS["protonets"]["vae"]["n"] == 2.0
    md = (results / f"{page_name('vae')}.md").read_text()
    assert md.startswith("# Accuracy against VAE training") and "σ of every point: 2.0 (" in md
