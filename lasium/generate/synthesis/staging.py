"""Host staging: finished shards leave the device through non-blocking copies into pinned host memory.

The device goes on with the next shard while a copy is in flight; :meth:`StagedShard.arrays` waits for it
only when the shard is handed to the writers (LASIUM's task source, :mod:`lasium.generate.sources.generator`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lasium.generate.synthesis.synthesizer import DeviceShard


class StagedShard:
    """A shard being copied device → host; ``arrays()`` waits for the copy."""

    def __init__(self, tensors: dict[str, torch.Tensor | None], event: Any, buffers: Any) -> None:
        self._tensors, self._event, self.buffers = tensors, event, buffers

    def ready(self) -> bool:
        return self._event is None or bool(self._event.query())

    def arrays(self) -> dict[str, np.ndarray | None]:
        if self._event is not None:
            self._event.synchronize()
        return {k: None if t is None else t.numpy() for k, t in self._tensors.items()}


class HostStager:
    """Non-blocking copies of finished shards into a ring of pinned host buffers (CUDA); on the CPU the
    shard tensors are used as they are."""

    def __init__(self, device: torch.device, slots: int, max_tasks: int) -> None:
        self.device = device
        self.slots = slots
        self.max_tasks = max_tasks  # buffers hold a full shard; a short last shard uses their front
        self._free: list[dict[str, torch.Tensor]] = []
        self._made = 0

    def _buffers(self, shard: DeviceShard) -> dict[str, torch.Tensor]:
        if self._free:
            return self._free.pop()
        if self._made >= self.slots:
            raise RuntimeError("all pinned buffers are in use; release one first")
        self._made += 1
        out = {
            "support": shard.support,
            "query": shard.query,
            "latents": shard.latents,
            "anchor_index": shard.anchor_index,
        }
        return {
            k: torch.empty((self.max_tasks, *t.shape[1:]), dtype=t.dtype, pin_memory=True)
            for k, t in out.items()
            if t is not None
        }

    def stage(self, shard: DeviceShard) -> StagedShard:
        parts = {
            "support": shard.support,
            "query": shard.query,
            "latents": shard.latents,
            "anchor_index": shard.anchor_index,
        }
        if self.device.type != "cuda":
            return StagedShard({k: None if t is None else t.detach().cpu() for k, t in parts.items()}, None, None)
        bufs = self._buffers(shard)
        host: dict[str, torch.Tensor | None] = {}
        for k, t in parts.items():
            if t is None:
                host[k] = None
                continue
            dst = bufs[k][: t.shape[0]]  # a short last shard uses the front of the buffer
            dst.copy_(t, non_blocking=True)
            host[k] = dst
        event = torch.cuda.Event()
        event.record()
        return StagedShard(host, event, bufs)

    def release(self, staged: StagedShard) -> None:
        if staged.buffers is not None:
            self._free.append(staged.buffers)
