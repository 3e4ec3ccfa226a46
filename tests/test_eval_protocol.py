"""The evaluation protocol and scoring: same seed → same tasks, the CI formula, nearest-prototype scoring,
chunked vmapped MAML adaptation = per-task adaptation, the scratch baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from eval_helpers import labeled_images
from torch import nn

from lasium.errors import ConfigError
from lasium.evaluate.baselines import scratch_learner
from lasium.evaluate.evaluator import evaluate_learner, with_ways
from lasium.evaluate.protocol import Episodes, EvalProtocol, episode_digest, make_episodes, mean_ci95, parse_shots
from lasium.evaluate.scoring import score_episodes
from lasium.train.learner import LearnerConfig
from lasium.train.registry import build_learner

CPU = torch.device("cpu")
SHAPE = (16, 16, 1)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(algo: str, seed: int = 0, ways: int = 5):
    torch.manual_seed(seed)
    return build_learner(LearnerConfig(algo=algo, ways=ways, image_shape=SHAPE, hidden=4))


def test_parse_shots():
    assert parse_shots("1,5") == (1, 5) and parse_shots(" 5 ") == (5,)
    for bad in ("1,x", "", "0", "1,-2", "1,1", "1.5"):
        with pytest.raises(ConfigError):
            parse_shots(bad)


def test_protocol_validation():
    EvalProtocol().validate()
    for bad in (
        dict(ways=1),
        dict(shots=()),
        dict(queries=0),
        dict(tasks=0),
        dict(adapt_lr=0.0),
        dict(adapt_steps=-1),
        dict(split="dev"),
        dict(adapt_lr=float("nan")),
    ):
        with pytest.raises(ConfigError):
            EvalProtocol(**bad).validate()


def test_ci_formula():
    mean, ci = mean_ci95([0.5, 1.0])
    assert mean == 0.75 and ci == pytest.approx(1.96 * 0.25 / math.sqrt(2))
    acc = np.random.default_rng(0).random(1000)
    mean, ci = mean_ci95(acc)
    assert ci == pytest.approx(1.96 * acc.std(ddof=0) / math.sqrt(1000)) and mean == pytest.approx(acc.mean())
    assert mean_ci95([0.4]) == (0.4, 0.0)


def test_same_seed_same_tasks_and_digest():
    images = labeled_images()
    p = EvalProtocol(ways=5, shots=(1, 2), queries=3, tasks=20, seed=7)
    a, b = make_episodes(images, p, 2), make_episodes(images, p, 2)
    assert a.digest == b.digest and np.array_equal(a.support, b.support) and np.array_equal(a.perm, b.perm)
    assert a.support.shape == (20, 5, 2, 16, 16, 1) and a.query.shape == (20, 5, 3, 16, 16, 1)
    assert all(sorted(row) == list(range(5)) for row in a.perm)
    other = make_episodes(images, EvalProtocol(ways=5, shots=(1, 2), queries=3, tasks=20, seed=8), 2)
    assert other.digest != a.digest
    assert make_episodes(images, p, 1).digest != a.digest
    # the digest sees every byte
    changed = a.query.copy()
    changed[3, 1, 0, 0, 0, 0] ^= 1
    assert episode_digest(a.support, changed, a.perm) != a.digest


def test_digest_equal_across_methods():
    images = labeled_images()
    p = EvalProtocol(ways=5, shots=(1, 2), queries=3, tasks=6, seed=3, adapt_steps=2)
    proto = evaluate_learner(tiny("protonets"), p, device=CPU, images=images, progress=False)
    maml = evaluate_learner(tiny("maml", seed=1), p, device=CPU, images=images, progress=False)
    assert proto.episode_digest == maml.episode_digest
    assert [r.episode_digest for r in proto.results] == [r.episode_digest for r in maml.results]
    assert proto.precision == maml.precision in ("fp32", "bf16")


class Pixels(nn.Module):
    """A backbone that returns the raw pixels, so prototype distances can be worked out by hand.

    Like Conv4 it takes one batch (n, C, H, W) or T tasks' batches (T, n, C, H, W)."""

    out_features = 4

    def forward(self, x):
        return x.flatten(-3)


def crafted_episodes() -> tuple[Episodes, np.ndarray]:
    """3-way 1-shot tasks of 2×2 one-channel images; class c's support image is all c·100.

    Queries of class c are c·100 + offset; offset 40 keeps class 0 and 1 right (nearest prototype) but an
    offset of 60 puts a class-0 query nearer prototype 1 and a class-1 query nearer prototype 2.
    """
    support = np.stack([np.full((3, 1, 2, 2, 1), 0, np.uint8) for _ in range(2)])
    for c in range(3):
        support[:, c] = c * 100
    query = np.zeros((2, 3, 4, 2, 2, 1), np.uint8)
    offsets = [[0, 10, 40, 60], [0, 0, 0, 0]]  # task 0: one wrong query per class 0 and 1; task 1: all right
    for t in range(2):
        for c in range(3):
            for j, off in enumerate(offsets[t]):
                query[t, c, j] = min(255, c * 100 + off)
    perm = np.array([[2, 0, 1], [0, 1, 2]], np.int64)  # labels must not matter
    # task 0: class 0 query +60 → 60, nearer 100 (wrong); class 1 → 160, nearer 200 (wrong); class 2 → 255 (right)
    expected = np.array([10 / 12, 1.0])
    return Episodes(1, support, query, perm, episode_digest(support, query, perm)), expected


def test_protonets_nearest_prototype_on_crafted_case():
    learner = build_learner(LearnerConfig(algo="protonets", ways=3, image_shape=SHAPE, hidden=4))
    learner.backbone = Pixels()
    episodes, expected = crafted_episodes()
    acc = score_episodes(learner, episodes, CPU, chunk=1)
    np.testing.assert_allclose(acc, expected)
    np.testing.assert_allclose(score_episodes(learner, episodes, CPU, chunk=2), expected)


def test_maml_chunked_vmapped_equals_per_task():
    torch.manual_seed(0)
    learner = tiny("maml", seed=2)
    episodes = make_episodes(labeled_images(), EvalProtocol(ways=5, queries=3, tasks=5, seed=1), 2)
    steps, lr = 3, 0.4
    chunked = score_episodes(learner, episodes, CPU, steps=steps, lr=lr, chunk=2)
    whole = score_episodes(learner, episodes, CPU, steps=steps, lr=lr, chunk=5)
    from lasium.tasks import to_device

    s, sl, q, ql = to_device(
        torch.from_numpy(episodes.support), torch.from_numpy(episodes.query), torch.from_numpy(episodes.perm), CPU
    )
    params = {k: v.detach() for k, v in learner.meta_params().items()}
    with torch.no_grad():
        vm_logits = learner.predict_tasks(learner.adapt_tasks(s, sl, params, steps=steps, lr=lr), q)
    loop_acc = []
    for t in range(len(episodes)):
        task_params = learner.adapt(s[t], sl[t], params, steps=steps, lr=lr)
        logits = learner.predict(task_params, q[t]).detach()
        torch.testing.assert_close(vm_logits[t], logits, rtol=1e-4, atol=1e-4)
        loop_acc.append((logits.argmax(-1) == ql[t]).float().mean().item())
    np.testing.assert_allclose(chunked, loop_acc)
    np.testing.assert_allclose(whole, loop_acc)
    # adaptation changes the answer (the inner loop really ran)
    assert not torch.allclose(learner.predict_tasks(learner.adapt_tasks(s, sl, params, steps=0, lr=lr), q), vm_logits)


def test_scratch_baseline_is_seeded_and_runs():
    a, b = scratch_learner("maml", 5, SHAPE, seed=3), scratch_learner("maml", 5, SHAPE, seed=3)
    c = scratch_learner("maml", 5, SHAPE, seed=4)
    state = torch.get_rng_state()
    scratch_learner("protonets", 5, SHAPE, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # the global stream is left alone
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    p = EvalProtocol(ways=5, shots=(1,), queries=3, tasks=4, seed=0, adapt_steps=2)
    report = evaluate_learner(
        scratch_learner("protonets", 5, SHAPE, seed=0, hidden=8), p, device=CPU, images=labeled_images(), progress=False
    )
    r = report.result(1)
    assert r.tasks == 4 and 0.0 <= r.accuracy <= 1.0 and r.ci95 >= 0.0
    with pytest.raises(ConfigError):
        scratch_learner("knn", 5, SHAPE)


def test_ways_of_protonets_can_change_but_not_of_maml():
    proto = tiny("protonets")
    assert with_ways(proto, 3).ways == 3
    with pytest.raises(ConfigError, match="--ways 5"):
        with_ways(tiny("maml"), 3)
