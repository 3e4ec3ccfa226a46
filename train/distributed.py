"""Data-parallel meta-training across processes (``torchrun``): one rank per GPU, any number of nodes.

Each rank computes the meta-gradient of its own meta-batch (read from its own shards); the gradients
are averaged with one flattened all-reduce before every optimizer step, so all ranks apply the same
update and keep identical weights. This is what DistributedDataParallel does, written out by hand
because the meta-gradient comes from ``torch.func`` rather than ``loss.backward()``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from lasium.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def resolve_device(option: str, local_rank: int = 0) -> torch.device:
    """``auto`` = this rank's CUDA device if there is one, else CPU; ``cpu``/``cuda``/``cuda:N`` as given."""
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {option} asked for, but no CUDA device is available; use --device cpu")
        return torch.device(option if ":" in option else f"cuda:{local_rank}")
    if option != "cpu":
        raise ConfigError(f"unknown --device {option!r}; use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def init_distributed(device_option: str = "auto") -> DistContext:
    """Join the process group that ``torchrun`` describes in the environment (single process otherwise).

    NCCL on CUDA, gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_option, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, device)


def all_reduce_mean_(tensors: list[torch.Tensor], ctx: DistContext) -> None:
    """Average ``tensors`` over ranks in place, with one flattened all-reduce."""
    if not ctx.active or not tensors:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= ctx.world_size
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def broadcast_(tensors: list[torch.Tensor], ctx: DistContext) -> None:
    """Make every rank's ``tensors`` equal to rank 0's (the starting weights)."""
    if ctx.active:
        for t in tensors:
            dist.broadcast(t, src=0)


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
