"""Where a process runs: its rank in a ``torchrun`` launch, its device, and how to describe that device.

Shared by every stage (``lasium-fit``, ``lasium-gen``, ``lasium-train``, ``lasium-eval``), which all take
``--device auto|cpu|cuda|cuda:N`` and may run under ``torchrun``.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Any

import torch

from lasium.errors import ConfigError


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a ``torchrun`` launch (rank 0 of 1 otherwise), and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> RankInfo:
        """Rank, world size and local rank from the variables ``torchrun`` sets."""
        env = os.environ
        world = max(int(env.get("WORLD_SIZE", "1")), 1)
        rank = int(env.get("RANK", "0"))
        if not 0 <= rank < world:
            raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
        return cls(rank, world, int(env.get("LOCAL_RANK", "0")), device if device is not None else torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        """True when there are other ranks to talk to."""
        return self.world_size > 1


def resolve_device(option: str | torch.device, local_rank: int | None = None) -> torch.device:
    """``auto`` → cuda when a GPU is present, else cpu; ``cuda`` without a GPU is a one-line ConfigError.

    With ``local_rank``, a bare ``cuda`` (or ``auto`` on a GPU machine) becomes ``cuda:LOCAL_RANK`` (modulo
    the GPUs present), so each ``torchrun`` rank takes its own GPU.
    """
    text = str(option)
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {text} was asked for but no CUDA GPU is available; use --device cpu or auto")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is None and local_rank is not None:
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    return device


def no_cudnn_autotuning(device: torch.device) -> None:
    """Turn cuDNN autotuning off on a CUDA ``device``: it picks kernels by timing them, so two runs could compute
    different bytes. Stages whose output must be reproducible (``lasium-gen``) call this before their first kernel."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False


def describe_device(device: torch.device) -> dict[str, Any]:
    """What a report records about the device: type, name, and the software versions that set its numerics."""
    d: dict[str, Any] = {"type": device.type, "torch": torch.__version__, "python": platform.python_version()}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        d.update(name=torch.cuda.get_device_name(index), cuda=torch.version.cuda)
    else:
        d.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads())
    return d


def cpu_model() -> str:
    """This CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows (reports name the machine)."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def device_label(device: torch.device) -> str:
    """One line for logs and configs: ``cpu``, or ``cuda (NVIDIA H200)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return str(device)


# glibc mallopt parameters (malloc.h): the most chunks served by mmap, and the free top of the heap kept before
# it is given back to the kernel.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
KEEP_FREED_BYTES = 2**31 - 1  # mallopt takes an int: keep up to 2 GiB of freed heap for the next allocation


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed activation buffers instead of handing them back to the kernel.

    glibc serves every allocation above 32 MiB (its ceiling for the mmap threshold) with a fresh ``mmap`` and
    ``munmap``s it on free, so each forward pass of an 84×84 task (the first Conv-4 block's output for 75 query
    images is 75 × 64 × 84 × 84 floats, 135 MB) page-faults and zeroes its buffers again. On a 2-core AMD EPYC (one
    thread, machine loaded by other jobs) a 5-way 1-shot ProtoNets task with 15 queries took 0.45-0.49 s of
    compute (``user``) and 0.8-2.3 s in the kernel (``sys``), which is also why its time swung with the load.
    With mmap off (``M_MMAP_MAX`` 0) and trimming held back, large buffers come from the heap and are reused:
    ``score_episodes`` in fresh processes, interleaved, 0.44-0.60 s per task against 1.27-2.24 with glibc's
    defaults (sys 0.9-1.4 s against 10.4-13.5 s for two passes over 6 tasks), same accuracies. The price: the
    process keeps its peak heap (up to 2 GiB freed) until it exits, which suits a command that runs one loop.

    The same effect as ``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` in the environment, which glibc only
    reads at start-up. Process-wide and not undone, so the commands call it (``lasium-eval``, ``lasium-train``,
    ``lasium-gen``, ``lasium-fit``), not the library.
    A user's own ``MALLOC_*_`` settings win: then, and where malloc is not glibc's, this does nothing and
    returns False. Numerics are untouched: this only decides where memory comes from.
    """
    if platform.system() != "Linux" or any(k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  # glibc only (musl has no mallopt parameters to speak of)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED_BYTES)) and bool(mallopt(M_MMAP_MAX, 0))
