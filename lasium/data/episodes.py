"""Real labeled few-shot episodes: the one source of real tasks in lasium.

The trainer's validation, ``lasium-eval`` and ``lasium-gen --source real`` all draw their tasks here,
so one (split, ways, shots, queries, seed) gives the same tasks everywhere. :func:`episode_sampler` picks the
sampler by the split's ``task_kind``: :class:`EpisodeSampler` over classes, :class:`AttributeEpisodeSampler`
for the CelebA attribute tasks of Hsu et al. (ICLR 2019). Episodes follow the
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

from lasium.data.attributes import attribute_pools
from lasium.data.datasets import LabeledImages
from lasium.errors import ConfigError, DataError
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
        if images.task_kind != "classes":
            raise ConfigError(
                f"{images.name} tasks are not drawn from its classes ({images.task_kind}): build the sampler with "
                "lasium.data.episode_sampler(images, ...)"
            )
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


class AttributeEpisodeSampler:
    """2-way K-shot Q-query CelebA attribute tasks (Hsu, Levine & Finn, ICLR 2019; the protocol LASIUM follows):
    episode ``i`` depends only on (seed, i).

    A task is one pool of :func:`lasium.data.attributes.attribute_pools` (three attributes of the split's
    columns and their values) drawn uniformly; its two classes, in random order, are the images with those
    values and the images with all three negated (disjoint by construction); K + Q distinct images are drawn
    from each. Only pools whose classes hold more than 10 images and at least K + Q are used.
    ``Task.meta`` = ``{"classes": ["Bald=0 & Bangs=1 & Big_Lips=1", "Bald=1 & Bangs=0 & Big_Lips=0"],
    "attributes": [three column indices], "source_ids": [[K + Q image ids per row, support first]]}``.
    """

    def __init__(self, images: LabeledImages, ways: int, shots: int, queries: int, seed: int = 0) -> None:
        if shots < 1 or queries < 1:
            raise ConfigError(f"shots and queries must be at least 1, got {shots}, {queries}")
        if ways != 2:
            raise ConfigError(
                f"{images.name} tasks are 2-way (an attribute conjunction and its negation), got ways={ways}; "
                "use --ways 2"
            )
        table = images.attributes
        if table is None or table.split is None:
            raise DataError(f"{images.name} {images.split} has no attribute table: attribute tasks need CelebA")
        self.images = images
        self.ways, self.shots, self.queries, self.seed = 2, int(shots), int(queries), int(seed)
        self.table = table
        self.pools, self.pool_sizes = attribute_pools(table, self.shots + self.queries)
        if not self.pools:
            raise ConfigError(
                f"{images.name} {images.split} has no attribute pool with more than {table.min_exclusive} and at "
                f"least {self.shots + self.queries} (shots + queries) images on each side among attributes "
                f"{table.describe_range()}; lower --shots or --queries"
            )
        self._values = np.asarray(table.values, bool)
        self._ids = np.asarray(images.image_ids, dtype=object)

    @property
    def num_classes(self) -> int:
        """Task pools episodes are drawn from (each gives two classes)."""
        return len(self.pools)

    def _draw(self, index: int) -> tuple[int, bool, np.ndarray]:
        """(pool, class order swapped, image indices (2, K + Q)) of episode ``index``."""
        rng = numpy_rng(self.seed, "attribute-episode", int(index))
        pool = int(rng.random() * len(self.pools)) % len(self.pools)
        swapped = bool(rng.random() < 0.5)
        rows = []
        for negate in (swapped, not swapped):
            members = self.pools[pool].members(self._values, negate)
            keys = rng.random(len(members))
            pick = np.argpartition(keys, self.shots + self.queries - 1)[: self.shots + self.queries]
            rows.append(members[pick[np.argsort(keys[pick], kind="stable")]])
        return pool, swapped, np.stack(rows)

    def tasks(self, start: int, count: int) -> TaskBatch:
        """Episodes ``start .. start + count - 1`` as one :class:`TaskBatch`."""
        if start < 0 or count < 0:
            raise ConfigError(f"episode range must be non-negative, got start={start}, count={count}")
        picks = np.empty((count, 2, self.shots + self.queries), np.int64)
        metas = []
        for t in range(count):
            pool, swapped, picks[t] = self._draw(start + t)
            p = self.pools[pool]
            names = [p.describe(self.table.names, negate) for negate in (swapped, not swapped)]
            metas.append({"classes": names, "attributes": list(p.columns), "source_ids": self._ids[picks[t]].tolist()})
        support = self.images.images[picks[:, :, : self.shots]]
        query = self.images.images[picks[:, :, self.shots :]]
        return TaskBatch(support, query, None, metas)

    def sample(self, index: int) -> Task:
        """Episode ``index``: the same task for the same (seed, index), however it is asked for."""
        return self.tasks(int(index), 1).task(0)

    def __repr__(self) -> str:
        return (
            f"AttributeEpisodeSampler({self.images.name} {self.images.split}, pools={len(self.pools)}, "
            f"shots={self.shots}, queries={self.queries}, seed={self.seed})"
        )


# How each kind of labeled split (LabeledImages.task_kind) is turned into real tasks.
EPISODE_SAMPLERS: dict[str, type[EpisodeSampler] | type[AttributeEpisodeSampler]] = {
    "classes": EpisodeSampler,
    "attributes": AttributeEpisodeSampler,
}


def episode_sampler(
    images: LabeledImages, ways: int, shots: int, queries: int, seed: int = 0
) -> EpisodeSampler | AttributeEpisodeSampler:
    """The sampler of real tasks for ``images``, by its ``task_kind``: :class:`EpisodeSampler` for class labels,
    :class:`AttributeEpisodeSampler` for CelebA attributes. Every consumer of real tasks (evaluation, the
    trainer's validation, ``lasium-gen --source real``) should build its sampler here."""
    sampler = EPISODE_SAMPLERS.get(images.task_kind)
    if sampler is None:
        raise ConfigError(f"{images.name} has task kind {images.task_kind!r}; known: {', '.join(EPISODE_SAMPLERS)}")
    return sampler(images, ways, shots, queries, seed)
