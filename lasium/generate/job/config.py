"""Configuration of the ``lasium-gen`` batch job: one dataclass that serialises to JSON.

:class:`GenerationConfig` holds what the user asked for: the task source (its name and its own options dataclass,
:mod:`lasium.generate.sources`) and what every source shares. :meth:`GenerationConfig.set_config` joins the shared
part and the opened source's part into the record that defines a shard set and goes into every sidecar and the
manifest. Two runs whose set configs differ never share a folder.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError
from lasium.generate.sources.base import SourceKind, SourceOptions, TaskSource, safe_set_name
from lasium.generate.sources.registry import TASK_SOURCES, get_source, refuse_foreign_option
from lasium.shards.codecs import IMAGE_CODECS, default_image_codec
from lasium.shards.format import (
    COMPRESSIONS,
    CONTAINERS,
    DEFAULT_COMPRESSION,
    DEFAULT_IMAGE_CODEC,
    GENERATOR_SOURCE,
    MAX_TASKS,
)

RNG_SCHEME = "torch.Generator per shard seeded with lasium.seeding.derive_seed(seed, 'shard', s)"


def default_workers() -> int:
    """Writer processes: min(8, CPUs − 1), at least 1 (one core stays with the device loop)."""
    import os

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cpus - 1))


def parse_shard_range(text: str | None, num_shards: int) -> tuple[int, int]:
    """``"a:b"`` (either side may be empty) → [a, b) clipped to the set's shards; None → all shards."""
    if text is None or text == "":
        return 0, num_shards
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", str(text))
    if not m:
        raise ConfigError(
            f"--shard-range {text!r} is not a range; write A:B (shards A … B-1), e.g. --shard-range 0:100"
        )
    a = int(m[1]) if m[1] else 0
    b = int(m[2]) if m[2] else num_shards
    if a >= b or a >= num_shards:
        raise ConfigError(f"--shard-range {text} selects no shard: the set has shards 0:{num_shards}")
    return a, min(b, num_shards)


@dataclass
class GenerationConfig:
    """What ``lasium-gen`` was asked to do: the task source (``source``, its ``options``) and what every source
    shares (the task layout, how many tasks, the shards and where they go, how the job runs).

    ``options`` is the source's own options dataclass (``None``: its defaults), e.g.
    ``GenerationConfig(num_tasks=1000, options=GeneratorOptions(strategy="ro"))`` or
    ``GenerationConfig(num_tasks=1000, source="umtra")``; :meth:`build` takes every option by name, as the command
    line does, and refuses any that the source does not have.
    """

    num_tasks: int
    source: str = GENERATOR_SOURCE  # a name in lasium.generate.sources.registry.TASK_SOURCES
    options: SourceOptions | None = None  # the source's options; None: its defaults
    ways: int = 5
    shots: int = 1
    queries: int = 5
    seed: int = 0
    container: str = "wds"  # --format: wds | hdf5
    compression: str | None = None  # gzip | none; None = DEFAULT_COMPRESSION[container]
    image_codec: str | None = None  # npy | png | webp | jpeg (lasium.shards.codecs); None = by image size
    out: str | None = None  # None: shards/<dataset>/<leaf> as the source names it (resolved by the job)
    name: str | None = None
    tasks_per_shard: int = 1000
    device: str = "auto"
    data_root: str | None = None  # datasets folder of sources that read images (None: $LASIUM_DATA, ...)
    shard_range: str | None = None  # "A:B", --shard-range
    workers: int | None = None
    overwrite: bool = False
    verify_existing: bool = False
    progress: bool = True
    manifest_timeout: float = 3600.0

    def __post_init__(self) -> None:
        kind = get_source(self.source)
        if self.options is None:
            self.options = kind.default_options()
        elif not isinstance(self.options, kind.options):
            raise ConfigError(
                f"--source {self.source} takes {kind.options.__name__}, got {type(self.options).__name__}"
            )
        self.validate()

    @classmethod
    def build(cls, source: str = GENERATOR_SOURCE, **values: Any) -> GenerationConfig:
        """The config of ``source`` from options given by name (the command line's names without dashes): shared
        ones go to the config, the source's own to its options. An option of another source is refused in one
        line (``--sigma applies to --source generator; real does not use it``)."""
        kind = get_source(source)
        shared = {f.name for f in dataclasses.fields(cls)} - {"source", "options"}
        own = {f.name for f in dataclasses.fields(kind.options)}
        for name in values:
            if name not in shared and name not in own:
                refuse_foreign_option(name, source)
        options = kind.options(**{k: v for k, v in values.items() if k in own and k not in shared})
        return cls(source=source, options=options, **{k: v for k, v in values.items() if k in shared})

    @property
    def kind(self) -> SourceKind:
        return get_source(self.source)

    def validate(self) -> None:
        kind = get_source(self.source)
        if self.container not in CONTAINERS:
            raise ConfigError(f"unknown --format {self.container!r}; use wds or hdf5")
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise ConfigError(f"unknown --compression {self.compression!r}; use gzip or none")
        if self.image_codec is not None and self.image_codec not in IMAGE_CODECS:
            raise ConfigError(f"unknown --image-codec {self.image_codec!r}; use {', '.join(IMAGE_CODECS)}")
        if self.image_codec not in (None, DEFAULT_IMAGE_CODEC) and self.container != "wds":
            raise ConfigError(f"--image-codec {self.image_codec} applies to --format wds; HDF5 sets hold raw arrays")
        if self.ways < 2:
            raise ConfigError(f"--ways must be at least 2 (a task needs 2 classes), got {self.ways}")
        if self.shots < 1 or self.queries < 1:
            raise ConfigError(f"--shots and --queries must be at least 1, got {self.shots} and {self.queries}")
        if not 1 <= self.num_tasks <= MAX_TASKS:
            # checked before anything is planned: a count such as 1e99 would otherwise be iterated shard by shard
            raise ConfigError(
                f"--n-tasks must be between 1 and {MAX_TASKS:,} (task keys have 9 digits), got {self.num_tasks:.3g}"
                if self.num_tasks >= 1
                else f"--n-tasks must be at least 1, got {self.num_tasks}"
            )
        if self.tasks_per_shard < 1:
            raise ConfigError(f"--tasks-per-shard must be at least 1, got {self.tasks_per_shard}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be ≥ 0 (0 = write in the main process), got {self.workers}")
        if not kind.uses_device and self.device != "auto":
            users = [name for name, k in TASK_SOURCES.items() if k.uses_device]
            raise ConfigError(
                f"--device applies to --source {', '.join(users)}; {self.source} makes its tasks on the CPU"
            )
        assert self.options is not None
        self.options.check(self)

    # -- derived values ----------------------------------------------------------------------------
    @property
    def out_dir(self) -> Path:
        """``--out``; without it, the job sets ``out`` to the source's ``shards/<dataset>/<leaf>`` when it opens it."""
        if not self.out:
            raise ConfigError("no output folder yet: give --out, or let the job open its source first")
        return Path(self.out)

    def resolve_default_out(self, source: TaskSource) -> None:
        """Without ``--out``: write to ``shards/<dataset>/<leaf>`` as the source names them (e.g. shards/omniglot/oc,
        shards/omniglot/real-train); the set is then named ``<dataset>-<leaf>``."""
        if self.out:
            return
        dataset, leaf = source.default_folder()
        out = Path("shards") / safe_set_name(dataset) / leaf
        self.out = str(out)
        self.name = self.name or f"{out.parent.name}-{out.name}"

    @property
    def set_name(self) -> str:
        return safe_set_name(self.name or self.out_dir.resolve().name)

    @property
    def resolved_compression(self) -> str:
        """gzip or none: ``.tar.gz`` vs ``.tar`` shards for wds, the HDF5 gzip filter or none for hdf5.

        Without ``--compression``: plain .tar for WebDataset (gzip about halves the trainer's CPU read rate,
        measured in docs/shard-format.md section 12), the gzip filter for HDF5.
        """
        return self.compression or DEFAULT_COMPRESSION[self.container]

    def resolved_image_codec(self, image_shape: tuple[int, ...] | list[int]) -> str:
        """``--image-codec``, else the default for the image shape (:func:`lasium.shards.codecs.default_image_codec`:
        lossless WebP for colour images of 64 px or more, raw npy below); HDF5 sets hold raw arrays."""
        if self.image_codec is not None:
            return self.image_codec
        if self.container != "wds" or int(image_shape[-1]) not in (1, 3):
            return DEFAULT_IMAGE_CODEC
        return default_image_codec(image_shape)

    @property
    def num_shards(self) -> int:
        return -(-self.num_tasks // self.tasks_per_shard)

    @property
    def num_workers(self) -> int:
        return default_workers() if self.workers is None else self.workers

    def set_config(self, source: TaskSource) -> dict[str, Any]:
        """The record that defines the shard set (sidecars and manifest ``config``): the shared keys, ``source`` (the
        kind, as registered), and the opened source's own part (:meth:`TaskSource.set_config`)."""
        c: dict[str, Any] = {
            "ways": self.ways,
            "shots": self.shots,
            "queries": self.queries,
            "image_shape": [int(s) for s in source.image_shape],
            "seed": int(self.seed),
            "tasks_per_shard": self.tasks_per_shard,
            "num_tasks": self.num_tasks,
            "format": self.container,  # the record's historical key for the container
            "source": self.source,
            "rng": RNG_SCHEME,
        }
        # Recorded only when it differs from the format's default (what a config without the key means), so sets
        # written before --compression existed keep their config and resume.
        if self.resolved_compression != DEFAULT_COMPRESSION[self.container]:
            c["compression"] = self.resolved_compression  # gzip: .tar.gz shards (wds); none: unfiltered datasets (hdf5)
        codec = self.resolved_image_codec(source.image_shape)
        if codec != DEFAULT_IMAGE_CODEC:  # recorded only when not npy (older sets keep their config and resume)
            c["image_codec"] = codec
        own = source.set_config()
        clash = sorted(set(own) & set(c))
        if clash:
            raise ValueError(f"source {self.source!r} sets shared set-config keys {clash}")
        c.update(own)
        return c

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["options"] = self.options.to_json() if self.options is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ConfigError(f"unknown generation config keys: {', '.join(sorted(unknown))}")
        data = dict(data)
        kind = get_source(data.get("source", GENERATOR_SOURCE))
        if data.get("options") is not None:
            data["options"] = kind.options.from_json(data["options"])
        return cls(**data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


__all__ = ["GenerationConfig", "default_workers", "parse_shard_range"]
