"""Tiny generators for the lasium-gen tests (importable as ``gen_tiny:build`` with tests/ on the path).

Weights are fixed by a seed, so every process builds the same decoder: the job's determinism tests
compare bytes across processes and runs.
"""

from __future__ import annotations

import torch
from torch import nn


class TinyDecoder(nn.Module):
    """Dense decoder z (n, D) → (n, C, H, W) in [0, 1]; varied enough that distinct latents give
    distinct uint8 images."""

    def __init__(self, latent_dim: int = 8, image_shape: tuple[int, int, int] = (8, 8, 1), seed: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = image_shape
        h, w, c = image_shape
        g = torch.Generator().manual_seed(seed)
        self.hidden = nn.Linear(latent_dim, 32)
        self.out = nn.Linear(32, h * w * c)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.7)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h, w, c = self.shape
        return torch.sigmoid(self.out(torch.tanh(self.hidden(z)))).view(-1, c, h, w)


class TinyEncoder(nn.Module):
    """Images (n, C, H, W) → (mean, logvar), each (n, D)."""

    def __init__(self, latent_dim: int, image_shape: tuple[int, int, int], seed: int = 1) -> None:
        super().__init__()
        h, w, c = image_shape
        g = torch.Generator().manual_seed(seed)
        self.proj = nn.Linear(h * w * c, 2 * latent_dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.proj(x.flatten(1)).chunk(2, dim=1)
        return mean * 4.0, logvar


def build() -> nn.Module:
    """8×8×1 images, latent 8 (the default test generator)."""
    return TinyDecoder(8, (8, 8, 1))


def build28() -> nn.Module:
    """28×28×1 images, latent 16."""
    return TinyDecoder(16, (28, 28, 1))


class SlowDecoder(TinyDecoder):
    """:class:`TinyDecoder` that takes at least 0.1 s per call, so a test can stop a job mid-run.

    With ``$LASIUM_TEST_HOLD`` naming a file, every call after the first ``$LASIUM_TEST_HOLD_AFTER`` (default 1) of
    the process waits while that file exists: the job is held mid-run, whatever the machine's load, until the test
    has signalled it (or removed the file). A poll for the first shard could otherwise see a job that had finished.
    """

    calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        import os
        import time

        time.sleep(0.1)
        SlowDecoder.calls += 1
        hold = os.environ.get("LASIUM_TEST_HOLD")
        if hold and SlowDecoder.calls > int(os.environ.get("LASIUM_TEST_HOLD_AFTER", "1")):
            while os.path.exists(hold):
                time.sleep(0.05)
        return super().forward(z)


def build_slow() -> nn.Module:
    return SlowDecoder(8, (8, 8, 1))


def tiny_gan(latent_dim: int = 8, image_shape: tuple[int, int, int] = (8, 8, 1), device: str = "cpu"):
    """A protocol-complete GAN-kind generator around :class:`TinyDecoder`."""
    from lasium.generate.models.interface import ModuleGenerator, state_dict_sha256

    dec = TinyDecoder(latent_dim, image_shape)
    return ModuleGenerator(
        dec,
        kind="gan",
        name="tiny-gan",
        latent_dim=latent_dim,
        image_shape=image_shape,
        weights_sha256=state_dict_sha256(dec),
        device=device,
    )


def tiny_vae(latent_dim: int = 4, image_shape: tuple[int, int, int] = (28, 28, 1), device: str = "cpu"):
    """A protocol-complete VAE-kind generator (random weights: anchors only need *some* encoder)."""
    from lasium.generate.models.interface import VAEGenerator, state_dict_sha256

    enc, dec = TinyEncoder(latent_dim, image_shape), TinyDecoder(latent_dim, image_shape)
    return VAEGenerator(
        enc,
        dec,
        name="tiny-vae",
        latent_dim=latent_dim,
        image_shape=image_shape,
        weights_sha256=state_dict_sha256(dec),
        device=device,
    )
