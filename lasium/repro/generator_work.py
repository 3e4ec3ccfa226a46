"""The generator behind a reproduction row's work: what the row records of it, and the work in ``--work`` that other
weights made (not reused). Part of :class:`~lasium.repro.pipeline.Pipeline`; the records themselves are
:mod:`lasium.repro.generators`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .generators import describe_generator, manifest_generator

if TYPE_CHECKING:
    from .rows import Row


class GeneratorWork:
    """Generator records by spec and stale work; :class:`~lasium.repro.pipeline.Pipeline` sets the attributes and
    gives the stage plans (:class:`~lasium.repro.plan.StagePlanner`)."""

    work: Path
    made: dict[tuple[Any, ...], Path]
    described: dict[str, dict[str, Any] | None]  # generator records by spec (describe_generator)
    identities: dict[str, dict[str, Any]]  # row key -> what its stages depend on beyond their commands
    regenerated: set[Path]  # shard sets of other weights that this run removed

    if TYPE_CHECKING:  # given by StagePlanner, the pipeline's other base

        @staticmethod
        def components(row: Row) -> list[Row]: ...
        def gen_stage(self, row: Row) -> tuple[str, list[str], Path]: ...
        def train_stage(self, row: Row, shards: Path | list[Path]) -> tuple[str, list[str], Path]: ...
        def eval_stage(self, row: Row, run: Path | None) -> tuple[str, list[str], Path]: ...
        def generator_spec(self, row: Row) -> str: ...
        def needs_generator(self, row: Row) -> bool: ...
        def shard_key(self, row: Row) -> tuple[Any, ...]: ...

    def generator_record(self, row: Row) -> dict[str, Any] | None:
        """The generator a LASIUM row's tasks come from as it would be used now (spec, kind, weights sha256), or
        None for a row of real images, UMTRA or CACTUs, and for a generator that cannot be loaded yet (a GAN that
        ``--fit`` has still to fit; its generation stage then fails with its own message)."""
        if row.source == "scratch" or not self.needs_generator(row):
            return None
        return self.described_generator(self.generator_spec(row))

    def described_generator(self, spec: str) -> dict[str, Any] | None:
        """:func:`describe_generator` of ``spec``, once per run; None for a generator that cannot be loaded (yet)."""
        from lasium.errors import LasiumError

        if spec not in self.described:
            try:
                self.described[spec] = describe_generator(spec)
            except LasiumError:
                self.described[spec] = None
        return self.described[spec]

    def forget_stale_work(self, row: Row, planned: dict[str, Any]) -> None:
        """Before a generator row runs: work in ``--work`` made with other weights than ``planned`` is not reused.

        A shard set whose manifest names other weights is removed (``lasium-gen`` would refuse to add to it), and
        then the row's training and evaluation too (their records and outputs), as when one of its stage records
        holds another identity or its set was removed earlier in this run (another row's turn)."""
        import shutil

        sha = planned.get("weights_sha256")
        logs = self.work / "logs"
        stale = False
        for part in self.components(row):
            name, _, shards = self.gen_stage(part)
            made = manifest_generator(shards)
            if made is not None and made.get("weights_sha256") != sha and part.source in ("n", "ro", "oc"):
                print(f"[repro] {shards.name}: made by other generator weights; generating it again", flush=True)
                shutil.rmtree(shards, ignore_errors=True)
                self.regenerated.add(shards)
                self.made.pop(self.shard_key(part), None)
                for suffix in (".done.json", ".started.json"):
                    (logs / f"{name}{suffix}").unlink(missing_ok=True)
            stale = stale or shards in self.regenerated
        sets = [self.gen_stage(part)[2] for part in self.components(row)]
        train_name, _, run = self.train_stage(row, sets if row.mix else sets[0])
        eval_name, _, out = self.eval_stage(row, run)
        identity = self.identities.get(row.key)
        for name in (train_name, eval_name):
            for suffix in (".done.json", ".started.json"):
                try:
                    recorded = json.loads((logs / f"{name}{suffix}").read_text()).get("identity")
                except (OSError, ValueError, AttributeError):
                    continue
                stale = stale or (recorded is not None and recorded != identity)
        if stale:
            from lasium.evaluate import partial_path

            shutil.rmtree(run, ignore_errors=True)
            for path in (out, partial_path(out)):
                path.unlink(missing_ok=True)
            for name in (train_name, eval_name):
                for suffix in (".done.json", ".started.json"):
                    (logs / f"{name}{suffix}").unlink(missing_ok=True)
