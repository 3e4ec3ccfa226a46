"""UMTRA tasks: each unlabeled image is its own class; the queries are augmented copies of it.

Khodadadeh, Bölöni and Shah, "Unsupervised Meta-Learning for Few-Shot Image Classification" (UMTRA,
NeurIPS 2019). A task takes N unlabeled train images, drawn without replacement within an epoch (a
seeded permutation of all M images, cut into runs of N; the last M mod N images of an epoch are left
out). Class i's support is image i itself (K_tr = 1); its K_val queries are augmented copies. The
Omniglot augmentation of the paper: zero each pixel with probability 0.5 (set it to the background, so
ink only ever disappears), then translate by integer (dx, dy), each uniform in [−6, 6], filling with
background. Labels are never read.

Which images a task holds depends only on (seed, task index): task i is run i mod (M div N) of the
permutation of epoch i div (M div N). The augmentation is drawn on the device, for a whole shard at
once, from the shard's ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from lasium.errors import ConfigError
from lasium.seeding import numpy_rng

if TYPE_CHECKING:  # torch only where queries are made: lasium-gen --help reads this module's defaults
    import torch

ERASE_PROBABILITY = 0.5
MAX_SHIFT = 6
EPOCH_RNG = "numpy default_rng(derive_seed(seed, 'umtra-epoch', e)).permutation(M) per epoch e"


@dataclass(frozen=True)
class UmtraSpec:
    """What defines UMTRA tasks besides the images and the seed."""

    ways: int = 5
    queries: int = 5
    erase_probability: float = ERASE_PROBABILITY
    max_shift: int = MAX_SHIFT  # dx, dy uniform integers in [−max_shift, max_shift]

    def __post_init__(self) -> None:
        if not 0.0 <= self.erase_probability <= 1.0:
            raise ConfigError(f"--umtra-erase must be a probability in [0, 1], got {self.erase_probability}")
        if self.max_shift < 0:
            raise ConfigError(f"--umtra-shift must be 0 or more pixels, got {self.max_shift}")

    def record(self) -> dict[str, Any]:
        """The augmentation, for the manifest's ``source`` section."""
        return {
            "erase_probability": float(self.erase_probability),
            "max_shift": int(self.max_shift),
            "steps": [
                "erase: each pixel set to the background (median of the "
                f"image's border) with probability {self.erase_probability}",
                f"shift: integer dx, dy each uniform in [-{self.max_shift}, {self.max_shift}], background fill",
            ],
        }


def tasks_per_epoch(num_images: int, ways: int) -> int:
    """Tasks one pass over the images makes (runs of N; the remainder of the permutation is left out)."""
    return num_images // ways


def check_images(num_images: int, ways: int, where: str) -> None:
    if tasks_per_epoch(num_images, ways) < 1:
        raise ConfigError(
            f"{where} has {num_images} images, fewer than --ways {ways}: a UMTRA task needs N distinct images"
        )


def task_images(num_images: int, ways: int, seed: int, first: int, count: int) -> np.ndarray:
    """Image indices (count, N) of tasks ``first`` … ``first + count − 1``: distinct within each epoch."""
    per_epoch = tasks_per_epoch(num_images, ways)
    index = np.arange(first, first + count, dtype=np.int64)
    epochs, runs = np.divmod(index, per_epoch)
    out = np.empty((count, ways), np.int64)
    for epoch in np.unique(epochs).tolist():
        order = numpy_rng(seed, "umtra-epoch", int(epoch)).permutation(num_images)
        rows = np.flatnonzero(epochs == epoch)
        out[rows] = order[: per_epoch * ways].reshape(per_epoch, ways)[runs[rows]]
    return out


def umtra_queries(support: torch.Tensor, spec: UmtraSpec, rng: torch.Generator) -> torch.Tensor:
    """K_val augmented copies of every support image: uint8 (T, N, H, W, C) → (T, N, K_val, H, W, C), one batch.

    Erasing draws one uniform per pixel of every query (in (T, N, K_val, H, W) order), then the shifts
    draw dx for every query, then dy; all from ``rng`` on the images' device.
    """
    from lasium.image_ops import erase_pixels, shift_integer

    t, n, h, w, c = support.shape
    k = spec.queries
    copies = support.permute(0, 1, 4, 2, 3)[:, :, None].expand(t, n, k, c, h, w).reshape(t * n * k, c, h, w)
    out = erase_pixels(copies, rng, spec.erase_probability)
    out = shift_integer(out, rng, -spec.max_shift, spec.max_shift + 1)
    return out.reshape(t, n, k, c, h, w).permute(0, 1, 2, 4, 5, 3).contiguous()


__all__ = ["UmtraSpec", "task_images", "tasks_per_epoch", "umtra_queries", "ERASE_PROBABILITY", "MAX_SHIFT"]
