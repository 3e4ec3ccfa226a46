"""The trainer's validation passes: episodes per forward pass by image count (20-way episodes in passes of 100 took
about 20 GB of RAM), with the same scores whatever the pass size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lasium.train.config import TrainConfig
from lasium.train.registry import build_learner
from lasium.train.synthetic import synthetic_tasks
from lasium.train.validation import IMAGES_PER_CHUNK, Validator

SHAPE = (16, 16, 1)


def validator(count: int, ways: int, queries: int) -> Validator:
    """A Validator over synthetic blob episodes (no dataset on disk)."""
    batch = synthetic_tasks(count, ways, 1, queries, SHAPE, "blobs", seed=7)
    v = object.__new__(Validator)
    v.support, v.query = torch.from_numpy(batch.support), torch.from_numpy(batch.query)
    v.perm = torch.from_numpy(np.stack([np.random.default_rng(i).permutation(ways) for i in range(count)]))
    return v


def test_a_pass_holds_as_many_episodes_as_fit_its_image_budget():
    assert validator(2, 5, 15).chunk_tasks() == 100  # 5-way, 1 + 15 images a class: the 100 of before
    assert validator(2, 20, 15).chunk_tasks() == IMAGES_PER_CHUNK // 320 == 25
    assert validator(2, 5, 15).chunk_tasks(images=10) == 1  # never none


@pytest.mark.parametrize("algo", ["protonets", "maml"])
def test_scores_do_not_depend_on_the_pass_size(algo):
    v = validator(7, 5, 3)
    cfg = TrainConfig(shards=["x"], out="y", algo=algo, hidden=8, inner_steps=1, ways=5, shots=1, queries=3,
                      image_shape=list(SHAPE))  # fmt: skip
    torch.manual_seed(0)
    learner = build_learner(cfg.learner_config())
    device = torch.device("cpu")
    whole, ones, threes = (v.evaluate(learner, device, chunk=c) for c in (None, 1, 3))
    assert whole["accuracy"] == pytest.approx(ones["accuracy"]) == pytest.approx(threes["accuracy"])
    assert whole["ci95"] == pytest.approx(ones["ci95"])
    assert 0 < whole["accuracy"] < 1
