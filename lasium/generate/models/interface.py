"""The generator interface that ``lasium-gen`` (LASIUM task synthesis) talks to, and its two wrappers.

Any generator, ours or a pre-trained one plugged in from outside, is used through the small
:class:`Generator` protocol::

    g = load_generator("omniglot-gan", device="cuda")          # or a checkpoint folder, a TorchScript file,
    z = g.sample_prior(4096, torch_generator(0, "x", device=g.device))   # or "package.module:factory"
    with torch.autocast("cuda", dtype=torch.bfloat16):
        images = g.decode(z)                                    # (4096, C, H, W) in [0, 1]
    g.network = torch.compile(g.network)                        # decode() then runs the compiled module

(:func:`~lasium.generate.models.loading.load_generator` finds and wraps a generator; this module only
says what one is.)

Contract:

* ``kind`` ("gan" | "vae" | "external"), ``name``, ``latent_dim`` D, ``image_shape`` (H, W, C), ``device``;
* ``sample_prior(n, rng)`` → (n, D) standard normal on ``device``, drawn from the given
  ``torch.Generator`` ``rng`` (which must live on ``device``) so callers control every random stream;
* ``decode(z)`` → (n, C, H, W) in [0, 1], computed without gradients; the dtype is whatever the module
  computes in (float32, or bfloat16 when the caller wraps the call in autocast);
* ``network``: the underlying ``nn.Module`` mapping z to images (in the generator's ``output_range``): a
  GAN's generator network, a VAE's decoder, an external module;
  assignable, e.g. to its ``torch.compile``'d version (or ``.to(memory_format=torch.channels_last)``);
* ``max_decode_batch``: ``decode`` splits larger batches into chunks of this size (lasium checkpoints:
  the largest power of two keeping every activation under 2^31 values, 16384 for the 28×28 GAN;
  external generators: None, no splitting), since cuDNN kernels fail beyond that;
* VAEs (``kind == "vae"``) add ``encode(x)`` → posterior mean (n, D) for x (n, C, H, W) in [0, 1], and
  ``encoder``;
* ``describe()`` → {kind, name, latent_dim, image_shape, weights_sha256, output_range} for shard manifests.
  ``weights_sha256`` is the sha256 of ``model.safetensors`` for lasium checkpoints and bundled models, and
  of the canonical serialised state dict (:func:`state_dict_sha256`) for external generators.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from lasium.checkpoint_folder import state_dict_sha256
from lasium.errors import ConfigError

OUTPUT_RANGES = ("[0,1]", "[-1,1]")


@runtime_checkable
class Generator(Protocol):
    """What ``lasium-gen`` needs from a generative model (see the module docstring)."""

    kind: str
    name: str
    latent_dim: int
    image_shape: tuple[int, int, int]
    device: torch.device
    network: nn.Module

    def sample_prior(self, n: int, rng: torch.Generator) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> dict[str, Any]: ...


def normalize_output_range(value: str | None) -> str:
    """``"[-1,1]"``, ``"-1,1"``, ``"tanh"`` → ``"[-1,1]"``; ``None``, ``"[0,1]"``, ``"sigmoid"`` → ``"[0,1]"``."""
    if value is None:
        return "[0,1]"
    text = str(value).replace(" ", "").lower()
    if text in ("[-1,1]", "-1,1", "tanh", "(-1,1)"):
        return "[-1,1]"
    if text in ("[0,1]", "0,1", "sigmoid", "(0,1)"):
        return "[0,1]"
    raise ConfigError(f"output range {value!r} is not supported; use '[0,1]' or '[-1,1]'")


class ModuleGenerator:
    """A :class:`Generator` around a network ``nn.Module`` mapping latents to images (GANs, external generators)."""

    training_dataset: str | None = None
    """The dataset it was fitted on (checkpoints record it; external generators: None). Not part of ``describe()``."""

    def __init__(
        self,
        network: nn.Module,
        *,
        kind: str,
        name: str,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        weights_sha256: str,
        device: str | torch.device = "cpu",
        output_range: str = "[0,1]",
        extra: dict[str, Any] | None = None,
        max_decode_batch: int | None = None,
    ):
        self.kind = kind
        self.name = name
        self.latent_dim = int(latent_dim)
        height, width, channels = (int(v) for v in image_shape)
        self.image_shape = (height, width, channels)
        self.device = torch.device(device)
        self.output_range = normalize_output_range(output_range)
        self.weights_sha256 = weights_sha256
        self.network = network.to(self.device).eval()
        self.extra = dict(extra or {})
        # Larger batches are decoded in chunks: cuDNN kernels index activations with 32-bit integers, and
        # e.g. 65536 Omniglot GAN images hold 6.6e9 activation values in the last layer (illegal memory
        # access seen on an H200 with channels_last). None: decode any batch in one call.
        self.max_decode_batch = max_decode_batch

    def sample_prior(self, n: int, rng: torch.Generator) -> torch.Tensor:
        """(n, D) standard normal latents on ``self.device`` from ``rng`` (must be on that device)."""
        return torch.randn(int(n), self.latent_dim, device=self.device, generator=rng)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (n, D) → images (n, C, H, W) in [0, 1] (outputs in [-1, 1] are mapped and clamped)."""
        z = z.to(self.device)
        step = self.max_decode_batch
        out = (
            self.network(z)
            if step is None or z.shape[0] <= step
            else torch.cat([self.network(c) for c in z.split(step)])
        )
        if self.output_range == "[-1,1]":
            out = out * 0.5 + 0.5
        return out.clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        """What a shard manifest records about the generator."""
        return {
            "kind": self.kind,
            "name": self.name,
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "weights_sha256": self.weights_sha256,
            "output_range": self.output_range,
            **self.extra,
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, name={self.name!r}, latent_dim={self.latent_dim}, "
            f"image_shape={self.image_shape}, device={self.device})"
        )


class VAEGenerator(ModuleGenerator):
    """A VAE: its decoder is the network; ``encode`` gives posterior means (for LASIUM VAE anchors)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, **kwargs: Any):
        super().__init__(decoder, kind="vae", **kwargs)
        self.encoder = encoder.to(self.device).eval()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1] → posterior means (n, D)."""
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        mean, _ = self.encoder(x.to(self.device))
        return mean


__all__ = [
    "OUTPUT_RANGES",
    "Generator",
    "ModuleGenerator",
    "VAEGenerator",
    "normalize_output_range",
    "state_dict_sha256",
]
