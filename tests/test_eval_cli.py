"""``lasium-eval`` end to end on a small image folder: JSON content, same episodes across methods, one-line
errors with exit 2, atomic writes."""

from __future__ import annotations

import json
import os

import pytest
import torch
from click.testing import CliRunner
from eval_helpers import image_folder

from lasium import safe_io
from lasium.evaluate.cli import main
from lasium.evaluate.report import write_json_atomic
from lasium.train.checkpoint import save_checkpoint
from lasium.train.config import TrainConfig
from lasium.train.learner import LearnerConfig
from lasium.train.registry import build_learner

FAST = ["--tasks", "6", "--queries", "3", "--shots", "1,2", "--adapt-steps", "2", "--quiet", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pics", {"train": 5, "val": 5, "test": 6}, per_class=6)
    return f"imagefolder:{root}"


def make_run(path, algo: str, ways: int = 5):
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=algo, ways=ways, image_shape=(16, 16, 1), hidden=4))
    config = TrainConfig(
        shards=["unused"],
        out=str(path),
        algo=algo,
        ways=ways,
        shots=1,
        queries=5,
        image_shape=[16, 16, 1],
        iterations=3,
        meta_batch=2,
        hidden=4,
        augment="shift5",
    )
    save_checkpoint(
        path / "last",
        learner,
        config,
        state={"step": 3, "tasks_seen": 6, "best_val_accuracy": None, "precision": "bf16"},
    )
    return path


def invoke(args):
    result = CliRunner().invoke(main, args)
    return result.exit_code, result.stdout, result.stderr


def test_checkpoint_and_baseline_share_episodes(tmp_path, folder):
    run = make_run(tmp_path / "runs" / "proto", "protonets")
    code, out, err = invoke(
        ["--checkpoint", str(run), "--dataset", folder, "--out", str(tmp_path / "proto.json")] + FAST
    )
    assert code == 0, err
    assert "accuracy %" in out and "±" in out
    assert "trained: 3 steps x 2 tasks, augment shift5, precision bf16" in out  # how the learner was trained
    proto = json.loads((tmp_path / "proto.json").read_text())
    assert proto["train_config"]["augment"] == "shift5" and proto["checkpoint_state"]["precision"] == "bf16"
    assert proto["format"] == "lasium-eval" and proto["method"]["kind"] == "checkpoint"
    assert proto["learner"]["algo"] == "protonets" and proto["train_config"]["algo"] == "protonets"
    assert proto["checkpoint_state"]["step"] == 3
    assert proto["protocol"]["tasks"] == 6 and proto["protocol"]["shots"] == [1, 2]
    assert [r["shots"] for r in proto["results"]] == [1, 2]
    assert all(0 <= r["accuracy"] <= 1 and r["tasks"] == 6 for r in proto["results"])
    assert proto["device"]["type"] == "cpu" and proto["wall_seconds"] > 0 and proto["dataset"]["classes"] == 6
    assert proto["command"].startswith("lasium-eval")

    maml_run = make_run(tmp_path / "runs" / "maml", "maml")
    code, _, err = invoke(
        ["--checkpoint", str(maml_run), "--dataset", folder, "--out", str(tmp_path / "maml.json")] + FAST
    )
    assert code == 0, err
    code, _, err = invoke(
        [
            "--baseline",
            "scratch",
            "--algo",
            "maml",
            "--dataset",
            folder,
            "--image-size",
            "16",
            "--out",
            str(tmp_path / "s.json"),
        ]
        + FAST
    )
    assert code == 0, err
    maml, scratch = json.loads((tmp_path / "maml.json").read_text()), json.loads((tmp_path / "s.json").read_text())
    assert proto["episode_digest"] == maml["episode_digest"] == scratch["episode_digest"]
    assert scratch["method"] == {"kind": "baseline", "baseline": "scratch", "algo": "maml", "init_seed": 0}
    # another seed, other tasks
    code, _, err = invoke(
        [
            "--baseline",
            "scratch",
            "--algo",
            "protonets",
            "--dataset",
            folder,
            "--seed",
            "1",
            "--image-size",
            "16",
            "--out",
            str(tmp_path / "s1.json"),
        ]
        + FAST
    )
    assert code == 0, err
    assert json.loads((tmp_path / "s1.json").read_text())["episode_digest"] != proto["episode_digest"]


def test_default_out_is_in_the_run_folder(tmp_path, folder):
    run = make_run(tmp_path / "run", "protonets")
    code, _, err = invoke(["--checkpoint", str(run), "--dataset", folder] + FAST)
    assert code == 0, err
    written = list(run.glob("eval-imagefolder-*-test.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["results"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint", "no/such/run"], "does not exist"),
        (["--baseline", "scratch", "--algo", "maml", "--shots", "1,x"], "--shots"),
        (["--baseline", "scratch", "--algo", "maml", "--shots", "0"], "--shots"),
        (["--baseline", "scratch"], "--algo"),
        ([], "--checkpoint"),
        (["--baseline", "scratch", "--algo", "maml", "--tasks", "0"], "--tasks"),
        (["--baseline", "scratch", "--algo", "maml", "--ways", "many"], "--ways"),
        (["--baseline", "scratch", "--algo", "maml", "--chunk", "0"], "--chunk"),
        (["--baseline", "scratch", "--algo", "maml", "--image-size", "8"], "--image-size"),
        (["--checkpoint", "x", "--image-size", "28"], "--image-size"),
    ],
)
def test_bad_input_one_line_exit_2(tmp_path, args, message):
    out = tmp_path / "r.json"
    code, stdout, stderr = invoke(args + ["--out", str(out)])
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], stderr
    assert "Traceback" not in stderr and not out.exists()


def test_bad_checkpoint_and_wrong_ways(tmp_path, folder):
    broken = tmp_path / "broken"
    (broken / "last").mkdir(parents=True)
    (broken / "last" / "model.safetensors").write_bytes(b"not safetensors")
    (broken / "last" / "config.json").write_text("{")
    code, _, stderr = invoke(
        ["--checkpoint", str(broken), "--dataset", folder, "--out", str(tmp_path / "x.json")] + FAST
    )
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
    run = make_run(tmp_path / "maml", "maml")
    code, _, stderr = invoke(
        ["--checkpoint", str(run), "--dataset", folder, "--ways", "3", "--out", str(tmp_path / "y.json")] + FAST
    )
    assert code == 2 and "--ways 5" in stderr and not (tmp_path / "y.json").exists()


def test_json_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    with pytest.raises(TypeError):  # not serialisable: the old file stays, no temporary file
        write_json_atomic(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}

    def broken_replace(src, dst):
        raise OSError(5, "simulated I/O error")

    monkeypatch.setattr(safe_io.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["r.json"]
