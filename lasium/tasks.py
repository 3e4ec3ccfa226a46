"""The few-shot task: the one record that every stage passes around.

A task holds ``support`` (N, K_tr, H, W, C) and ``query`` (N, K_val, H, W, C) uint8 images; class i is
row i of both. Synthetic tasks (``lasium.generate``), real episodes (``lasium.data``) and tasks read
back from shards (``lasium.shards``) all have this shape, so the trainer and the evaluator treat them
alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import numpy as np

if TYPE_CHECKING:  # tensors only pass through: torch is not imported by plain task handling
    import torch


@dataclass
class Task:
    """One N-way task. ``latents`` (N, K_tr + K_val, D) float16 is optional; ``meta`` is JSON-able."""

    support: np.ndarray
    query: np.ndarray
    latents: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ways(self) -> int:
        return int(self.support.shape[0])

    @property
    def shots(self) -> int:
        return int(self.support.shape[1])

    @property
    def queries(self) -> int:
        return int(self.query.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C)."""
        return hwc(self.support.shape[2:])

    def check(self) -> None:
        """Raise ValueError when the arrays do not follow the task layout."""
        s, q = self.support, self.query
        if s.dtype != np.uint8 or q.dtype != np.uint8:
            raise ValueError(f"task images must be uint8, got {s.dtype} / {q.dtype}")
        if s.ndim != 5 or q.ndim != 5:
            raise ValueError(f"task images must be (N, K, H, W, C), got {s.shape} / {q.shape}")
        if s.shape[0] != q.shape[0] or s.shape[2:] != q.shape[2:]:
            raise ValueError(f"support {s.shape} and query {q.shape} disagree on N or image shape")
        if self.latents is not None:
            lat = self.latents
            if lat.ndim != 3 or lat.shape[0] != s.shape[0] or lat.shape[1] != s.shape[1] + q.shape[1]:
                raise ValueError(
                    f"latents {lat.shape} do not match N={s.shape[0]}, K_tr+K_val={s.shape[1] + q.shape[1]}"
                )


@dataclass
class TaskBatch:
    """T tasks stacked on a leading axis: support (T, N, K_tr, H, W, C) uint8, query (T, N, K_val, H, W, C)
    uint8, optional latents (T, N, K_tr + K_val, D) float16, one meta dict per task.

    The batch form is what generators produce and shard writers consume (no per-task Python objects
    on the hot path); :meth:`task` and :meth:`from_tasks` convert to and from :class:`Task`.
    """

    support: np.ndarray
    query: np.ndarray
    latents: np.ndarray | None = None
    metas: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.support.shape[0])

    def task(self, i: int) -> Task:
        meta = self.metas[i] if self.metas else {}
        lat = None if self.latents is None else self.latents[i]
        return Task(self.support[i], self.query[i], lat, meta)

    def __iter__(self):
        return (self.task(i) for i in range(len(self)))

    @classmethod
    def from_tasks(cls, tasks: list[Task]) -> TaskBatch:
        latents = None
        if tasks and tasks[0].latents is not None:
            latents = np.stack(cast(list[np.ndarray], [t.latents for t in tasks]))
        return cls(
            np.stack([t.support for t in tasks]),
            np.stack([t.query for t in tasks]),
            latents,
            [dict(t.meta) for t in tasks],
        )


def hwc(values: Iterable[Any]) -> tuple[int, int, int]:
    """(H, W, C) as three ints, from any three numbers (a JSON list, a tensor's or an array's shape)."""
    height, width, channels = (int(v) for v in values)
    return height, width, channels


def to_device(
    support: torch.Tensor, query: torch.Tensor, perm: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """uint8 (T, N, K, H, W, C) support/query + (T, N) label permutation → float images and labels on ``device``.

    Returns support (T, N·K_tr, C, H, W) in [0, 1], support labels (T, N·K_tr), query and query labels likewise.
    """

    def images(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.to(device, non_blocking=True)
        T, N, K = x.shape[:3]
        flat = x.reshape(T, N * K, *x.shape[3:]).permute(0, 1, 4, 2, 3)
        labels = perm_d[:, :, None].expand(T, N, K).reshape(T, N * K)
        return flat.float().div_(255.0).contiguous(), labels

    perm_d = perm.to(device, non_blocking=True)
    s, sl = images(support)
    q, ql = images(query)
    return s, sl, q, ql
