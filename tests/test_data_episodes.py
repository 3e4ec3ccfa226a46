"""EpisodeSampler: determinism, sampling without replacement, meta, layout (synthetic labeled images)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lasium.data import EpisodeSampler, LabeledImages
from lasium.errors import ConfigError
from lasium.tasks import Task, TaskBatch


def labeled(counts: list[int], size: int = 6) -> LabeledImages:
    """Images whose pixels encode (class, position): pixel [0, 0] = label, pixel [0, 1] = image number.

    Images are interleaved across classes (not grouped) so the sampler cannot rely on order.
    """
    labels = np.concatenate([np.full(n, c, np.int64) for c, n in enumerate(counts)])
    labels = labels[np.random.default_rng(0).permutation(len(labels))]
    images = np.zeros((len(labels), size, size, 1), np.uint8)
    images[:, 0, 0, 0] = labels
    images[:, 0, 1, 0] = np.arange(len(labels)) % 256
    images[:, 0, 2, 0] = np.arange(len(labels)) // 256
    return LabeledImages(
        images=images,
        labels=labels,
        class_names=[f"class{c}" for c in range(len(counts))],
        image_ids=[f"toy/{i:05d}" for i in range(len(labels))],
        fingerprint="toy",
        name="toy",
        split="test",
    )


def image_numbers(x: np.ndarray) -> np.ndarray:
    return x[..., 0, 1, 0].astype(np.int64) + 256 * x[..., 0, 2, 0].astype(np.int64)


def test_task_layout_and_meta() -> None:
    data = labeled([20] * 12)
    sampler = EpisodeSampler(data, ways=5, shots=2, queries=3, seed=7)
    task = sampler.sample(0)
    assert isinstance(task, Task)
    task.check()
    assert task.support.shape == (5, 2, 6, 6, 1) and task.query.shape == (5, 3, 6, 6, 1)
    assert task.latents is None and set(task.meta) == {"classes", "source_ids"}
    assert len(task.meta["classes"]) == 5 and all(len(row) == 5 for row in task.meta["source_ids"])
    json.dumps(task.meta)  # JSON-able, as shards require
    for i in range(5):
        # Row i holds only images of the class named in meta, and source_ids name exactly those images.
        label = int(task.meta["classes"][i].removeprefix("class"))
        row = np.concatenate([task.support[i], task.query[i]])
        assert (row[:, 0, 0, 0] == label).all()
        numbers = [int(s.split("/")[1]) for s in task.meta["source_ids"][i]]
        assert image_numbers(row).tolist() == numbers


def test_without_replacement_within_every_task() -> None:
    data = labeled([7] * 6 + [12] * 4)
    sampler = EpisodeSampler(data, ways=10, shots=3, queries=4, seed=1)  # every class, every image of the small ones
    batch = sampler.tasks(0, 50)
    for task in batch:
        assert len(set(task.meta["classes"])) == 10
        ids = [i for row in task.meta["source_ids"] for i in row]
        assert len(ids) == len(set(ids)) == 70
        assert not set(image_numbers(task.support).ravel()) & set(image_numbers(task.query).ravel())


def test_episodes_depend_only_on_seed_and_index() -> None:
    data = labeled([20] * 30)
    a = EpisodeSampler(data, 5, 1, 15, seed=3)
    b = EpisodeSampler(data, 5, 1, 15, seed=3)
    batch = a.tasks(0, 40)
    assert isinstance(batch, TaskBatch) and len(batch) == 40
    assert batch.support.shape == (40, 5, 1, 6, 6, 1) and batch.query.shape == (40, 5, 15, 6, 6, 1)
    for i in (0, 17, 39):
        one = b.sample(i)
        assert np.array_equal(one.support, batch.support[i]) and np.array_equal(one.query, batch.query[i])
        assert one.meta == batch.metas[i]
    later = a.tasks(17, 5)
    assert np.array_equal(later.support, batch.support[17:22]) and later.metas == batch.metas[17:22]
    other_seed = EpisodeSampler(data, 5, 1, 15, seed=4).tasks(0, 40)
    assert other_seed.metas != batch.metas
    assert len({tuple(m["classes"]) for m in batch.metas}) == 40  # tasks differ from one another


def test_classes_and_images_are_drawn_uniformly() -> None:
    data = labeled([20] * 12)
    batch = EpisodeSampler(data, 5, 1, 1, seed=0).tasks(0, 2000)
    classes = np.array([[int(c.removeprefix("class")) for c in m["classes"]] for m in batch.metas])
    freq = np.bincount(classes.ravel(), minlength=12) / 2000
    assert np.allclose(freq, 5 / 12, atol=0.05)
    first_rows = np.bincount(classes[:, 0], minlength=12) / 2000  # row order is random too
    assert np.allclose(first_rows, 1 / 12, atol=0.03)
    numbers = image_numbers(batch.support).ravel()
    assert len(np.unique(numbers)) == 240  # every image gets used


def test_small_classes_are_left_out_and_too_few_classes_refused() -> None:
    data = labeled([20, 20, 20, 3, 20, 20])
    with pytest.warns(UserWarning, match="1 classes of toy test have fewer than 6 images"):
        sampler = EpisodeSampler(data, 5, 1, 5, seed=0)
    assert sampler.num_classes == 5
    assert all("class3" not in m["classes"] for m in sampler.tasks(0, 30).metas)
    with pytest.raises(ConfigError, match="fewer than ways=6"):
        EpisodeSampler(labeled([20] * 5), 6, 1, 5)
    with pytest.raises(ConfigError, match="at least 1"):
        EpisodeSampler(labeled([20] * 5), 5, 0, 5)
    with pytest.raises(ConfigError, match="non-negative"):
        EpisodeSampler(labeled([20] * 5), 5, 1, 5).tasks(-1, 3)
    empty = EpisodeSampler(labeled([20] * 5), 5, 1, 5).tasks(0, 0)
    assert empty.support.shape == (0, 5, 1, 6, 6, 1) and empty.metas == []
