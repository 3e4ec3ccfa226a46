"""GAN/VAE architectures, the MSGAN mode-seeking term, checkpoints (safety, mismatches) and bundled models."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from lasium.errors import CheckpointError, ConfigError
from lasium.generate import Generator, load_generator
from lasium.generate.models import bundled_registry as bundled_mod
from lasium.generate.models.bundled_registry import export_bundled
from lasium.generate.models.checkpoint import load_checkpoint
from lasium.generate.models.fit import fit
from lasium.generate.models.fit_config import FitConfig
from lasium.generate.models.gan import (
    GANDiscriminator,
    GANGenerator,
    conv_as_fold,
    fold_applies,
    gan_architecture,
    mode_seeking_loss,
    mode_seeking_ratio,
)
from lasium.generate.models.vae import VAE, vae_architecture, vae_loss
from lasium.safe_io import file_sha256


def tiny_data(n: int = 96, size: int = 16, channels: int = 1, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    images = (rng.random((n, size, size, channels)) > 0.7).astype(np.uint8) * 255
    return SimpleNamespace(
        images=images, image_ids=[f"img/{i}" for i in range(n)], fingerprint=f"test-{n}-{size}-{seed}"
    )


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """One-epoch GAN and VAE checkpoints on 16×16 random images (built once for this module)."""
    root = tmp_path_factory.mktemp("ckpts")
    out = {}
    for model in ("gan", "vae"):
        cfg = FitConfig(model=model, dataset="memory", epochs=1, batch_size=32, device="cpu", latent_dim=8)
        fit(cfg, root / model, data=tiny_data(), progress=False)
        out[model] = root / model
    return out


# ----------------------------------------------------------------------------- architectures


def test_gan_reference_architecture_28px():
    arch = gan_architecture((28, 28, 1), 128)
    assert arch.start_hw == (7, 7) and arch.generator_channels == (128, 128, 128)
    assert arch.discriminator_channels == (64, 128, 128)
    g, d = GANGenerator(arch), GANDiscriminator(arch)
    assert g.dense.out_features == 7 * 7 * 128
    convs = [m for m in g.upsample if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(128, (4, 4), (2, 2))] * 2
    assert g.to_image.kernel_size == (7, 7)
    with torch.no_grad():
        x = g(torch.randn(3, 128))
    assert x.shape == (3, 1, 28, 28) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert d(x).shape == (3,)


@pytest.mark.parametrize(
    "shape, start, stages", [((32, 32, 3), (8, 8), 2), ((64, 64, 3), (8, 8), 3), ((84, 84, 3), (21, 21), 2)]
)
def test_gan_generalises_to_rgb_sizes(shape, start, stages):
    arch = gan_architecture(shape, 16)
    assert arch.start_hw == start and len(arch.generator_channels) == stages + 1
    x = GANGenerator(arch)(torch.randn(2, 16))
    assert x.shape == (2, 3, shape[0], shape[1])
    assert GANDiscriminator(arch)(x).shape == (2,)


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_gan_cpu_output_fold_is_the_convolution_up_to_rounding(shape, channels_last, monkeypatch):
    """On a CPU the generator's last convolution runs as a matrix product and a fold (conv_as_fold): the same images
    and the same gradients as nn.Conv2d, in either weight layout."""
    import lasium.generate.models.gan as gan_module

    folds = []
    monkeypatch.setattr(gan_module, "conv_as_fold", lambda c, x: folds.append(x.shape) or conv_as_fold(c, x))
    arch = gan_architecture(shape, 16)
    torch.manual_seed(0)
    fold, conv = GANGenerator(arch), GANGenerator(arch)
    conv.load_state_dict(fold.state_dict())
    conv.cpu_fold_output = False
    assert fold_applies(fold.to_image)
    if channels_last:
        fold.to(memory_format=torch.channels_last)
        conv.to(memory_format=torch.channels_last)
    z = torch.randn(5, 16)
    a, b = fold(z), conv(z)
    assert len(folds) == 1  # the fold ran for one generator only
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    a.square().sum().backward()
    b.square().sum().backward()
    for (name, x), (_, y) in zip(fold.named_parameters(), conv.named_parameters(), strict=True):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-3, atol=1e-5 * float(y.grad.abs().max()), msg=name)


def test_conv_as_fold_only_where_it_computes_the_convolution():
    """conv_as_fold is a stride-1 "same" convolution with any number of output channels; other convolutions keep
    nn.Conv2d."""
    x = torch.randn(2, 6, 9, 9)
    for conv in (torch.nn.Conv2d(6, 2, 5, padding=2), torch.nn.Conv2d(6, 1, 3, padding="same", bias=False)):
        assert fold_applies(conv)
        torch.testing.assert_close(conv_as_fold(conv, x), conv(x), rtol=1e-4, atol=1e-5)
    for conv in (
        torch.nn.Conv2d(6, 1, 3, padding=1, stride=2),
        torch.nn.Conv2d(6, 1, 3, padding=0),
        torch.nn.Conv2d(6, 1, 4, padding=2),
        torch.nn.Conv2d(6, 1, 3, padding=2, dilation=2),
        torch.nn.Conv2d(6, 2, 3, padding=1, groups=2),
        torch.nn.Conv2d(6, 1, 3, padding=1, padding_mode="reflect"),
    ):
        assert not fold_applies(conv), conv


def test_gan_refuses_sizes_it_cannot_build():
    with pytest.raises(ConfigError, match="divisible by 4"):
        gan_architecture((30, 30, 1))


def test_vae_reference_architecture_and_loss():
    arch = vae_architecture((28, 28, 1), 20)
    assert arch.start_hw == (7, 7) and arch.blocks == 4 and arch.width == 64
    vae = VAE(arch).eval()
    mean, log_var = vae.encoder(torch.rand(4, 1, 28, 28))
    assert mean.shape == log_var.shape == (4, 20)
    assert vae.decoder.dense.out_features == 7 * 7 * 64
    assert vae.decoder(mean).shape == (4, 1, 28, 28)
    assert VAE(vae_architecture((32, 32, 3), 8)).decoder(torch.randn(2, 8)).shape == (2, 3, 32, 32)
    # KL of the standard normal posterior is 0; reconstruction of logits 0 is n_pixels·log 2.
    recon, kl = vae_loss(torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28), torch.zeros(2, 20), torch.zeros(2, 20))
    assert kl.item() == pytest.approx(0.0, abs=1e-6)
    assert recon.item() == pytest.approx(784 * math.log(2), rel=1e-5)


# ----------------------------------------------------------------------------- mode seeking (MSGAN)


def test_mode_seeking_identical_images_give_huge_penalty():
    z_a, z_b = torch.zeros(4, 8), torch.ones(4, 8)
    same = torch.full((4, 1, 5, 5), 0.3)
    assert mode_seeking_loss(same, same.clone(), z_a, z_b).item() == pytest.approx(1e5, rel=1e-6)


def test_mode_seeking_analytic_value():
    # mean |Δimage| = 0.5, mean |Δz| = 2 → ratio 0.25 → loss 1 / (0.25 + 1e-5)
    a, b = torch.zeros(2, 1, 4, 4), torch.full((2, 1, 4, 4), 0.5)
    z_a, z_b = torch.zeros(2, 3), torch.full((2, 3), -2.0)
    assert mode_seeking_ratio(a, b, z_a, z_b).item() == pytest.approx(0.25)
    assert mode_seeking_loss(a, b, z_a, z_b).item() == pytest.approx(1 / (0.25 + 1e-5), rel=1e-6)


def test_mode_seeking_gradient_pushes_images_apart():
    torch.manual_seed(0)
    a = (0.5 + 0.01 * torch.randn(8, 1, 6, 6)).requires_grad_()
    b = (0.5 + 0.01 * torch.randn(8, 1, 6, 6)).requires_grad_()
    z_a, z_b = torch.randn(8, 4), torch.randn(8, 4)
    before = (a - b).abs().mean().item()
    mode_seeking_loss(a, b, z_a, z_b).backward()
    with torch.no_grad():
        a2, b2 = a - 1e-4 * a.grad, b - 1e-4 * b.grad
    assert (a2 - b2).abs().mean().item() > before
    # closer latents make the same image distance worth more: the loss is lower for them
    assert mode_seeking_loss(a, b, z_a, z_a + 0.1).item() < mode_seeking_loss(a, b, z_a, z_a + 10.0).item()


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_loads_through_the_generator_interface(checkpoints):
    for kind, folder in checkpoints.items():
        g = load_generator(folder)
        assert isinstance(g, Generator) and g.kind == kind and g.latent_dim == 8 and g.image_shape == (16, 16, 1)
        z = g.sample_prior(5, torch.Generator().manual_seed(1))
        assert z.shape == (5, 8)
        x = g.decode(z)
        assert x.shape == (5, 1, 16, 16) and not x.requires_grad
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        d = g.describe()
        assert d["weights_sha256"] == file_sha256(folder / "model.safetensors")
        assert d["kind"] == kind and d["image_shape"] == [16, 16, 1]
        assert isinstance(g.network, torch.nn.Module)
        assert g.max_decode_batch >= 1 << 16  # 16×16 images: activations are small
        g.max_decode_batch = 2  # big batches are decoded in chunks, with the same result
        assert torch.allclose(g.decode(z), x, atol=1e-6)
        if kind == "vae":
            assert g.encode(x).shape == (5, 8)
    with pytest.raises(ConfigError, match="latent"):
        load_generator(checkpoints["gan"], latent_dim=9)


class _PlantFile:
    """Unpickling this object creates the file at ``path`` (a stand-in for arbitrary code execution)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.mark.parametrize("member", ["model.pt", "model.pkl"])
def test_folder_with_only_a_pickle_is_refused_unopened(tmp_path, checkpoints, member):
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "config.json").write_text((checkpoints["gan"] / "config.json").read_text())
    marker = tmp_path / "pwned.txt"
    (folder / member).write_bytes(pickle.dumps(_PlantFile(marker)))
    with pytest.raises(CheckpointError, match="pickle") as exc:
        load_generator(folder)
    assert "\n" not in str(exc.value)
    assert not marker.exists()
    # Given as a file, it is tried as TorchScript (its own format), never unpickled either.
    with pytest.raises(CheckpointError, match="not a TorchScript archive"):
        load_generator(folder / member, latent_dim=8)
    assert not marker.exists()


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in ("config.json", "model.safetensors"):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


def test_mismatched_config_and_weights_are_refused(tmp_path, checkpoints):
    src = checkpoints["gan"]
    wrong_latent = _copy_checkpoint(src, tmp_path / "latent")
    config = json.loads((wrong_latent / "config.json").read_text())
    config["latent_dim"] = config["architecture"]["latent_dim"] = 9
    (wrong_latent / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wrong shape for .*dense.weight"):
        load_checkpoint(wrong_latent)

    missing = _copy_checkpoint(src, tmp_path / "missing")
    state = load_file(str(missing / "model.safetensors"))
    state.pop("to_image.bias")
    save_file(state, str(missing / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing 1 key.*to_image.bias"):
        load_checkpoint(missing)

    extra = _copy_checkpoint(src, tmp_path / "extra")
    state = load_file(str(extra / "model.safetensors"))
    state["surprise.weight"] = torch.zeros(2)
    save_file(state, str(extra / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected 1 key.*surprise.weight"):
        load_checkpoint(extra)

    vae_config = _copy_checkpoint(src, tmp_path / "kind")
    (vae_config / "config.json").write_text((checkpoints["vae"] / "config.json").read_text())
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(vae_config)


def test_corrupt_files_give_one_line(tmp_path, checkpoints):
    truncated = _copy_checkpoint(checkpoints["vae"], tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match="corrupt") as exc:
        load_checkpoint(truncated)
    assert "\n" not in str(exc.value)

    garbage = _copy_checkpoint(checkpoints["vae"], tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(b"\xff" * 64)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(garbage)

    bad_json = _copy_checkpoint(checkpoints["vae"], tmp_path / "json")
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad_json)


# ----------------------------------------------------------------------------- bundled models


def test_missing_bundled_model_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled_mod, "BUNDLED_ROOT", tmp_path)
    with pytest.raises(CheckpointError, match="lasium-repro bundled") as exc:
        load_generator("omniglot-vae")
    assert "\n" not in str(exc.value) and "lasium-fit --model vae" in str(exc.value)


def test_export_bundled_round_trip(tmp_path, monkeypatch, checkpoints):
    monkeypatch.setattr(bundled_mod, "BUNDLED_ROOT", tmp_path / "bundled")
    quality = {"fd_generated_vs_test": 12.5, "fd_train_vs_test": 3.25, "num_samples": 100, "feature_extractor": "conv4"}
    dest = export_bundled(checkpoints["vae"], "omniglot-vae", quality=quality, note="Trained on a laptop; blurry.")
    assert sorted(p.name for p in dest.iterdir()) == [
        "MODEL_CARD.md",
        "config.json",
        "model.safetensors",
        "samples.png",
    ]
    assert all(
        t.dtype == torch.float16
        for k, t in load_file(str(dest / "model.safetensors")).items()
        if "num_batches" not in k
    )
    card = (dest / "MODEL_CARD.md").read_text()
    assert "12.500" in card and "3.250" in card and "lasium-fit" in card
    assert "## Training note\nTrained on a laptop; blurry." in card
    assert "Training note" not in (export_bundled(checkpoints["vae"], "omniglot-vae") / "MODEL_CARD.md").read_text()
    g = load_generator("omniglot-vae")
    full = load_generator(checkpoints["vae"])
    assert g.kind == "vae" and g.name == "omniglot-vae"
    assert g.describe()["weights_sha256"] == file_sha256(dest / "model.safetensors")
    z = g.sample_prior(4, torch.Generator().manual_seed(0))
    assert torch.allclose(g.decode(z), full.decode(z), atol=2e-2)  # fp16 weights ≈ fp32 weights
