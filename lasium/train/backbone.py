"""The Conv-4 backbone of MAML and ProtoNets (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).

Four blocks of 3×3 convolution (64 filters), batch norm, 2×2 max-pool and ReLU, then flatten. (Pooling
before the ReLU computes exactly the same function as the usual ReLU-then-pool, since max and ReLU commute,
with a quarter of the ReLU work: 1.5x faster training steps measured on a CPU.) Batch norm keeps no running
statistics (``track_running_stats=False``): every forward pass normalises with the statistics of the batch
it is given, i.e. of one task's support or query set, in training and evaluation alike, as the MAML
reference implementation does. This also leaves the module with no buffers, so it is a pure function of its
parameters for ``torch.func``.

Two ways in: images (n, C, H, W) are one batch (one task's set; under ``vmap`` for per-task weights), and
images (T, n, C, H, W) are T tasks' sets sharing the weights, normalised task by task in one batched pass
with no ``vmap`` (ProtoNets' fast path). On a CPU both run channels-last, which oneDNN's kernels want (the
one-batch way only outside ``vmap``, which cannot batch memory formats: MAML's test-time adaptation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

try:  # torch's own functorch bindings (no public API tells whether a tensor is batched by vmap)
    from torch._C import _functorch
except ImportError:  # pragma: no cover - every torch this project supports has them
    _functorch = None  # type: ignore[assignment]

from lasium.errors import ConfigError

BLOCKS = 4


def full_precision(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32 when it is in a half type (bf16 autocast), else unchanged (float64 stays)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def grouped_batch_norm(
    x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """Batch norm of ``x`` (G·n, C, H, W) with separate statistics for each of its ``groups`` consecutive blocks of n.

    The same as batch norm applied to each block on its own (training-mode statistics, biased variance), in
    float32, by whichever of two equal computations is faster on the device: on a CPU the native kernel once
    per block (its channels-last statistics are fused; one ``var_mean`` over all blocks is a slow Welford
    reduction over an outer axis there: 1.2-1.4x per ProtoNets step on a 2-core EPYC,
    ``benchmarks/bench_train.py --only batchnorm``); elsewhere one reduction for all blocks (one kernel instead
    of one per task on a GPU).
    """
    if x.device.type == "cpu":
        return batch_norm_per_block(x, groups, weight, bias, eps)
    return batch_norm_one_reduction(x, groups, weight, bias, eps)


def batch_norm_per_block(
    x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """:func:`grouped_batch_norm` as the native batch norm of each block, concatenated (keeps channels-last)."""
    blocks = full_precision(x).unflatten(0, (groups, -1)).unbind(0)
    return torch.cat([F.batch_norm(b, None, None, weight, bias, True, 0.0, eps) for b in blocks])


def batch_norm_one_reduction(
    x: torch.Tensor, groups: int, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """:func:`grouped_batch_norm` as one reduction on the channels-last view (G, n·H·W, C).

    The statistics are one reduction with the channels innermost (a view, no copy, when ``x`` is
    channels-last); the result is channels-last.
    """
    n, c, h, w = x.shape
    blocks = x.permute(0, 2, 3, 1).reshape(groups, -1, c)
    var, mean = torch.var_mean(full_precision(blocks), dim=1, unbiased=False, keepdim=True)
    scale = weight * torch.rsqrt(var + eps)
    shift = bias - mean * scale
    return torch.addcmul(shift, full_precision(blocks), scale).reshape(n, h, w, c).permute(0, 3, 1, 2)


GROUPED_BATCH_NORMS: dict[str, Callable[..., torch.Tensor]] = {
    "per_block": batch_norm_per_block,
    "one_reduction": batch_norm_one_reduction,
}


class TaskBatchNorm2d(nn.BatchNorm2d):
    """Batch norm on the statistics of the batch it is given (no running statistics), computed in float32.

    Float32 because batch statistics are poor in bf16, and because the native kernel, under
    ``vmap(grad(...))`` and bf16 autocast, rejects a bf16 input with float32 affine parameters.
    """

    # None: grouped_batch_norm picks by device; a key of GROUPED_BATCH_NORMS forces that computation (both give the
    # same function; ``benchmarks/bench_train.py --only batchnorm`` times one against the other).
    grouped: str | None = None

    def __init__(self, num_features: int) -> None:
        super().__init__(num_features, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(full_precision(x))

    def forward_groups(self, x: torch.Tensor, groups: int) -> torch.Tensor:
        """Each of the ``groups`` consecutive blocks of ``x`` normalised on its own statistics."""
        if self.grouped is None:
            return grouped_batch_norm(x, groups, self.weight, self.bias, self.eps)
        return GROUPED_BATCH_NORMS[self.grouped](x, groups, self.weight, self.bias, self.eps)


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3×3 conv (same padding) → batch norm on the batch's own statistics → 2×2 max-pool → ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        TaskBatchNorm2d(out_channels),
        nn.MaxPool2d(2),
        nn.ReLU(),
    )


def feature_size(image_shape: tuple[int, int, int], hidden: int = 64) -> int:
    """Length of the flattened Conv-4 feature vector for images of shape (H, W, C)."""
    h, w = int(image_shape[0]), int(image_shape[1])
    for _ in range(BLOCKS):
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ConfigError(
            f"images of {image_shape[0]}x{image_shape[1]} are too small for {BLOCKS} pooling blocks; "
            f"use images of at least {2**BLOCKS}x{2**BLOCKS}"
        )
    return hidden * h * w


def under_vmap(x: torch.Tensor) -> bool:
    """Whether ``x`` is batched by an enclosing ``vmap`` (under ``grad`` too, whose wrapper hides the batching).

    Without torch's functorch bindings it cannot tell and says yes, which keeps the plain path (correct everywhere).
    """
    if _functorch is None:
        return True
    while _functorch.is_functorch_wrapped_tensor(x):
        if _functorch.is_batchedtensor(x):
            return True
        x = _functorch.get_unwrapped(x)
    return False


def conv_as_matmul(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 3×3 same-padding convolution as one matrix product over unfolded patches, channels-last.

    For the first block's few input channels oneDNN's direct convolution does little work per call (one input
    channel: 9 multiply-adds per output) at a high fixed cost; the product runs 4-5x faster forward on a CPU, and the
    result is channels-last, which the following batch norm and max-pool want.
    """
    n, _, h, w = x.shape
    padding = cast(tuple[int, ...], conv.padding)  # conv_block's padding=1, stored as (1, 1)
    patches = F.unfold(x, conv.kernel_size, padding=padding).transpose(1, 2)  # (n, H·W, C·9)
    out = torch.addmm(cast(torch.Tensor, conv.bias), patches.reshape(n * h * w, -1), conv.weight.flatten(1).t())
    return out.view(n, h, w, conv.out_channels).permute(0, 3, 1, 2)


class Conv4(nn.Module):
    """Conv-4 feature extractor: (n, C, H, W) floats in [0, 1] → (n, hidden · H/16 · W/16) features, or
    T tasks' images (T, n, C, H, W) → (T, n, features), each task normalised on its own statistics."""

    # On a CPU both ways in run channels-last (forward_channels_last, forward_tasks); False keeps plain NCHW
    # blocks, the baseline of ``benchmarks/bench_eval.py --layouts`` and ``bench_train.py --only layout``.
    cpu_channels_last: bool = True

    def __init__(self, image_shape: tuple[int, int, int], hidden: int = 64) -> None:
        super().__init__()
        self.image_shape = cast(tuple[int, int, int], tuple(int(s) for s in image_shape))
        self.out_features = feature_size(self.image_shape, hidden)
        channels = [self.image_shape[2]] + [hidden] * BLOCKS
        self.blocks = nn.Sequential(*[conv_block(channels[i], channels[i + 1]) for i in range(BLOCKS)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 5:
            return self.forward_tasks(images)
        if self.cpu_channels_last and images.device.type == "cpu" and not under_vmap(images):
            return self.forward_channels_last(images)
        return self.blocks(images).flatten(1)

    def forward_channels_last(self, images: torch.Tensor) -> torch.Tensor:
        """(n, C, H, W) → (n, features) on a CPU: the first convolution as a matrix product, every block channels-last.

        The same function as ``self.blocks`` (equal up to float rounding, tested). oneDNN's max-pool and batch norm
        are far slower on NCHW than on NHWC for a task's few images (max-pool of 5×64×28×28: 33x), and a
        convolution keeps its input's memory format: MAML's test-time step 1.33x (1-shot) and 1.31x (5-shot) faster
        on a 2-core EPYC, ``benchmarks/bench_eval.py --layouts``.
        """
        x = images
        for i, (conv, norm, pool, relu) in enumerate(cast(Iterable[Any], self.blocks)):
            x = conv_as_matmul(conv, x) if i == 0 else conv(x)
            x = relu(pool(norm(x)))
        return x.flatten(1)

    def forward_tasks(self, images: torch.Tensor) -> torch.Tensor:
        """(T, n, C, H, W) → (T, n, features): one batched pass, batch norm per task (not under ``vmap``)."""
        t, n = images.shape[:2]
        x = images.reshape(t * n, *images.shape[2:])
        # oneDNN's convolutions (bf16 most of all), max-pool and batch norm are fastest in NHWC on a CPU. A convolution
        # keeps its input's format, but a 1-channel input is NCHW and NHWC at once and the first convolution then
        # returns NCHW, so every output is made NHWC (a no-op after the first): 1.18x per fp32 ProtoNets step on a
        # 2-core EPYC over NCHW throughout, which is what the 1-channel Omniglot input ran before
        # (``benchmarks/bench_train.py --only layout``).
        channels_last = self.cpu_channels_last and x.device.type == "cpu"
        for conv, norm, pool, relu in cast(Iterable[Any], self.blocks):
            x = conv(x)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x = relu(pool(norm.forward_groups(x, t)))
        return x.reshape(t, n, -1)


BackboneFactory = Callable[[tuple[int, int, int], int], nn.Module]
"""Builds a backbone for images of shape (H, W, C) with ``hidden`` channels (see ``learner.Backbone``)."""

BACKBONES: dict[str, BackboneFactory] = {
    "conv4": Conv4,
}
"""Backbones by the name a learner config records (``lasium-train --backbone``); a new one is one line here."""
