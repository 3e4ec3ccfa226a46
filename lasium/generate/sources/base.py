"""The task-source contract: what a kind of source declares, its options, and what an opened source does.

A *task source* makes the tasks of a ``lasium-gen`` run. Each kind (LASIUM's generator, real episodes, UMTRA,
CACTUs, ...) is one module of :mod:`lasium.generate.sources` that defines

* an options dataclass (a :class:`SourceOptions`): what the user may set for this kind and nothing else, with the
  command-line spelling and ``--help`` text of each field in its metadata (:func:`cli_option`); it serialises to
  JSON, and :meth:`SourceOptions.check` refuses values that cannot work, in one line naming the option;
* an ``open(options, context) -> TaskSource`` function: loads what the tasks are made from and returns the object
  that makes them (:class:`TaskSource`);
* a :class:`SourceKind` that names the two, registered in :mod:`lasium.generate.sources.registry`.

The job (:mod:`lasium.generate.job`) holds only what every source shares (the task layout, seed, shards, output);
it asks the opened source for its part of the set header and for the tasks of each shard.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from lasium.errors import ConfigError
from lasium.tasks import TaskBatch

CLI_METADATA = "lasium.cli"
"""The key of a field's :class:`CliOption` in its dataclass metadata."""


@dataclass(frozen=True)
class CliOption:
    """How an options field appears on the ``lasium-gen`` command line."""

    help: str
    flag: str | None = None  # click's declaration, e.g. "--scaling/--no-scaling"; None: --<field name with dashes>
    choices: tuple[str, ...] | None = None  # the accepted values (a click.Choice)
    click: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # more click.Option arguments (type, metavar)


def cli_option(
    help: str, *, flag: str | None = None, choices: Sequence[str] | None = None, **click: Any
) -> dict[str, CliOption]:
    """Field metadata that puts an options field on the command line: ``field(default=..., metadata=cli_option(...))``.

    The command line shows the field's default after ``help`` (unless ``help`` says ``[default: ...]`` itself).
    Several sources may declare the same option (``--dataset``) by sharing one metadata object (:data:`DATASET`).
    """
    return {CLI_METADATA: CliOption(help, flag, tuple(choices) if choices else None, MappingProxyType(dict(click)))}


DATASET = cli_option(
    "Images of real, UMTRA and CACTUs tasks, and of a VAE generator's anchors: omniglot or imagefolder:PATH "
    "[default: omniglot]."
)
"""``--dataset``, shared by every source that reads images (declare it with ``field(..., metadata=DATASET)``)."""


def option_flag(field: dataclasses.Field[Any]) -> str:
    """The spelling of a field on the command line (its first one, for ``--a/--no-a``)."""
    declared = field.metadata.get(CLI_METADATA)
    if declared is not None and declared.flag:
        return declared.flag.split("/")[0]
    return "--" + field.name.replace("_", "-")


def safe_set_name(text: str) -> str:
    """A shard-set or folder name (used in every file name) from any text: letters, digits, '_', '-', '.'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-") or "tasks"


def dataset_label(dataset: str) -> str:
    """A folder name for a dataset spec: ``omniglot`` → omniglot, ``imagefolder:/data/flowers`` → flowers."""
    return safe_set_name(Path(dataset.split(":", 1)[1] if dataset.startswith("imagefolder:") else dataset).name)


class TaskShape(Protocol):
    """The task layout every source is asked for (the job's config has it; so does a :class:`SourceContext`)."""

    @property
    def ways(self) -> int: ...

    @property
    def shots(self) -> int: ...

    @property
    def queries(self) -> int: ...


@dataclass
class SourceOptions:
    """Base of every source's options dataclass (fields: the options of that source only, with their defaults)."""

    def check(self, shape: TaskShape) -> None:
        """Refuse options that cannot make tasks of ``shape``: one :class:`ConfigError` line naming the option."""

    @classmethod
    def flag(cls, name: str) -> str:
        """The command-line spelling of field ``name``, for messages (``umtra_erase`` → ``--umtra-erase``)."""
        return option_flag(next(f for f in dataclasses.fields(cls) if f.name == name))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SourceOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} keys: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class ShardPlan:
    """One shard to make: its number and the tasks it holds (``first_task`` … ``first_task + num_tasks − 1``)."""

    index: int
    first_task: int
    num_tasks: int


@dataclass(frozen=True)
class SourceContext:
    """What a source is opened with besides its options: the task layout, the seed and where it runs."""

    ways: int
    shots: int
    queries: int
    seed: int
    tasks_per_shard: int
    device: Any  # torch.device: the job's (the CPU for kinds with uses_device=False)
    data_root: str | None = None
    progress: bool = True
    log: Callable[[str], None] = print
    model: Any = None  # a Generator handed to the job by a library caller (kinds with takes_model=True)


class TaskSource(Protocol):
    """An opened source: it describes itself for the set header and makes the tasks of each shard.

    A shard's tasks must depend only on (options, context seed, the shard) and the kind of device, never on which
    process makes it or which shards it made before: that is what makes runs resumable and shardable.
    """

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        ...

    def set_config(self) -> dict[str, Any]:
        """The source's part of the set config (the job adds the shared keys): at least ``strategy`` (the tasks'
        label, also written into every task's meta) and ``save_latents``, and whatever else decides the bytes."""
        ...

    def generator_record(self) -> dict[str, Any] | None:
        """The header's ``generator`` section: the generative model that decoded the images, else None."""
        ...

    def describe(self) -> dict[str, Any] | None:
        """The header's ``source`` section: what the tasks were drawn from (data, method, its parameters), or None."""
        ...

    def default_folder(self) -> tuple[str, str]:
        """``(dataset, leaf)`` of the default output folder ``shards/<dataset>/<leaf>``, e.g. (omniglot, oc)."""
        ...

    def make_shards(self, plans: Sequence[ShardPlan]) -> Iterator[tuple[ShardPlan, TaskBatch]]:
        """The tasks of each planned shard, in order. The job hands each batch to the writers before it asks for the
        next one, so a source may reuse a batch's memory once the next one is requested."""
        ...


class WholeShards:
    """For sources that make a whole shard with one call: :meth:`make_shards` from :meth:`shard_batch`."""

    def shard_batch(self, shard_index: int, first_task: int, num_tasks: int) -> TaskBatch:
        raise NotImplementedError

    def make_shards(self, plans: Sequence[ShardPlan]) -> Iterator[tuple[ShardPlan, TaskBatch]]:
        for plan in plans:
            yield plan, self.shard_batch(plan.index, plan.first_task, plan.num_tasks)


@dataclass(frozen=True)
class SourceKind:
    """A registered kind of task source: ``lasium-gen --source NAME``; the set config records NAME as ``source``."""

    name: str
    summary: str  # one line for --help
    options: type[SourceOptions]
    open: Callable[[Any, SourceContext], TaskSource]  # (options of this kind, context) → the opened source
    uses_device: bool = True  # False: the source works on the CPU, so --device does not apply
    takes_model: bool = False  # True: a library caller may hand the job a Generator for it

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.options) and issubclass(self.options, SourceOptions)):
            raise TypeError(f"source {self.name!r}: options must be a SourceOptions dataclass, got {self.options!r}")

    def default_options(self) -> SourceOptions:
        return self.options()

    def cli_fields(self) -> list[dataclasses.Field[Any]]:
        """The options fields that appear on the command line, in declaration order."""
        return [f for f in dataclasses.fields(self.options) if CLI_METADATA in f.metadata]


__all__ = [
    "CLI_METADATA",
    "DATASET",
    "CliOption",
    "ShardPlan",
    "SourceContext",
    "SourceKind",
    "SourceOptions",
    "TaskShape",
    "TaskSource",
    "WholeShards",
    "cli_option",
    "dataset_label",
    "option_flag",
    "safe_set_name",
]
