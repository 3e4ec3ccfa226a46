"""The paper's VAE for 84×84×3 images (CelebA, mini-ImageNet), as the LASIUM authors' code builds it.

Khodadadeh et al., "Unsupervised Meta-Learning through Latent-Space Interpolation in Generative Models", ICLR 2021:
the appendix gives the 84×84×3 VAE one more convolutional block and more channels than the Omniglot VAE. The
layers below are those of the authors' code (MetaLearning-TF2.0, ``models/lasiumprotonetsvae/
protonets_vae_celeba.py`` and ``protonets_vae_mini_imagenet.py``, ``get_encoder`` / ``get_decoder``):

* encoder: five blocks [conv 4×4 stride 2 "same", no bias, batch norm, ReLU] with 64, 128, 256, 256, 512
  channels (84 → 42 → 21 → 11 → 6 → 3) → dense to the latent mean and log-variance;
* decoder: dense 7·7·64 + ReLU → transposed conv 512 4×4 stride 3 (7 → 21) → 256 stride 2 (42) → 256 stride 2
  (84) → 128 stride 1 → 64 stride 1, each without bias, with batch norm and ReLU → 4×4 conv to 3 channels
  (Bernoulli logits; sigmoid for images);
* latent size 512 (their mini-ImageNet run; their CelebA run used 500: ``--latent-dim 500``);
* loss as the Omniglot VAE (:func:`lasium.generate.models.vae.vae_loss`).

Keras' "same" padding is asymmetric when the padding is odd (the extra row and column at the bottom and right);
the stride-1 convs here pad that way too (:class:`SameConv2d`; a stride-1 transposed conv is a conv), and the
strided transposed convs give exactly ``input × stride`` like Keras'.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from lasium.errors import ConfigError

from .architecture import ArchitectureRecord, checked_image_shape, register_architecture
from .vae import VAEModel

VAE84_ARCHITECTURE = "lasium-vae84-v1"
PAPER_SHAPE = (84, 84, 3)


@register_architecture
@dataclass(frozen=True)
class VAE84Architecture(ArchitectureRecord):
    """Everything needed to rebuild the 84×84×3 encoder and decoder (stored in the checkpoint config)."""

    latent_dim: int
    image_shape: tuple[int, int, int]  # (H, W, C): always 84×84×3
    encoder_channels: tuple[int, ...] = (64, 128, 256, 256, 512)
    start_hw: tuple[int, int] = (7, 7)
    start_channels: int = 64
    decoder_channels: tuple[int, ...] = (512, 256, 256, 128, 64)
    decoder_strides: tuple[int, ...] = (3, 2, 2, 1, 1)
    name: str = VAE84_ARCHITECTURE

    KIND: ClassVar[str] = "VAE"
    NAME: ClassVar[str] = VAE84_ARCHITECTURE
    MODEL: ClassVar[str] = "vae"
    PRIORITY: ClassVar[int] = 10
    DEFAULT_LATENT: ClassVar[int] = 512

    @classmethod
    def fits(cls, image_shape: tuple[int, int, int]) -> bool:
        return tuple(int(v) for v in image_shape) == PAPER_SHAPE

    @classmethod
    def for_shape(cls, image_shape: tuple[int, int, int], latent_dim: int) -> VAE84Architecture:
        shape = checked_image_shape(image_shape, latent_dim)
        if shape != PAPER_SHAPE:
            raise ConfigError(f"the paper's 84×84×3 VAE takes 84×84×3 images, got {shape}")
        return cls(latent_dim=latent_dim, image_shape=shape)

    def encoder_out_hw(self) -> tuple[int, int]:
        h, w = self.image_shape[:2]
        for _ in self.encoder_channels:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return h, w

    def build(self) -> nn.Module:
        return VAE84(self)


class SameConv2d(nn.Module):
    """A conv with TensorFlow's "same" padding: output ⌈n / stride⌉, the odd pixel of padding after."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, *, bias: bool) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=bias)

    def _pads(self, n: int) -> tuple[int, int]:
        total = max((math.ceil(n / self.stride) - 1) * self.stride + self.kernel - n, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self._pads(x.shape[-2])
        left, right = self._pads(x.shape[-1])
        return self.conv(F.pad(x, (left, right, top, bottom)))


def _block(conv: nn.Module, width: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(width), nn.ReLU())


class VAE84Encoder(nn.Module):
    """Images (n, 3, 84, 84) in [0, 1] → (mean, log-variance), each (n, D)."""

    def __init__(self, arch: VAE84Architecture):
        super().__init__()
        blocks, c_in = [], arch.image_shape[2]
        for c_out in arch.encoder_channels:
            blocks.append(_block(SameConv2d(c_in, c_out, 4, 2, bias=False), c_out))
            c_in = c_out
        self.features = nn.Sequential(*blocks)
        h, w = arch.encoder_out_hw()
        self.mean = nn.Linear(c_in * h * w, arch.latent_dim)
        self.log_var = nn.Linear(c_in * h * w, arch.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.features(x).flatten(1)
        return self.mean(h), self.log_var(h)


class VAE84Decoder(nn.Module):
    """Latents (n, D) → images (n, 3, 84, 84) in [0, 1]; :meth:`logits` gives the Bernoulli logits."""

    def __init__(self, arch: VAE84Architecture):
        super().__init__()
        self.arch = arch
        self.dense = nn.Linear(arch.latent_dim, arch.start_channels * arch.start_hw[0] * arch.start_hw[1])
        blocks, c_in = [], arch.start_channels
        for c_out, stride in zip(arch.decoder_channels, arch.decoder_strides):
            if stride == 1:
                conv: nn.Module = SameConv2d(c_in, c_out, 4, 1, bias=False)
            else:  # 4×4 transposed conv giving exactly n · stride, as Keras' "same"
                conv = nn.ConvTranspose2d(
                    c_in, c_out, 4, stride=stride, padding=1, output_padding=stride - 2, bias=False
                )
            blocks.append(_block(conv, c_out))
            c_in = c_out
        self.upsample = nn.Sequential(*blocks)
        self.to_image = SameConv2d(c_in, arch.image_shape[2], 4, 1, bias=True)

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dense(z)).view(z.shape[0], self.arch.start_channels, *self.arch.start_hw)
        return self.to_image(self.upsample(h))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))


class VAE84(VAEModel):
    """Encoder + decoder of the paper's 84×84×3 VAE."""

    def __init__(self, arch: VAE84Architecture):
        super().__init__()
        self.arch = arch
        self.encoder = VAE84Encoder(arch)
        self.decoder = VAE84Decoder(arch)
