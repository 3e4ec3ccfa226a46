"""``lasium-train --ema-decay``: the moving average of the weights, its checkpoints, exact resume and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from lasium.errors import ConfigError
from lasium.train.checkpoint import load_learner
from lasium.train.cli import main as cli_main
from lasium.train.config import TrainConfig
from lasium.train.learner import LearnerConfig
from lasium.train.registry import build_learner
from lasium.train.synthetic import write_synthetic_shards
from lasium.train.trainer import train
from lasium.train.weight_average import WeightAverage, warmed_up_decay

SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ema-shards") / "wds"
    write_synthetic_shards(root, container="wds", shards=2, tasks_per_shard=40, image_shape=SHAPE, seed=11, name="b")
    return root


def config(shards_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(shards=[str(shards_dir)], out=str(out), algo="protonets", hidden=16, meta_batch=4, workers=0)
    base.update(val_dataset="none", shuffle_buffer=16, log_every=5, checkpoint_every=0, device="cpu", seed=3)
    base.update(augment="none", ema_decay=0.9)
    base.update(kw)
    return TrainConfig(**base)


def test_warm_up_follows_tensorflow_num_updates():
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)  # (1 + 0) / (10 + 0): the first average is mostly new
    assert warmed_up_decay(0.999, 90) == pytest.approx(0.91)
    assert warmed_up_decay(0.9, 10_000) == 0.9  # then the decay itself


def test_the_average_is_the_warmed_up_recursion_of_the_weights():
    learner = build_learner(LearnerConfig(algo="protonets", ways=5, image_shape=SHAPE, hidden=8))
    average = WeightAverage(learner, decay=0.5)
    expected = None
    for t in range(5):
        with torch.no_grad():
            for p in learner.parameters():
                p.add_(torch.randn_like(p))
        average.update(learner)
        now = {k: v.detach().clone() for k, v in learner.named_parameters()}
        d = warmed_up_decay(0.5, t)  # t earlier updates; the first update copies (expected is None)
        expected = now if expected is None else {k: d * expected[k] + (1 - d) * now[k] for k in now}
    averaged = dict(average.learner.named_parameters())
    assert all(torch.allclose(averaged[k], expected[k], atol=1e-6) for k in expected)
    assert average.updates == 5
    assert not any(torch.equal(averaged[k], v) for k, v in learner.named_parameters())  # a copy, not the weights


@pytest.mark.parametrize("decay", [1.0, 1.5, -0.1])
def test_a_decay_outside_0_1_is_refused(decay):
    with pytest.raises(ConfigError, match="--ema-decay must be"):
        config(Path("s"), Path("o"), ema_decay=decay).validate()


def test_checkpoints_hold_the_average_and_resume_exactly(shards, tmp_path):
    """model.safetensors (what lasium-eval loads) is the average, online.safetensors the stepped weights; a run
    resumed at step 3 ends bit-identical to one that ran 6 steps straight, average and all."""
    train(config(shards, tmp_path / "straight", iterations=6), progress=False)
    train(config(shards, tmp_path / "split", iterations=3), progress=False)
    train(config(shards, tmp_path / "split", iterations=6), resume=True, progress=False)
    for file in ("model.safetensors", "online.safetensors", "optimizer.safetensors"):
        a, b = (load_file(str(tmp_path / run / "last" / file)) for run in ("straight", "split"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), file
    last = tmp_path / "split" / "last"
    assert json.loads((last / "state.json").read_text())["ema_updates"] == 6
    averaged, online = load_file(str(last / "model.safetensors")), load_file(str(last / "online.safetensors"))
    assert any(not torch.equal(averaged[k], online[k]) for k in averaged)
    learner, saved = load_learner(tmp_path / "split")
    assert saved.ema_decay == 0.9
    assert all(torch.equal(v, averaged[k]) for k, v in learner.state_dict().items())


def test_without_ema_the_checkpoint_is_as_before(shards, tmp_path):
    train(config(shards, tmp_path / "plain", iterations=2, ema_decay=0.0), progress=False)
    assert not (tmp_path / "plain" / "last" / "online.safetensors").exists()
    assert "ema_updates" not in json.loads((tmp_path / "plain" / "last" / "state.json").read_text())


def test_resume_refuses_another_decay(shards, tmp_path):
    train(config(shards, tmp_path / "run", iterations=2), progress=False)
    with pytest.raises(ConfigError, match=r"ema_decay 0.9 \(now 0.0\)"):
        train(config(shards, tmp_path / "run", iterations=4, ema_decay=0.0), resume=True, progress=False)


def test_cli_option_and_its_error(shards, tmp_path):
    runner = CliRunner()
    common = ["--shards", str(shards), "--algo", "protonets", "--iterations", "2", "--workers", "0"]
    common += ["--val-dataset", "none", "--device", "cpu", "--quiet"]
    ok = runner.invoke(cli_main, [*common, "--ema-decay", "0.99", "--out", str(tmp_path / "ok")])
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "ok" / "train_config.json").read_text())["ema_decay"] == 0.99
    bad = runner.invoke(cli_main, [*common, "--ema-decay", "1", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "error: --ema-decay must be 0 (off) or above 0 and below 1" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "bad").exists()
    assert "--ema-decay" in runner.invoke(cli_main, ["--help"]).output


def test_lasium_eval_says_it_scored_the_average(shards, tmp_path, monkeypatch):
    """lasium-eval scores model.safetensors (the average) and its report says so, with the updates averaged."""
    from eval_helpers import image_folder

    from lasium.evaluate.cli import main as eval_main

    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    root = image_folder(tmp_path / "pics", {"train": 5, "val": 5, "test": 6}, per_class=6)
    train(config(shards, tmp_path / "run", iterations=3), progress=False)
    args = [
        "--checkpoint",
        str(tmp_path / "run"),
        "--dataset",
        f"imagefolder:{root}",
        "--out",
        str(tmp_path / "e.json"),
    ]
    result = CliRunner().invoke(
        eval_main, [*args, "--tasks", "4", "--shots", "1", "--queries", "3", "--quiet", "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert "scored: moving average of the weights (decay 0.9)" in result.stdout
    assert json.loads((tmp_path / "e.json").read_text())["checkpoint_state"]["ema_updates"] == 3
