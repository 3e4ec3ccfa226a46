"""The ``lasium-gen`` batch job: LASIUM task synthesis as sharded, resumable, multi-GPU work.

The work unit is a shard. Shard s holds tasks s·T … (s+1)·T − 1 and all of its randomness comes from
one ``torch.Generator`` seeded with ``derive_seed(seed, "shard", s)``, so its bytes depend on the
config, the seed and the kind of device only: never on worker count, shards in flight, ranks or which
machine of an array job made it. Hence:

* resume: a rerun skips shards whose sidecar is present and whose file matches it (size, or sha256
  with ``verify_existing``); a killed job loses at most the shards in flight;
* scale-out: under ``torchrun`` rank r takes shards s ≡ r (mod world size) on ``cuda:LOCAL_RANK``;
  ``shard_range="a:b"`` selects a range for array jobs; the manifest is written once the set is complete.

This module holds one process's share of a run: its shards, the claim on the output folder, resuming,
and the manifest. The tasks come from the task source the config names (opened from
:data:`lasium.generate.sources.registry.TASK_SOURCES`), which also gives its part of the set header; the
shards are handed to the writers by :mod:`lasium.generate.job.shard_loop` (writer processes:
:mod:`lasium.generate.job.writers`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lasium.errors import ConfigError
from lasium.generate.job.config import GenerationConfig, parse_shard_range
from lasium.generate.job.outdir import (
    FolderClaim,
    check_existing_set,
    created_folders,
    prepare_out_dir,
    remove_created_folders,
    shard_is_complete,
)
from lasium.generate.job.shard_loop import GenerationResult, ShardLoop
from lasium.generate.job.writers import WriteTarget
from lasium.generate.models.interface import Generator
from lasium.generate.sources.base import SourceContext, TaskSource
from lasium.generate.sources.registry import TASK_SOURCES
from lasium.runtime import RankInfo, resolve_device
from lasium.shards.format import shard_file_name


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
        kind = config.kind
        if model is not None and not kind.takes_model:
            takers = ", ".join(name for name, k in TASK_SOURCES.items() if k.takes_model)
            raise ConfigError(f"a model is used by --source {takers}; {config.source} takes none")
        # torchrun: a bare cuda (or auto on a GPU machine) means this rank's GPU.
        self.device = resolve_device(config.device, self.rank.local_rank) if kind.uses_device else torch.device("cpu")
        context = SourceContext(
            ways=config.ways,
            shots=config.shots,
            queries=config.queries,
            seed=config.seed,
            tasks_per_shard=config.tasks_per_shard,
            device=self.device,
            data_root=config.data_root,
            progress=config.progress,
            log=log,
            model=model,
        )
        self.source: TaskSource = kind.open(config.options, context)
        self.header: dict[str, Any] = {
            "config": config.set_config(self.source),
            "generator": self.source.generator_record(),
            "source": self.source.describe(),
        }
        config.resolve_default_out(self.source)

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
            self._run_claimed(claim, target, result)
        except BaseException:
            if claim is not None:
                claim.release()
            if not result.entries:  # nothing of this set written: leave no folder behind that this job made
                remove_created_folders(created)
            raise
        claim.release()
        return result

    def _run_claimed(self, claim: FolderClaim, target: WriteTarget, result: GenerationResult) -> None:
        c = self.config
        out_dir = c.out_dir
        name, container = c.set_name, c.container
        set_config = self.header["config"]
        my_shards = self.my_shards()
        mine = set(my_shards)
        claim.hold_shards(my_shards)  # one writer per shard: refuse a job that would write the same shards
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

        if todo:
            loop = ShardLoop(c, self.header, self.rank, self.source)
            loop.run(todo, target, result)
        result.entries.sort(key=lambda e: e.first_task)
        result.manifest_written = self._finish_manifest(out_dir, result)
        if result.manifest_written:
            from lasium.shards.card import write_card  # the set's card: README.md + preview.png

            write_card(out_dir)

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


__all__ = ["GenerationJob", "GenerationResult", "run_generation"]
