"""Configuration of the ``lasium-gen`` batch job: one dataclass that serialises to JSON.

:class:`GenerationConfig` holds what the user asked for (CLI options map one to one);
:meth:`GenerationConfig.set_config` resolves defaults into the record that defines a shard set and
goes into every sidecar and the manifest. Two runs whose set configs differ never share a folder.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError
from lasium.generate.synthesis.anchors import ANCHOR_CHUNK, default_epsilon
from lasium.generate.synthesis.cactus import CLUSTERS, PARTITIONS, CactusSpec
from lasium.generate.synthesis.presets import PRESETS
from lasium.generate.synthesis.strategies import STRATEGIES, check_strategy, default_parameter
from lasium.generate.synthesis.synthesizer import DECODE_TASKS
from lasium.generate.synthesis.umtra import ERASE_PROBABILITY, MAX_SHIFT, UmtraSpec
from lasium.shards.format import CONTAINERS, MAX_TASKS

SOURCES = ("generator", "real", "umtra", "cactus")
UNSUPERVISED_SOURCES = ("umtra", "cactus")  # tasks built from the unlabeled train images, without a generator
COMPRESSIONS = ("gzip", "none")
# --compression when not given: plain .tar for WebDataset (gzip about halves the trainer's CPU read rate, measured
# in shards/README.md section 12), the gzip filter for HDF5 (as before)
DEFAULT_COMPRESSION = {"wds": "none", "hdf5": "gzip"}
# What a set config without a 'compression' key holds (sets written before the option existed): the set config
# records compression only when it differs, so those sets keep their config and still resume.
UNRECORDED_COMPRESSION = {"wds": "none", "hdf5": "gzip"}
PRECISIONS = ("auto", "fp32", "bf16")
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


def dataset_label(dataset: str) -> str:
    """A folder name for a dataset spec: ``omniglot`` → omniglot, ``imagefolder:/data/flowers`` → flowers."""
    return safe_set_name(Path(dataset.split(":", 1)[1] if dataset.startswith("imagefolder:") else dataset).name)


def generator_label(name: str) -> str:
    """A folder name for an external generator with no dataset: its name.

    ``g.pt`` → g, ``mygan:build`` → mygan-build.
    """
    return safe_set_name(re.sub(r"\.(pt|ts|jit|pth)$", "", name))


def safe_set_name(text: str) -> str:
    """A shard-set name (used in every file name) from a folder name: letters, digits, '_', '-', '.'."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip(".-") or "tasks"
    return name


@dataclass
class GenerationConfig:
    """What ``lasium-gen`` was asked to do. ``None`` means "the default for this generator/preset"."""

    num_tasks: int
    strategy: str | None = None  # n | ro | oc (generator source)
    source: str = "generator"  # generator | real | umtra | cactus
    generator: str = "omniglot-gan"
    latent_dim: int | None = None
    output_range: str | None = (
        None  # external generators: "[0,1]" or "[-1,1]" (None: the module's attribute, else [0,1])
    )
    dataset: str = "omniglot"  # real tasks, UMTRA and CACTUs images, and VAE anchor images
    split: str = "train"  # real tasks only (VAE anchors always use the unlabeled train split)
    data_root: str | None = None
    ways: int = 5
    shots: int = 1
    queries: int = 5
    preset: str = "maml"
    sigma: float | None = None
    alpha: float | None = None
    epsilon: float | None = None
    container: str = "wds"  # --format: wds | hdf5
    compression: str | None = None  # gzip | none; None = DEFAULT_COMPRESSION[container]
    out: str | None = None
    name: str | None = None
    tasks_per_shard: int = 1000
    seed: int = 0
    save_latents: bool = False
    device: str = "auto"
    shard_range: str | None = None  # "A:B", --shard-range
    workers: int | None = None
    compile: bool = False
    precision: str = "auto"
    overwrite: bool = False
    verify_existing: bool = False
    decode_tasks: int = DECODE_TASKS
    anchor_chunk: int = ANCHOR_CHUNK
    in_flight: int = 2
    progress: bool = True
    manifest_timeout: float = 3600.0
    umtra_erase: float = ERASE_PROBABILITY  # UMTRA: probability that a query pixel is set to the background
    umtra_shift: int = MAX_SHIFT  # UMTRA: query shifts dx, dy uniform integers in [-umtra_shift, umtra_shift]
    embedding: str = "omniglot-vae"  # CACTUs: a VAE (its posterior mean), "pixels" or an (M, d) .npy file
    clusters: int = CLUSTERS  # CACTUs: k of k-means
    partitions: int = PARTITIONS  # CACTUs: P, the number of k-means partitions
    scaling: bool = True  # CACTUs: partitions p >= 1 cluster z * w_p, w_p ~ U[0, 1)^d
    min_cluster_size: int | None = None  # CACTUs: smaller clusters are dropped; None = shots + queries

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown --precision {self.precision!r}; use one of: {', '.join(PRECISIONS)}")
        if self.source not in SOURCES:
            raise ConfigError(f"unknown --source {self.source!r}; use one of: {', '.join(SOURCES)}")
        if self.source == "generator":
            if self.strategy is None:
                raise ConfigError("--strategy is required with a generator source; use n, ro or oc")
            check_strategy(self.strategy)
        if self.container not in CONTAINERS:
            raise ConfigError(f"unknown --format {self.container!r}; use wds or hdf5")
        if self.compression is not None and self.compression not in COMPRESSIONS:
            raise ConfigError(f"unknown --compression {self.compression!r}; use gzip or none")
        if self.preset not in PRESETS:
            raise ConfigError(f"unknown --preset {self.preset!r}; use one of: {', '.join(PRESETS)}")
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
        for opt, value in (("--sigma", self.sigma), ("--alpha", self.alpha), ("--epsilon", self.epsilon)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"{opt} must be a finite number ≥ 0, got {value}")
        if self.alpha is not None and self.alpha > 1:
            # z' = z_i + α (v − z_i): α = 0 keeps the anchor, α = 1 reaches the other latent; beyond it leaves the
            # segment
            raise ConfigError(
                f"--alpha must be between 0 and 1 (the fraction of the way to the other latent), got {self.alpha:g}"
            )
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be ≥ 0 (0 = write in the main process), got {self.workers}")
        if self.decode_tasks < 1 or self.anchor_chunk < 1 or self.in_flight < 1:
            raise ConfigError("decode_tasks, anchor_chunk and in_flight must be positive")
        if self.source == "umtra":
            self.umtra_spec()  # checks the augmentation options
        if self.source == "cactus":
            self.cactus_spec().check()

    # -- derived values ----------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """The tasks' ``strategy`` in the config and every task's meta: n | ro | oc | real | umtra | cactus."""
        return self.strategy if self.source == "generator" and self.strategy is not None else self.source

    @property
    def out_dir(self) -> Path:
        """``--out``, else ``shards/<dataset>/<strategy>`` (the job resolves it with the generator's dataset first)."""
        return Path(self.out) if self.out else self.default_out(dataset_label(self.dataset))

    def default_out(self, dataset: str) -> Path:
        """``shards/<dataset>/<strategy>``, e.g. shards/omniglot/oc.

        ``--source real``: ``shards/<dataset>/real-<split>``.
        """
        leaf = f"real-{self.split}" if self.source == "real" else str(self.label)
        return Path("shards") / safe_set_name(dataset) / leaf

    def resolve_default_out(self, dataset: str) -> None:
        """Without ``--out``: write to :meth:`default_out`.

        The set is then named ``<dataset>-<strategy>`` (not just the strategy).
        """
        if self.out:
            return
        out = self.default_out(dataset)
        self.out = str(out)
        self.name = self.name or f"{out.parent.name}-{out.name}"

    def cactus_spec(self) -> CactusSpec:
        return CactusSpec(
            ways=self.ways,
            shots=self.shots,
            queries=self.queries,
            clusters=int(self.clusters),
            partitions=int(self.partitions),
            scaling=bool(self.scaling),
            min_cluster_size=self.min_cluster_size,
        )

    def umtra_spec(self) -> UmtraSpec:
        return UmtraSpec(
            ways=self.ways,
            queries=self.queries,
            erase_probability=float(self.umtra_erase),
            max_shift=int(self.umtra_shift),
        )

    @property
    def set_name(self) -> str:
        return safe_set_name(self.name or self.out_dir.resolve().name)

    @property
    def resolved_compression(self) -> str:
        """gzip or none: ``.tar.gz`` vs ``.tar`` shards for wds, the HDF5 gzip filter or none for hdf5."""
        return self.compression or DEFAULT_COMPRESSION[self.container]

    @property
    def num_shards(self) -> int:
        return -(-self.num_tasks // self.tasks_per_shard)

    @property
    def effective_decode_tasks(self) -> int:
        """Tasks per generator call: never more than a shard holds, so small shards are not padded."""
        return min(self.decode_tasks, self.tasks_per_shard)

    @property
    def num_workers(self) -> int:
        return default_workers() if self.workers is None else self.workers

    def strategy_parameter(self, generator_kind: str) -> tuple[str, float]:
        """(name, value) of the strategy's parameter: σ for ``n``, α for ``ro``/``oc``."""
        assert self.strategy is not None
        name = check_strategy(self.strategy).parameter
        given = self.sigma if name == "sigma" else self.alpha
        return name, float(given) if given is not None else default_parameter(
            self.strategy, generator_kind, self.preset
        )

    def resolved_precision(self, device_type: str) -> str:
        """``bf16-autocast`` or ``fp32``: auto means bf16 where the device computes it natively (CUDA; CPUs with
        AVX512-BF16/AMX, ~2x faster there), else fp32 (see ``lasium.precision``). bf16 bytes may differ between
        processor families; the set config records the precision and device type."""
        from lasium.precision import resolve_precision

        return "bf16-autocast" if resolve_precision(self.precision, device_type) == "bf16" else "fp32"

    def set_config(
        self, *, image_shape: tuple[int, ...], latent_dim: int | None, generator_kind: str | None, device_type: str
    ) -> dict[str, Any]:
        """The record that defines the shard set (sidecars and manifest ``config``)."""
        c: dict[str, Any] = {
            "ways": self.ways,
            "shots": self.shots,
            "queries": self.queries,
            "image_shape": [int(s) for s in image_shape],
            "seed": int(self.seed),
            "tasks_per_shard": self.tasks_per_shard,
            "num_tasks": self.num_tasks,
            "save_latents": bool(self.save_latents),
            "format": self.container,  # the record's historical key for the container
            "source": self.source,
            "strategy": self.label,
            "rng": RNG_SCHEME,
        }
        if self.resolved_compression != UNRECORDED_COMPRESSION[self.container]:
            c["compression"] = self.resolved_compression  # gzip: .tar.gz shards (wds); none: unfiltered datasets (hdf5)
        if self.source == "real":
            c.update(dataset=self.dataset, split=self.split, save_latents=False)
            return c
        if self.source in UNSUPERVISED_SOURCES:
            # The source section records the images and the method's parameters; the device kind decides the
            # bytes of the random augmentation (UMTRA) and of VAE embeddings (CACTUs), as it decides a generator's.
            c.update(dataset=self.dataset, save_latents=False, device_type=device_type)
            return c
        assert generator_kind is not None and latent_dim is not None
        pname, pvalue = self.strategy_parameter(generator_kind)
        c.update(
            {pname: pvalue},
            preset=self.preset,
            epsilon=float(self.epsilon) if self.epsilon is not None else default_epsilon(latent_dim),
            latent_dim=int(latent_dim),
            anchors="vae-encoded-train-images" if generator_kind == "vae" else "prior",
            anchor_chunk=self.anchor_chunk,
            # Fixed generator-call shape and numerics: these decide the bytes of every image.
            decode_tasks=self.effective_decode_tasks,
            device_type=device_type,
            precision=self.resolved_precision(device_type),
            compile=bool(self.compile),
        )
        if generator_kind == "vae":
            c["anchor_dataset"] = self.dataset
        return c

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GenerationConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ConfigError(f"unknown generation config keys: {', '.join(sorted(unknown))}")
        return cls(**data)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True)


__all__ = ["GenerationConfig", "SOURCES", "STRATEGIES", "UNSUPERVISED_SOURCES", "parse_shard_range", "default_workers"]
