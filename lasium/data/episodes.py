"""Real labeled few-shot episodes: the one source of real tasks in lasium.

The trainer's validation, ``lasium-eval`` and ``lasium-gen --source real`` all draw their tasks here,
so one (split, ways, shots, queries, seed) gives the same tasks everywhere. Episodes follow the
N-way K-shot protocol of Vinyals et al. (Matching Networks, NeurIPS 2016), as used by MAML (Finn et
al., ICML 2017) and LASIUM (Khodadadeh et al., ICLR 2021): N distinct classes, then K support and Q
query images per class, all distinct.

Example::

    from lasium.data import EpisodeSampler, load_split
    sampler = EpisodeSampler(load_split("omniglot", "test"), ways=5, shots=1, queries=15, seed=0)
    batch = sampler.tasks(0, 1000)          # TaskBatch: support (1000, 5, 1, 28, 28, 1) uint8
    task = sampler.sample(17)               # == batch.task(17), on any machine
"""

from __future__ import annotations

import warnings

import numpy as np

from lasium.data.datasets import LabeledImages
from lasium.errors import ConfigError
from lasium.seeding import numpy_rng
from lasium.tasks import Task, TaskBatch


class EpisodeSampler:
    """N-way, K-shot, Q-query episodes from a labeled split; episode ``i`` depends only on (seed, i).

    Within an episode the N classes are distinct and the K + Q images of each class are distinct
    (drawn without replacement); class ``i`` is row ``i`` of support and query. Classes with fewer
    than K + Q images cannot fill a row and are left out (with a warning).
    ``Task.meta`` = ``{"classes": [N class names], "source_ids": [[K + Q image ids per row, support first]]}``.
    """

    def __init__(self, images: LabeledImages, ways: int, shots: int, queries: int, seed: int = 0) -> None:
        if ways < 1 or shots < 1 or queries < 1:
            raise ConfigError(f"ways, shots and queries must be at least 1, got {ways}, {shots}, {queries}")
        self.images = images
        self.ways, self.shots, self.queries, self.seed = int(ways), int(shots), int(queries), int(seed)
        per_class = self.shots + self.queries
        counts = images.class_counts()
        eligible = np.flatnonzero(counts >= per_class)
        where = f"{images.name} {images.split}"
        if len(eligible) < self.ways:
            raise ConfigError(
                f"{where} has {len(eligible)} classes with at least {per_class} images (shots + queries), "
                f"fewer than ways={ways}; lower --ways, --shots or --queries"
            )
        if len(eligible) < images.num_classes:
            warnings.warn(
                f"{images.num_classes - len(eligible)} classes of {where} have fewer than {per_class} images "
                "and are never sampled",
                stacklevel=2,
            )
        # members[c, j] = index of the j-th image of eligible class c (padded with 0, masked by `filled`).
        order = np.argsort(images.labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)])
        width = int(counts[eligible].max())
        self._classes = eligible
        self._members = np.zeros((len(eligible), width), np.int64)
        self._filled = np.zeros((len(eligible), width), bool)
        for row, c in enumerate(eligible.tolist()):
            n = int(counts[c])
            self._members[row, :n] = order[starts[c] : starts[c] + n]
            self._filled[row, :n] = True
        self._ids = np.asarray(images.image_ids, dtype=object)
        self._names = np.asarray(images.class_names, dtype=object)

    @property
    def num_classes(self) -> int:
        """Classes episodes are drawn from."""
        return int(len(self._classes))

    def _draw(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(class labels (N,), image indices (N, K + Q)) of episode ``index``."""
        rng = numpy_rng(self.seed, "episode", int(index))
        # Random keys and a partial sort: N classes without replacement, in random order. Only
        # `Generator.random` is used (no choice/shuffle), the plainest and most stable numpy stream.
        keys = rng.random(len(self._classes))
        top = np.argpartition(keys, self.ways - 1)[: self.ways]
        rows = top[np.argsort(keys[top], kind="stable")]
        image_keys = rng.random((self.ways, self._members.shape[1]))
        image_keys[~self._filled[rows]] = 2.0  # padding sorts last
        cols = np.argsort(image_keys, axis=1, kind="stable")[:, : self.shots + self.queries]
        return self._classes[rows], self._members[rows[:, None], cols]

    def tasks(self, start: int, count: int) -> TaskBatch:
        """Episodes ``start .. start + count - 1`` as one :class:`TaskBatch` (gathered with one fancy index)."""
        if start < 0 or count < 0:
            raise ConfigError(f"episode range must be non-negative, got start={start}, count={count}")
        per_class = self.shots + self.queries
        picks = np.empty((count, self.ways, per_class), np.int64)
        classes = np.empty((count, self.ways), np.int64)
        for t in range(count):
            classes[t], picks[t] = self._draw(start + t)
        support = self.images.images[picks[:, :, : self.shots]]
        query = self.images.images[picks[:, :, self.shots :]]
        names = self._names[classes].tolist()
        ids = self._ids[picks].tolist()
        metas = [{"classes": names[t], "source_ids": ids[t]} for t in range(count)]
        return TaskBatch(support, query, None, metas)

    def sample(self, index: int) -> Task:
        """Episode ``index``: the same task for the same (seed, index), however it is asked for."""
        return self.tasks(int(index), 1).task(0)

    def __repr__(self) -> str:
        return (
            f"EpisodeSampler({self.images.name} {self.images.split}, ways={self.ways}, shots={self.shots}, "
            f"queries={self.queries}, seed={self.seed})"
        )
