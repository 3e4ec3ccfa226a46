"""The shard-writing loop of a ``lasium-gen`` process, and the record of what it wrote.

The task source makes each shard's tasks (:meth:`lasium.generate.sources.base.TaskSource.make_shards`; LASIUM's
keeps the device busy with the next shard while the last one leaves it); every batch goes to writer processes
(:mod:`lasium.generate.job.writers`), so encoding, hashing and disk I/O overlap making the tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lasium.generate.job.config import GenerationConfig
from lasium.generate.job.outdir import remove_orphan_shards
from lasium.generate.job.writers import InlineWriter, ShardJob, SlotLayout, WriterPool, WriteTarget
from lasium.generate.sources.base import ShardPlan, TaskSource
from lasium.runtime import RankInfo
from lasium.shards.format import ShardEntry, expected_shard_tasks, shard_file_name


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


def _progress(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="task", dynamic_ncols=True, disable=not enabled, desc=desc, smoothing=0.1)


def _layout(set_config: dict[str, Any], tasks: int) -> SlotLayout:
    n, k_tr, k_val = set_config["ways"], set_config["shots"], set_config["queries"]
    shape = tuple(set_config["image_shape"])
    lat = (tasks, n, k_tr + k_val, set_config["latent_dim"]) if set_config.get("save_latents") else None
    return SlotLayout((tasks, n, k_tr, *shape), (tasks, n, k_val, *shape), lat)


@dataclass
class ShardLoop:
    """Makes this process's shards still to do with the task ``source`` and writes them."""

    config: GenerationConfig
    header: dict[str, Any]
    rank: RankInfo
    source: TaskSource

    def run(self, todo: list[int], target: WriteTarget, result: GenerationResult) -> None:
        """Write the shards ``todo`` into ``target``, recording each in ``result``. On any failure the writers
        stop and the partial files of ``todo`` are removed (complete shards of earlier runs stay)."""
        c = self.config
        set_config = self.header["config"]
        name, container = c.set_name, c.container
        workers = c.num_workers
        tasks_todo = sum(expected_shard_tasks(set_config, s)[1] for s in todo)
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
            remove_orphan_shards(c.out_dir, [shard_file_name(name, s, container, c.resolved_compression) for s in todo])
            raise
        finally:
            bar.close()
        result.seconds = time.perf_counter() - started

    def _record(self, entry: ShardEntry, result: GenerationResult, bar: Any) -> None:
        result.entries.append(entry)
        result.shards_written += 1
        result.tasks_written += entry.num_tasks
        result.bytes_written += entry.bytes
        bar.update(entry.num_tasks)

    def _produce(self, todo: list[int], sink: InlineWriter | WriterPool, bar: Any, result: GenerationResult) -> None:
        set_config = self.header["config"]
        plans = [ShardPlan(s, *expected_shard_tasks(set_config, s)) for s in todo]
        for plan, batch in self.source.make_shards(plans):
            sink.submit(ShardJob(plan.index, plan.first_task, batch.support, batch.query, batch.latents, batch.metas))
            for e in sink.poll():
                self._record(e, result, bar)
