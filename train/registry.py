"""The learners by name: ``maml`` (second order), ``fomaml`` (first order), ``protonets``."""

from __future__ import annotations

from lasium.errors import ConfigError
from lasium.train.learner import LearnerConfig, MetaLearner
from lasium.train.maml import MAML, FirstOrderMAML
from lasium.train.protonets import ProtoNets

ALGORITHMS: dict[str, type[MetaLearner]] = {cls.algo: cls for cls in (MAML, FirstOrderMAML, ProtoNets)}


def build_learner(config: LearnerConfig) -> MetaLearner:
    """A freshly initialised learner for ``config.algo``."""
    if config.algo not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {config.algo!r}; choose one of {', '.join(ALGORITHMS)}")
    return ALGORITHMS[config.algo](config)
