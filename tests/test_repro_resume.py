"""Resuming the reproduction: what a stage record lets a later invocation reuse or continue, what a resumed run gives
(the rows of an uninterrupted one), and the compatibility contract with work folders and results pages written by
earlier versions (the ``benchmarks/repro_omniglot.py`` driver): the same layout, the same stage commands."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from repro_helpers import driver_pipeline, options_for, scored_row

from lasium.repro import stages
from lasium.repro.omniglot import page_only_omniglot, run_omniglot
from lasium.repro.options import OmniglotOptions
from lasium.repro.pipeline import Pipeline
from lasium.repro.rows import chosen_rows, plan_rows
from lasium.repro.sizes import RATES, SIZES
from lasium.repro.stages import StageRunner, canonical, same_commands

REPO = Path(__file__).resolve().parent.parent

# Stand-ins for the console commands: each records its arguments and leaves what the real one would. lasium-train
# whose run folder is named by $FAIL_ONCE fails the first time, after its first checkpoint (like a run killed
# halfway); lasium-eval scores a row by a fixed function of its checkpoint's name (the same row, the same figures).
FAKE_CONSOLE = r"""
import hashlib, json, os, pathlib, sys
console, args = sys.argv[1], sys.argv[2:]
calls = pathlib.Path(__file__).with_name("calls.jsonl")
with open(calls, "a") as f:
    f.write(json.dumps([console, *args]) + "\n")
out = pathlib.Path(args[args.index("--out") + 1]) if "--out" in args else None
if console == "lasium-gen":
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text("{}")
elif console == "lasium-shards":
    out.write_bytes(b"png")
elif console == "lasium-train":
    (out / "step-0000001").mkdir(parents=True, exist_ok=True)
    (out / "step-0000001" / "state.json").write_text(json.dumps({"step": 1}))
    marker = out.with_name(out.name + ".failed-once")
    if os.environ.get("FAIL_ONCE") == out.name and not marker.exists():
        marker.write_text("")
        sys.exit(3)
    (out / "last").mkdir(exist_ok=True)
    (out / "last" / "state.json").write_text(json.dumps({"step": 2, "tasks_seen": 8}))
    (out / "metrics.jsonl").write_text(json.dumps({"step": 2, "split": "val", "accuracy": 0.5}) + "\n")
elif console == "lasium-fit":
    config = out / "config.json"
    done = json.loads(config.read_text())["epochs_done"] if config.is_file() else 0
    out.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps({"epochs_done": min(done + 1, int(args[args.index("--epochs") + 1]))}))
    (out / "train_state.json").write_text("{}")
    if "--keep-epochs" in args:
        (out / "epoch-0000").mkdir(exist_ok=True)
        (out / "epoch-0000" / "config.json").write_text(json.dumps({"epochs_done": 0}))
elif console == "lasium-eval":
    key = pathlib.Path(args[args.index("--out") + 1]).stem
    base = 50 + int(hashlib.sha256(key.encode()).hexdigest(), 16) % 4000 / 100
    results = [dict(shots=s, accuracy=base / 100, ci95=0.01, accuracy_pct=base + s, ci95_pct=0.5, tasks=10, seconds=1)
               for s in (1, 5)]
    out.parent.mkdir(parents=True, exist_ok=True)
    precision = args[args.index("--precision") + 1] if "--precision" in args else "fp32"
    report = {"episode_digest": "e" * 64, "device": {"type": "cpu"}, "results": results, "precision": precision}
    out.write_text(json.dumps(report))
"""


@pytest.fixture()
def fake_consoles(tmp_path, monkeypatch):
    """Every stage runs FAKE_CONSOLE; returns a function giving the calls so far, [console, *args] each."""
    script = tmp_path / "fake" / "console.py"
    script.parent.mkdir()
    script.write_text(FAKE_CONSOLE)
    monkeypatch.setattr(stages, "tool", lambda name: [sys.executable, str(script), name])

    def calls() -> list[list[str]]:
        path = script.with_name("calls.jsonl")
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    return calls


# --- one stage -------------------------------------------------------------------------------------------------
def test_options_that_do_not_change_results_do_not_make_another_stage():
    a = "lasium-train --shards s --checkpoint-every 0 --iterations 8 --out r"
    b = "lasium-train --shards s --checkpoint-every 500 --iterations 8 --out r --resume"
    assert canonical(a) == canonical(b) == "lasium-train --shards s --iterations 8 --out r"
    assert canonical("lasium-train --iterations 9") != canonical("lasium-train --iterations 8")
    assert same_commands({"train": a, "eval": "x"}, {"train": b, "eval": "x"})
    assert not same_commands({"train": a}, {"train": a, "eval": "x"})
    assert not same_commands({"train": a}, {"train": a.replace("8", "9")})
    # lasium-eval --workers shares the tasks out among processes (same scores); lasium-train --workers is its own
    one, two = "lasium-eval --checkpoint r --tasks 9", "lasium-eval --checkpoint r --workers 2 --tasks 9"
    assert canonical(one) == canonical(two)
    assert canonical("lasium-train --workers 2 --out r") != canonical("lasium-train --out r")


def test_the_work_folder_may_be_spelled_relative_or_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    relative = "lasium-train --shards runs/r/shards/a:0.5 --out runs/r/runs/x"
    absolute = f"lasium-train --shards {tmp_path}/runs/r/shards/a:0.5 --out {tmp_path}/runs/r/runs/x"
    for work in (Path("runs/r"), tmp_path / "runs" / "r"):
        assert canonical(relative, work) == canonical(absolute, work)
        assert same_commands({"train": relative}, {"train": absolute}, work)
    assert canonical(relative) != canonical(absolute)  # without the work folder, paths are compared as written
    other = "lasium-train --shards runs/r2/shards/a:0.5 --out runs/r2/runs/x"  # another folder with the same prefix
    assert canonical(other, Path("runs/r")) != canonical(relative, Path("runs/r"))


def test_an_interrupted_stage_is_continued_with_its_resume_arguments(tmp_path, fake_consoles):
    work = tmp_path / "work"
    out = ["--out", str(tmp_path / "FAIL_ONCE")]
    env = {"FAIL_ONCE": "FAIL_ONCE"}
    first = StageRunner(work, env, resume=False)
    assert not first.run("train-x", "lasium-train", ["--iterations", "8", *out], continue_with=lambda: ["--resume"])
    started = json.loads((work / "logs" / "train-x.started.json").read_text())
    assert started["command"].startswith("lasium-train --iterations 8") and started["seconds"] >= 0
    # a later session: same command, so it continues (the planned command gained an option that changes nothing)
    started["seconds"] = 100.0  # as the heartbeat left it when the earlier run was killed
    (work / "logs" / "train-x.started.json").write_text(json.dumps(started))
    second = StageRunner(work, env, resume=True)
    args = ["--iterations", "8", *out, "--checkpoint-every", "4"]
    assert second.run("train-x", "lasium-train", args, continue_with=lambda: ["--resume"])
    assert fake_consoles()[-1] == ["lasium-train", *args, "--resume"]
    record = second.stages[-1]
    assert record["continued"].endswith("--resume") and record["seconds"] >= 100.0  # the interrupted run's time
    assert not (work / "logs" / "train-x.started.json").exists()
    assert json.loads((work / "logs" / "train-x.done.json").read_text())["status"] == "ok"
    # done: a third invocation reuses it, with its earlier record
    third = StageRunner(work, {}, resume=True)
    assert third.run("train-x", "lasium-train", args, produces=tmp_path / "FAIL_ONCE" / "last")
    assert len(fake_consoles()) == 2 and third.stages[-1]["seconds"] == record["seconds"]


def test_output_of_the_planned_command_run_by_hand_is_continued_on_resume(tmp_path, fake_consoles):
    """A run folder the driver did not start (the planned lasium-train run by hand, no started.json) is continued
    with --resume, its record saying so; without --resume nothing is added (lasium-train then refuses the folder)."""
    work, run = tmp_path / "work", tmp_path / "run"
    (run / "step-0000001").mkdir(parents=True)  # a checkpoint, as lasium-train leaves it
    (run / "step-0000001" / "state.json").write_text(json.dumps({"step": 1}))
    args = ["--iterations", "8", "--out", str(run)]
    StageRunner(work, {}, resume=False).run("train-x", "lasium-train", args, continue_with=stages.resume_training(run))
    assert fake_consoles()[-1] == ["lasium-train", *args]
    (work / "logs" / "train-x.done.json").unlink()
    runner = StageRunner(work, {}, resume=True)
    assert runner.run("train-x", "lasium-train", args, continue_with=stages.resume_training(run))
    assert fake_consoles()[-1] == ["lasium-train", *args, "--resume"]
    assert "did not start" in runner.stages[-1]["note"]
    # a started.json of another command: that output is not this stage's, so it is not continued
    (work / "logs" / "train-x.done.json").unlink()
    (work / "logs" / "train-x.started.json").write_text(json.dumps({"command": "lasium-train --iterations 9"}))
    assert runner.run("train-x", "lasium-train", args, continue_with=stages.resume_training(run))
    assert fake_consoles()[-1] == ["lasium-train", *args]


def test_a_changed_command_a_failure_or_no_resume_runs_again(tmp_path, fake_consoles):
    work, out = tmp_path / "work", ["--out", str(tmp_path / "run")]
    assert StageRunner(work, {}, resume=False).run("train-x", "lasium-train", ["--iterations", "8", *out])
    assert StageRunner(work, {}, resume=False).run("train-x", "lasium-train", ["--iterations", "8", *out])
    assert StageRunner(work, {}, resume=True).run("train-x", "lasium-train", ["--iterations", "9", *out])
    assert [c[2] for c in fake_consoles()] == ["8", "8", "9"]  # another command is another stage
    runner = StageRunner(work, {}, resume=True)
    assert runner.run("train-x", "lasium-train", ["--iterations", "9", *out], produces=tmp_path / "gone")
    assert len(fake_consoles()) == 4  # its output is gone: run again
    failing, env = ["--out", str(tmp_path / "FAIL_ONCE")], {"FAIL_ONCE": "FAIL_ONCE"}
    assert not StageRunner(work, env, resume=True).run("f", "lasium-train", failing)
    assert StageRunner(work, env, resume=True).run("f", "lasium-train", failing)  # a failure is never reused
    assert len(fake_consoles()) == 6


def test_heartbeat_while_waiting():
    beats = []
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.35)"])
    assert stages.wait_with_heartbeat(proc, None, lambda: beats.append(1), every=0.1) == 0
    assert len(beats) >= 2
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    with pytest.raises(subprocess.TimeoutExpired):
        stages.wait_with_heartbeat(proc, 0.25, lambda: None, every=0.1)
    proc.kill()
    proc.wait()


def test_plan_counts_the_work_already_done(tmp_path):
    """The estimate of a row shrinks with the shards written, the training's latest checkpoint and the tasks an
    interrupted evaluation scored, and reaches zero for stages that finished with the same command."""
    from lasium.evaluate import partial_path

    pipe = driver_pipeline(tmp_path, sizes="cpu", resume=True, device="auto")
    sizes = SIZES["cpu"]
    row = next(r for r in plan_rows("maml") if r.key == "maml-ro")
    full = pipe.estimate(row)
    logs = pipe.work / "logs"
    logs.mkdir(parents=True)

    def started(name, console, stage_args):
        command = canonical(" ".join([console, *map(str, stage_args)]))
        (logs / f"{name}.started.json").write_text(json.dumps({"command": command}))

    name, gen_args, shards = pipe.gen_stage(row)
    shards.mkdir(parents=True)
    half = {"config": {"num_tasks": sizes.gen_tasks_maml}, "shard": {"num_tasks": sizes.gen_tasks_maml // 2}}
    (shards / "ro-000000.tar.json").write_text(json.dumps(half))  # no started.json: a rerun keeps shards anyway
    other = {"config": {"num_tasks": 7}, "shard": {"num_tasks": 7}}  # another set's shard: not this stage's
    (shards / "ro-000001.tar.json").write_text(json.dumps(other))
    after_gen = pipe.estimate(row)
    assert after_gen == pytest.approx(full - sizes.gen_tasks_maml / RATES["cpu"]["gen"] / 2, rel=0.02)
    name, train_args, run = pipe.train_stage(row, shards)
    (run / "step-0000500").mkdir(parents=True)
    (run / "step-0000500" / "state.json").write_text(json.dumps({"step": 500}))
    started(name, "lasium-train", train_args)
    after_train = pipe.estimate(row)
    assert after_gen - after_train > 0.3 * sizes.maml_iterations * sizes.maml_meta_batch / RATES["cpu"]["maml"]
    name, eval_args, out = pipe.eval_stage(row, run)
    partial_path(out).parent.mkdir(parents=True)
    partial = {"key": {"protocol": {"tasks": 1000, "shots": [1, 5]}}, "shots": {"1": {"accuracies": [1.0] * 500}}}
    partial_path(out).write_text(json.dumps(partial))
    started(name, "lasium-eval", eval_args)
    assert pipe.estimate(row) < after_train
    for name, console, stage_args in (
        (pipe.gen_stage(row)[0], "lasium-gen", gen_args),
        (pipe.train_stage(row, shards)[0], "lasium-train", train_args),
        (pipe.eval_stage(row, run)[0], "lasium-eval", eval_args),
    ):
        command = " ".join([console, *map(str, stage_args)])
        (logs / f"{name}.done.json").write_text(json.dumps({"command": command, "status": "ok"}))
    assert pipe.estimate(row) < 0.02 * full
    (logs / f"{pipe.train_stage(row, shards)[0]}.done.json").write_text(
        json.dumps({"command": "lasium-train --iterations 1", "status": "ok"})
    )
    assert pipe.estimate(row) > 0.1 * full


# --- a whole run -----------------------------------------------------------------------------------------------
def test_a_resumed_run_gives_the_rows_of_an_uninterrupted_one(tmp_path, fake_consoles, monkeypatch):
    """Two rows through the real stage runner: once in one go, once interrupted (maml-ro's training fails after
    its first checkpoint) and resumed. The resumed run reuses every finished stage, continues the training with
    --resume, and ends with the same rows and figures."""
    only = ("protonets-ro", "maml-ro")
    whole = run_omniglot(options_for(tmp_path / "a", only=only))
    assert [r["status"] for r in whole["rows"]] == ["ok", "ok"]

    # the interrupted run: the same options, another folder, and maml-ro's training fails the first time
    monkeypatch.setenv("FAIL_ONCE", "maml-ro")
    options = options_for(tmp_path / "b", only=only, keep_shards=True)
    first = run_omniglot(options)
    assert [r["status"] for r in first["rows"]] == ["ok", "failed"]
    before = len(fake_consoles())
    resumed = run_omniglot(replace(options, resume=True))
    ran = [c for c in fake_consoles()[before:]]
    assert [c[0] for c in ran] == ["lasium-train"] + ["lasium-eval"] and ran[0][-1] == "--resume"
    assert [r["status"] for r in resumed["rows"]] == ["ok", "ok"]

    def figures(results):
        return {r["key"]: r["eval"] for r in results["rows"]}

    assert figures(resumed) == figures(whole)
    notes = {s["name"]: s.get("note", "") for s in resumed["stages"]}
    assert "continued from an interrupted run" in notes["train-maml-ro"]
    assert all("reused" in notes[n] for n in ("gen-ro-protonets", "train-protonets-ro", "eval-protonets-ro"))
    assert resumed["resumed"] and (options.results / "preview-ro.png").is_file()


def old_layout_work_folder(work: Path, results: Path) -> dict[str, str]:
    """A work folder as the old driver (``python benchmarks/repro_omniglot.py --sizes cpu --ablation --work W
    --results R --only maml-ro-x4 --threads 1 --keep-shards``) leaves it when stopped during its training: the
    generation and preview done, the training started with a checkpoint at step 500, the page written. The
    commands are the old driver's, written out as it recorded them."""
    w = str(work)
    commands = {
        "gen": "lasium-gen --strategy ro --n-tasks 16000 --generator omniglot-gan --preset maml --shots 1 "
        "--queries 5 --decode-tasks 50 --precision auto --tasks-per-shard 1000 --workers 1 --seed 0 "
        f"--out {w}/shards/ro-maml-16000 --quiet",
        "train": f"lasium-train --shards {w}/shards/ro-maml-16000 --algo maml --iterations 4000 --meta-batch 4 "
        "--augment auto --precision auto --inner-steps 5 --val-every 1000 --val-tasks 100 --workers 1 "
        f"--checkpoint-every 500 --log-every 50 --seed 0 --out {w}/runs/maml-ro-x4 --quiet",
        "eval": f"lasium-eval --checkpoint {w}/runs/maml-ro-x4 --shots 1,5 --tasks 1000 --seed 0 --precision auto "
        f"--adapt-steps 50 --adapt-lr 0.4 --out {w}/evals/maml-ro-x4.json --quiet",
    }
    logs = work / "logs"
    logs.mkdir(parents=True)
    argv = ["benchmarks/repro_omniglot.py", "--sizes", "cpu", "--ablation", "--work", w, "--results", str(results)]
    (work / "repro-omniglot.json").write_text(json.dumps({"argv": argv, "started": 1.0}) + "\n")
    (work / "shards" / "ro-maml-16000").mkdir(parents=True)
    (work / "shards" / "ro-maml-16000" / "manifest.json").write_text("{}")
    preview = f"lasium-shards preview {w}/shards/ro-maml-16000 --tasks 4 --out {results}/preview-ro.png"
    results.mkdir(parents=True)
    (results / "preview-ro.png").write_bytes(b"png")
    for name, command, seconds in (("gen-ro-maml-16000", commands["gen"], 2950.0), ("preview-ro", preview, 0.9)):
        record = {"name": name, "row": "maml-ro-x4", "command": command, "status": "ok", "seconds": seconds,
                  "log": f"{w}/logs/{name}.log"}  # fmt: skip
        (logs / f"{name}.done.json").write_text(json.dumps(record) + "\n")
    (logs / "train-maml-ro-x4.started.json").write_text(json.dumps({"command": commands["train"], "seconds": 1800.0}))
    (work / "runs" / "maml-ro-x4" / "step-0000500").mkdir(parents=True)
    (work / "runs" / "maml-ro-x4" / "step-0000500" / "state.json").write_text(json.dumps({"step": 500}))
    page = {
        "format": "lasium-repro-omniglot",
        "format_version": 1,
        "preset": "cpu",
        "driver_command": "python benchmarks/repro_omniglot.py " + " ".join(argv[1:]),
        "rows": [{"key": "maml-ro-x4", "status": "running", "commands": commands}],
        "stages": [],
        "images": {"curves": [], "previews": {"ro": "preview-ro.png"}},
    }
    (results / "omniglot.json").write_text(json.dumps(page, indent=2) + "\n")
    return commands


def test_a_work_folder_of_the_old_driver_is_continued_by_the_new_command(tmp_path, fake_consoles, monkeypatch):
    """The in-flight case: lasium-repro omniglot --resume with the old command's options on its work folder reuses
    its generation and preview, continues its training from the checkpoint (--resume) and scores the row."""
    work, results = tmp_path / "runs" / "repro-cpu", tmp_path / "runs" / "repro-cpu" / "results-l-maml-ro-x4"
    commands = old_layout_work_folder(work, results)
    options = OmniglotOptions(sizes="cpu", ablation=True, work=work, results=results, only=("maml-ro-x4",),
                              threads=1, keep_shards=True, resume=True)  # fmt: skip
    written = run_omniglot(options)
    ran = fake_consoles()
    assert [c[0] for c in ran] == ["lasium-train", "lasium-eval"]  # generation and preview were reused
    assert " ".join(ran[0][:-1]) == commands["train"] and ran[0][-1] == "--resume"
    assert " ".join(ran[1]) == commands["eval"]
    row = written["rows"][0]
    # the row records today's spelling of the generation command (lasium-gen's --preset is now --tuned-for)
    renamed = {**commands, "gen": commands["gen"].replace("--preset", "--tuned-for")}
    assert row["key"] == "maml-ro-x4" and row["status"] == "ok" and row["commands"] == renamed
    train = next(s for s in written["stages"] if s["name"] == "train-maml-ro-x4")
    assert train["seconds"] >= 1800.0 and "continued from an interrupted run" in train["note"]
    gen = next(s for s in written["stages"] if s["name"] == "gen-ro-maml-16000")
    assert gen["seconds"] == 2950.0 and "reused" in gen["note"]
    assert written["images"]["previews"] == {"ro": "preview-ro.png"}  # the earlier invocation's preview is kept
    assert (work / "shards" / "ro-maml-16000").is_dir()  # --keep-shards

    # then merged into the committed page, whose rows were planned with the work folder spelled relative
    monkeypatch.chdir(tmp_path)
    committed = tmp_path / "results"
    relative = OmniglotOptions(sizes="cpu", ablation=True, work=Path("runs/repro-cpu"), results=Path("results"))
    pipe = Pipeline(relative, SIZES["cpu"], RATES["cpu"], "cpu", {})
    pipe.generator = {"spec": "omniglot-gan"}
    maml_n = next(r for r in chosen_rows(relative, SIZES["cpu"]) if r.key == "maml-n")
    earlier = scored_row("maml-n", maml_n.label, "maml", "lasium", 88.72, 97.67, commands=pipe.planned_commands(maml_n))
    committed.mkdir()
    (committed / "omniglot.json").write_text(json.dumps({"preset": "cpu", "rows": [earlier], "stages": []}))
    merged = page_only_omniglot(replace(relative, reuse_results=(results / "omniglot.json",)))
    status = {r["key"]: r["status"] for r in merged["rows"]}
    assert status["maml-n"] == "ok" and status["maml-ro-x4"] == "ok"
    assert sum(s == "ok" for s in status.values()) == 2  # the rest: "not run"


def test_every_row_of_the_committed_page_is_planned_with_the_commands_it_ran(monkeypatch):
    """results/omniglot.json was made by the old driver: the new planner gives each of its finished rows the
    commands it recorded, so a resumed or merged reproduction keeps them instead of running them again."""
    monkeypatch.chdir(REPO)
    committed = json.loads((REPO / "results" / "omniglot.json").read_text())
    options = OmniglotOptions(
        sizes="cpu",
        ablation=True,
        work=Path("runs/repro-cpu"),
        resume=True,
        only=("lasium", "supervised", "scratch", "other", "vae", "ablation"),
    )
    pipe = Pipeline(options, SIZES["cpu"], RATES["cpu"], "cpu", {})
    pipe.generator = {"spec": "omniglot-gan"}
    rows = {r.key: r for r in chosen_rows(options, SIZES["cpu"], native_bf16=False)}
    # (rows of another GAN come from their own pages, --generator-results: this driver never plans them)
    finished = [r["key"] for r in committed["rows"] if r["status"] == "ok" and r["family"] != "other-gan"]
    assert len(finished) >= 20
    assert [
        k for k in finished if not pipe.reuse_committed(rows[k], {"commands": pipe.planned_commands(rows[k])})
    ] == []


# --- the side experiments --------------------------------------------------------------------------------------
def test_bundled_fits_continue_across_calls_and_export_once_done(tmp_path, fake_consoles, monkeypatch):
    """Each call trains for its time budget; the next one continues with --resume; a model is measured and
    exported only once its fit reached its epochs (the stand-in lasium-fit adds one epoch per call)."""
    import lasium.generate
    from lasium.repro import bundled

    exported = []
    monkeypatch.setattr(lasium.generate, "export_bundled", lambda out, name, **kw: exported.append(name) or out)
    monkeypatch.setattr(bundled, "measure_quality", lambda folder, device, seed: {"fd_generated_vs_test": 1.0})
    options = bundled.BundledOptions(out=tmp_path / "fits", gan_epochs=2, vae_epochs=1, gan_keep_epochs=(0, 10))
    bundled.run(options)
    assert exported == ["omniglot-vae"]  # the GAN has 1 of its 2 epochs
    gan = [c for c in fake_consoles() if "gan" in c]
    assert "--resume" not in gan[0] and gan[0][gan[0].index("--keep-epochs") + 1] == "0"  # 10 > 2 epochs: not kept
    bundled.run(options)
    gan = [c for c in fake_consoles() if "gan" in c]
    assert len(gan) == 2 and gan[1][-1] == "--resume"
    assert exported == ["omniglot-vae", "omniglot-gan", "omniglot-vae"]  # the VAE was done: reused, exported again
    by_epoch = json.loads((tmp_path / "fits" / "omniglot-gan" / "fid-by-epoch.json").read_text())
    assert sorted(by_epoch) == ["0", "2"]  # the kept snapshot and the final model, each measured


def test_precision_check_trains_and_scores_each_precision(tmp_path, fake_consoles):
    from lasium.repro.pages import redraw_page
    from lasium.repro.precision import PrecisionOptions, run

    options = PrecisionOptions(shards=tmp_path / "set", work=tmp_path / "w", results=tmp_path / "r", iterations=4)
    page = run(options)
    ran = fake_consoles()
    assert [(c[0], c[c.index("--precision") + 1]) for c in ran] == [
        ("lasium-train", "fp32"),
        ("lasium-eval", "fp32"),
        ("lasium-train", "bf16"),
        ("lasium-eval", "bf16"),
    ]
    assert {k: r["precision_used"] for k, r in page["rows"].items()} == {"fp32": "fp32", "bf16": "bf16"}
    md = (tmp_path / "r" / "precision.md").read_text()
    assert all(f"{r['results']['1']['accuracy_pct']:.2f}" in md for r in page["rows"].values())
    (tmp_path / "r" / "precision.md").unlink()
    assert redraw_page(tmp_path / "r" / "precision.json") == [tmp_path / "r" / "precision.md"]
    assert (tmp_path / "r" / "precision.md").read_text() == md


def test_an_interrupted_sweep_point_continues_its_training_and_its_scoring(tmp_path, fake_consoles, monkeypatch):
    """A sweep point whose training was killed after a checkpoint, or whose scoring left a partial evaluation, is
    continued with ``--resume`` by ``lasium-repro sweep --resume`` (not refused for an occupied run folder, not
    started over), and its page is the uninterrupted one's."""
    from lasium.repro.sweep import PointBudget, SweepOptions
    from lasium.repro.sweep import run as run_sweep

    budget = PointBudget(tasks=24, iterations=4, val_tasks=10)
    options = SweepOptions(budget=budget, strategies=("n",), values=(0.5,), only="parameter",
                           work=tmp_path / "w", results=tmp_path / "r")  # fmt: skip
    monkeypatch.setenv("FAIL_ONCE", "n-sigma0.5-shift5")
    assert [r["status"] for r in run_sweep(options)["rows"]] == ["failed"]
    before = len(fake_consoles())
    resumed = run_sweep(replace(options, resume=True))
    ran = fake_consoles()[before:]
    assert [c[0] for c in ran] == ["lasium-train", "lasium-eval"] and ran[0][-1] == "--resume"
    assert "--resume" not in ran[1]  # no partial evaluation: scored from the start
    train = next(st for st in resumed["stages"] if st["name"].startswith("train-"))
    assert "continued from an interrupted run" in train["note"]
    # scoring killed after 500 s: its partial file and its heartbeat are there, its stage did not finish
    evals, logs = tmp_path / "w" / "evals", tmp_path / "w" / "logs"
    (evals / "n-sigma0.5-shift5.json").unlink()
    (evals / "n-sigma0.5-shift5.json.partial.json").write_text("{}")
    scoring = json.loads((logs / "eval-n-sigma0.5-shift5.done.json").read_text())["command"]
    (logs / "eval-n-sigma0.5-shift5.done.json").unlink()
    (logs / "eval-n-sigma0.5-shift5.started.json").write_text(json.dumps({"command": scoring, "seconds": 500.0}))
    (tmp_path / "r" / "sweep.json").unlink()  # the page is written after each point: it did not hold this one yet
    before = len(fake_consoles())
    again = run_sweep(replace(options, resume=True))
    ran = fake_consoles()[before:]
    assert [c[0] for c in ran] == ["lasium-eval"] and ran[0][-1] == "--resume"
    assert [r["val"] for r in again["rows"]] == [r["val"] for r in resumed["rows"]]
    scored = next(st for st in again["stages"] if st["name"].startswith("eval-"))
    assert "continued from an interrupted run" in scored["note"] and scored["earlier_seconds"] == 500.0
    assert scored["seconds"] >= 500.0 and again["wall_seconds"] >= 500.0  # the page counts the killed run's time


def test_stage_commands_come_from_the_running_environment_not_path(tmp_path, monkeypatch):
    """``/venv/bin/lasium-repro`` run without activating its environment runs that environment's stages: a
    ``lasium-gen`` earlier on PATH (another environment, another lasium) is never picked."""
    other = tmp_path / "other-env" / "bin"
    other.mkdir(parents=True)
    (other / "lasium-gen").write_text("#!/bin/sh\nexit 3\n")
    (other / "lasium-gen").chmod(0o755)
    monkeypatch.setenv("PATH", f"{other}:{Path(sys.executable).parent}:/usr/bin:/bin")
    command = stages.tool("lasium-gen")
    assert str(other) not in " ".join(command)
    beside = Path(sys.executable).parent / "lasium-gen"
    if beside.is_file():
        assert command == [str(beside)]
    else:  # no console script installed beside this Python: the entry point through this very interpreter
        assert command[0] == sys.executable and "lasium.generate.job.cli" in command[-1]


def test_rows_of_a_page_written_from_another_directory_are_the_same_stages():
    """A second driver run in runs/ with ``--work repro-cpu`` wrote ``repro-cpu/...`` paths; the page at the root
    plans ``runs/repro-cpu/...``: the same folder, so its rows are reused (the page records how it spelled it)."""
    from lasium.repro.stages import page_work

    theirs = {"gen": "lasium-gen --strategy n --out repro-cpu/shards/n --quiet"}
    ours = {"gen": "lasium-gen --strategy n --out runs/repro-cpu/shards/n --quiet"}
    assert not same_commands(theirs, ours, Path("runs/repro-cpu"))
    assert same_commands(theirs, ours, Path("runs/repro-cpu"), Path("repro-cpu"))
    assert not same_commands(
        theirs, {"gen": ours["gen"].replace("n --quiet", "other --quiet")}, Path("runs/repro-cpu"), Path("repro-cpu")
    )
    assert page_work({"options": {"work": "repro-cpu"}}) == Path("repro-cpu")
    assert page_work(
        {"driver_command": "python benchmarks/repro_omniglot.py --sizes cpu --work runs/repro-cpu"}
    ) == Path("runs/repro-cpu")
    assert page_work({}) is None


def test_a_row_in_fp32_is_estimated_at_the_fp32_rates_on_a_bf16_cpu(tmp_path):
    """The ablation's earlier configuration trains and scores in fp32 whatever the CPU: on a CPU estimated at native
    bf16's rates it gets the fp32 CPU's; the other rows keep the bf16 ones."""
    from lasium.repro.rows import plan_ablation

    fast = driver_pipeline(tmp_path / "a", sizes="cpu", rates=RATES["cpu-bf16"])
    slow = driver_pipeline(tmp_path / "b", sizes="cpu", rates=RATES["cpu"])
    earlier = plan_ablation(fast.sizes)[0]
    maml_ro = next(r for r in plan_rows("maml") if r.key == "maml-ro")
    assert fast.row_rates(earlier) is RATES["cpu"] and fast.row_rates(maml_ro) is RATES["cpu-bf16"]
    assert fast.stage_estimates(earlier) == slow.stage_estimates(earlier)
    assert fast.estimate(maml_ro) < slow.estimate(maml_ro) / 2
