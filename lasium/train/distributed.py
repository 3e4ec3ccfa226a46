"""Data-parallel meta-training across processes (``torchrun``): one rank per GPU, any number of nodes.

Each rank computes the meta-gradient of its own meta-batch (read from its own shards); the gradients
are averaged with one flattened all-reduce before every optimizer step, so all ranks apply the same
update and keep identical weights. This is what DistributedDataParallel does, written out by hand
because the meta-gradient comes from ``torch.func`` rather than ``loss.backward()``.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.distributed as dist

from lasium.runtime import RankInfo, resolve_device

__all__ = [
    "RankInfo",
    "all_reduce_mean_",
    "barrier",
    "broadcast_",
    "init_distributed",
    "resolve_device",
    "shutdown",
]


def init_distributed(device_option: str = "auto") -> RankInfo:
    """Join the process group that ``torchrun`` describes in the environment (single process otherwise).

    NCCL on CUDA, gloo on CPU.
    """
    rank = RankInfo.from_env()
    device = resolve_device(device_option, rank.local_rank)
    if rank.active and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dataclasses.replace(rank, device=device)


def all_reduce_mean_(tensors: list[torch.Tensor], ctx: RankInfo) -> None:
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


def broadcast_(tensors: list[torch.Tensor], ctx: RankInfo) -> None:
    """Make every rank's ``tensors`` equal to rank 0's (the starting weights)."""
    if ctx.active:
        for t in tensors:
            dist.broadcast(t, src=0)


def barrier(ctx: RankInfo) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: RankInfo) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
