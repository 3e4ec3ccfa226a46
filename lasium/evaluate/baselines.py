"""Baselines scored with the same harness as trained learners.

*Training from scratch* (the lower bound of Hsu et al., "Unsupervised Learning via Meta-Learning", ICLR
2019, and of the LASIUM paper): a randomly initialised learner that sees only the test task. For MAML it
is adapted on each task's support set with the protocol's inner loop (50 SGD steps, lr 0.4) starting from
random weights; for ProtoNets the random Conv-4 embedding is used as is (nearest prototype).

The supervised upper bound is not a special case here: it is a learner trained by ``lasium-train`` on
real labeled train-split tasks (``lasium-gen --source real``), evaluated like any other checkpoint.
"""

from __future__ import annotations

import torch

from lasium.errors import ConfigError
from lasium.seeding import derive_seed
from lasium.tasks import hwc
from lasium.train import ALGORITHMS, LearnerConfig, MetaLearner, build_learner

BASELINES = ("scratch",)


def scratch_learner(
    algo: str, ways: int, image_shape: tuple[int, int, int], *, seed: int = 0, hidden: int = 64
) -> MetaLearner:
    """A freshly initialised ``algo`` learner (PyTorch's default init), the same for the same ``seed``.

    The global torch RNG is left as it was: the weights come from a forked stream seeded by
    ``derive_seed(seed, "scratch-init", algo)``.
    """
    if algo not in ALGORITHMS:
        raise ConfigError(f"unknown --algo {algo!r}; choose one of {', '.join(ALGORITHMS)}")
    config = LearnerConfig(algo=algo, ways=int(ways), image_shape=hwc(image_shape), hidden=hidden)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "scratch-init", algo))
        return build_learner(config)
