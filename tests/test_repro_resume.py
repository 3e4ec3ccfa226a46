"""The reproduction driver across sessions: a stage killed halfway is continued (``--resume`` on its command)
instead of started over, its time adds up, and ``--plan`` counts the work already in ``--work``."""

from __future__ import annotations

import json
import sys

import pytest
import stages
from repro_helpers import driver_pipeline
from repro_omniglot import PRESETS, RATES, plan_rows
from stages import StageRunner, canonical, same_commands


def test_options_that_do_not_change_results_do_not_make_another_stage():
    a = "lasium-train --shards s --checkpoint-every 0 --iterations 8 --out r"
    b = "lasium-train --shards s --checkpoint-every 500 --iterations 8 --out r --resume"
    assert canonical(a) == canonical(b) == "lasium-train --shards s --iterations 8 --out r"
    assert canonical("lasium-train --iterations 9") != canonical("lasium-train --iterations 8")
    assert same_commands({"train": a, "eval": "x"}, {"train": b, "eval": "x"})
    assert not same_commands({"train": a}, {"train": a, "eval": "x"})
    assert not same_commands({"train": a}, {"train": a.replace("8", "9")})


@pytest.fixture()
def fake_console(tmp_path, monkeypatch):
    """``lasium-train`` replaced by a script that records its arguments and fails unless it is given --resume
    (or --finish), like a command killed halfway and then continued."""
    calls = tmp_path / "calls.jsonl"
    script = tmp_path / "fake.py"
    script.write_text(
        "import json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.exit(0 if {'--resume', '--finish'} & set(sys.argv) else 3)\n"
    )
    monkeypatch.setattr(stages, "tool", lambda name: [sys.executable, str(script)])
    return lambda: [json.loads(line) for line in calls.read_text().splitlines()]


def test_an_interrupted_stage_is_continued_with_its_resume_arguments(tmp_path, fake_console):
    work = tmp_path / "work"
    first = StageRunner(work, {}, resume=False)
    assert not first.run("train-x", "lasium-train", ["--iterations", "8"], continue_with=lambda: ["--resume"])
    started = json.loads((work / "logs" / "train-x.started.json").read_text())
    assert started["command"] == "lasium-train --iterations 8" and started["seconds"] >= 0
    # a later session: same command, so it continues (the planned command gained an option that changes nothing)
    started["seconds"] = 100.0  # as the heartbeat left it when the earlier run was killed
    (work / "logs" / "train-x.started.json").write_text(json.dumps(started))
    second = StageRunner(work, {}, resume=True)
    args = ["--iterations", "8", "--checkpoint-every", "4"]
    assert second.run("train-x", "lasium-train", args, continue_with=lambda: ["--resume"])
    assert fake_console()[-1] == args + ["--resume"]
    record = second.stages[-1]
    assert record["command"] == "lasium-train --iterations 8 --checkpoint-every 4"  # what was planned
    assert record["continued"].endswith("--resume") and "continued from an interrupted run" in record["note"]
    assert record["seconds"] >= 100.0  # the interrupted run's time counts
    assert not (work / "logs" / "train-x.started.json").exists()
    assert json.loads((work / "logs" / "train-x.done.json").read_text())["status"] == "ok"


def test_a_changed_command_or_no_resume_starts_over(tmp_path, fake_console):
    work = tmp_path / "work"
    StageRunner(work, {}, resume=False).run("train-x", "lasium-train", ["--iterations", "8"], continue_with=lambda: [])
    # without --resume the driver never continues: the command runs as planned
    assert not StageRunner(work, {}, resume=False).run(
        "train-x", "lasium-train", ["--iterations", "8"], continue_with=lambda: ["--resume"]
    )
    assert fake_console()[-1] == ["--iterations", "8"]
    # another command (9 iterations) is another stage: what the earlier one left is not continued
    assert not StageRunner(work, {}, resume=True).run(
        "train-x", "lasium-train", ["--iterations", "9"], continue_with=lambda: ["--resume"]
    )
    assert fake_console()[-1] == ["--iterations", "9"]
    # nothing to continue from (continue_with gives nothing): the command runs as planned
    assert not StageRunner(work, {}, resume=True).run(
        "train-x", "lasium-train", ["--iterations", "9"], continue_with=lambda: []
    )
    assert fake_console()[-1] == ["--iterations", "9"]


def test_heartbeat_while_waiting(tmp_path):
    import subprocess

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
    from lasium.evaluate.journal import partial_path

    pipe = driver_pipeline(tmp_path, preset="cpu", resume=True, device="auto")
    sizes = PRESETS["cpu"]
    row = next(r for r in plan_rows("maml") if r.key == "maml-ro")
    full = pipe.estimate(row)
    logs = pipe.work / "logs"
    logs.mkdir(parents=True)

    def started(name, console, stage_args):
        command = canonical(" ".join([console, *map(str, stage_args)]))
        (logs / f"{name}.started.json").write_text(json.dumps({"command": command}))

    # half the shards written
    name, gen_args, shards = pipe.gen_stage(row)
    shards.mkdir(parents=True)
    half = {"config": {"num_tasks": sizes.gen_tasks_maml}, "shard": {"num_tasks": sizes.gen_tasks_maml // 2}}
    (shards / "ro-000000.tar.json").write_text(json.dumps(half))  # no started.json: a rerun keeps shards anyway
    other = {"config": {"num_tasks": 7}, "shard": {"num_tasks": 7}}  # another set's shard: not this stage's
    (shards / "ro-000001.tar.json").write_text(json.dumps(other))
    after_gen = pipe.estimate(row)
    gen_seconds = sizes.gen_tasks_maml / RATES["cpu"]["gen"]
    assert after_gen == pytest.approx(full - gen_seconds / 2, rel=0.02)
    # the training's checkpoint at step 500 of 1000
    name, train_args, run = pipe.train_stage(row, shards)
    (run / "step-0000500").mkdir(parents=True)
    (run / "step-0000500" / "state.json").write_text(json.dumps({"step": 500}))
    started(name, "lasium-train", train_args)
    after_train = pipe.estimate(row)
    assert after_gen - after_train > 0.3 * sizes.maml_iterations * sizes.maml_meta_batch / RATES["cpu"]["maml"]
    # a quarter of the evaluation scored
    name, eval_args, out = pipe.eval_stage(row, run)
    protocol = {"tasks": 1000, "shots": [1, 5]}
    partial_path(out).parent.mkdir(parents=True)
    partial_path(out).write_text(
        json.dumps({"key": {"protocol": protocol}, "shots": {"1": {"accuracies": [1.0] * 500}}})
    )
    started(name, "lasium-eval", eval_args)
    assert pipe.estimate(row) < after_train
    # every stage finished with these commands: nothing left but the start-up
    for name, console, stage_args in (
        (pipe.gen_stage(row)[0], "lasium-gen", gen_args),
        (pipe.train_stage(row, shards)[0], "lasium-train", train_args),
        (pipe.eval_stage(row, run)[0], "lasium-eval", eval_args),
    ):
        command = " ".join([console, *map(str, stage_args)])
        (logs / f"{name}.done.json").write_text(json.dumps({"command": command, "status": "ok"}))
    assert pipe.estimate(row) < 0.02 * full
    # a stage whose finished command differs (other iterations) is not counted as done
    (logs / f"{pipe.train_stage(row, shards)[0]}.done.json").write_text(
        json.dumps({"command": "lasium-train --iterations 1", "status": "ok"})
    )
    assert pipe.estimate(row) > 0.1 * full


def test_ablation_steps_at_the_presets_size_and_sigma_share_the_main_rows_shard_set(tmp_path):
    # + tuned σ and later steps generate exactly what protonets-n generates: one set, one gen stage, not two
    from repro_rows import plan_ablation

    pipe = driver_pipeline(tmp_path, preset="cpu")
    main = next(r for r in plan_rows("maml") if r.key == "protonets-n")
    by_key = {r.key: r for r in plan_ablation(PRESETS["cpu"])}
    name, args, out = pipe.gen_stage(main)
    assert out.name == "n-protonets"
    for key in ("ablation-4-sigma", "ablation-5-augment"):
        if key in by_key:
            assert pipe.gen_stage(by_key[key]) == (name, args, out), key
            assert pipe.shard_key(by_key[key]) == pipe.shard_key(main)
    # sets that differ in size or σ keep their own folders
    assert pipe.gen_stage(by_key["ablation-3-budget"])[2].name == "n-protonets-32000-p1"
    assert pipe.gen_stage(by_key["ablation-2-distinct"])[2].name == "n-protonets-8000-p1"
    assert pipe.gen_stage(by_key["ablation-0-earlier"])[2].name == "n-protonets-2000-p1"
