"""End to end at 84×84×3 (issue 29): a colour image folder the test draws itself, through

    lasium-fit --model gan --dataset imagefolder:PATH --image-size 84      (the DCGAN family, chosen by shape)
    lasium-gen --generator RUN --strategy ro                                (84×84×3 tasks)
    lasium-train --shards SET --val-dataset imagefolder:PATH
    lasium-eval --checkpoint RUN --dataset imagefolder:PATH

sized for CI (the fast test runs each command in-process); the slow variant runs them as a user types them,
with MAML, bigger sets and the paper's 84×84×3 VAE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lasium.data import draw_colour_folder
from lasium.shards import iter_tasks, read_manifest, verify_shard_set


def run_in_process(main, *args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    # train: 4 classes of 4 images (16 for the fit: 2 steps); val and test: 5 classes (5-way tasks) of 3 images
    return draw_colour_folder(tmp_path_factory.mktemp("pics"), {"train": (4, 4), "val": (5, 3), "test": (5, 3)})


def check_tasks(out: Path, num_tasks: int) -> None:
    assert verify_shard_set(out).ok
    header = read_manifest(out).header
    assert header["generator"]["image_shape"] == [84, 84, 3]
    tasks = list(iter_tasks(out))
    assert len(tasks) == num_tasks
    for task in tasks:
        assert task.support.shape[2:] == (84, 84, 3) and task.support.dtype == np.uint8


def test_fit_gen_train_eval_at_84x84x3(tmp_path, folder, monkeypatch):
    from lasium.evaluate.cli import main as eval_main
    from lasium.generate.job.cli import main as gen_main
    from lasium.generate.models.fit_cli import main as fit_main
    from lasium.train.cli import main as train_main

    monkeypatch.chdir(tmp_path)
    dataset = f"imagefolder:{folder}"
    run_in_process(fit_main, "--model", "gan", "--dataset", dataset, "--image-size", "84", "--epochs", "1",
                   "--batch-size", "8", "--latent-dim", "32", "--device", "cpu", "--quiet", "--out", "gan")  # fmt: skip
    config = json.loads((tmp_path / "gan" / "config.json").read_text())
    assert config["architecture"]["name"] == "lasium-dcgan-v1" and config["image_shape"] == [84, 84, 3]
    run_in_process(gen_main, "--generator", "gan", "--strategy", "ro", "--n-tasks", "4", "--tasks-per-shard", "2",
                   "--device", "cpu", "--workers", "0", "--quiet", "--out", "tasks")  # fmt: skip
    check_tasks(tmp_path / "tasks", 4)
    run_in_process(train_main, "--shards", "tasks", "--algo", "protonets", "--iterations", "1", "--meta-batch", "2",
                   "--val-dataset", "none", "--checkpoint-every", "0", "--workers", "0", "--device", "cpu", "--quiet",
                   "--out", "run")  # fmt: skip
    run_in_process(eval_main, "--checkpoint", "run", "--dataset", dataset, "--shots", "1", "--queries", "2",
                   "--tasks", "3", "--device", "cpu", "--out", "eval.json")  # fmt: skip
    check_scores(tmp_path / "eval.json", shots=[1], tasks=3)


def check_scores(path: Path, *, shots: list[int], tasks: int) -> None:
    """lasium-eval's JSON: one accuracy in [0, 1] per K_tr over ``tasks`` episodes of the folder's test split."""
    scores = json.loads(path.read_text())
    assert scores["protocol"]["split"] == "test" and scores["protocol"]["ways"] == 5
    assert [r["shots"] for r in scores["results"]] == shots
    for row in scores["results"]:
        assert row["tasks"] == tasks and 0.0 <= row["accuracy"] <= 1.0


def cli(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=1800)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.slow  # minutes on the loaded 2-core CPU (the 84×84×3 VAE's decoder: ~7 GFLOP per image)
@pytest.mark.parametrize(
    "model, name, train", [("gan", "lasium-dcgan-v1", (10, 8)), ("vae", "lasium-vae84-v1", (5, 4))]
)
def test_commands_as_typed_at_84x84x3_with_maml(tmp_path, model, name, train):
    # val: 16 images per class, what validation's 5-way 1-shot episodes with 15 queries need
    pics = draw_colour_folder(tmp_path / "pics", {"train": train, "val": (5, 16), "test": (5, 8)}, seed=1)
    dataset = f"imagefolder:{pics}"
    cli("lasium.generate.models.fit_cli", tmp_path, "--model", model, "--dataset", dataset, "--image-size", "84",
        "--epochs", "2" if model == "gan" else "1", "--batch-size", "10", "--latent-dim", "64", "--device", "cpu",
        "--quiet", "--out", "g")  # fmt: skip
    assert json.loads((tmp_path / "g" / "config.json").read_text())["architecture"]["name"] == name
    # VAE anchors: the folder's 20 train images, encoded by a VAE of one epoch whose codes still lie close together
    # (--epsilon 0 accepts any 5 distinct images); 4 tasks, as its decoder costs ~7 GFLOP an image
    extra = ["--dataset", dataset, "--epsilon", "0"] if model == "vae" else []
    n_tasks = 20 if model == "gan" else 4
    cli("lasium.generate.job.cli", tmp_path, "--generator", "g", "--strategy", "ro", "--n-tasks", str(n_tasks),
        "--tasks-per-shard", str(n_tasks // 2), "--device", "cpu", "--quiet", "--out", "tasks", *extra)  # fmt: skip
    check_tasks(tmp_path / "tasks", n_tasks)
    cli("lasium.train.cli", tmp_path, "--shards", "tasks", "--algo", "maml", "--iterations", "4", "--meta-batch",
        "2", "--val-dataset", dataset, "--val-tasks", "4", "--val-every", "2", "--checkpoint-every", "0",
        "--device", "cpu", "--quiet", "--out", "run")  # fmt: skip
    cli("lasium.evaluate.cli", tmp_path, "--checkpoint", "run", "--dataset", dataset, "--shots", "1,5",
        "--queries", "3", "--tasks", "10", "--adapt-steps", "5", "--device", "cpu", "--out", "eval.json")  # fmt: skip
    check_scores(tmp_path / "eval.json", shots=[1, 5], tasks=10)
