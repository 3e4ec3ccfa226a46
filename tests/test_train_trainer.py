"""The trainer end to end on CPU: learning, exact resume, checkpoints, validation, CLI errors, imports."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file
from torch.func import vmap

from lasium.errors import CheckpointError, ConfigError, DataError, ShardError
from lasium.seeding import seed_everything
from lasium.tasks import to_device
from lasium.train.checkpoint import load_learner
from lasium.train.cli import main as cli_main
from lasium.train.config import TrainConfig
from lasium.train.registry import build_learner
from lasium.train.run_log import read_metrics
from lasium.train.synthetic import synthetic_tasks, write_synthetic_shards
from lasium.train.trainer import train

SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-shards")
    out = {}
    for container in ("wds", "hdf5"):
        out[container] = root / container
        write_synthetic_shards(
            out[container],
            container=container,
            shards=2,
            tasks_per_shard=40,
            image_shape=SHAPE,
            seed=11,
            name=f"blobs-{container}",
        )
    return out


def config(shards_dir: Path, out: Path, **kw) -> TrainConfig:
    # augment none: 16x16 blob tasks are not LASIUM tasks, and the held-out loss below is measured unaugmented
    base = dict(
        shards=[str(shards_dir)],
        out=str(out),
        hidden=16,
        meta_batch=4,
        workers=0,
        val_dataset="none",
        shuffle_buffer=16,
        log_every=5,
        checkpoint_every=0,
        device="cpu",
        seed=3,
        augment="none",
    )
    base.update(kw)
    return TrainConfig(**base)


def held_out_loss(learner, cfg: TrainConfig) -> float:
    """Mean query loss after adaptation on 64 fresh blob tasks (not in the shards)."""
    batch = synthetic_tasks(64, 5, 1, 5, SHAPE, "blobs", seed=99)
    perm = torch.from_numpy(np.stack([np.random.default_rng(i).permutation(5) for i in range(64)]))
    s, sl, q, ql = to_device(torch.from_numpy(batch.support), torch.from_numpy(batch.query), perm, torch.device("cpu"))
    params = {k: v.detach() for k, v in learner.meta_params().items()}
    with torch.no_grad():
        loss, _ = vmap(learner.task_loss, in_dims=(None, 0, 0, 0, 0))(params, s, sl, q, ql)
    return loss.mean().item()


@pytest.mark.parametrize("algo,container", [("protonets", "hdf5"), ("maml", "wds"), ("fomaml", "hdf5")])
def test_short_run_lowers_the_loss(shards, tmp_path, algo, container):
    cfg = config(shards[container], tmp_path / "run", algo=algo, iterations=30, lr=3e-3, inner_steps=2)
    seed_everything(cfg.seed)  # the trainer's initial weights
    before = held_out_loss(
        build_learner(
            TrainConfig(
                **{**cfg.to_dict(), "ways": 5, "shots": 1, "queries": 5, "image_shape": list(SHAPE)}
            ).learner_config()
        ),
        cfg,
    )
    result = train(cfg, progress=False)
    records = [r for r in read_metrics(tmp_path / "run") if r["split"] == "train"]
    assert [r["step"] for r in records] == list(range(5, 31, 5))
    assert records[-1]["loss"] < records[0]["loss"], records
    assert result.step == 30 and (tmp_path / "run" / "last" / "model.safetensors").is_file()
    learner, saved = load_learner(tmp_path / "run")
    assert learner.algo == algo and saved.ways == 5 and saved.image_shape == list(SHAPE) and saved.iterations == 30
    after = held_out_loss(learner, cfg)
    assert after < 0.8 * before, (before, after)


def test_resume_refuses_a_run_trained_with_other_settings(shards, tmp_path):
    """--resume continues only its own run: another --lr, --lr-schedule, --seed or --distance is refused in one line,
    with the run folder left as it was; the shard set may have moved (same tasks under another path)."""
    kw = dict(algo="protonets", checkpoint_every=2)
    train(config(shards["wds"], tmp_path / "run", iterations=2, **kw), progress=False)
    before = (tmp_path / "run" / "last" / "state.json").read_text()
    for other, shown in [
        (dict(lr=2e-3), "lr 0.001 (now 0.002)"),
        (dict(lr_schedule="cosine"), "lr_schedule 'constant' (now 'cosine')"),
        (dict(seed=1), "seed 3 (now 1)"),
        (dict(distance="mean-squared"), "distance 'squared-euclidean' (now 'mean-squared')"),
        (dict(temperature=4.0), "temperature 1.0 (now 4.0)"),
    ]:
        with pytest.raises(ConfigError, match="trained with other settings") as err:
            train(config(shards["wds"], tmp_path / "run", iterations=4, **kw, **other), resume=True, progress=False)
        assert shown in str(err.value) and "\n" not in str(err.value)
        assert (tmp_path / "run" / "last" / "state.json").read_text() == before
    moved = tmp_path / "moved"
    shutil.copytree(shards["wds"], moved)
    train(config(moved, tmp_path / "run", iterations=4, **kw), resume=True, progress=False)
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["step"] == 4


@pytest.mark.parametrize("augment", ["none", "shift5-support"])
def test_resume_continues_exactly(shards, tmp_path, augment):
    """Also with augmentation (queries and half the supports): its randomness is drawn from (seed, rank, step)."""
    kw = dict(
        algo="fomaml", inner_steps=1, workers=2, shuffle_buffer=8, checkpoint_every=2, loader_group=2, augment=augment
    )
    train(config(shards["wds"], tmp_path / "straight", iterations=6, **kw), progress=False)
    train(config(shards["wds"], tmp_path / "split", iterations=3, **kw), progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(config(shards["wds"], tmp_path / "split", iterations=6, **kw), progress=False)
    train(config(shards["wds"], tmp_path / "split", iterations=6, **kw), resume=True, progress=False)
    for file in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(str(tmp_path / "straight" / "last" / file)), load_file(str(tmp_path / "split" / "last" / file))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), file
    state = json.loads((tmp_path / "split" / "last" / "state.json").read_text())
    assert state["step"] == 6 and state["tasks_seen"] == 24
    assert json.loads((tmp_path / "split" / "train_config.json").read_text())["augment"] == augment
    steps = [r["step"] for r in read_metrics(tmp_path / "split")]
    assert steps == [3, 5, 6]  # 3 = end of the first part; nothing logged twice


def test_resume_from_a_periodic_checkpoint_of_a_killed_run(shards, tmp_path):
    """Also: what a checkpoint write killed mid-way left (its hidden temporary folder, its writer gone) is removed
    by --resume, and a checkpoint moved aside by a writer killed between its two renames is put back; a live
    process's temporary folder is left alone."""
    import shutil

    kw = dict(algo="protonets", checkpoint_every=2, shuffle_buffer=8)
    train(config(shards["hdf5"], tmp_path / "straight", iterations=4, **kw), progress=False)
    killed = tmp_path / "killed"
    train(config(shards["hdf5"], killed, iterations=3, **kw), progress=False)
    shutil.rmtree(killed / "last")  # as if killed after step-0000002/ was written
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)
    partial = killed / f".step-0000004.tmp-{gone.pid}"  # a step-4 checkpoint killed mid-write (no state.json yet)
    shutil.copytree(killed / "step-0000002", partial)
    (partial / "state.json").unlink()
    os.replace(killed / "step-0000002", killed / f".step-0000002.old-{gone.pid}")  # killed mid-swap
    live = killed / f".best.tmp-{os.getppid()}"
    live.mkdir()
    result = CliRunner().invoke(
        cli_main, ["--out", str(killed), "--resume", "--iterations", "4", "--shards", str(shards["hdf5"]), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in killed.iterdir() if p.name.startswith(".")) == [live.name]
    assert (killed / "step-0000002" / "state.json").is_file()
    a = load_file(str(tmp_path / "straight" / "last" / "model.safetensors"))
    b = load_file(str(killed / "last" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def _dies_in_step(monkeypatch, step: int) -> None:
    """The next run is stopped (as by Ctrl-C, SIGTERM or a kill) in the middle of meta-training step ``step``."""
    import lasium.train.trainer as trainer_module

    real, calls = trainer_module.meta_step, []

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            monkeypatch.setattr(trainer_module, "meta_step", real)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "meta_step", dying)


def test_time_based_checkpoint_resumes_a_run_killed_before_its_first_periodic_one(shards, tmp_path, monkeypatch):
    """--checkpoint-minutes: autosave/ every M minutes (here: after every step) besides step-N/ (here: never
    reached), so a run killed at step 4 resumes from step 3 (mid loader group) and ends exactly like an
    uninterrupted run; autosave/ goes once last/ is written; 0 turns it off (then nothing to resume)."""
    kw = dict(algo="fomaml", inner_steps=1, workers=2, shuffle_buffer=8, loader_group=2, checkpoint_every=1000)
    train(config(shards["wds"], tmp_path / "straight", iterations=6, checkpoint_minutes=0, **kw), progress=False)
    killed = config(shards["wds"], tmp_path / "killed", iterations=6, checkpoint_minutes=1e-9, **kw)
    _dies_in_step(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        train(killed, progress=False)
    assert sorted(p.name for p in (tmp_path / "killed").iterdir() if p.is_dir()) == ["autosave"]
    assert json.loads((tmp_path / "killed" / "autosave" / "state.json").read_text())["step"] == 3
    assert json.loads((tmp_path / "killed" / "autosave" / "config.json").read_text())["train"]["checkpoint_minutes"]
    train(killed, resume=True, progress=False)
    for file in ("model.safetensors", "optimizer.safetensors"):
        a = load_file(str(tmp_path / "straight" / "last" / file))
        b = load_file(str(tmp_path / "killed" / "last" / file))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), file
    assert not (tmp_path / "killed" / "autosave").exists()
    assert json.loads((tmp_path / "killed" / "train_config.json").read_text())["checkpoint_minutes"] == 1e-9
    off = config(shards["wds"], tmp_path / "off", iterations=6, checkpoint_minutes=0, **kw)
    _dies_in_step(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        train(off, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(off, resume=True, progress=False)


def test_checkpoints_load_without_pickle_and_refuse_damage(shards, tmp_path):
    train(config(shards["wds"], tmp_path / "run", algo="maml", iterations=2, inner_steps=1), progress=False)
    learner, cfg = load_learner(tmp_path / "run" / "last")
    assert cfg.algo == "maml" and cfg.inner_steps == 1 and learner.config.inner_lr == 0.4
    x = torch.rand(5, 1, 16, 16)
    with torch.no_grad():
        logits = learner.predict(learner.adapt(x, torch.arange(5), steps=3), x)
    assert logits.shape == (5, 5)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_learner(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        load_learner(tmp_path)
    (tmp_path / "run" / "last" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_learner(tmp_path / "run")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(config(shards["wds"], tmp_path / "fresh", iterations=2), resume=True, progress=False)


def make_imagefolder(root: Path) -> Path:
    """A tiny labeled dataset with explicit splits: class c of val = a square at place c."""
    rng = np.random.default_rng(0)
    for split, classes in (("train", 3), ("val", 6), ("test", 3)):
        for c in range(classes):
            folder = root / split / f"class{c:02d}"
            folder.mkdir(parents=True)
            for i in range(7):
                img = rng.integers(0, 40, size=(16, 16), dtype=np.uint8)
                y, x = 2 * (c // 3) + 3, 4 * (c % 3) + 1
                img[y : y + 4, x : x + 4] = 230
                Image.fromarray(img, mode="L").save(folder / f"{i}.png")
    return root


@pytest.mark.parametrize("algo", ["protonets", "maml"])
def test_validation_on_real_episodes_writes_best(shards, tmp_path, monkeypatch, algo):
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    data = make_imagefolder(tmp_path / "folder")
    cfg = config(
        shards["hdf5"],
        tmp_path / "run",
        algo=algo,
        inner_steps=1,
        iterations=6,
        val_every=3,
        val_tasks=10,
        val_dataset=f"imagefolder:{data}",
        val_queries=3,
    )
    result = train(cfg, progress=False)
    val = [r for r in read_metrics(tmp_path / "run") if r["split"] == "val"]
    assert [r["step"] for r in val] == [3, 6] and all(0 <= r["accuracy"] <= 1 and r["ci95"] >= 0 for r in val)
    assert result.best_val_accuracy == max(r["accuracy"] for r in val)
    best_state = json.loads((tmp_path / "run" / "best" / "state.json").read_text())
    assert best_state["best_val_accuracy"] == result.best_val_accuracy
    _, loaded = load_learner(tmp_path / "run")  # a run folder loads best/
    assert loaded.val_dataset == f"imagefolder:{data}"


def test_protonets_validate_at_val_ways_with_the_same_weights(shards, tmp_path, monkeypatch):
    """--val-ways 3 on 5-way shards: best/ is chosen on 3-way episodes, scored by the trained weights themselves."""
    from lasium.train.validation import Validator

    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    data = make_imagefolder(tmp_path / "folder")
    cfg = config(
        shards["hdf5"],
        tmp_path / "run",
        algo="protonets",
        iterations=4,
        val_every=2,
        val_tasks=10,
        val_ways=3,
        val_dataset=f"imagefolder:{data}",
        val_queries=3,
        precision="fp32",  # the check below scores without autocast
    )
    train(cfg, progress=False)
    val = [r for r in read_metrics(tmp_path / "run") if r["split"] == "val"]
    learner, saved = load_learner(tmp_path / "run" / "last")
    assert learner.ways == 5 and saved.val_ways == 3 and saved.validation_ways == 3
    episodes = {
        ways: Validator(f"imagefolder:{data}", ways=ways, shots=1, queries=3, num_tasks=10, image_shape=SHAPE)
        for ways in (3, 5)
    }
    assert episodes[3].query.shape[1] == 3 and episodes[5].query.shape[1] == 5
    assert val[-1]["step"] == 4
    assert val[-1]["accuracy"] == episodes[3].evaluate(learner, torch.device("cpu"))["accuracy"]
    view = learner.with_ways(3)
    assert view.ways == 3 and learner.ways == 5 and view.backbone is learner.backbone


def test_resume_with_other_validation_episodes_chooses_best_again(shards, tmp_path, monkeypatch, capsys):
    """best/ compares like with like: 3-way accuracies are not a bar for 5-way ones."""
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    data = make_imagefolder(tmp_path / "folder")
    val = dict(algo="protonets", val_every=2, val_tasks=10, val_dataset=f"imagefolder:{data}", val_queries=3)
    train(config(shards["hdf5"], tmp_path / "run", iterations=2, val_ways=3, **val), progress=False)
    first = json.loads((tmp_path / "run" / "best" / "state.json").read_text())
    capsys.readouterr()
    train(config(shards["hdf5"], tmp_path / "run", iterations=4, **val), resume=True, progress=False)
    best = json.loads((tmp_path / "run" / "best" / "state.json").read_text())
    assert first["best_step"] == 2 and best["best_step"] == 4
    # lasium's diagnostics go to stderr through its own handler (lasium.logs), not to the root logger caplog reads
    assert "best/ is chosen again from the next validation on" in capsys.readouterr().err
    scores = [r["accuracy"] for r in read_metrics(tmp_path / "run") if r["split"] == "val"]
    assert best["best_val_accuracy"] == scores[-1]


def test_val_ways_is_refused_where_the_head_fixes_n(shards, tmp_path):
    with pytest.raises(ConfigError, match="--val-ways 3: a maml learner has a 5-way head"):
        train(config(shards["wds"], tmp_path / "run", algo="maml", iterations=1, val_ways=3), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="--val-ways must be at least 2"):
        config(shards["wds"], tmp_path / "run", algo="protonets", val_ways=1).validate()
    with pytest.raises(ConfigError, match="has a 5-way head and cannot score 3-way tasks"):
        build_learner(config(shards["wds"], tmp_path, ways=5, image_shape=list(SHAPE)).learner_config()).with_ways(3)


def test_missing_validation_data_fails_before_training(shards, tmp_path, monkeypatch):
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    cfg = config(
        shards["wds"], tmp_path / "run", iterations=2, val_dataset="omniglot", data_root=str(tmp_path / "no-data")
    )
    with pytest.raises(DataError, match="validation data: Omniglot not found.*--val-dataset none"):
        train(cfg, progress=False)
    assert not (tmp_path / "run").exists()
    # auto picks omniglot for 28x28x1 shards only: these are 16x16, so auto means no validation
    train(config(shards["wds"], tmp_path / "auto", iterations=1, val_dataset="auto"), progress=False)


def test_cli_trains_and_reports_errors_in_one_line(shards, tmp_path, monkeypatch):
    import lasium.runtime

    kept = []  # lasium-train keeps freed activation buffers for reuse (lasium.runtime.keep_freed_memory)
    monkeypatch.setattr(lasium.runtime, "keep_freed_memory", lambda: kept.append(True) or True)
    runner = CliRunner()
    ok = runner.invoke(
        cli_main,
        [
            "--shards",
            str(shards["wds"]),
            "--algo",
            "protonets",
            "--iterations",
            "3",
            "--workers",
            "0",
            "--val-dataset",
            "none",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "run"),
            "--quiet",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "run" / "last" / "config.json").is_file()
    assert kept == [True]
    resumed = runner.invoke(cli_main, ["--out", str(tmp_path / "run"), "--resume", "--iterations", "4", "--quiet"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((tmp_path / "run" / "last" / "state.json").read_text())["step"] == 4
    cases = [
        (
            ["--shards", str(tmp_path / "missing"), "--out", str(tmp_path / "r1")],
            "error: shard source .*missing does not exist",
        ),
        (
            ["--shards", str(shards["wds"]), "--algo", "reptile", "--out", str(tmp_path / "r2")],
            "Invalid value for '--algo'",
        ),
        (["--out", str(tmp_path / "r3")], "error: no shards given"),
        (
            ["--shards", str(shards["wds"]), "--meta-batch", "0", "--out", str(tmp_path / "r4")],
            "error: --meta-batch must be positive",
        ),
        (["--out", str(tmp_path / "r5"), "--resume"], "error: nothing to resume"),
    ]
    for args, message in cases:
        res = runner.invoke(cli_main, args + ["--device", "cpu", "--val-dataset", "none"])
        assert res.exit_code == 2, (args, res.output)
        assert __import__("re").search(message, res.output), res.output
        assert "Traceback" not in res.output
        assert not Path(args[args.index("--out") + 1]).exists()


def test_unknown_algorithm_in_the_library():
    with pytest.raises(ConfigError, match="unknown algorithm 'reptile'"):
        TrainConfig(shards=["x"], out="y", algo="reptile").validate()


def test_mixed_shards_are_refused_by_the_trainer(shards, tmp_path):
    write_synthetic_shards(tmp_path / "ten", shards=1, tasks_per_shard=2, ways=10, image_shape=SHAPE, name="ten")
    cfg = config(shards["wds"], tmp_path / "run", iterations=1)
    cfg.shards.append(str(tmp_path / "ten"))
    with pytest.raises(ShardError, match="mixed shard configurations"):
        train(cfg, progress=False)
    assert not (tmp_path / "run").exists()


def test_lasium_train_never_imports_generate_or_evaluate():
    code = (
        "import sys, lasium.train, lasium.train.cli, lasium.train.trainer, "
        "lasium.train.checkpoint, lasium.train.streaming;"
        "from lasium.train import MAML, ProtoNets, load_learner, train, TrainConfig;"
        "bad = sorted(m for m in sys.modules if m.startswith(('lasium.generate', 'lasium.evaluate')));"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_trainer_leaves_the_callers_config_as_given(shards, tmp_path):
    import copy

    from lasium.train.trainer import Trainer

    cfg = config(shards["wds"], tmp_path / "keep")
    before = copy.deepcopy(cfg)
    trainer = Trainer(cfg, progress=False)
    assert cfg == before and trainer.config is not cfg
    assert trainer.config.ways == trainer.shard_set.layout.ways


def test_cli_backbone_is_recorded_and_rebuilt_by_name(shards, tmp_path, monkeypatch):
    """``--backbone NAME`` trains on that registered backbone; the checkpoint names it and loads it back; an
    unregistered name is one line before any work."""
    from lasium.train.backbone import BACKBONES

    class Flat(torch.nn.Module):
        def __init__(self, image_shape, hidden: int = 8) -> None:
            super().__init__()
            h, w, c = image_shape
            self.out_features = hidden
            self.layer = torch.nn.Linear(h * w * c, hidden)

        def forward(self, images):
            return torch.relu(self.layer(images.flatten(-3)))

    monkeypatch.setitem(BACKBONES, "flat", Flat)
    common = ["--shards", str(shards["wds"]), "--algo", "protonets", "--iterations", "2", "--workers", "0"]
    common += ["--val-dataset", "none", "--device", "cpu", "--quiet", "--augment", "none"]
    result = CliRunner().invoke(cli_main, [*common, "--backbone", "flat", "--out", str(tmp_path / "flat")])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "flat" / "last" / "config.json").read_text())
    assert "flat" in json.dumps(saved)
    learner, cfg = load_learner(tmp_path / "flat")
    assert isinstance(learner.backbone, Flat) and cfg.backbone == "flat"
    bad = CliRunner().invoke(cli_main, [*common, "--backbone", "resnet99", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "unknown --backbone 'resnet99'" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "bad").exists()


def test_cli_temperature_is_recorded_and_rebuilt(shards, tmp_path):
    """``--temperature T`` (ProtoNets) reaches the checkpoint's learner; MAML and T <= 0 are one line, exit 2."""
    common = ["--shards", str(shards["wds"]), "--iterations", "2", "--workers", "0"]
    common += ["--val-dataset", "none", "--device", "cpu", "--quiet", "--augment", "none"]
    runner = CliRunner()
    ok = runner.invoke(cli_main, [*common, "--algo", "protonets", "--temperature", "4", "--out", str(tmp_path / "t4")])
    assert ok.exit_code == 0, ok.output
    learner, cfg = load_learner(tmp_path / "t4")
    assert learner.temperature == 4.0 and cfg.temperature == 4.0
    for args, message in [
        (["--algo", "maml", "--temperature", "2"], "error: --temperature is a ProtoNets option"),
        (["--algo", "protonets", "--temperature", "0"], "Invalid value for '--temperature'"),
    ]:
        bad = runner.invoke(cli_main, [*common, *args, "--out", str(tmp_path / "bad")])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, bad.output
        assert not (tmp_path / "bad").exists()
