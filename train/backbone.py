"""The Conv-4 backbone of MAML and ProtoNets (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).

Four blocks of 3×3 convolution (64 filters), batch norm, ReLU and 2×2 max-pool, then flatten. Batch norm
keeps no running statistics (``track_running_stats=False``): every forward pass normalises with the
statistics of the batch it is given, i.e. of one task's support or query set, in training and evaluation
alike, as the MAML reference implementation does. This also leaves the module with no buffers, so it is a
pure function of its parameters for ``torch.func``.
"""

from __future__ import annotations

import torch
from torch import nn

from lasium.errors import ConfigError

BLOCKS = 4


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a half type (bf16 autocast), else unchanged (float64 stays)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class TaskBatchNorm2d(nn.BatchNorm2d):
    """Batch norm on the statistics of the batch it is given (no running statistics), computed in float32.

    Float32 because batch statistics are poor in bf16, and because the native kernel, under
    ``vmap(grad(...))`` and bf16 autocast, rejects a bf16 input with float32 affine parameters.
    """

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(full_precision(x))


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (same padding) → batch norm on the batch's own statistics → ReLU → 2×2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        TaskBatchNorm2d(out_channels),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


def feature_size(image_shape: tuple[int, int, int], hidden: int = 64) -> int:
    """Length of the flattened Conv-4 feature vector for images of shape (H, W, C)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    for _ in range(BLOCKS):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ConfigError(
            f"images of {image_shape[0]}x{image_shape[1]} are too small for {BLOCKS} pooling blocks; "
            f"use images of at least {2 ** BLOCKS}x{2 ** BLOCKS}"
        )
    return hidden * h * w


class Conv4(nn.Module):
    """Conv-4 feature extractor: (n, C, H, W) floats in [0, 1] → (n, hidden · H/16 · W/16) features."""

    def __init__(self, image_shape: tuple[int, int, int], hidden: int = 64) -> None:
        super().__init__()
        self.image_shape = tuple(int(s) for s in image_shape)
        self.out_features = feature_size(self.image_shape, hidden)
        channels = [self.image_shape[2]] + [hidden] * BLOCKS
        self.blocks = nn.Sequential(*[conv_block(channels[i], channels[i + 1]) for i in range(BLOCKS)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(images).flatten(1)
