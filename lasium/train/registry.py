"""The learners by name: ``maml`` (second order), ``fomaml`` (first order), ``protonets``.

A new learner is one module (a :class:`~lasium.train.learner.MetaLearner` subclass with its ``algo`` name) plus
its class in the tuple below; a new backbone is one entry of :data:`lasium.train.backbone.BACKBONES`.
"""

from __future__ import annotations

from torch import nn

from lasium.errors import ConfigError
from lasium.train.learner import LearnerConfig, MetaLearner
from lasium.train.maml import MAML, FirstOrderMAML
from lasium.train.protonets import ProtoNets

ALGORITHMS: dict[str, type[MetaLearner]] = {cls.algo: cls for cls in (MAML, FirstOrderMAML, ProtoNets)}


def build_learner(config: LearnerConfig, backbone: nn.Module | None = None) -> MetaLearner:
    """A freshly initialised learner for ``config.algo`` on ``backbone`` (default: ``config.backbone`` by name)."""
    if config.algo not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {config.algo!r}; choose one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[config.algo](config, backbone)
