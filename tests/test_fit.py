"""lasium-fit: outputs, exact resume, time budget, and the CLI's one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from lasium.errors import ConfigError
from lasium.generate import load_generator
from lasium.generate.models.fit import fit
from lasium.generate.models.fit_cli import main as fit_main
from lasium.generate.models.fit_config import FitConfig


def tiny_data(n: int = 128, size: int = 16, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    images = (rng.random((n, size, size, 1)) > 0.7).astype(np.uint8) * 255
    return SimpleNamespace(
        images=images, image_ids=[f"img/{i}" for i in range(n)], fingerprint=f"test-{n}-{size}-{seed}"
    )


def write_imagefolder(root: Path, classes: int = 4, per_class: int = 24, size: int = 16) -> Path:
    """PATH/{train,val,test}/<class>/<image>.png with random strokes."""
    rng = np.random.default_rng(0)
    for split, names in (("train", range(classes)), ("val", [99]), ("test", [100, 101])):
        for c in names:
            folder = root / split / f"class{c:03d}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = (rng.random((size, size)) > 0.8).astype(np.uint8) * 255
                Image.fromarray(pixels, mode="L").save(folder / f"{i:02d}.png")
    return root


def run_cli(args: list[str]):
    return CliRunner().invoke(fit_main, args, catch_exceptions=False)


def test_one_epoch_fit_writes_loadable_checkpoint_and_grid(tmp_path):
    data = tiny_data(n=320, size=28)
    out = tmp_path / "gan"
    result = fit(
        FitConfig(model="gan", dataset="memory", epochs=1, batch_size=64, limit=200, device="cpu"),
        out,
        data=data,
        progress=False,
        command="lasium-fit test",
    )
    assert result.epochs_done == 1 and result.steps_done == 3  # 200 // 64, last partial batch dropped
    assert set(result.final_losses) == {"d_loss", "g_loss", "g_adv", "mode_seeking"}
    assert result.images_per_second > 0
    for name in (
        "model.safetensors",
        "config.json",
        "train_state.safetensors",
        "train_state.json",
        "losses.jsonl",
        "samples/epoch-0001.png",
    ):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.pt")) and not list(out.rglob("*.pkl"))
    grid = Image.open(out / "samples/epoch-0001.png")
    assert grid.size[0] > 28 * 8  # 8 columns of 28 px images, scaled
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == {
        "dataset": "memory",
        "fingerprint": data.fingerprint,
        "num_images": 200,
        "limit": 200,
        "split": "train (unlabeled)",
    }
    assert config["epochs_done"] == 1 and config["commands"] == ["lasium-fit test"] and config["device"] == "cpu"
    assert config["latent_dim"] == 128 and config["image_shape"] == [28, 28, 1]
    log = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [entry["epoch"] for entry in log] == [1] and log[0]["images_per_second"] > 0
    g = load_generator(out)
    assert g.decode(g.sample_prior(2, torch.Generator().manual_seed(0))).shape == (2, 1, 28, 28)


def test_vae_fit_writes_reconstructions(tmp_path):
    out = tmp_path / "vae"
    fit(
        FitConfig(model="vae", dataset="memory", epochs=1, batch_size=32, device="cpu"),
        out,
        data=tiny_data(),
        progress=False,
    )
    assert (out / "reconstructions/epoch-0001.png").is_file() and (out / "samples/epoch-0001.png").is_file()
    assert load_generator(out).kind == "vae"


def _all_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {f"model/{k}": v for k, v in load_file(str(folder / "model.safetensors")).items()}
    tensors.update({f"state/{k}": v for k, v in load_file(str(folder / "train_state.safetensors")).items()})
    return tensors


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_resume_equals_uninterrupted_training(tmp_path, model):
    data = tiny_data(n=64)
    cfg = FitConfig(model=model, dataset="memory", epochs=2, batch_size=16, device="cpu", latent_dim=8, seed=5)
    fit(cfg, tmp_path / "straight", data=data, progress=False)

    part = FitConfig(**{**cfg.to_json(), "epochs": 1})
    fit(part, tmp_path / "resumed", data=data, progress=False, command="first")
    result = fit(cfg, tmp_path / "resumed", data=data, resume=True, progress=False, command="second")
    assert result.epochs_done == 2 and result.steps_done == 2 * (64 // 16)

    straight, resumed = _all_tensors(tmp_path / "straight"), _all_tensors(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    assert any("optimizer" in k for k in straight)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    for name in ("model.safetensors",):  # the files too: equal checkpoints have equal digests
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name
    config = json.loads((tmp_path / "resumed" / "config.json").read_text())
    assert config["commands"] == ["first", "second"] and config["steps_done"] == 8
    log = [json.loads(line) for line in (tmp_path / "resumed" / "losses.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2] and [e["step"] for e in log] == [4, 8]


@pytest.mark.parametrize("model", ["gan", "vae"])
def test_cpu_channels_last_step_is_the_nchw_step_up_to_rounding(model):
    """On a CPU the fit's modules run channels-last (build_trainer); a step gives NCHW's losses and gradients."""
    from lasium.generate.models.fit import build_trainer

    cfg = FitConfig(model=model, dataset="memory", epochs=1, batch_size=16, device="cpu", latent_dim=8, seed=5, lr=1e-3)
    cpu = torch.device("cpu")
    fast, plain = (build_trainer(cfg, (16, 16, 1), cpu, cpu_channels_last=flag) for flag in (True, False))
    convs = (m for m in fast.model.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d))
    conv = next(m for m in convs if m.weight.shape[1] > 1)  # one input channel: both layouts are the same
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    batch = torch.from_numpy(tiny_data(n=16).images.transpose(0, 3, 1, 2).copy())
    noises = [torch.randn(s, generator=torch.Generator().manual_seed(1)) for s in fast.noise_shapes(16)]
    a, b = fast.step(batch, noises), plain.step(batch, noises)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)
    # the gradients of that step, not the weights after it: a gradient of rounding noise (a bias before a batch norm)
    # becomes a full ±lr Adam step of either sign, and later steps start from there
    pairs = list(zip(fast.model.named_parameters(), plain.model.named_parameters(), strict=True))
    scale = max(float(y.grad.abs().max()) for _, (_, y) in pairs)  # sums of many terms: rounding is relative to this
    # Each layer alone agrees to ~1e-6 in either layout, but the VAE's batch norms over 16 tiny images amplify that on
    # the way back: its gradients differed by up to 1.2e-3 of the scale on an AMD EPYC with AVX-512 (1e-5 with AVX2).
    # A layout mistake (a channel read as a column) moves them by the scale itself.
    for (name, x), (_, y) in pairs:
        torch.testing.assert_close(x.grad, y.grad, rtol=0, atol=5e-3 * scale, msg=name)


def test_resume_refuses_other_training_options(tmp_path):
    data = tiny_data()
    cfg = FitConfig(model="vae", dataset="memory", epochs=1, batch_size=32, device="cpu")
    fit(cfg, tmp_path / "run", data=data, progress=False)
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        fit(cfg, tmp_path / "run", data=data, progress=False)
    with pytest.raises(ConfigError, match="already has 1 epochs"):
        fit(cfg, tmp_path / "run", data=data, resume=True, progress=False)
    other = FitConfig(**{**cfg.to_json(), "epochs": 2})
    with pytest.raises(ConfigError, match="training data differs"):
        fit(other, tmp_path / "run", data=tiny_data(seed=1), resume=True, progress=False)


def test_max_minutes_stops_cleanly_and_is_recorded(tmp_path):
    out = tmp_path / "budget"
    cfg = FitConfig(model="vae", dataset="memory", epochs=5, batch_size=32, device="cpu", max_minutes=1e-9)
    result = fit(cfg, out, data=tiny_data(), progress=False)
    assert result.stopped_by_time_budget and result.epochs_done == 1
    config = json.loads((out / "config.json").read_text())
    assert (
        config["stopped_by_time_budget"] is True and config["fit"]["max_minutes"] == 1e-9 and config["epochs_done"] == 1
    )


# ----------------------------------------------------------------------------- CLI


def test_cli_fit_on_an_image_folder_and_resume(tmp_path, monkeypatch):
    import lasium.runtime

    kept = []  # lasium-fit keeps freed activation buffers for reuse (lasium.runtime.keep_freed_memory)
    monkeypatch.setattr(lasium.runtime, "keep_freed_memory", lambda: kept.append(True) or True)
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    folder = write_imagefolder(tmp_path / "pics")
    out = tmp_path / "run"
    common = ["--device", "cpu", "--quiet", "--out", str(out)]
    r = run_cli(
        [
            "--model",
            "vae",
            "--dataset",
            f"imagefolder:{folder}",
            "--image-size",
            "16",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--limit",
            "64",
            *common,
        ]
    )
    assert r.exit_code == 0, r.output
    assert "wrote" in r.stdout and "1 epochs" in r.stdout
    assert kept == [True]
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["num_images"] == 64 and config["image_shape"] == [16, 16, 1]
    assert config["commands"][0].startswith("lasium-fit")
    # what checkpoint writes killed mid-way left (their writer gone) is removed on --resume; a live writer's stays
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(60)
    stale = [out / f".model.safetensors.{gone.pid}-k1ll3d00.tmp", out / "samples" / f".samples.png.{gone.pid}-x.tmp"]
    live = out / f".config.json.{os.getppid()}-busy0000.tmp"
    for path in [*stale, live]:
        path.write_bytes(b"partial")
    r = run_cli(["--resume", "--epochs", "2", *common])
    assert r.exit_code == 0, r.output
    assert not any(p.exists() for p in stale) and live.exists()
    assert json.loads((out / "config.json").read_text())["epochs_done"] == 2
    r = run_cli(["--resume", "--epochs", "3", "--model", "gan", *common])
    assert r.exit_code == 2 and r.stderr.count("\n") == 1 and "differs from the checkpoint" in r.stderr


def _assert_one_line_exit_2(result, needle: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert needle in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_input_is_one_line_exit_2(tmp_path):
    out = tmp_path / "out"
    _assert_one_line_exit_2(
        run_cli(["--model", "diffusion", "--dataset", "omniglot", "--out", str(out)]), "unknown model 'diffusion'"
    )
    _assert_one_line_exit_2(
        run_cli(["--model", "gan", "--dataset", f"imagefolder:{tmp_path / 'nope'}", "--out", str(out)]),
        "does not exist",
    )
    _assert_one_line_exit_2(
        run_cli(["--model", "gan", "--dataset", "omniglot", "--data-root", str(tmp_path / "empty"), "--out", str(out)]),
        "omniglot",
    )
    _assert_one_line_exit_2(run_cli(["--model", "gan", "--dataset", "mnist", "--out", str(out)]), "unknown dataset")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    _assert_one_line_exit_2(
        run_cli(["--model", "gan", "--dataset", "omniglot", "--out", str(blocker / "sub")]), "cannot create --out"
    )
    _assert_one_line_exit_2(run_cli(["--model", "gan", "--dataset", "omniglot", "--out", str(blocker)]), "is a file")
    _assert_one_line_exit_2(run_cli(["--model", "gan", "--out", str(out)]), "--dataset are required")
    _assert_one_line_exit_2(
        run_cli(["--model", "gan", "--dataset", "omniglot", "--epochs", "0", "--out", str(out)]), "--epochs"
    )
    _assert_one_line_exit_2(
        run_cli(["--model", "gan", "--dataset", "omniglot", "--bogus", "--out", str(out)]), "--bogus"
    )
    _assert_one_line_exit_2(run_cli(["--model", "gan", "--dataset", "omniglot"]), "--out")
    _assert_one_line_exit_2(run_cli(["--resume", "--out", str(out)]), "config.json")
    assert not out.exists()  # nothing left behind by any failed command


def test_cli_help_teaches():
    r = run_cli(["--help"])
    assert r.exit_code == 0 and "Examples:" in r.output and "--max-minutes" in r.output


@pytest.mark.omniglot
def test_omniglot_smoke_fit(omniglot_root, tmp_path):
    out = tmp_path / "omniglot-gan"
    r = run_cli(
        [
            "--model",
            "gan",
            "--dataset",
            "omniglot",
            "--data-root",
            str(omniglot_root),
            "--limit",
            "256",
            "--epochs",
            "1",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert r.exit_code == 0, r.output
    config = json.loads((out / "config.json").read_text())
    assert (
        config["data"]["num_images"] == 256
        and config["image_shape"] == [28, 28, 1]
        and len(config["data"]["fingerprint"]) == 64
    )
    assert (out / "samples/epoch-0001.png").is_file()
    g = load_generator(out)
    assert g.describe()["training_data_fingerprint"] == config["data"]["fingerprint"]


def test_keep_epochs_leaves_loadable_generator_snapshots(tmp_path, monkeypatch):
    """--keep-epochs: the generator after each named epoch in out/epoch-NNNN/ (weights + config, no training
    state), loadable like any fitted model; epochs outside the run are a one-line error."""
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    folder = write_imagefolder(tmp_path / "pics")
    out = tmp_path / "run"
    base = ["--model", "gan", "--dataset", f"imagefolder:{folder}", "--image-size", "16", "--batch-size", "32"]
    base += ["--limit", "64", "--device", "cpu", "--quiet", "--out", str(out)]
    r = run_cli([*base, "--epochs", "3", "--keep-epochs", "0,1,2"])
    assert r.exit_code == 0, r.output
    snapshots = sorted(p.name for p in out.iterdir() if p.name.startswith("epoch-"))
    assert snapshots == ["epoch-0000", "epoch-0001", "epoch-0002"]
    for name, epochs in (("epoch-0000", 0), ("epoch-0001", 1), ("epoch-0002", 2)):
        assert sorted(p.name for p in (out / name).iterdir()) == ["config.json", "model.safetensors"]
        assert json.loads((out / name / "config.json").read_text())["epochs_done"] == epochs
        load_generator(str(out / name), device="cpu")
    untrained, first = (
        load_file(out / "epoch-0000" / "model.safetensors"),
        load_file(out / "epoch-0001" / "model.safetensors"),
    )
    last = load_file(out / "model.safetensors")
    assert any(not torch.equal(first[k], last[k]) for k in first)  # a snapshot, not the final weights
    assert any(not torch.equal(untrained[k], first[k]) for k in first)  # epoch 0 is before any step
    assert json.loads((out / "config.json").read_text())["fit"]["keep_epochs"] == [0, 1, 2]
    for bad, needle in (
        ("4", "--keep-epochs must lie in 0..3"),
        ("-1", "--keep-epochs must lie in 0..3"),
        ("1,x", "comma-separated epochs"),
    ):
        r = run_cli([*base[:-1], str(tmp_path / f"bad{bad}"), "--epochs", "3", "--keep-epochs", bad])
        _assert_one_line_exit_2(r, needle)
        assert not (tmp_path / f"bad{bad}").exists()


def test_init_from_continues_a_generator_with_fresh_optimizer_state(tmp_path):
    """--init-from: the weights and epoch count of another fit (here a 1-epoch VAE, exported as bundled models are:
    generator weights in float16, no training state); snapshots continue its epoch numbering and the first one is
    the starting point itself; the fit records where it started and resumes like any other."""
    from lasium.generate.models.fit import init_source

    data = tiny_data(n=64)
    base = FitConfig(model="vae", dataset="memory", epochs=1, batch_size=16, device="cpu", latent_dim=8, seed=5)
    fit(base, tmp_path / "first", data=data, progress=False, command="first")
    source = tmp_path / "source"  # what a bundled export keeps: weights (float16) and config, no training state
    source.mkdir()
    weights = load_file(str(tmp_path / "first" / "model.safetensors"))
    from safetensors.torch import save_file

    save_file({k: v.half() for k, v in weights.items()}, str(source / "model.safetensors"))
    (source / "config.json").write_bytes((tmp_path / "first" / "config.json").read_bytes())

    cont = FitConfig(**{**base.to_json(), "epochs": 3, "init_from": str(source), "keep_epochs": (1, 3)})
    result = fit(cont, tmp_path / "cont", data=data, progress=False, command="cont")
    assert result.epochs_done == 3 and result.steps_done == 3 * (64 // 16)
    start = load_file(str(tmp_path / "cont" / "epoch-0001" / "model.safetensors"))
    for key, value in weights.items():  # the starting snapshot is the source's weights (as float16 held them)
        assert torch.equal(start[key], value.half().float()), key
    config = json.loads((tmp_path / "cont" / "config.json").read_text())
    assert config["init_from"]["spec"] == str(source) and config["init_from"]["epochs_done"] == 1
    assert config["commands"] == ["first", "cont"] and config["fit"]["init_from"] == str(source)
    assert (tmp_path / "cont" / "epoch-0003").is_dir()
    assert not torch.equal(load_file(str(tmp_path / "cont" / "model.safetensors"))["decoder.dense.weight"],
                           start["decoder.dense.weight"])  # fmt: skip  # it trained on

    # resumed like any fit: 2 epochs of it + resume to 3 equals the 3 above
    part = FitConfig(**{**cont.to_json(), "epochs": 2, "keep_epochs": (1,)})
    fit(part, tmp_path / "part", data=data, progress=False)
    fit(cont, tmp_path / "part", data=data, resume=True, progress=False)
    straight, resumed = _all_tensors(tmp_path / "cont"), _all_tensors(tmp_path / "part")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert json.loads((tmp_path / "part" / "config.json").read_text())["init_from"]["epochs_done"] == 1

    # refused in one line: another kind, other data, too few epochs, a folder that is no generator
    with pytest.raises(ConfigError, match="is a vae"):
        fit(FitConfig(**{**cont.to_json(), "model": "gan"}), tmp_path / "x1", data=data, progress=False)
    with pytest.raises(ConfigError, match="other images"):
        fit(cont, tmp_path / "x2", data=tiny_data(n=64, seed=1), progress=False)
    with pytest.raises(ConfigError, match="already has 1 epochs"):
        fit(FitConfig(**{**cont.to_json(), "epochs": 1, "keep_epochs": ()}), tmp_path / "x3", data=data, progress=False)
    with pytest.raises(ConfigError, match="not a bundled generator"):
        init_source(str(tmp_path / "nothing"))
    assert init_source("omniglot-vae")[1]["kind"] == "vae"  # a bundled name
