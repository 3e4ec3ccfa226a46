"""lasium-train --lr-schedule: the schedules, what the trainer applies and logs, and an exact --resume."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from lasium.errors import ConfigError
from lasium.train.cli import main as cli_main
from lasium.train.config import TrainConfig
from lasium.train.lr_schedule import LR_SCHEDULES, cosine
from lasium.train.run_log import read_metrics
from lasium.train.synthetic import write_synthetic_shards
from lasium.train.trainer import train

SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("lr-shards") / "blobs"
    write_synthetic_shards(root, container="wds", shards=2, tasks_per_shard=24, image_shape=SHAPE, seed=5)
    return root


def config(shards, out, **kw) -> TrainConfig:
    base = dict(
        shards=[str(shards)], out=str(out), algo="protonets", hidden=8, meta_batch=2, workers=0, val_dataset="none",
        shuffle_buffer=8, log_every=1, checkpoint_every=0, device="cpu", seed=1, augment="none", lr=2e-3,
    )  # fmt: skip
    base.update(kw)
    return TrainConfig(**base)


def test_cosine_starts_at_the_full_rate_and_anneals_towards_zero():
    n = 8
    factors = [cosine(step, n) for step in range(1, n + 1)]
    assert factors[0] == 1.0
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert math.isclose(cosine(n // 2 + 1, n), 0.5)
    assert 0 < factors[-1] < 0.05
    assert all(LR_SCHEDULES["constant"](step, n) == 1.0 for step in range(1, n + 1))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_the_trainer_applies_and_logs_the_rate_of_every_step(shards, tmp_path, schedule):
    train(config(shards, tmp_path / "run", iterations=6, lr_schedule=schedule), progress=False)
    records = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert [r["step"] for r in records] == list(range(1, 7))
    expected = [2e-3 * LR_SCHEDULES[schedule](r["step"], 6) for r in records]
    assert [r["lr"] for r in records] == pytest.approx(expected)
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["lr_schedule"] == schedule


def test_a_cosine_run_resumes_exactly_and_differs_from_a_constant_one(shards, tmp_path):
    kw = dict(iterations=6, checkpoint_every=2, lr_schedule="cosine")
    train(config(shards, tmp_path / "straight", **kw), progress=False)
    train(config(shards, tmp_path / "split", **kw), progress=False)
    for folder in (tmp_path / "split").iterdir():  # as if stopped after step-0000004/ was written
        if folder.name in ("last", "best", "step-0000006"):
            shutil.rmtree(folder)
    assert (tmp_path / "split" / "step-0000004" / "state.json").is_file()
    result = CliRunner().invoke(cli_main, ["--out", str(tmp_path / "split"), "--resume", "--quiet"])
    assert result.exit_code == 0, result.output
    train(config(shards, tmp_path / "constant", iterations=6, lr_schedule="constant"), progress=False)
    straight = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    split = load_file(str(tmp_path / "split" / "last" / "model.safetensors"))
    constant = load_file(str(tmp_path / "constant" / "last" / "model.safetensors"))
    assert all(torch.equal(straight[k], split[k]) for k in straight)
    assert any(not torch.equal(straight[k], constant[k]) for k in straight)
    lrs = [r["lr"] for r in read_metrics(tmp_path / "split") if r["split"] == "train"]
    assert lrs == pytest.approx([2e-3 * cosine(step, 6) for step in range(1, 7)])


def test_bad_schedules_are_refused_in_one_line(shards, tmp_path):
    with pytest.raises(ConfigError, match="--lr-schedule must be one of constant, cosine"):
        config(shards, tmp_path / "run", lr_schedule="linear").validate()
    result = CliRunner().invoke(
        cli_main, ["--shards", str(shards), "--out", str(tmp_path / "x"), "--lr-schedule", "step"]
    )
    assert result.exit_code == 2 and "--lr-schedule" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def test_runs_saved_before_the_option_read_as_constant(shards, tmp_path):
    saved = config(shards, tmp_path / "old").to_dict()
    del saved["lr_schedule"]
    assert TrainConfig.from_dict(saved).lr_schedule == "constant"
