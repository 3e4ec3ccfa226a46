"""What a ``lasium-fit`` run is asked to do (:class:`FitConfig`) and what it did (:class:`FitResult`).

The options that define what is trained (:data:`DEFINING`) are saved in the checkpoint; a resumed run
must agree on all of them (:func:`resume_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lasium.errors import ConfigError

from .checkpoint import read_config

MODELS = ("gan", "vae")
DEFAULT_LR = {"gan": 3e-4, "vae": 1e-3}
# The latent size, when not given, is the chosen architecture's default (lasium.generate.models.architecture):
# 128 for the GANs, 20 for the reference VAE, 512 for the paper's 84×84×3 VAE; fit() fills it in.
# Options that define what is trained: a resumed run must agree on all of them.
DEFINING = (
    "model",
    "dataset",
    "batch_size",
    "lr",
    "latent_dim",
    "limit",
    "seed",
    "ms_weight",
    "image_size",
    "init_from",
)


class ImageSet(Protocol):
    """What fitting needs from :class:`lasium.data.UnlabeledImages`."""

    images: np.ndarray  # (n, H, W, C) uint8
    image_ids: Sequence[str]
    fingerprint: str


@dataclass
class FitConfig:
    """Options of one fit; serialised into the checkpoint's ``config.json`` under ``"fit"``."""

    model: str
    dataset: str
    epochs: int = 20
    batch_size: int = 64
    lr: float | None = None  # None → 3e-4 (GAN, LASIUM reference) / 1e-3 (VAE)
    latent_dim: int | None = None  # None → the architecture's default: 128 (GAN) / 20 (VAE) / 512 (84×84×3 VAE)
    limit: int | None = None  # train on the first N images only (smoke runs)
    seed: int = 0
    device: str = "auto"
    max_minutes: float | None = None  # wall-clock budget; stops cleanly after an epoch
    ms_weight: float = 1.0  # weight of the MSGAN mode-seeking term (GAN only)
    image_size: int | None = None  # passed to load_unlabeled (None: the dataset's native size)
    data_root: str | None = None
    cuda_graphs: bool = True  # replay each training step as one CUDA graph (CUDA only; same computation as eager)
    keep_epochs: tuple[int, ...] = ()  # also keep the generator after these epochs (0: untrained), in <out>/epoch-NNNN/
    # start from this generator (a bundled name or a lasium-fit folder): its weights and epoch count; the optimizer and
    # what it lacks (a GAN's discriminator; bundled models keep the generator only) start fresh
    init_from: str | None = None

    def resolved(self) -> FitConfig:
        """A copy with model defaults filled in and every value checked (ConfigError on bad input)."""
        if self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        values = asdict(self)
        values["lr"] = DEFAULT_LR[self.model] if self.lr is None else float(self.lr)
        values["latent_dim"] = None if self.latent_dim is None else int(self.latent_dim)
        values["keep_epochs"] = tuple(sorted({int(e) for e in self.keep_epochs}))
        out = FitConfig(**values)
        checks = [
            (out.epochs >= 1, f"--epochs must be at least 1, got {out.epochs}"),
            (out.batch_size >= 2, f"--batch-size must be at least 2, got {out.batch_size}"),
            (out.lr > 0, f"--lr must be positive, got {out.lr}"),
            (out.latent_dim is None or out.latent_dim >= 1, f"--latent-dim must be positive, got {out.latent_dim}"),
            (out.limit is None or out.limit >= 1, f"--limit must be positive, got {out.limit}"),
            (out.max_minutes is None or out.max_minutes > 0, f"--max-minutes must be positive, got {out.max_minutes}"),
            (out.ms_weight >= 0, f"--ms-weight must be non-negative, got {out.ms_weight}"),
            (
                all(0 <= e <= out.epochs for e in out.keep_epochs),
                f"--keep-epochs must lie in 0..{out.epochs} (0 = untrained, up to the epochs trained), "
                f"got {list(out.keep_epochs)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return out

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["keep_epochs"] = list(self.keep_epochs)
        return d

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FitConfig:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if "keep_epochs" in values:
            values["keep_epochs"] = tuple(values["keep_epochs"] or ())
        return cls(**values)


@dataclass
class FitResult:
    out_dir: Path
    epochs_done: int
    steps_done: int
    final_losses: dict[str, float]
    images_per_second: float
    train_seconds: float
    stopped_by_time_budget: bool


def resume_config(out_dir: str | Path, overrides: dict[str, Any]) -> FitConfig:
    """The saved :class:`FitConfig` of a checkpoint with ``overrides`` (e.g. more epochs) applied.

    A defining option (model, dataset, batch size, lr, latent size, limit, seed, ...) that differs from
    the saved one is refused: resuming with it would not continue the same training.
    """
    saved = FitConfig.from_json(read_config(Path(out_dir)).get("fit") or {})
    for key, value in overrides.items():
        if value is None:
            continue
        if key in DEFINING and value != getattr(saved, key):
            raise ConfigError(
                f"--{key.replace('_', '-')} {value} differs from the checkpoint's "
                f"{getattr(saved, key)}; drop it to resume, or start a new --out"
            )
        setattr(saved, key, value)
    return saved
