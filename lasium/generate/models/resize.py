"""Resizing a generator's images on its device: ``lasium-gen --image-size S``.

The paper fed its CelebA and mini-ImageNet learners 84×84 images from pre-trained GANs of another size (ProGAN for
CelebA, 512-d latent and 128 px; BigBiGAN for mini-ImageNet, 120-d latent; Khodadadeh et al., ICLR 2021). The
resize is a module around the generator's network (:class:`ResizedNetwork`), so it runs on the device inside every
decode call, in the same autocast, channels-last layout and ``torch.compile`` as the network itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lasium.errors import ConfigError

from .interface import ModuleGenerator

RESIZE_MODE = "bilinear-antialias"


class ResizedNetwork(nn.Module):
    """``network``'s images (n, C, H, W) resized to (n, C, height, width): bilinear, antialiased when shrinking
    (``torch.nn.functional.interpolate(..., antialias=True)``, PIL's filter), values kept in the network's range."""

    def __init__(self, network: nn.Module, height: int, width: int) -> None:
        super().__init__()
        self.network = network
        self.size = (int(height), int(width))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.network(z)
        if tuple(x.shape[-2:]) == self.size:
            return x
        return F.interpolate(x, size=self.size, mode="bilinear", antialias=True, align_corners=False)


def resize_generator(model: ModuleGenerator, image_size: int | None) -> ModuleGenerator:
    """``model`` making ``image_size``×``image_size`` images (unchanged when None or already that size).

    The generator record (``describe()``) then says ``image_shape`` is the new size and ``resized_from`` the
    network's own (H, W). VAEs are refused: their anchors are real images encoded at the VAE's own size.
    """
    if image_size is None:
        return model
    size = int(image_size)
    if not 8 <= size <= 4096:
        raise ConfigError(f"--image-size must be between 8 and 4096 px, got {size}")
    height, width, channels = model.image_shape
    if (height, width) == (size, size):
        return model
    if model.kind == "vae":
        raise ConfigError(
            f"--image-size resizes GAN and external generators; {model.name} is a VAE whose anchors are real "
            f"images at its own {height}×{width}: fit the VAE at --image-size {size} instead"
        )
    if not isinstance(model, ModuleGenerator):
        raise ConfigError(f"--image-size resizes a ModuleGenerator, got {type(model).__name__}")
    model.network = ResizedNetwork(model.network, size, size).to(model.device).eval()
    model.image_shape = (size, size, channels)
    model.extra = {**model.extra, "resized_from": [height, width], "resize": RESIZE_MODE}
    if model.max_decode_batch is not None:  # the resized images must keep under the 32-bit activation bound too
        while model.max_decode_batch > 1 and model.max_decode_batch * channels * size * size >= 2**31:
            model.max_decode_batch //= 2
    return model


__all__ = ["RESIZE_MODE", "ResizedNetwork", "resize_generator"]
