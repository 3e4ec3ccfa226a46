"""Numerics of every stage: what ``--precision auto|bf16|fp32`` means on this device, and its autocast context.

``auto`` picks bf16 autocast where the hardware computes in bf16 natively: CUDA GPUs, and CPUs with
AVX512-BF16 or AMX (x86) or the BF16 extension (Arm). There oneDNN runs convolutions about 2x faster than
in fp32 (a Conv-4 train step measured 2.3x on one Sapphire Rapids core). Elsewhere bf16 is emulated and
slower than fp32, so ``auto`` means fp32. On a GPU bf16 is not always the faster choice: on one H200 (2026-12-04,
``benchmarks/bench_train.py``, meta-batch 32, 28x28) a training step in bf16 autocast ran 0.81x (ProtoNets) and 0.70x
(second-order MAML) the speed of fp32 with TF32 convolutions; ``auto`` stays bf16 on CUDA until the same measurement
at 84x84x3 is in. Batch norm and losses stay in fp32 under autocast (see
``lasium.train.backbone``): only the convolutions and matrix products run in bf16.

An explicit ``bf16`` is honoured on any device (it may be slow on a CPU without native bf16); ``fp32``
turns autocast off everywhere.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by the functions that need it: PRECISIONS is read by light command lines
    import torch

PRECISIONS = ("auto", "bf16", "fp32")
"""The values of every ``--precision`` option."""

Autocast = Callable[[], contextlib.AbstractContextManager[Any]]
"""A factory of fresh autocast contexts (a context manager cannot be entered twice)."""

# /proc/cpuinfo flags that mean the CPU computes in bf16 natively (x86: AVX512-BF16, AMX; Arm: FEAT_BF16).
# Why not torch.backends.cpu.get_cpu_capability(): it names the vector ISA level torch dispatches to, not bf16.
# On this project's 2-core AMD EPYC (Zen 4, flags avx512_bf16) it returns "AVX512", where a ProtoNets step in
# bf16 autocast ran 1.12x and a second-order MAML step 1.11x its fp32 speed (benchmarks/bench_train.py --only
# precision, one interleaved run, 2026-12-02, machine loaded by two training runs); it returns the same
# "AVX512" on Skylake/Cascade Lake CPUs, which lack AVX512-BF16 and emulate bf16 (an earlier session measured
# emulated bf16 more than 20x slower than fp32 on an AVX2 EPYC). A flag test is the one that tells them apart.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def _cpu_flags() -> set[str]:
    """The CPU feature flags of the first processor in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 / Arm spelling
            return set(value.split())
    return set()


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bf16 in hardware (and oneDNN can use it)."""
    if platform.system() != "Linux":
        return False  # no cheap, reliable probe elsewhere: stay with fp32 unless asked
    if not NATIVE_BF16_FLAGS & _cpu_flags():
        return False
    import torch

    return bool(torch.backends.mkldnn.is_available())


def device_has_native_bf16(device: torch.device | str) -> bool:
    """Native bf16 on ``device``: any CUDA device that supports it, or a CPU with native bf16."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return cpu_has_native_bf16()
    return False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``"bf16"`` or ``"fp32"``: what ``precision`` (auto|bf16|fp32) means on ``device``."""
    check_precision(precision)
    if precision == "auto":
        return "bf16" if device_has_native_bf16(device) else "fp32"
    return precision


def autocast_for(precision: str, device: torch.device | str) -> tuple[Autocast, str]:
    """The autocast factory of ``--precision`` (auto|bf16|fp32) on ``device`` and the precision it resolved to
    (``bf16`` or ``fp32``): the one rule of training, validation and scoring. ``auto`` = bf16 where the device
    computes it natively; measured on Omniglot, MAML's 50 bf16 adaptation steps score within the 95% CI of fp32
    (results/precision.md). Batch norm and losses stay in fp32 either way (``lasium.train.backbone``)."""
    resolved = resolve_precision(precision, device)
    return autocast_factory(resolved, device), resolved


def autocast_factory(resolved: str, device: torch.device | str) -> Autocast:
    """A factory of autocast contexts for a resolved precision (``bf16`` or ``fp32``) on ``device``."""
    import torch

    device = torch.device(device)
    if resolved == "bf16":
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    if resolved != "fp32":
        raise ValueError(f"not a resolved precision: {resolved!r} (expected bf16 or fp32)")
    return contextlib.nullcontext


__all__ = [
    "PRECISIONS",
    "Autocast",
    "cpu_has_native_bf16",
    "device_has_native_bf16",
    "check_precision",
    "resolve_precision",
    "autocast_factory",
    "autocast_for",
]
