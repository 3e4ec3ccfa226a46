"""LASIUM task synthesis on the device: anchors → in-class latents → decoded uint8 images.

One call makes a whole shard of tasks with batched tensor work (no per-task Python loop):
1. anchors (T, N, D) by exact batched ε-rejection (:mod:`lasium.generate.synthesis.anchors`);
2. in-class latents (T, N, K_tr + K_val, D) with the chosen strategy (:mod:`lasium.generate.synthesis.strategies`);
3. decoding in fixed-shape generator calls, uint8 conversion and NHWC layout on the device.

Byte-for-byte reproducibility: all randomness comes from the one ``torch.Generator`` (``rng``) passed in, and
every generator call has the same shape (``decode_tasks`` tasks, the tail padded with zero latents),
so the kernels chosen never depend on how many tasks a call happens to hold.

Method: Khodadadeh et al., "Unsupervised Meta-Learning through Latent-Space Interpolation in
Generative Models", ICLR 2021.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lasium.errors import ConfigError
from lasium.generate.models.interface import Generator
from lasium.generate.synthesis.anchor_pool import AnchorPool
from lasium.generate.synthesis.anchors import (
    AnchorStats,
    anchor_chunk_bytes,
    sample_encoded_anchors,
    sample_gan_anchors,
)
from lasium.generate.synthesis.sizes import ANCHOR_CHUNK, DECODE_TASKS
from lasium.generate.synthesis.strategies import check_strategy, class_latents
from lasium.tasks import TaskBatch


@dataclass(frozen=True)
class SynthesisSpec:
    """What defines the tasks (everything else is speed)."""

    strategy: str  # n | ro | oc
    parameter: float  # σ for n, α for ro / oc
    epsilon: float
    ways: int = 5
    shots: int = 1
    queries: int = 5
    anchor_chunk: int = ANCHOR_CHUNK
    decode_tasks: int = DECODE_TASKS
    save_latents: bool = False

    @property
    def members(self) -> int:
        return self.shots + self.queries


@dataclass
class DeviceShard:
    """A synthesized shard still on the device."""

    support: torch.Tensor  # uint8 (T, N, K_tr, H, W, C)
    query: torch.Tensor  # uint8 (T, N, K_val, H, W, C)
    latents: torch.Tensor | None  # float16 (T, N, K_tr + K_val, D)
    anchor_index: torch.Tensor | None  # long (T, N): rows of the anchor pool (VAE)
    stats: AnchorStats


def to_uint8_nhwc(x: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) in [0, 1] → (n, H, W, C) uint8, rounding to nearest (done on the device)."""
    return (x.float() * 255.0).round_().clamp_(0.0, 255.0).to(torch.uint8).permute(0, 2, 3, 1)


def device_memory_bytes(device: torch.device) -> int | None:
    """Memory of the device: a GPU's total memory, or the machine's physical memory for the CPU (None: unknown)."""
    import os

    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError, RuntimeError):
        return None


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def call_memory_bytes(spec: SynthesisSpec, latent_dim: int, image_shape: tuple[int, int, int]) -> tuple[int, str]:
    """A lower bound of the memory the largest device call needs, and which call that is: one chunk of anchor
    rejection, or one generator call (its latents, float images and uint8 images; the network's own
    activations come on top)."""
    anchors = anchor_chunk_bytes(spec.anchor_chunk, spec.ways, latent_dim)
    images = spec.decode_tasks * spec.ways * spec.members
    decode = images * (4 * latent_dim + 5 * int(np.prod(image_shape)))
    if anchors >= decode:
        return anchors, f"anchor rejection, {spec.anchor_chunk} candidate tuples of {spec.ways} latents"
    return decode, f"a generator call, {spec.decode_tasks} tasks = {images:,} images"


def check_memory(spec: SynthesisSpec, latent_dim: int, image_shape: tuple[int, int, int], device: torch.device) -> None:
    """Refuse a task shape whose device calls cannot fit, before anything is allocated (one line)."""
    need, what = call_memory_bytes(spec, latent_dim, image_shape)
    have = device_memory_bytes(device)
    if have is not None and need > have:
        raise ConfigError(
            f"--ways {spec.ways} needs at least {_bytes(need)} of memory per device call ({what}) but the "
            f"{device.type} has {_bytes(have)}; use fewer --ways (or a smaller --decode-tasks)"
        )


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on the device when enabled (CUDA, or a CPU asked for bf16 explicitly)."""
    if enabled and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class TaskSynthesizer:
    """Makes LASIUM tasks from a :class:`~lasium.generate.models.interface.Generator` (``kind``,
    ``latent_dim``, ``image_shape``, ``sample_prior``, ``decode``; VAEs also ``encode``).

    Decoding runs ``model.decode`` as it is: to compile it, compile ``model.network`` before (the job
    does, with ``--compile``).

    >>> synth = TaskSynthesizer(model, SynthesisSpec("ro", 0.2, epsilon=246.09375))  # doctest: +SKIP
    >>> batch = synth.batch(100, lasium.seeding.torch_generator(0, "demo"))           # doctest: +SKIP
    """

    def __init__(
        self,
        model: Generator,
        spec: SynthesisSpec,
        *,
        device: str | torch.device = "cpu",
        anchor_pool: AnchorPool | None = None,
        autocast: bool | None = None,
    ) -> None:
        check_strategy(spec.strategy)
        if spec.ways < 2:
            raise ConfigError(f"a task needs at least 2 classes, got ways={spec.ways}; use --ways 2 or more")
        if spec.shots < 1 or spec.queries < 1:
            raise ConfigError(f"shots and queries must be at least 1, got {spec.shots} and {spec.queries}")
        if spec.decode_tasks < 1 or spec.anchor_chunk < 1:
            raise ConfigError("decode_tasks and anchor_chunk must be positive")
        if model.kind == "vae" and anchor_pool is None:
            raise ConfigError("VAE anchors need real images: pass anchor_pool=encode_pool(...)")
        self.model = model
        self.spec = spec
        self.device = torch.device(device)
        self.anchor_pool = anchor_pool
        # Default: bf16 autocast on CUDA only (the job's --precision decides explicitly).
        self.autocast = (self.device.type == "cuda") if autocast is None else bool(autocast)
        self.latent_dim = int(model.latent_dim)
        h, w, c = (int(s) for s in model.image_shape)
        self.image_shape = (h, w, c)
        if anchor_pool is not None and tuple(anchor_pool.images.shape[1:]) != self.image_shape:
            raise ConfigError(
                f"anchor images are {tuple(anchor_pool.images.shape[1:])} but the generator makes {self.image_shape}; "
                "load the dataset at the generator's image size"
            )
        check_memory(spec, self.latent_dim, self.image_shape, self.device)
        # On CUDA, anchors are drawn on a side stream: their rejection loop syncs with the host once per
        # chunk, and on the side stream that sync does not wait for the previous shard's decoding.
        self._side = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        if self._side is not None:
            self._side.wait_stream(torch.cuda.current_stream(self.device))  # e.g. the VAE anchor pool

    # -- stages ---------------------------------------------------------------------------------
    def anchors(self, num_tasks: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None, AnchorStats]:
        """Anchor latents (T, N, D), anchor-pool rows (T, N) for VAEs, and the rejection statistics."""
        if self._side is None:
            return self._draw_anchors(num_tasks, rng)
        main = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(self._side):
            z, index, stats = self._draw_anchors(num_tasks, rng)
        main.wait_stream(self._side)
        for t in (z, index):
            if t is not None:
                t.record_stream(main)  # made on the side stream, used (and freed) on the main one
        return z, index, stats

    def _draw_anchors(
        self, num_tasks: int, rng: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None, AnchorStats]:
        s = self.spec
        if self.anchor_pool is not None:
            return sample_encoded_anchors(
                self.anchor_pool.codes, num_tasks, s.ways, s.epsilon, rng, chunk=s.anchor_chunk
            )
        z, stats = sample_gan_anchors(
            self.model.sample_prior, num_tasks, s.ways, self.latent_dim, s.epsilon, rng, chunk=s.anchor_chunk
        )
        return z.to(self.device), None, stats

    def decode_uint8(self, latents: torch.Tensor) -> torch.Tensor:
        """(L, D) latents → (L, H, W, C) uint8, ``decode_tasks`` tasks per generator call (tail padded)."""
        per_call = self.spec.decode_tasks * self.spec.ways * self.spec.members
        total = latents.shape[0]
        out = torch.empty((total, *self.image_shape), dtype=torch.uint8, device=self.device)
        h, w, c = self.image_shape
        with torch.inference_mode(), _autocast(self.device, self.autocast):
            for a in range(0, total, per_call):
                part = latents[a : a + per_call]
                n = part.shape[0]
                if n < per_call:
                    part = torch.cat([part, part.new_zeros((per_call - n, part.shape[1]))])
                x = self.model.decode(part)
                if tuple(x.shape) != (per_call, c, h, w):
                    raise ConfigError(
                        f"generator decode returned shape {tuple(x.shape)}, expected {(per_call, c, h, w)} (n, C, H, W)"
                    )
                out[a : a + n] = to_uint8_nhwc(x[:n])
        return out

    def shard(self, num_tasks: int, rng: torch.Generator) -> DeviceShard:
        """Synthesize ``num_tasks`` tasks on the device from ``rng`` (the shard's random stream)."""
        s = self.spec
        anchors, index, stats = self.anchors(num_tasks, rng)
        with torch.inference_mode():
            latents = class_latents(anchors.float(), s.strategy, s.parameter, s.members, rng, self.model.sample_prior)
        t, n, k, d = latents.shape
        images = self.decode_uint8(latents.reshape(t * n * k, d)).reshape(t, n, k, *self.image_shape)
        if index is not None and self.anchor_pool is not None:
            # VAE: the real images themselves are member 0 of their class, not their reconstruction.
            images[:, :, 0] = self.anchor_pool.images[index]
        return DeviceShard(
            support=images[:, :, : s.shots].contiguous(),
            query=images[:, :, s.shots :].contiguous(),
            latents=latents.to(torch.float16) if s.save_latents else None,
            anchor_index=index,
            stats=stats,
        )

    def metas(self, first_task: int, num_tasks: int, anchor_index: np.ndarray | None) -> list[dict[str, Any]]:
        return task_metas(
            self.spec.strategy,
            first_task,
            num_tasks,
            anchor_index,
            self.anchor_pool.image_ids if self.anchor_pool else None,
        )

    def batch(self, num_tasks: int, rng: torch.Generator, first_task: int = 0) -> TaskBatch:
        """Synthesize and bring to the host as a :class:`TaskBatch` (library use; the job pipelines this)."""
        dev = self.shard(num_tasks, rng)
        index = None if dev.anchor_index is None else dev.anchor_index.cpu().numpy()
        lat = None if dev.latents is None else dev.latents.cpu().numpy()
        return TaskBatch(
            dev.support.cpu().numpy(), dev.query.cpu().numpy(), lat, self.metas(first_task, num_tasks, index)
        )


def task_metas(
    strategy: str, first_task: int, num_tasks: int, anchor_index: np.ndarray | None, image_ids: list[str] | None
) -> list[dict[str, Any]]:
    """The meta dict of each task: global index, strategy and, for real-image anchors, their image ids."""
    metas: list[dict[str, Any]] = []
    for t in range(num_tasks):
        meta: dict[str, Any] = {"index": first_task + t, "strategy": strategy}
        if anchor_index is not None and image_ids is not None:
            meta["anchor_source_ids"] = [image_ids[int(i)] for i in anchor_index[t]]
        metas.append(meta)
    return metas
