"""The ``lasium-gen`` batch job: LASIUM task synthesis as sharded, resumable, multi-GPU work.

The work unit is a shard. Shard s holds tasks s·T … (s+1)·T − 1 and all of its randomness comes from
one ``torch.Generator`` seeded with ``derive_seed(seed, "shard", s)``, so its bytes depend on the
config, the seed and the kind of device only: never on worker count, shards in flight, ranks or which
machine of an array job made it. Hence:

* resume: a rerun skips shards whose sidecar is present and whose file matches it (size, or sha256
  with ``verify_existing``); a killed job loses at most the shards in flight;
* scale-out: under ``torchrun`` rank r takes shards s ≡ r (mod world size) on ``cuda:LOCAL_RANK``;
  ``shards="a:b"`` selects a range for array jobs; the manifest is written once the set is complete.

Pipeline: the device makes a shard (anchors, in-class latents, decoding, uint8; see
:mod:`lasium.generate.synthesis`), copies it to pinned host memory without blocking, and moves on to the
next shard; finished copies go to writer processes (:mod:`lasium.generate.writers`), so encoding,
hashing and disk I/O overlap generation.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from lasium.errors import ConfigError
from lasium.generate.config import GenerationConfig, parse_shard_range
from lasium.generate.outdir import check_existing_set, prepare_out_dir, remove_orphan_shards, shard_is_complete
from lasium.generate.synthesis import DeviceShard, SynthesisSpec, TaskSynthesizer
from lasium.generate.writers import InlineWriter, ShardJob, SlotLayout, WriterPool, WriteTarget
from lasium.seeding import torch_generator
from lasium.shards.format import CONTAINERS, ShardEntry, expected_shard_tasks, shard_file_name


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a ``torchrun`` launch (rank 0 of 1 otherwise)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "RankInfo":
        env = os.environ
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        if not 0 <= rank < max(world, 1):
            raise ConfigError(f"RANK={rank} is outside WORLD_SIZE={world}")
        return cls(rank, max(world, 1), int(env.get("LOCAL_RANK", "0")))


@dataclass
class GenerationResult:
    """What a run did (per process)."""

    out_dir: Path
    shards_written: int = 0
    shards_skipped: int = 0
    tasks_written: int = 0
    bytes_written: int = 0
    seconds: float = 0.0
    manifest_written: bool = False
    entries: list[ShardEntry] = field(default_factory=list)
    header: dict[str, Any] = field(default_factory=dict)

    @property
    def tasks_per_second(self) -> float:
        return self.tasks_written / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        gb = self.bytes_written / 1e9
        skipped = f" ({self.shards_skipped} already complete)" if self.shards_skipped else ""
        return (f"wrote {self.tasks_written:,} tasks in {self.shards_written} shards{skipped}, {gb:.3f} GB, "
                f"{self.seconds:.1f} s, {self.tasks_per_second:,.0f} tasks/s → {self.out_dir}")


def resolve_job_device(device: str, rank: RankInfo) -> torch.device:
    """``auto`` → ``cuda:LOCAL_RANK`` when a GPU is present, else cpu; a bare ``cuda`` also gets the local rank."""
    from lasium.generate.interface import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", rank.local_rank % max(1, torch.cuda.device_count()))
    return dev


# -- host staging ----------------------------------------------------------------------------------
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
        out = {"support": shard.support, "query": shard.query, "latents": shard.latents, "anchor_index": shard.anchor_index}
        return {k: torch.empty((self.max_tasks, *t.shape[1:]), dtype=t.dtype, pin_memory=True) for k, t in out.items() if t is not None}

    def stage(self, shard: DeviceShard) -> StagedShard:
        parts = {"support": shard.support, "query": shard.query, "latents": shard.latents, "anchor_index": shard.anchor_index}
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


# -- the job ---------------------------------------------------------------------------------------
def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="task", dynamic_ncols=True, disable=not enabled, desc=desc, smoothing=0.1)


def _layout(set_config: dict[str, Any], tasks: int) -> SlotLayout:
    n, k_tr, k_val = set_config["ways"], set_config["shots"], set_config["queries"]
    shape = tuple(set_config["image_shape"])
    lat = (tasks, n, k_tr + k_val, set_config["latent_dim"]) if set_config.get("save_latents") else None
    return SlotLayout((tasks, n, k_tr, *shape), (tasks, n, k_val, *shape), lat)


class GenerationJob:
    """One process's share of a ``lasium-gen`` run. ``model`` may be passed in (library use, tests);
    otherwise ``config.generator`` is loaded with :func:`lasium.generate.interface.load_generator`."""

    def __init__(self, config: GenerationConfig, *, model: Any = None, rank: RankInfo | None = None,
                 log: Callable[[str], None] = print) -> None:
        self.config = config
        self.rank = rank or RankInfo.from_env()
        self.log = log
        self.device = torch.device("cpu") if config.source == "real" else resolve_job_device(config.device, self.rank)
        self.model = model
        self.synth: TaskSynthesizer | None = None
        self.real = None
        self.header = self._build_header()

    def _build_header(self) -> dict[str, Any]:
        c = self.config
        if c.source == "real":
            from lasium.generate.real_source import RealTaskSource

            self.real = RealTaskSource(c.dataset, c.split, ways=c.ways, shots=c.shots, queries=c.queries, seed=c.seed, data_root=c.data_root)
            set_config = c.set_config(image_shape=self.real.image_shape, latent_dim=None, generator_kind=None, device_type="cpu")
            return {"config": set_config, "generator": None, "source": self.real.describe()}
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False  # autotuning would pick kernels by timing: not reproducible
        if self.model is None:
            from lasium.generate.interface import load_generator

            self.model = load_generator(c.generator, device=self.device, latent_dim=c.latent_dim)
        model = self.model
        kind = str(model.kind)
        set_config = c.set_config(image_shape=tuple(model.image_shape), latent_dim=int(model.latent_dim), generator_kind=kind,
                                  device_type=self.device.type)
        pool, source = None, None
        if kind == "vae":
            from lasium.generate.real_source import vae_anchor_pool, vae_source_record

            pool = vae_anchor_pool(model, c.dataset, data_root=c.data_root, device=self.device)
            source = vae_source_record(pool, c.dataset)
        pname = "sigma" if c.strategy == "n" else "alpha"
        spec = SynthesisSpec(
            strategy=str(c.strategy), parameter=float(set_config[pname]), epsilon=float(set_config["epsilon"]), ways=c.ways,
            shots=c.shots, queries=c.queries, anchor_chunk=c.anchor_chunk, decode_tasks=c.effective_decode_tasks,
            save_latents=c.save_latents,
        )
        bf16 = set_config["precision"] == "bf16-autocast"
        if bf16 and self.device.type == "cpu" and hasattr(model, "decoder"):
            # oneDNN's bf16 convolutions are fast in channels-last layout (about 2x over fp32 on AVX512-BF16).
            model.decoder = model.decoder.to(memory_format=torch.channels_last)
        if c.compile and hasattr(model, "decoder"):
            # The interface lets callers swap in a compiled decoder; decode() then runs it.
            model.decoder = torch.compile(model.decoder, dynamic=False)
        self.synth = TaskSynthesizer(model, spec, device=self.device, anchor_pool=pool, autocast=bf16,
                                     compile=c.compile and not hasattr(model, "decoder"))
        return {"config": set_config, "generator": model.describe(), "source": source}

    # -- planning ---------------------------------------------------------------------------------
    def my_shards(self) -> list[int]:
        a, b = parse_shard_range(self.config.shards, self.config.num_shards)
        return [s for s in range(a, b) if s % self.rank.world == self.rank.rank]

    def is_partial(self) -> bool:
        return parse_shard_range(self.config.shards, self.config.num_shards) != (0, self.config.num_shards)

    def run(self) -> GenerationResult:
        c = self.config
        out_dir = c.out_dir
        name, container = c.set_name, c.format
        target = WriteTarget(str(out_dir), name, container, self.header, c.resolved_compression)
        set_config = self.header["config"]
        prepare_out_dir(out_dir)
        my_shards = self.my_shards()
        mine = set(my_shards)
        # Each process removes only stale files of shards it owns (rank 0 also those beyond the set),
        # so ranks and array-job parts never delete each other's new shards.
        check_existing_set(out_dir, self.header, name, container, overwrite=c.overwrite,
                           owns=lambda s: s in mine or (s >= c.num_shards and self.rank.rank == 0))

        result = GenerationResult(out_dir=out_dir, header=self.header)
        todo: list[int] = []
        for s in my_shards:
            entry = shard_is_complete(out_dir, shard_file_name(name, s, container, c.resolved_compression), set_config, s, full_hash=c.verify_existing)
            if entry is not None:
                result.entries.append(entry)
                result.shards_skipped += 1
            else:
                todo.append(s)
        if result.shards_skipped and self.rank.rank == 0:
            self.log(f"resuming: {result.shards_skipped} shard(s) already complete, {len(todo)} to go")

        workers = c.num_workers
        tasks_todo = sum(expected_shard_tasks(set_config, s)[1] for s in todo)
        if todo:
            layout = _layout(set_config, c.tasks_per_shard)
            sink: InlineWriter | WriterPool = InlineWriter(target) if workers == 0 else WriterPool(target, min(workers, len(todo)), layout)
            desc = f"{name} [rank {self.rank.rank}]" if self.rank.world > 1 else name
            bar = _progress(tasks_todo, c.progress and self.rank.rank == 0, desc)
            started = time.perf_counter()
            try:
                self._produce(todo, sink, bar, result)
                for e in sink.close():
                    self._record(e, result, bar)
            except BaseException:
                sink.abort()
                remove_orphan_shards(out_dir, [shard_file_name(name, s, container, c.resolved_compression) for s in todo])
                raise
            finally:
                bar.close()
            result.seconds = time.perf_counter() - started
        result.entries.sort(key=lambda e: e.first_task)
        result.manifest_written = self._finish_manifest(out_dir, result)
        if result.manifest_written:
            from lasium.shards.card import write_card  # the set's card: README.md + preview.png

            write_card(out_dir)
        return result

    def _record(self, entry: ShardEntry, result: GenerationResult, bar: Any) -> None:
        result.entries.append(entry)
        result.shards_written += 1
        result.tasks_written += entry.num_tasks
        result.bytes_written += entry.bytes
        bar.update(entry.num_tasks)

    def _produce(self, todo: list[int], sink: InlineWriter | WriterPool, bar: Any, result: GenerationResult) -> None:
        c = self.config
        set_config = self.header["config"]
        if self.real is not None:
            for s in todo:
                first, n = expected_shard_tasks(set_config, s)
                batch = self.real.shard_batch(s, first, n)
                sink.submit(ShardJob(s, first, batch.support, batch.query, None, batch.metas))
                for e in sink.poll():
                    self._record(e, result, bar)
            return
        assert self.synth is not None
        stager = HostStager(self.device, c.in_flight + 1, c.tasks_per_shard)
        pending: deque[tuple[int, int, int, StagedShard]] = deque()

        def hand_over() -> None:
            s, first, n, staged = pending.popleft()
            arrays = staged.arrays()
            index = arrays["anchor_index"]
            metas = self.synth.metas(first, n, index)  # type: ignore[union-attr]
            sink.submit(ShardJob(s, first, arrays["support"], arrays["query"], arrays["latents"], metas))  # type: ignore[arg-type]
            stager.release(staged)

        for s in todo:
            first, n = expected_shard_tasks(set_config, s)
            shard = self.synth.shard(n, torch_generator(c.seed, "shard", s, device=self.device))
            pending.append((s, first, n, stager.stage(shard)))
            del shard
            while pending and (len(pending) > c.in_flight or pending[0][3].ready()):
                hand_over()
            for e in sink.poll():
                self._record(e, result, bar)
        while pending:
            hand_over()

    # -- manifest ---------------------------------------------------------------------------------
    def _finish_manifest(self, out_dir: Path, result: GenerationResult) -> bool:
        from lasium.shards import build_manifest_from_sidecars, write_manifest

        c = self.config
        if self.is_partial():
            if self.rank.rank == 0:
                self.log(f"shards {c.shards} done; when all parts are done, write the manifest with: lasium-shards index {out_dir}")
            return False
        if self.rank.world == 1:
            write_manifest(out_dir, self.header, result.entries, container=c.format, name=c.set_name)
            return True
        if self.rank.rank != 0:
            return False
        names = [shard_file_name(c.set_name, s, c.format, c.resolved_compression) for s in range(c.num_shards)]
        deadline = time.monotonic() + c.manifest_timeout
        while not all((out_dir / (n + ".json")).is_file() for n in names):
            if time.monotonic() > deadline:
                self.log(f"other ranks did not finish within {c.manifest_timeout:.0f} s; when they are done, run: lasium-shards index {out_dir}")
                return False
            time.sleep(0.5)
        build_manifest_from_sidecars(out_dir)
        return True


def run_generation(config: GenerationConfig, *, model: Any = None, log: Callable[[str], None] = print) -> GenerationResult:
    """Run (this process's share of) a generation job; see :class:`GenerationJob`."""
    return GenerationJob(config, model=model, log=log).run()


__all__ = ["GenerationJob", "GenerationResult", "RankInfo", "run_generation", "CONTAINERS"]
