"""Learning-rate schedules of the meta-optimizer, by name (``lasium-train --lr-schedule``).

Each schedule is a pure function of the step: ``factor(step, iterations)`` scales ``--lr`` for the optimizer step
numbered ``step`` (1 … ``iterations``). Being a function of the step and nothing else, it needs no state in a
checkpoint and ``--resume`` continues it exactly (torch's ``LRScheduler`` objects would have to be saved and restored
beside the optimizer). A new schedule is one function plus one entry of :data:`LR_SCHEDULES`.

- ``constant``: ``--lr`` throughout (the LASIUM authors' code and MAML's reference keep Adam's rate fixed).
- ``cosine``: cosine annealing to 0 over the run (Loshchilov & Hutter, "SGDR", ICLR 2017), the closed form of
  ``torch.optim.lr_scheduler.CosineAnnealingLR`` with ``T_max = iterations`` and ``eta_min = 0``: the first step
  takes the full ``--lr``, the last a small fraction of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

LRSchedule = Callable[[int, int], float]  # (step, iterations) -> factor of --lr


def constant(step: int, iterations: int) -> float:
    """``--lr`` at every step."""
    return 1.0


def cosine(step: int, iterations: int) -> float:
    """Cosine annealing from ``--lr`` at step 1 towards 0 at step ``iterations + 1``."""
    progress = min(max(step - 1, 0), iterations) / max(iterations, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


LR_SCHEDULES: dict[str, LRSchedule] = {"constant": constant, "cosine": cosine}


def set_learning_rate(
    optimizer: torch.optim.Optimizer, base_lr: float, schedule: str, step: int, iterations: int
) -> float:
    """Set every parameter group's rate for optimizer step ``step`` of ``iterations``; return it."""
    lr = base_lr * LR_SCHEDULES[schedule](step, iterations)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr
