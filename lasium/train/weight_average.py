"""An exponential moving average of the meta-parameters (``lasium-train --ema-decay``).

After every optimizer step the average moves towards the weights Adam just stepped:
``average ← d·average + (1 − d)·weights``, with ``d = min(decay, (1 + t) / (10 + t))`` after ``t`` updates, the
warm-up of TensorFlow's ``tf.train.ExponentialMovingAverage(decay, num_updates)``, so that a short run is not
dominated by its random initialisation (at ``decay`` 0.999 the first weights would still weigh 0.999¹⁰⁰⁰ ≈ 0.37
after 1,000 steps). Polyak & Juditsky (1992) averaged iterates to reduce the noise of stochastic updates; the
average is what validation, ``best/``, ``last/`` and ``lasium-eval`` see.

The averaging itself is PyTorch's :class:`torch.optim.swa_utils.AveragedModel` (one ``_foreach_lerp_`` per step);
this module only gives it the warm-up and carries its state through checkpoints.

Example::

    average = WeightAverage(learner, decay=0.99)
    for batch in batches:
        meta_step(learner, optimizer, ...)
        average.update(learner)
    evaluate(average.learner)
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel

from lasium.errors import ConfigError
from lasium.train.learner import MetaLearner

TensorList = tuple[Tensor, ...] | list[Tensor]  # what AveragedModel hands its multi_avg_fn


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay of the update after ``updates`` earlier ones: ``min(decay, (1 + updates) / (10 + updates))``."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


class WeightAverage:
    """An exponential moving average of ``learner``'s parameters, ``decay`` per step (0 < decay < 1) with warm-up.

    ``learner`` is copied: :attr:`learner` is the averaged copy (a :class:`MetaLearner` like the original, to
    validate, save and score); the original keeps the weights the optimizer steps. Learners hold no buffers
    (:class:`lasium.train.learner.Backbone`), so the parameters are the whole state.
    """

    def __init__(self, learner: MetaLearner, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"--ema-decay must be above 0 and below 1 (0 turns it off), got {decay}")
        self.decay = decay

        def average(averaged: TensorList, current: TensorList, updates: Tensor | int) -> None:
            torch._foreach_lerp_(averaged, current, 1.0 - warmed_up_decay(decay, int(updates)))

        self.averaged = AveragedModel(learner, multi_avg_fn=average, use_buffers=False)

    @property
    def learner(self) -> MetaLearner:
        """The averaged learner."""
        return cast(MetaLearner, self.averaged.module)

    @property
    def updates(self) -> int:
        """How many optimizer steps have been averaged."""
        return int(self.averaged.n_averaged)

    def update(self, learner: MetaLearner) -> None:
        """Move the average towards ``learner``'s current parameters (the first update copies them)."""
        self.averaged.update_parameters(learner)

    def restore(self, weights: dict[str, Tensor], updates: int) -> None:
        """Continue an average saved as ``weights`` (the averaged learner's state dict) after ``updates`` updates."""
        self.learner.load_state_dict(weights, strict=True)
        self.averaged.n_averaged.fill_(int(updates))
