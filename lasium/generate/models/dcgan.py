"""The DCGAN family for 64-128 px colour images (Radford, Metz & Chintala, "Unsupervised Representation Learning
with Deep Convolutional Generative Adversarial Networks", ICLR 2016), trained exactly like the LASIUM GAN
(:class:`~lasium.generate.models.gan.GANTrainer`: non-saturating loss plus the MSGAN mode-seeking term).

Why: the reference net (:mod:`.gan`) stretched to 84 px starts at 21×21 and runs two 128-channel stages at 42 and
84 px, so nearly all of its work is at full resolution and it has no depth for natural images. DCGAN starts small
and wide and halves the channels as it doubles the resolution, so its depth and width grow with the image size
and most of its work stays at low resolution.

Rule (:func:`dcgan_architecture`): the sides are divided by 2 (by 3 when odd and divisible by 3) while both stay
above 7; that gives the start resolution and the upsampling strides, last stage first. The channels at resolution
r are 64 · (side / 2) / r, at most 512: 64 at half the image size, doubling per halving, as in DCGAN's 64-px net.

==========  =======  =================  ===================================================  ==========
image       start    strides            generator channels (start → … → image)               stages
==========  =======  =================  ===================================================  ==========
64×64×3     4×4      2, 2, 2, 2         512 → 256 → 128 → 64 → 3                              4
84×84×3     7×7      3, 2, 2            384 → 128 → 64 → 3                                    3
96×96×3     6×6      2, 2, 2, 2         512 → 256 → 128 → 64 → 3                              4
128×128×3   4×4      2, 2, 2, 2, 2      512 → 512 → 256 → 128 → 64 → 3                        5
==========  =======  =================  ===================================================  ==========

* generator: latent → dense to start·start·c₀ → batch norm, ReLU → per stage a transposed conv (4×4 stride 2,
  5×5 stride 3) with batch norm and ReLU, the last one straight to the image channels → sigmoid (images in
  [0, 1], as every lasium generator; DCGAN's tanh range mapped);
* discriminator, the mirror: per stage a conv (4×4 stride 2, 5×5 stride 3) with LeakyReLU(0.2), from 64 channels
  at half the image size → dense from the start resolution to one logit. No batch norm: the trainer scores real
  and fake images in one batch, whose mixed statistics batch norm would couple (the reference discriminator has
  none either).

Measured fitting speed against the stretched reference net at 84×84×3: ``benchmarks/bench_natural.py``
(docs/NATURAL_GENERATORS.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from lasium.errors import ConfigError

from .architecture import ArchitectureRecord, checked_image_shape, register_architecture

DCGAN_ARCHITECTURE = "lasium-dcgan-v1"
MIN_SIDE, MAX_SIDE = 64, 128
BASE_CHANNELS, MAX_CHANNELS = 64, 512
# (kernel, padding) of the stride-2 and stride-3 stages: out = in · stride exactly (transposed), in / stride (conv)
_KERNELS = {2: (4, 1), 3: (5, 1)}


@register_architecture
@dataclass(frozen=True)
class DCGANArchitecture(ArchitectureRecord):
    """Everything needed to rebuild the DCGAN generator and discriminator (stored in the checkpoint config)."""

    latent_dim: int
    image_shape: tuple[int, int, int]  # (H, W, C)
    start_hw: tuple[int, int]
    strides: tuple[int, ...]  # upsampling strides, first stage first
    channels: tuple[int, ...]  # channels at the start, then after each stage but the last (which gives C)
    name: str = DCGAN_ARCHITECTURE

    KIND: ClassVar[str] = "GAN"
    NAME: ClassVar[str] = DCGAN_ARCHITECTURE
    MODEL: ClassVar[str] = "gan"
    PRIORITY: ClassVar[int] = 10
    DEFAULT_LATENT: ClassVar[int] = 128

    @classmethod
    def fits(cls, image_shape: tuple[int, int, int]) -> bool:
        """Colour images whose sides both lie in 64-128 px and reduce to a start of at most 7 px."""
        height, width, channels = (int(v) for v in image_shape)
        if channels != 3 or not (MIN_SIDE <= min(height, width) and max(height, width) <= MAX_SIDE):
            return False
        try:
            dcgan_strides(height, width)
        except ConfigError:
            return False
        return True

    @classmethod
    def for_shape(cls, image_shape: tuple[int, int, int], latent_dim: int) -> DCGANArchitecture:
        return dcgan_architecture(image_shape, latent_dim)

    def build(self) -> nn.Module:
        return DCGANGenerator(self)

    def build_discriminator(self) -> nn.Module:
        return DCGANDiscriminator(self)


def dcgan_strides(height: int, width: int) -> tuple[tuple[int, int], tuple[int, ...]]:
    """(start (h, w), upsampling strides first stage first): divide both sides by 2 (else 3) while above 7."""
    h, w, strides = height, width, []
    while h > 7 and w > 7:
        if h % 2 == 0 and w % 2 == 0:
            step = 2
        elif h % 3 == 0 and w % 3 == 0:
            step = 3
        else:
            break
        h, w = h // step, w // step
        strides.append(step)
    if len(strides) < 3 or max(h, w) > 8:
        raise ConfigError(
            f"the DCGAN builds sides that reduce to at most 8 px by halving (or dividing by 3) at least 3 times, "
            f"got {height}×{width}; resize the images (e.g. --image-size 64, 84, 96 or 128)"
        )
    return (h, w), tuple(reversed(strides))


def dcgan_architecture(image_shape: tuple[int, int, int], latent_dim: int = 128) -> DCGANArchitecture:
    """The DCGAN record for images of ``image_shape`` (H, W, C); see the module docstring for the rule."""
    height, width, channels = checked_image_shape(image_shape, latent_dim)
    (start_h, start_w), strides = dcgan_strides(height, width)
    side = min(height, width)
    res = min(start_h, start_w)
    chans = []
    for stride in (1, *strides[:-1]):  # the start, then after each stage but the last
        res *= stride
        chans.append(min(MAX_CHANNELS, BASE_CHANNELS * (side // 2) // res))
    return DCGANArchitecture(
        latent_dim=latent_dim,
        image_shape=(height, width, channels),
        start_hw=(start_h, start_w),
        strides=strides,
        channels=tuple(chans),
    )


class DCGANGenerator(nn.Module):
    """Latent (n, D) → images (n, C, H, W) in [0, 1]."""

    def __init__(self, arch: DCGANArchitecture):
        super().__init__()
        self.arch = arch
        start_h, start_w = arch.start_hw
        c0 = arch.channels[0]
        self.dense = nn.Linear(arch.latent_dim, c0 * start_h * start_w, bias=False)
        self.start = nn.Sequential(nn.BatchNorm2d(c0), nn.ReLU())
        layers: list[nn.Module] = []
        outs = (*arch.channels[1:], arch.image_shape[2])
        for i, (c_in, c_out, stride) in enumerate(zip(arch.channels, outs, arch.strides)):
            kernel, pad = _KERNELS[stride]
            last = i == len(arch.strides) - 1
            layers.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride=stride, padding=pad, bias=last))
            if not last:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
        self.upsample = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        start_h, start_w = self.arch.start_hw
        x = self.start(self.dense(z).view(z.shape[0], self.arch.channels[0], start_h, start_w))
        return torch.sigmoid(self.upsample(x))


class DCGANDiscriminator(nn.Module):
    """Images (n, C, H, W) in [0, 1] → one logit per image (n,)."""

    def __init__(self, arch: DCGANArchitecture):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = arch.image_shape[2]
        # the generator's stages in reverse: full resolution first, 64 channels after the first conv
        outs = (*reversed(arch.channels[1:]), arch.channels[0])
        for c_out, stride in zip(outs, reversed(arch.strides)):
            kernel, pad = _KERNELS[stride]
            layers += [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=pad), nn.LeakyReLU(0.2)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * arch.start_hw[0] * arch.start_hw[1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1)).squeeze(1)
