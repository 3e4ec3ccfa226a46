"""The trainer's configuration: one dataclass, saved as JSON in every checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lasium.errors import ConfigError
from lasium.precision import PRECISIONS
from lasium.train.augment import preset_names
from lasium.train.backbone import BACKBONES
from lasium.train.distances import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE, DISTANCES
from lasium.train.learner import LearnerConfig
from lasium.train.lr_schedule import LR_SCHEDULES
from lasium.train.registry import ALGORITHMS


@dataclass
class TrainConfig:
    """Options of ``lasium-train`` plus the task layout read from the shards (``ways`` … ``image_shape``).

    Defaults follow the MAML reference (Finn et al. 2017, Omniglot): meta-batch 4, 5 inner steps of
    lr 0.4, Adam 1e-3, second order.
    """

    shards: list[str]
    out: str
    algo: str = "maml"
    iterations: int = 10_000
    meta_batch: int = 4
    inner_steps: int = 5
    inner_lr: float = 0.4
    lr: float = 1e-3
    lr_schedule: str = "constant"  # a name in lasium.train.lr_schedule.LR_SCHEDULES: how --lr changes over the run
    ema_decay: float = 0.0  # > 0: validate, save and score a moving average of the weights (train.weight_average)
    backbone: str = "conv4"  # a name in lasium.train.backbone.BACKBONES
    distance: str = DEFAULT_DISTANCE  # ProtoNets: a name in lasium.train.distances.DISTANCES
    # ProtoNets: logits = -distance / temperature (the softmax of the training loss)
    temperature: float = DEFAULT_TEMPERATURE
    hidden: int = 64
    precision: str = "auto"  # auto = bf16 autocast where the device has native bf16 (CUDA, AVX512-BF16/AMX CPUs)
    augment: str = "auto"  # a preset of lasium.train.augment; the trainer records the one auto stood for
    compile: bool = False
    workers: int = 2
    shuffle_buffer: int | None = None  # tasks; None = about 256 MB of tasks, at most 1000
    skip_corrupt: bool = False
    allow_partial: bool = False  # accept sets without a manifest that miss task ranges
    loader_group: int = 0  # meta-batches per DataLoader item; 0 = auto (8 on CUDA, 1 on CPU)
    val_every: int = 500
    val_tasks: int = 200
    val_dataset: str = "auto"  # auto = omniglot for 28x28x1 shards, else none
    val_queries: int = 15
    val_ways: int = 0  # N of the validation episodes; 0 = the shards' N (another N: learners without an N-way head)
    val_inner_steps: int | None = None  # None = inner_steps
    data_root: str | None = None
    checkpoint_every: int = 1000
    checkpoint_minutes: float = 10.0  # also an autosave/ checkpoint every M minutes of the run (0 = off)
    log_every: int = 10
    device: str = "auto"
    seed: int = 0
    # filled in from the shards
    ways: int = 0
    shots: int = 0
    queries: int = 0
    image_shape: list[int] = field(default_factory=list)
    mixture: dict[str, Any] = field(
        default_factory=dict
    )  # how tasks are drawn from the --shards sources (train.mixture)

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` on an impossible option (before any data is read)."""
        if self.algo not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algo!r}; choose one of {', '.join(ALGORITHMS)}")
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown --backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        positive = {
            "iterations": self.iterations,
            "meta_batch": self.meta_batch,
            "lr": self.lr,
            "hidden": self.hidden,
            "log_every": self.log_every,
            "val_queries": self.val_queries,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive, got {value}")
        nonneg = {
            "inner_steps": self.inner_steps,
            "workers": self.workers,
            "loader_group": self.loader_group,
            "val_every": self.val_every,
            "val_tasks": self.val_tasks,
            "val_ways": self.val_ways,
            "checkpoint_every": self.checkpoint_every,
            "checkpoint_minutes": self.checkpoint_minutes,
        }
        for name, value in nonneg.items():
            if value < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be 0 or more, got {value}")
        if self.val_ways == 1:
            raise ConfigError("--val-ways must be at least 2 (0 = the shards' N), got 1")
        if self.algo in ALGORITHMS and ALGORITHMS[self.algo].adapts and self.inner_lr <= 0:
            raise ConfigError(f"--inner-lr must be positive, got {self.inner_lr}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"--distance must be one of {', '.join(DISTANCES)}, got {self.distance!r}")
        if self.distance != DEFAULT_DISTANCE and self.algo in ALGORITHMS and ALGORITHMS[self.algo].adapts:
            raise ConfigError(
                f"--distance is a ProtoNets option ({self.algo} scores queries with its linear head); drop it"
            )
        if self.temperature <= 0:
            raise ConfigError(f"--temperature must be positive, got {self.temperature}")
        if self.temperature != DEFAULT_TEMPERATURE and self.algo in ALGORITHMS and ALGORITHMS[self.algo].adapts:
            raise ConfigError(
                f"--temperature is a ProtoNets option ({self.algo} scores queries with its linear head); drop it"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay must be 0 (off) or above 0 and below 1, got {self.ema_decay}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.augment not in preset_names():
            raise ConfigError(f"--augment must be one of {', '.join(preset_names())}, got {self.augment!r}")
        if self.shuffle_buffer is not None and self.shuffle_buffer < 1:
            raise ConfigError(f"--shuffle-buffer must be at least 1, got {self.shuffle_buffer}")
        if not self.shards:
            raise ConfigError("no shards given: pass --shards with a shard folder, a manifest.json or shard URLs")
        return self

    @property
    def validation_enabled(self) -> bool:
        return self.val_dataset != "none" and self.val_every > 0 and self.val_tasks > 0

    @property
    def validation_ways(self) -> int:
        """N of the validation episodes: ``val_ways``, or the shards' N when it is 0."""
        return self.val_ways or self.ways

    def validation_episodes(self) -> tuple[Any, ...]:
        """What makes two validations comparable: the episodes (dataset, count, N, queries) and MAML's inner loop."""
        steps = self.inner_steps if self.val_inner_steps is None else self.val_inner_steps
        return (self.val_dataset, self.val_tasks, self.validation_ways, self.val_queries, steps)

    def learner_config(self) -> LearnerConfig:
        if not self.ways:
            raise ConfigError("the task layout is unknown: ways/shots/image_shape come from the shards")
        height, width, channels = self.image_shape
        return LearnerConfig(
            algo=self.algo,
            ways=self.ways,
            image_shape=(height, width, channels),
            hidden=self.hidden,
            inner_steps=self.inner_steps,
            inner_lr=self.inner_lr,
            backbone=self.backbone,
            distance=self.distance,
            temperature=self.temperature,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from JSON; unknown keys (a newer lasium) are refused rather than silently dropped."""
        known = {f.name for f in fields(cls)}
        data = {"augment": "none", **data}  # runs from before --augment existed trained without augmentation
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"train config has unknown fields {', '.join(unknown)}; was it written by a newer lasium?"
            )
        return cls(**data)
