"""What every point of a validation experiment generates, trains and scores (:class:`PointBudget`): the budget the
sweep (:mod:`lasium.repro.sweep`) and the GAN-epoch curve (:mod:`lasium.repro.epoch_curve`) share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lasium.errors import ConfigError
from lasium.precision import PRECISIONS
from lasium.train import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE, DISTANCES, LR_SCHEDULES

from .sweep_page import PRESET_OF


@dataclass(frozen=True)
class PointBudget:
    """What every point of a validation experiment generates, trains and scores (the sweep's and the GAN-epoch
    curve's): one shard set of ``tasks`` tasks → ``iterations`` × ``meta_batch`` of ``algo`` → ``val_tasks``
    validation tasks per shot. ``ways``: N of the generated training tasks (validation stays 5-way, the benchmark's N;
    ProtoNets classify any N, and Snell et al., 2017, trained with more ways than they tested)."""

    tasks: int = 2000
    iterations: int = 1000
    meta_batch: int = 4
    val_tasks: int = 1000
    algo: str = "protonets"
    gen_precision: str = "bf16"
    seed: int = 0
    device: str = "auto"
    data_root: str | None = None
    ways: int = 5
    epsilon: float | None = None  # lasium-gen --epsilon (None: its default; more ways may need a smaller one)
    lr_schedule: str = "constant"  # lasium-train --lr-schedule: the learning-rate schedule lever
    shots: int = 1  # K of the generated training tasks (lasium-gen --shots): the training-shots lever
    queries: int = 5  # query images per class of the generated training tasks (lasium-gen --queries): its lever
    distance: str = DEFAULT_DISTANCE  # lasium-train --distance (ProtoNets): the distance lever
    inner_steps: int | None = None  # lasium-train --inner-steps (MAML; None: its default, the authors' 5)
    inner_lr: float | None = None  # lasium-train --inner-lr (MAML; None: its default, the authors' 0.4)
    ema_decay: float = 0.0  # lasium-train --ema-decay (0: no moving average of the weights): the weight-average lever
    lr: float | None = None  # lasium-train --lr, Adam's rate (None: its 1e-3, every row's rate): the rate lever
    # lasium-train --temperature (ProtoNets; 1: the logits are minus the distances)
    temperature: float = DEFAULT_TEMPERATURE
    # lasium-train and lasium-eval --precision (auto: bf16 autocast where the device computes bf16 natively, which
    # differs between machines; fp32 or bf16 fixes the numerics of training and scoring on any machine)
    precision: str = "auto"

    def page_sizes(self, threads: int) -> dict[str, Any]:
        """The sizes a sweep page records: the budget's options that are not at their default (at their default
        they are left out, so pages written before an option existed keep their recorded sizes and --resume reuses
        their points), and ``threads``, the OMP_NUM_THREADS of every stage."""
        sizes: dict[str, Any] = {
            "tasks": self.tasks,
            "iterations": self.iterations,
            "meta_batch": self.meta_batch,
            "val_tasks": self.val_tasks,
            "seed": self.seed,
            "threads": threads,
        }
        if self.algo != "protonets":  # (ProtoNets pages keep their recorded sizes, so --resume reuses their points)
            sizes["algo"] = self.algo
        if self.ways != 5:  # likewise: 5-way pages keep their recorded sizes
            sizes["ways"] = self.ways
        if self.epsilon is not None:
            sizes["epsilon"] = self.epsilon
        if self.lr_schedule != "constant":  # likewise: constant-rate pages keep their recorded sizes
            sizes["lr_schedule"] = self.lr_schedule
        if self.shots != 1:  # likewise: 1-shot pages keep their recorded sizes
            sizes["shots"] = self.shots
        if self.queries != 5:  # likewise
            sizes["queries"] = self.queries
        if self.distance != DEFAULT_DISTANCE:  # likewise
            sizes["distance"] = self.distance
        if self.temperature != DEFAULT_TEMPERATURE:  # likewise
            sizes["temperature"] = self.temperature
        if self.inner_steps is not None:  # likewise
            sizes["inner_steps"] = self.inner_steps
        if self.inner_lr is not None:  # likewise
            sizes["inner_lr"] = self.inner_lr
        if self.ema_decay:  # likewise
            sizes["ema_decay"] = self.ema_decay
        if self.lr is not None:  # likewise
            sizes["lr"] = self.lr
        if self.precision != "auto":  # likewise
            sizes["precision"] = self.precision
        return sizes

    def common(self) -> list[str]:
        """The options every stage gets (device and data root, when given)."""
        return (["--device", self.device] if self.device != "auto" else []) + (
            ["--data-root", self.data_root] if self.data_root else []
        )

    def validate(self) -> PointBudget:
        if self.algo not in PRESET_OF:
            raise ConfigError(f"--algo {self.algo!r} is unknown; choose one of {', '.join(PRESET_OF)}")
        for name in ("tasks", "iterations", "meta_batch", "val_tasks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(self, name)}")
        if self.ways < 2:
            raise ConfigError(f"--ways must be at least 2 (classes per training task); got {self.ways}")
        if self.shots < 1:
            raise ConfigError(f"--shots must be at least 1 (support images per class); got {self.shots}")
        if self.queries < 1:
            raise ConfigError(f"--queries must be at least 1 (query images per class); got {self.queries}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}; got {self.lr_schedule!r}")
        if self.distance not in DISTANCES:
            raise ConfigError(f"--distance must be one of {', '.join(DISTANCES)}; got {self.distance!r}")
        if self.distance != DEFAULT_DISTANCE and self.algo != "protonets":
            raise ConfigError(f"--distance is a ProtoNets option ({self.algo} scores with its linear head); drop it")
        if self.temperature <= 0:
            raise ConfigError(f"--temperature must be positive; got {self.temperature}")
        if self.temperature != DEFAULT_TEMPERATURE and self.algo != "protonets":
            raise ConfigError(f"--temperature is a ProtoNets option ({self.algo} scores with its linear head); drop it")
        if self.inner_steps is not None and self.inner_steps < 1:
            raise ConfigError(f"--inner-steps must be at least 1; got {self.inner_steps}")
        if self.inner_lr is not None and self.inner_lr <= 0:
            raise ConfigError(f"--inner-lr must be positive; got {self.inner_lr}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.lr is not None and self.lr <= 0:
            raise ConfigError(f"--lr must be positive; got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"--ema-decay must be 0 (off) or above 0 and below 1; got {self.ema_decay}")
        for name, value in (("inner-steps", self.inner_steps), ("inner-lr", self.inner_lr)):
            if value is not None and self.algo == "protonets":
                raise ConfigError(
                    f"--{name} is a MAML option (ProtoNets have no inner loop); drop it or give --algo maml"
                )
        return self

    def ways_args(self) -> list[str]:
        """lasium-gen's ``--ways`` when the training tasks are not 5-way (5-way commands stay as they were), and its
        ``--epsilon`` when one is given (20-way anchors far apart at the 5-way ε are too rare: lasium-gen says so
        and suggests one)."""
        ways = [] if self.ways == 5 else ["--ways", str(self.ways)]
        return ways + ([] if self.epsilon is None else ["--epsilon", f"{self.epsilon:g}"])

    def precision_args(self) -> list[str]:
        """lasium-train's and lasium-eval's ``--precision`` when it is not ``auto`` (commands at ``auto`` stay as the
        committed experiments ran them)."""
        return [] if self.precision == "auto" else ["--precision", self.precision]

    def train_args(self) -> list[str]:
        """lasium-train's options of the levers: ``--lr``, ``--lr-schedule``, ``--distance``, ``--temperature``,
        ``--inner-steps``, ``--inner-lr`` and ``--ema-decay``, each only when it is not the default (so commands at the
        defaults stay as the committed experiments ran them)."""
        rate = [] if self.lr is None else ["--lr", f"{self.lr:g}"]
        schedule = rate + ([] if self.lr_schedule == "constant" else ["--lr-schedule", self.lr_schedule])
        distance = [] if self.distance == DEFAULT_DISTANCE else ["--distance", self.distance]
        distance += [] if self.temperature == DEFAULT_TEMPERATURE else ["--temperature", f"{self.temperature:g}"]
        inner = [] if self.inner_steps is None else ["--inner-steps", str(self.inner_steps)]
        inner += [] if self.inner_lr is None else ["--inner-lr", f"{self.inner_lr:g}"]
        return schedule + distance + inner + ([] if not self.ema_decay else ["--ema-decay", f"{self.ema_decay:g}"])
