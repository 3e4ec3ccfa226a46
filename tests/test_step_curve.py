"""``lasium-repro step-curve`` (:mod:`lasium.repro.step_curve`): validation accuracy of the checkpoints one
``lasium-train`` run kept, the budget lever read off one run. Checkpoint discovery (``step-N/`` and ``last/`` at its
own step), the default steps (the final one and its halves), the one-line errors for a folder that is no run and for
steps no checkpoint was kept at, the page and its registry, the levers table reading it for either learner, and
(slow) a real tiny run scored at two steps and resumed without running anything again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import one_line_error
from click.testing import CliRunner

from lasium.errors import ConfigError
from lasium.repro.cli import main as repro_main
from lasium.repro.levers_table import collect, table, untried_lines
from lasium.repro.pages import redraw_page
from lasium.repro.step_curve import FORMAT, StepCurveOptions, checkpoints, chosen_steps, default_steps, render

REPRO = [sys.executable, "-m", "lasium.repro.cli"]


def fake_checkpoint(folder: Path, step: int) -> Path:
    """A checkpoint as far as the curve reads it: its state.json (the step) beside its weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "state.json").write_text(json.dumps({"step": step}))
    (folder / "model.safetensors").write_bytes(b"weights")
    return folder


def fake_run(run: Path, steps: tuple[int, ...], last: int | None, algo: str = "maml") -> Path:
    run.mkdir(parents=True, exist_ok=True)
    final = last or max(steps)
    config = {"algo": algo, "meta_batch": 4, "iterations": final, "augment": "shift5-affine", "lr": 0.001,
              "shards": ["s"], "mixture": {"sources": [{"num_tasks": 4 * final}]}}  # fmt: skip
    (run / "train_config.json").write_text(json.dumps(config))
    for s in steps:
        fake_checkpoint(run / f"step-{s:07d}", s)
    if last is not None:
        fake_checkpoint(run / "last", last)
    return run


def test_checkpoints_are_the_kept_steps_and_last_at_its_own_step(tmp_path):
    run = fake_run(tmp_path / "run", (500, 1000, 1500, 2000, 2500, 3000, 3500), last=4000)
    (run / "step-0004500").mkdir()  # a checkpoint being written (no weights yet) is not one
    fake_checkpoint(run / "best", 1500)  # best/ repeats a kept step and is never scored in its place
    found = checkpoints(run)
    assert list(found) == [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
    assert found[4000] == run / "last" and found[1500] == run / "step-0001500"
    assert default_steps(found) == (500, 1000, 2000, 4000)
    assert default_steps({6: run, 3: run}) == (3, 6)  # an odd step ends the halving
    assert chosen_steps(StepCurveOptions(run=run, steps=(4000, 1000))) == {1000: found[1000], 4000: found[4000]}
    with pytest.raises(ConfigError, match=r"no checkpoint at steps \[1200\] in .* \(kept: 500, 1000, .*4000\)"):
        chosen_steps(StepCurveOptions(run=run, steps=(1000, 1200)))
    with pytest.raises(ConfigError, match="no checkpoints under .*--checkpoint-every"):
        chosen_steps(StepCurveOptions(run=tmp_path))


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda run: None, "has no train_config.json: give a lasium-train run folder"),
        (lambda run: (run / "train_config.json").write_text("{oops"), "is not readable JSON"),
        (lambda run: (run / "train_config.json").write_text('{"algo": "maml"}'), "is not a lasium-train config"),
    ],
)
def test_a_folder_that_is_no_run_is_a_one_line_error(tmp_path, setup, said):
    run = tmp_path / "run"
    run.mkdir()
    setup(run)
    result = CliRunner().invoke(repro_main, ["step-curve", "--run", str(run), "--work", str(tmp_path / "w")])
    assert said in one_line_error(result)
    assert not (tmp_path / "w").exists()  # nothing ran, no partial page


def test_steps_not_kept_are_a_one_line_error(tmp_path):
    run = fake_run(tmp_path / "run", (2, 4), last=8)
    args = ["step-curve", "--run", str(run), "--steps", "2,6", "--work", str(tmp_path / "w")]
    assert "no checkpoint at steps [6]" in one_line_error(CliRunner().invoke(repro_main, args))
    bad = CliRunner().invoke(repro_main, ["step-curve", "--run", str(run), "--steps", "2,x"])
    assert "--steps takes numbers separated by commas" in one_line_error(bad)


def _val(one: float, five: float) -> dict:
    return {
        "1": dict(accuracy_pct=one, ci95_pct=0.5, tasks=1000),
        "5": dict(accuracy_pct=five, ci95_pct=0.2, tasks=1000),
    }


def _curve(folder: Path, algo: str, points: dict[int, dict], *, failed: tuple[int, ...] = ()) -> dict:
    rows = [{"key": f"step-{s:07d}", "step": s, "tasks_seen": 4 * s, "status": "ok", "val": v, "precision": "bf16"}
            for s, v in points.items()]  # fmt: skip
    rows += [{"key": f"step-{s:07d}", "step": s, "tasks_seen": 4 * s, "status": "failed"} for s in failed]
    results = {
        "format": FORMAT,
        "command": "lasium-repro step-curve --run r",
        "device": "x86_64 CPU, 2 cores",
        "run": f"runs/{algo}-n-x8",
        "train": {
            "algo": algo,
            "augment": "shift5-affine",
            "lr": 0.001,
            "meta_batch": 4,
            "iterations": 8000,
            "shards": ["s"],
            "seed": 0,
        },  # fmt: skip
        "sizes": {"algo": algo, "tasks": 32000, "iterations": 8000, "meta_batch": 4, "val_tasks": 1000, "seed": 0},
        "rows": sorted(rows, key=lambda r: r["step"]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "step-curve.json").write_text(json.dumps(results))
    return results


def test_page_lists_each_step_with_its_tasks_and_redraws_from_its_json(tmp_path):
    results = _curve(tmp_path, "maml", {1000: _val(88.0, 97.0), 8000: _val(93.5, 98.6)}, failed=(4000,))
    md = render(results, ("step-curve.png",))
    assert "| 1,000 | 4,000 | 1× | 88.00 ± 0.50 | 97.00 ± 0.20 | ok |" in md
    assert "| 4,000 | 16,000 | 4× | – | – | failed |" in md
    assert "| 8,000 | 32,000 | 8× | 93.50 ± 0.50 | 98.60 ± 0.20 | ok |" in md
    assert "precision bf16" in md and "never the test split" in md
    written = redraw_page(tmp_path / "step-curve.json")
    assert tmp_path / "step-curve.md" in written and (tmp_path / "step-curve.md").read_text().startswith("# Accuracy")


def test_levers_table_reads_step_curves_as_the_budget_lever_of_their_learner(tmp_path):
    untried = untried_lines(collect(tmp_path))
    assert any(ln.startswith("- Not tried yet with MAML:") and "budget (iterations" in ln for ln in untried)
    _curve(tmp_path / "levers" / "steps-maml-n-x8", "maml", {1000: _val(88.0, 97.0), 8000: _val(93.5, 98.6)})
    _curve(tmp_path / "levers" / "steps-protonets-n-x4", "protonets", {8000: _val(94.0, 98.5), 32000: _val(94.3, 98.4)})
    comparisons = [c for c in collect(tmp_path) if c["lever"].startswith("budget")]
    by_learner = {c["learner"]: c for c in comparisons}
    assert set(by_learner) == {"maml", "protonets"}
    maml = by_learner["maml"]
    assert [p["setting"] for p in maml["points"]] == [
        "step 1,000 (4,000 distinct tasks)",
        "step 8,000 (32,000 distinct tasks)",
    ]
    assert maml["points"][0]["reference"] and maml["points"][1]["delta"]["1"]["pct"] == 5.5
    assert maml["sources"] == ["levers/steps-maml-n-x8/step-curve.json"]
    assert maml["budget"] == "checkpoints of one run (`runs/maml-n-x8`, 8,000 × 4), 1000 val tasks"
    lines = table(comparisons)
    assert any("(MAML): best tried step 8,000 (32,000 distinct tasks), worth +5.50 ± 0.71" in ln for ln in lines)
    assert not any("Not tried yet with MAML" in ln and "budget" in ln for ln in lines)
    assert by_learner["protonets"]["points"][1]["delta"]["1"]["pct"] == 0.3
    assert not any("spent past" in ln for ln in lines)  # the largest budget tried is the best: not spent


def test_a_budget_that_stops_paying_is_called_spent(tmp_path):
    points = {2000: _val(92.0, 97.5), 8000: _val(94.8, 98.6), 32000: _val(94.4, 98.5)}
    _curve(tmp_path / "levers" / "steps-protonets-n-x4", "protonets", points)
    lines = table(collect(tmp_path))
    assert "- budget (iterations, distinct tasks) (ProtoNets): best tried step 8,000 (32,000 distinct tasks), " in (
        "\n".join(lines)
    )
    spent = [ln for ln in lines if "spent past" in ln]
    assert spent == [
        "- budget (iterations, distinct tasks) (ProtoNets): spent past step 8,000 (32,000 distinct tasks): the "
        "largest setting tried (step 32,000 (128,000 distinct tasks)) scores -0.40 ± 0.71 / -0.10 ± 0.28 points "
        "(1-shot / 5-shot) against it."
    ]


def test_a_wider_run_says_so_and_an_annealed_run_is_no_budget_lever(tmp_path):
    wide = _curve(
        tmp_path / "levers" / "steps-protonets-n-w20", "protonets", {1000: _val(94.3, 98.5), 2000: _val(94.7, 98.8)}
    )
    wide["train"]["ways"] = 20
    (tmp_path / "levers" / "steps-protonets-n-w20" / "step-curve.json").write_text(json.dumps(wide))
    annealed = _curve(
        tmp_path / "levers" / "steps-cosine", "protonets", {1000: _val(90.0, 97.0), 8000: _val(95.0, 99.0)}
    )
    annealed["train"]["lr_schedule"] = "cosine"
    (tmp_path / "levers" / "steps-cosine" / "step-curve.json").write_text(json.dumps(annealed))
    (budget,) = [c for c in collect(tmp_path) if c["lever"].startswith("budget")]
    assert budget["sources"] == ["levers/steps-protonets-n-w20/step-curve.json"]
    assert [p["setting"] for p in budget["points"]] == [
        "step 1,000 (4,000 distinct 20-way tasks)",
        "step 2,000 (8,000 distinct 20-way tasks)",
    ]
    assert "Training tasks are 20-way; validation stays 5-way." in render(wide)
    assert "anneals its learning rate (`--lr-schedule cosine` over 8,000 iterations)" in render(annealed)
    assert "keeps its learning rate constant" in render(wide)


@pytest.mark.slow
@pytest.mark.omniglot
def test_a_real_run_is_scored_at_its_steps_and_resumed(tmp_path, omniglot_root, monkeypatch):
    monkeypatch.setenv("LASIUM_DATA", str(omniglot_root))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    gen = ["lasium-gen", "--strategy", "n", "--n-tasks", "8", "--tasks-per-shard", "4", "--seed", "0",
           "--device", "cpu", "--out", str(tmp_path / "shards"), "--quiet"]  # fmt: skip
    train = ["lasium-train", "--shards", str(tmp_path / "shards"), "--algo", "protonets", "--iterations", "4",
             "--meta-batch", "2", "--checkpoint-every", "2", "--val-every", "0", "--device", "cpu", "--seed", "0",
             "--out", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    from lasium.repro.stages import tool

    for command in (gen, train):
        done = subprocess.run(tool(command[0]) + command[1:], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    args = ["step-curve", "--run", str(tmp_path / "run"), "--val-tasks", "3", "--work", str(tmp_path / "work")]
    args += ["--results", str(results)]

    def curve(*extra):
        return subprocess.run([*REPRO, *args, *extra], capture_output=True, text=True, timeout=600, cwd=tmp_path)

    first = curve()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    data = json.loads((results / "step-curve.json").read_text())
    assert [(r["step"], r["status"], r["tasks_seen"]) for r in data["rows"]] == [(2, "ok", 4), (4, "ok", 8)]
    assert data["rows"][1]["checkpoint"].endswith("last") and data["sizes"]["tasks"] == 8
    for r in data["rows"]:
        assert set(r["val"]) == {"1", "5"} and r["val"]["1"]["tasks"] == 3
    assert "--split val" in data["rows"][0]["stages"][0]["command"]
    again = curve("--resume")
    assert again.returncode == 0 and again.stdout.count(": reused (") == 2, again.stdout
    assert json.loads((results / "step-curve.json").read_text())["rows"][0]["val"] == data["rows"][0]["val"]
    refused = curve()  # the work folder holds this curve: --resume or another --work
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
