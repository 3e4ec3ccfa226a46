"""The ``lasium-gen`` batch job: LASIUM task synthesis as sharded, resumable, multi-GPU work.

The work unit is a shard. Shard s holds tasks s·T … (s+1)·T − 1 and all of its randomness comes from
one ``torch.Generator`` seeded with ``derive_seed(seed, "shard", s)``, so its bytes depend on the
config, the seed and the kind of device only: never on worker count, shards in flight, ranks or which
machine of an array job made it. Hence:

* resume: a rerun skips shards whose sidecar is present and whose file matches it (size, or sha256
  with ``verify_existing``); a killed job loses at most the shards in flight;
* scale-out: under ``torchrun`` rank r takes shards s ≡ r (mod world size) on ``cuda:LOCAL_RANK``;
  ``shard_range="a:b"`` selects a range for array jobs; the manifest is written once the set is complete.

Pipeline: the device makes a shard (anchors, in-class latents, decoding, uint8; see
:mod:`lasium.generate.synthesis.synthesizer`), copies it to pinned host memory without blocking, and moves on to
the next shard; finished copies go to writer processes (:mod:`lasium.generate.job.writers`), so encoding,
hashing and disk I/O overlap generation.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lasium.generate.job.cactus_source import CactusTaskSource
from lasium.generate.job.config import GenerationConfig, parse_shard_range
from lasium.generate.job.outdir import (
    FolderClaim,
    check_existing_set,
    created_folders,
    prepare_out_dir,
    remove_created_folders,
    remove_orphan_shards,
    shard_is_complete,
)
from lasium.generate.job.real_source import RealTaskSource
from lasium.generate.job.umtra_source import UmtraTaskSource
from lasium.generate.job.writers import InlineWriter, ShardJob, SlotLayout, WriterPool, WriteTarget
from lasium.generate.models.interface import Generator
from lasium.generate.synthesis.anchor_pool import AnchorPool
from lasium.generate.synthesis.strategies import parameter_name
from lasium.generate.synthesis.synthesizer import DeviceShard, SynthesisSpec, TaskSynthesizer
from lasium.runtime import RankInfo, resolve_device
from lasium.seeding import torch_generator
from lasium.shards.format import CONTAINERS, ShardEntry, expected_shard_tasks, shard_file_name

TaskSource = RealTaskSource | UmtraTaskSource | CactusTaskSource
"""A source that makes whole shards on its own: ``image_shape``, ``describe()`` (the manifest's ``source``),
``shard_batch(shard, first_task, num_tasks) -> TaskBatch``."""


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
        return (
            f"wrote {self.tasks_written:,} tasks in {self.shards_written} shards{skipped}, {gb:.3f} GB, "
            f"{self.seconds:.1f} s, {self.tasks_per_second:,.0f} tasks/s → {self.out_dir}"
        )


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


# -- the job ---------------------------------------------------------------------------------------
def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="task", dynamic_ncols=True, disable=not enabled, desc=desc, smoothing=0.1)


def _layout(set_config: dict[str, Any], tasks: int) -> SlotLayout:
    n, k_tr, k_val = set_config["ways"], set_config["shots"], set_config["queries"]
    shape = tuple(set_config["image_shape"])
    lat = (tasks, n, k_tr + k_val, set_config["latent_dim"]) if set_config.get("save_latents") else None
    return SlotLayout((tasks, n, k_tr, *shape), (tasks, n, k_val, *shape), lat)


def set_cudnn_flags(device: torch.device) -> None:
    """No cuDNN autotuning: it picks kernels by timing, so two runs could compute different bytes."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False


def prepare_network(model: Generator, device: torch.device, *, channels_last: bool, compile: bool) -> None:
    """The one place the job changes how the generator's network runs (never what it computes in fp32).

    ``channels_last``: oneDNN's bf16 convolutions on CPUs are fast in channels-last layout (about 2x over fp32
    on AVX512-BF16). ``compile``: ``torch.compile`` the network; the protocol's ``decode`` then runs it.
    """
    if channels_last and device.type == "cpu":
        model.network = model.network.to(memory_format=torch.channels_last)
    if compile:
        model.network = torch.compile(model.network, dynamic=False)


def synthesis_spec(config: GenerationConfig, set_config: dict[str, Any]) -> SynthesisSpec:
    """What defines the tasks, from the resolved set config (σ or α under the strategy's parameter name)."""
    assert config.strategy is not None
    return SynthesisSpec(
        strategy=config.strategy,
        parameter=float(set_config[parameter_name(config.strategy)]),
        epsilon=float(set_config["epsilon"]),
        ways=config.ways,
        shots=config.shots,
        queries=config.queries,
        anchor_chunk=config.anchor_chunk,
        decode_tasks=config.effective_decode_tasks,
        save_latents=config.save_latents,
    )


class GenerationJob:
    """One process's share of a ``lasium-gen`` run. ``model`` may be passed in (library use, tests);
    otherwise ``config.generator`` is loaded with :func:`lasium.generate.load_generator`."""

    def __init__(
        self,
        config: GenerationConfig,
        *,
        model: Generator | None = None,
        rank: RankInfo | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.rank = rank or RankInfo.from_env()
        self.log = log
        # torchrun: a bare cuda (or auto on a GPU machine) means this rank's GPU.
        self.device = (
            torch.device("cpu") if config.source == "real" else resolve_device(config.device, self.rank.local_rank)
        )
        self.model = model
        self.synth: TaskSynthesizer | None = None
        self.tasks: TaskSource | None = None  # sources that make whole shards without a generator (real, umtra, cactus)
        self.header = self._generator_header() if config.source == "generator" else self._source_header()
        config.resolve_default_out(self._dataset_label())

    def _dataset_label(self) -> str:
        """What ``shards/<dataset>/…`` names: the images of real, UMTRA and CACTUs tasks, the data the generator was
        fitted on (bundled and lasium-fit generators), else (an external generator) the generator's name."""
        from lasium.generate.job.config import dataset_label, generator_label

        if self.config.source != "generator" or self.model is None:
            return dataset_label(self.config.dataset)
        trained_on = getattr(self.model, "training_dataset", None)
        return dataset_label(trained_on) if trained_on else generator_label(str(self.model.name))

    def _source_header(self) -> dict[str, Any]:
        """Set up a source that makes whole shards without a generator: real episodes, UMTRA or CACTUs."""
        c = self.config
        if c.source == "real":
            self.tasks = RealTaskSource(
                c.dataset, c.split, ways=c.ways, shots=c.shots, queries=c.queries, seed=c.seed, data_root=c.data_root
            )
        elif c.source == "cactus":
            self.tasks = CactusTaskSource(
                c.dataset,
                spec=c.cactus_spec(),
                seed=c.seed,
                device=self.device,
                embedding=c.embedding,
                data_root=c.data_root,
                model=self.model,
                progress=c.progress,
                log=self.log,
            )
        else:
            self.tasks = UmtraTaskSource(
                c.dataset,
                spec=c.umtra_spec(),
                shots=c.shots,
                seed=c.seed,
                device=self.device,
                data_root=c.data_root,
                progress=c.progress,
            )
        set_config = c.set_config(
            image_shape=self.tasks.image_shape, latent_dim=None, generator_kind=None, device_type=self.device.type
        )
        return {"config": set_config, "generator": None, "source": self.tasks.describe()}

    def _generator_header(self) -> dict[str, Any]:
        """Set up synthesis with a generator: each step below changes what the shards hold or how fast they come."""
        c = self.config
        set_cudnn_flags(self.device)
        model = self.model = self.model if self.model is not None else self._load_model()
        set_config = c.set_config(
            image_shape=tuple(model.image_shape),
            latent_dim=int(model.latent_dim),
            generator_kind=model.kind,
            device_type=self.device.type,
        )
        pool, source = self._encode_anchor_pool(model)
        bf16 = set_config["precision"] == "bf16-autocast"
        prepare_network(model, self.device, channels_last=bf16, compile=c.compile)
        self.synth = TaskSynthesizer(
            model, synthesis_spec(c, set_config), device=self.device, anchor_pool=pool, autocast=bf16
        )
        return {"config": set_config, "generator": model.describe(), "source": source}

    def _load_model(self) -> Generator:
        from lasium.generate.models.loading import load_generator

        return load_generator(
            self.config.generator,
            device=self.device,
            latent_dim=self.config.latent_dim,
            output_range=self.config.output_range,
        )

    def _encode_anchor_pool(self, model: Generator) -> tuple[AnchorPool | None, dict[str, Any] | None]:
        """VAEs draw anchors from encoded real images (the pool and the manifest's source record).

        GANs draw them from the prior.
        """
        if model.kind != "vae":
            return None, None
        from lasium.generate.synthesis.anchor_pool import vae_anchor_pool, vae_source_record

        pool = vae_anchor_pool(model, self.config.dataset, data_root=self.config.data_root, device=self.device)
        return pool, vae_source_record(pool, self.config.dataset)

    # -- planning ---------------------------------------------------------------------------------
    def my_shards(self) -> list[int]:
        a, b = parse_shard_range(self.config.shard_range, self.config.num_shards)
        return [s for s in range(a, b) if s % self.rank.world_size == self.rank.rank]

    def is_partial(self) -> bool:
        return parse_shard_range(self.config.shard_range, self.config.num_shards) != (0, self.config.num_shards)

    def run(self) -> GenerationResult:
        c = self.config
        out_dir = c.out_dir
        name, container = c.set_name, c.container
        target = WriteTarget(str(out_dir), name, container, self.header, c.resolved_compression)
        created = created_folders(out_dir)
        prepare_out_dir(out_dir)
        # Claim the folder for this config before looking at what it holds: two jobs of different configs
        # started together would otherwise both find it empty and both report success.
        claim: FolderClaim | None = None
        result = GenerationResult(out_dir=out_dir, header=self.header)
        try:
            claim = FolderClaim.take(out_dir, self.header, name, container)
            self._run_claimed(target, result)
        except BaseException:
            if claim is not None:
                claim.release()
            if not result.entries:  # nothing of this set written: leave no folder behind that this job made
                remove_created_folders(created)
            raise
        claim.release()
        return result

    def _run_claimed(self, target: WriteTarget, result: GenerationResult) -> None:
        c = self.config
        out_dir = c.out_dir
        name, container = c.set_name, c.container
        set_config = self.header["config"]
        my_shards = self.my_shards()
        mine = set(my_shards)
        # Each process removes only stale files of shards it owns (rank 0 also those beyond the set),
        # so ranks and array-job parts never delete each other's new shards.
        check_existing_set(
            out_dir,
            self.header,
            name,
            container,
            overwrite=c.overwrite,
            owns=lambda s: s in mine or (s >= c.num_shards and self.rank.rank == 0),
        )

        todo: list[int] = []
        for s in my_shards:
            entry = shard_is_complete(
                out_dir,
                shard_file_name(name, s, container, c.resolved_compression),
                set_config,
                s,
                full_hash=c.verify_existing,
            )
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
            sink: InlineWriter | WriterPool = (
                InlineWriter(target) if workers == 0 else WriterPool(target, min(workers, len(todo)), layout)
            )
            desc = f"{name} [rank {self.rank.rank}]" if self.rank.world_size > 1 else name
            bar = _progress(tasks_todo, c.progress and self.rank.rank == 0, desc)
            started = time.perf_counter()
            try:
                self._produce(todo, sink, bar, result)
                for e in sink.close():
                    self._record(e, result, bar)
            except BaseException:
                sink.abort()
                remove_orphan_shards(
                    out_dir, [shard_file_name(name, s, container, c.resolved_compression) for s in todo]
                )
                raise
            finally:
                bar.close()
            result.seconds = time.perf_counter() - started
        result.entries.sort(key=lambda e: e.first_task)
        result.manifest_written = self._finish_manifest(out_dir, result)
        if result.manifest_written:
            from lasium.shards.card import write_card  # the set's card: README.md + preview.png

            write_card(out_dir)

    def _record(self, entry: ShardEntry, result: GenerationResult, bar: Any) -> None:
        result.entries.append(entry)
        result.shards_written += 1
        result.tasks_written += entry.num_tasks
        result.bytes_written += entry.bytes
        bar.update(entry.num_tasks)

    def _produce(self, todo: list[int], sink: InlineWriter | WriterPool, bar: Any, result: GenerationResult) -> None:
        c = self.config
        set_config = self.header["config"]
        if self.tasks is not None:
            for s in todo:
                first, n = expected_shard_tasks(set_config, s)
                batch = self.tasks.shard_batch(s, first, n)
                sink.submit(ShardJob(s, first, batch.support, batch.query, None, batch.metas))
                for e in sink.poll():
                    self._record(e, result, bar)
            return
        synth = self.synth
        assert synth is not None
        stager = HostStager(self.device, c.in_flight + 1, c.tasks_per_shard)
        pending: deque[tuple[int, int, int, StagedShard]] = deque()

        def hand_over() -> None:
            s, first, n, staged = pending.popleft()
            arrays = staged.arrays()
            index = arrays["anchor_index"]
            metas = synth.metas(first, n, index)
            support, query = arrays["support"], arrays["query"]
            assert support is not None and query is not None  # always staged; only latents and anchor rows are optional
            sink.submit(ShardJob(s, first, support, query, arrays["latents"], metas))
            stager.release(staged)

        for s in todo:
            first, n = expected_shard_tasks(set_config, s)
            shard = synth.shard(n, torch_generator(c.seed, "shard", s, device=self.device))
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
                self.log(
                    f"shards {c.shard_range} done; when all parts are done, "
                    f"write the manifest with: lasium-shards index {out_dir}"
                )
            return False
        if self.rank.world_size == 1:
            write_manifest(out_dir, self.header, result.entries, container=c.container, name=c.set_name)
            return True
        if self.rank.rank != 0:
            return False
        names = [shard_file_name(c.set_name, s, c.container, c.resolved_compression) for s in range(c.num_shards)]
        deadline = time.monotonic() + c.manifest_timeout
        while not all((out_dir / (n + ".json")).is_file() for n in names):
            if time.monotonic() > deadline:
                self.log(
                    f"other ranks did not finish within {c.manifest_timeout:.0f} s; "
                    f"when they are done, run: lasium-shards index {out_dir}"
                )
                return False
            time.sleep(0.5)
        build_manifest_from_sidecars(out_dir)
        return True


def run_generation(
    config: GenerationConfig, *, model: Generator | None = None, log: Callable[[str], None] = print
) -> GenerationResult:
    """Run (this process's share of) a generation job; see :class:`GenerationJob`."""
    return GenerationJob(config, model=model, log=log).run()


__all__ = ["GenerationJob", "GenerationResult", "RankInfo", "run_generation", "CONTAINERS"]
