"""Generators for natural images (issue 29): the architecture registry (DCGAN family for 64-128 px colour images,
the paper's 84×84×3 VAE, the reference nets everywhere else), old checkpoints loading unchanged, fitting and
loading the new families, resizing on the device, and exporting a user's generator to TorchScript."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from cli_helpers import invoke_gen, one_line_error
from torch import nn

from lasium.errors import CheckpointError, ConfigError
from lasium.generate import load_generator
from lasium.generate.models.architecture import architecture_from_json, architectures, choose_architecture
from lasium.generate.models.checkpoint import architecture_from_config, build_model
from lasium.generate.models.dcgan import DCGANArchitecture, DCGANDiscriminator, DCGANGenerator, dcgan_architecture
from lasium.generate.models.export import export_generator
from lasium.generate.models.fit import fit
from lasium.generate.models.fit_config import FitConfig
from lasium.generate.models.gan import GANArchitecture, gan_architecture
from lasium.generate.models.resize import resize_generator
from lasium.generate.models.vae import VAEArchitecture, vae_architecture
from lasium.generate.models.vae84 import VAE84Architecture
from lasium.safe_io import file_sha256
from lasium.shards import iter_tasks, read_manifest, verify_shard_set


class Images:
    """An in-memory ImageSet (what fit() needs) of seeded random colour images."""

    def __init__(self, n: int, side: int, seed: int = 0) -> None:
        self.images = np.random.default_rng(seed).integers(0, 256, (n, side, side, 3), dtype=np.uint8)
        self.image_ids = [f"img{i}" for i in range(n)]
        self.fingerprint = f"random-{n}-{side}-{seed}"


# ----------------------------------------------------------------------------- the registry


def test_registry_keeps_the_reference_nets_where_they_were():
    assert set(architectures()) >= {"lasium-gan-v1", "lasium-dcgan-v1", "lasium-vae-v1", "lasium-vae84-v1"}
    # 28×28×1 (Omniglot) and every shape the new families do not take: exactly the records of before
    for shape in [(28, 28, 1), (32, 32, 3), (84, 84, 1), (100, 100, 3), (136, 136, 3)]:
        assert choose_architecture("gan", shape, 128) == gan_architecture(shape, 128)
    for shape in [(28, 28, 1), (64, 64, 3), (84, 84, 1)]:
        assert choose_architecture("vae", shape, 20) == vae_architecture(shape, 20)
    assert choose_architecture("gan", (28, 28, 1), None).latent_dim == 128
    assert choose_architecture("vae", (28, 28, 1), None).latent_dim == 20


@pytest.mark.parametrize(
    "side, start, strides, channels",
    [
        (64, (4, 4), (2, 2, 2, 2), (512, 256, 128, 64)),
        (84, (7, 7), (3, 2, 2), (384, 128, 64)),
        (96, (6, 6), (2, 2, 2, 2), (512, 256, 128, 64)),
        (128, (4, 4), (2, 2, 2, 2, 2), (512, 512, 256, 128, 64)),
    ],
)
def test_dcgan_family_for_colour_images_of_64_to_128_px(side, start, strides, channels):
    arch = choose_architecture("gan", (side, side, 3), None)
    assert isinstance(arch, DCGANArchitecture) and arch.latent_dim == 128
    assert (arch.start_hw, arch.strides, arch.channels) == (start, strides, channels)
    small = dcgan_architecture((side, side, 3), 8)
    g, d = DCGANGenerator(small).eval(), DCGANDiscriminator(small)
    with torch.no_grad():
        x = g(torch.randn(2, 8))
        logits = d(x)
    assert x.shape == (2, 3, side, side) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert logits.shape == (2,)


def test_dcgan_refuses_sides_it_cannot_build():
    assert not DCGANArchitecture.fits((100, 100, 3)) and not DCGANArchitecture.fits((64, 64, 1))
    with pytest.raises(ConfigError, match="--image-size 64, 84, 96 or 128"):
        dcgan_architecture((100, 100, 3))


def test_paper_vae_at_84x84x3_as_the_authors_code_builds_it():
    arch = choose_architecture("vae", (84, 84, 3), None)
    assert isinstance(arch, VAE84Architecture) and arch.latent_dim == 512
    assert choose_architecture("vae", (84, 84, 3), 500).latent_dim == 500  # their CelebA run
    vae = build_model(VAE84Architecture(latent_dim=8, image_shape=(84, 84, 3))).eval()
    sizes, x = [], torch.rand(2, 3, 84, 84)
    for block in vae.encoder.features:
        x = block(x)
        sizes.append((x.shape[1], x.shape[2]))
    # Keras "same" stride-2 convs: 84 → 42 → 21 → 11 → 6 → 3, one block (and more channels) than Omniglot's VAE
    assert sizes == [(64, 42), (128, 21), (256, 11), (256, 6), (512, 3)]
    with torch.no_grad():
        mean, log_var = vae.encoder(torch.rand(2, 3, 84, 84))
        out = vae.decoder(mean)
    assert mean.shape == log_var.shape == (2, 8) and out.shape == (2, 3, 84, 84)
    assert vae.decoder.dense.out_features == 7 * 7 * 64


def test_old_and_foreign_architecture_records():
    old = {"kind": "gan", "architecture": gan_architecture((84, 84, 3), 128).to_json()}
    assert architecture_from_config(old) == gan_architecture((84, 84, 3), 128)  # an 84-px checkpoint of before
    vae = {"kind": "vae", "architecture": vae_architecture((28, 28, 1), 20).to_json()}
    assert isinstance(architecture_from_config(vae), VAEArchitecture)
    new = dcgan_architecture((64, 64, 3), 16)
    assert architecture_from_json("gan", json.loads(json.dumps(new.to_json()))) == new
    with pytest.raises(CheckpointError, match="unknown GAN architecture 'lasium-gan-v9'"):
        architecture_from_config({"kind": "gan", "architecture": {**old["architecture"], "name": "lasium-gan-v9"}})
    with pytest.raises(CheckpointError, match="unknown VAE architecture 'lasium-dcgan-v1'"):
        architecture_from_config({"kind": "vae", "architecture": new.to_json()})


def test_bundled_omniglot_generators_keep_their_architecture():
    for name, record in (("omniglot-gan", GANArchitecture), ("omniglot-vae", VAEArchitecture)):
        g = load_generator(name)
        assert g.image_shape == (28, 28, 1)
        assert type(choose_architecture(g.kind, g.image_shape, g.latent_dim)) is record


# ----------------------------------------------------------------------------- fitting


def test_fit_dcgan_records_it_loads_and_is_deterministic(tmp_path):
    data = Images(4, 64)
    cfg = FitConfig(model="gan", dataset="memory", epochs=1, batch_size=2, device="cpu", latent_dim=8)
    for run in ("a", "b"):
        fit(cfg, tmp_path / run, data=data, progress=False)
    config = json.loads((tmp_path / "a" / "config.json").read_text())
    assert config["architecture"]["name"] == "lasium-dcgan-v1" and config["fit"]["latent_dim"] == 8
    assert file_sha256(tmp_path / "a" / "model.safetensors") == file_sha256(tmp_path / "b" / "model.safetensors")
    g = load_generator(tmp_path / "a")
    assert g.kind == "gan" and g.image_shape == (64, 64, 3)
    assert g.decode(g.sample_prior(3, torch.Generator().manual_seed(0))).shape == (3, 3, 64, 64)
    # resumed: continues its own architecture (and a checkpoint of another family is refused as before)
    fit(FitConfig(**{**cfg.to_json(), "epochs": 2}), tmp_path / "a", data=data, resume=True, progress=False)
    assert json.loads((tmp_path / "a" / "config.json").read_text())["epochs_done"] == 2


@pytest.mark.slow  # 40 s on the loaded 2-core CPU: the 84×84×3 VAE decodes 64 sample images of ~7 GFLOP each
def test_fit_paper_vae_at_84px_default_latent(tmp_path):
    fit(
        FitConfig(model="vae", dataset="memory", epochs=1, batch_size=2, device="cpu"),
        tmp_path / "v",
        data=Images(2, 84),
        progress=False,
    )
    config = json.loads((tmp_path / "v" / "config.json").read_text())
    assert config["architecture"]["name"] == "lasium-vae84-v1"
    assert config["latent_dim"] == config["fit"]["latent_dim"] == 512
    g = load_generator(tmp_path / "v")
    assert g.kind == "vae" and g.encode(torch.rand(1, 3, 84, 84)).shape == (1, 512)


# ----------------------------------------------------------------------------- resizing on the device


def test_resize_generator_and_its_record(tmp_path):
    g = load_generator("omniglot-gan")
    resized = resize_generator(g, 56)
    assert resized.image_shape == (56, 56, 1)
    record = resized.describe()
    assert record["image_shape"] == [56, 56, 1] and record["resized_from"] == [28, 28]
    z = resized.sample_prior(2, torch.Generator().manual_seed(0))
    x = resized.decode(z)
    assert x.shape == (2, 1, 56, 56) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert resize_generator(load_generator("omniglot-gan"), 28).describe().get("resized_from") is None
    with pytest.raises(ConfigError, match="VAE"):
        resize_generator(load_generator("omniglot-vae"), 84)
    with pytest.raises(ConfigError, match="between 8 and 4096"):
        resize_generator(load_generator("omniglot-gan"), 2)


# ----------------------------------------------------------------------------- pre-trained generators (ProGAN-like)


class ProGANLike(nn.Module):
    """The interface of the paper's CelebA generator (ProGAN): latent (n, 512) → (n, 3, 128, 128) in [-1, 1] (tanh),
    randomly initialised and small: a 4×4 start and five ×2 upsampling convs."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.start = nn.Linear(512, 16 * 4 * 4)
        self.blocks = nn.ModuleList([nn.Conv2d(16, 16, 3, padding=1) for _ in range(5)])
        self.to_rgb = nn.Conv2d(16, 3, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.start(z).view(-1, 16, 4, 4)
        for block in self.blocks:
            x = torch.nn.functional.leaky_relu(block(torch.nn.functional.interpolate(x, scale_factor=2.0)), 0.2)
        return torch.tanh(self.to_rgb(x) * 4.0)


class UnscriptableProGANLike(ProGANLike):
    """The same network with a forward TorchScript cannot compile (variable arguments): export traces it."""

    def forward(self, z: torch.Tensor, *unused: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(z)


@pytest.mark.parametrize("network, how", [(ProGANLike, "script"), (UnscriptableProGANLike, "trace")])
def test_export_then_lasium_gen_resizes_128px_tanh_to_84px_tasks(tmp_path, network, how):
    record = export_generator(network(), tmp_path / "progan.pt", latent_dim=512, output_range="[-1,1]")
    assert record["export"] == how and record["latent_dim"] == 512 and record["image_shape"] == [128, 128, 3]
    assert record["output_range"] == "[-1,1]" and record["prior"] == "normal"
    out = tmp_path / "tasks"
    r = invoke_gen(
        "--generator", str(tmp_path / "progan.pt"), "--image-size", "84", "--strategy", "ro",
        "--n-tasks", "3", "--tasks-per-shard", "3", "--out", str(out), "--device", "cpu", "--workers", "0",
        "--quiet",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert verify_shard_set(out).ok
    generator = read_manifest(out).header["generator"]
    assert generator["image_shape"] == [84, 84, 3] and generator["resized_from"] == [128, 128]
    assert generator["latent_dim"] == 512 and generator["output_range"] == "[-1,1]" and generator["prior"] == "normal"
    tasks = list(iter_tasks(out))
    assert len(tasks) == 3
    for task in tasks:
        assert task.support.shape == (5, 1, 84, 84, 3) and task.query.shape == (5, 5, 84, 84, 3)
        assert task.support.dtype == np.uint8 and task.query.std() > 1  # real pictures, not a constant
    # the same command writes the same bytes (the resize is part of every decode call)
    again = tmp_path / "again"
    invoke_gen(
        "--generator", str(tmp_path / "progan.pt"), "--image-size", "84", "--strategy", "ro",
        "--n-tasks", "3", "--tasks-per-shard", "3", "--out", str(again), "--device", "cpu", "--workers", "0",
        "--quiet",
    )  # fmt: skip
    for a, b in zip(tasks, iter_tasks(again)):
        assert np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query)


def test_export_refuses_what_it_cannot_export(tmp_path):
    with pytest.raises(ConfigError, match="unknown prior"):
        export_generator(ProGANLike(), tmp_path / "g.pt", latent_dim=512, prior="cauchy")
    with pytest.raises(CheckpointError, match="check --latent-dim"):
        export_generator(ProGANLike(), tmp_path / "g.pt", latent_dim=100, output_range="[-1,1]")
    with pytest.raises(CheckpointError, match='--output-range "\\[-1,1\\]"'):
        export_generator(ProGANLike(), tmp_path / "g.pt", latent_dim=512)  # tanh outputs declared as [0, 1]
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_export_uniform_prior_maps_normal_latents(tmp_path):
    class Echo(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.view(-1, 1, 2, 2)

    export_generator(Echo(), tmp_path / "u.pt", latent_dim=4, output_range="[-1,1]", prior="uniform")
    g = load_generator(tmp_path / "u.pt")
    z = torch.tensor([[0.0, 1.0, -1.0, 10.0]])
    assert torch.allclose(g.network(z).flatten(), torch.erf(z / 2**0.5).flatten())


def test_image_size_of_a_vae_is_one_line(tmp_path):
    r = invoke_gen("--generator", "omniglot-vae", "--image-size", "84", "--strategy", "ro", "--n-tasks", "2",
                   "--out", str(tmp_path / "v"), "--device", "cpu", "--workers", "0", "--quiet")  # fmt: skip
    assert "VAE" in one_line_error(r)
