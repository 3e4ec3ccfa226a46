"""Streaming task shards into meta-batches: endless, shuffled, split across ranks and DataLoader workers.

The pipeline of one DataLoader worker, webdataset-style::

    its shards ──(reshuffled each round, forever)──▶ checked, still encoded tasks ──shuffle buffer──▶
    decoded, layout-checked tasks ──(skip, when resuming)──▶ stack T tasks (numpy) + label permutations ──▶
    meta-batch dict

The shuffle buffer holds tasks as their shard stores them (a WebP or PNG 84×84×3 task is a fraction of its
decoded size) and a task is decoded as it leaves: a run's first meta-batch waits for its own tasks' decoding, not
for the whole buffer's, and the order of tasks is the same as decoding first would give.

Shards are read with ``lasium.shards``' safe reader (nothing is unpickled) inside each worker, which
opens its own file handles (HDF5 handles are never shared between processes). Rank r reads shards r,
r + world, …; its workers split those again, so no two readers share a shard when there are enough of
them. The stream never ends (each round reshuffles the
shards), so every rank runs the same fixed number of steps. Everything random is derived from
(seed, rank, worker, …), so a stream is reproducible, and resuming after ``b`` meta-batches replays the
stream and drops the tasks those batches used (reading, but not stacking or training on them).
A weighted mixture of shard sets (:mod:`lasium.train.mixture`) gives each source its own such
pipeline up to the shuffle buffer, and draws every next task's source by weight.

On the device (:func:`to_device`) a batch becomes float images in [0, 1] (T, N·K, C, H, W) and labels
(T, N·K): the uint8 → float conversion happens there, not in Python per image.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lasium.errors import LasiumError, ShardError
from lasium.seeding import numpy_rng
from lasium.shards.format import TaskLayout
from lasium.shards.manifest import listing
from lasium.tasks import to_device
from lasium.train.mixture import Mixture, mix
from lasium.train.shard_access import ShardSet

log = logging.getLogger(__name__)
T = TypeVar("T")

Item = tuple[str, int, np.ndarray, np.ndarray]  # (shard url, task index, support, query) of one task
# (shard url, task index, decode → (support, query)) of one task read but not decoded yet
EncodedItem = tuple[str, int, Callable[[], tuple[np.ndarray, np.ndarray]]]

MAX_AUTO_BUFFER = 1000
AUTO_BUFFER_BYTES = 256 << 20


def auto_shuffle_buffer(layout: TaskLayout) -> int:
    """About 256 MB of tasks, at most 1000 (a 5-way 1+5-shot 28×28 task is 24 KB)."""
    task_bytes = layout.ways * (layout.shots + layout.queries) * int(np.prod(layout.image_shape))
    return int(max(1, min(MAX_AUTO_BUFFER, AUTO_BUFFER_BYTES // max(1, task_bytes))))


def split_shards(urls: list[str], rank: int, world_size: int, worker: int, workers: int) -> tuple[list[str], bool]:
    """The shards one worker of one rank reads, and whether it shares them with its rank's other workers.

    Ranks always get disjoint shards (an error if there are fewer shards than ranks). Workers split
    their rank's shards when there are at least as many shards as workers; otherwise every worker reads
    all of its rank's shards, in its own random order.
    """
    if len(urls) < world_size:
        raise ShardError(
            f"{len(urls)} shard(s) cannot feed {world_size} ranks: every rank needs its own shards; "
            "write the set with more, smaller shards"
        )
    mine = urls[rank::world_size]
    if len(mine) >= workers:
        return mine[worker::workers], False
    return mine, True


def shuffled(items: Iterator[T], size: int, rng: np.random.Generator) -> Iterator[T]:
    """A shuffle buffer: fill ``size`` items, then emit a random one and put the next in its place."""
    buffer: list[T] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = int(rng.integers(size))
        buffer[j], item = item, buffer[j]
        yield item
    rng.shuffle(buffer)  # only reached when the input ends (one-round streams); training streams are endless
    yield from buffer


def batches_before(position: int, worker: int, workers: int) -> int:
    """Meta-batches worker ``worker`` delivered among the first ``position`` (DataLoader's round-robin order)."""
    return len(range(worker, position, workers))


class TaskStream(IterableDataset):
    """Endless meta-batches from a shard set for one rank; iterate it through :func:`make_loader`.

    Each item holds ``group`` meta-batches of ``meta_batch`` tasks (G·T tasks; larger items mean fewer,
    cheaper transfers between processes, which matters when a step takes milliseconds): ``support`` uint8
    (G·T, N, K_tr, H, W, C), ``query`` uint8 (G·T, N, K_val, H, W, C), ``perm`` int64 (G·T, N) (class row i
    of task t gets label ``perm[t, i]``, a fresh permutation per task, so no class position leaks),
    ``shards`` (the shard of each task), ``indices`` int64 (G·T,) (each task's index in its set), ``skipped``
    (shards this worker skipped under ``skip_corrupt`` since its previous item: ``{"shard", "unread"}``
    records, ``unread`` = tasks it did not deliver, None when no manifest tells). :func:`meta_batches` splits
    items into meta-batches.
    ``start`` = meta-batches already consumed (resume); the first item is then cut to the rest of its
    group. A worker that hits a user error yields ``{"error": message}`` instead of raising, so the
    message reaches the trainer as one line. ``mixture``: draw tasks from its sources by weight (when
    it is weighted; else the shard set's shards are pooled).

    ``skip_corrupt``: a shard that cannot be read, or whose bytes differ from its manifest entry, is skipped
    with a warning and never read again in the run; a worker whose own shards are all skipped reads its
    rank's other shards instead, so skipping works with any worker count. Only when no shard of the rank
    is left does the stream stop (one line).
    """

    def __init__(
        self,
        shard_set: ShardSet,
        meta_batch: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        workers: int = 0,
        shuffle_buffer: int | None = None,
        skip_corrupt: bool = False,
        start: int = 0,
        group: int = 1,
        endless: bool = True,
        mixture: Mixture | None = None,
    ) -> None:
        super().__init__()
        self.shard_set = shard_set
        self.meta_batch, self.group = int(meta_batch), max(1, int(group))
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.loader_workers = int(workers)
        self.readers = max(1, self.loader_workers)  # streams per rank (the main process counts as one)
        self.buffer = int(shuffle_buffer or auto_shuffle_buffer(shard_set.layout))
        self.skip_corrupt = skip_corrupt
        self.start_item, self.start_offset = divmod(int(start), self.group)
        self.endless = endless
        self.mixture = mixture if mixture is not None and mixture.weighted else None
        self._skipped: list[dict[str, Any]] = []  # skips not yet reported in an item (per worker process)
        self._bad: set[str] = set()  # shards skipped under skip_corrupt: never read again in this iteration
        split_shards(shard_set.urls, self.rank, self.world_size, 0, self.readers)  # fail early on too few shards
        if self.mixture is not None:
            self.mixture.check_ranks(self.world_size)

    def _reader_index(self) -> int:
        info = get_worker_info()
        if info is None:
            return 0
        if info.num_workers != self.readers:
            raise RuntimeError(
                f"TaskStream built for {self.readers} workers runs in a DataLoader with {info.num_workers}"
            )
        # The DataLoader takes items round-robin starting at worker 0; after `start_item` items the next one is
        # due from reader start_item % workers, so worker i plays reader (i + start_item) % workers.
        return (info.id + self.start_item) % self.readers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        reader = self._reader_index()
        self._skipped, self._bad = [], set()
        try:
            yield from self._batches(reader)
        except LasiumError as exc:
            yield {"error": str(exc), "error_type": type(exc).__name__}

    def _skip(self, url: str, delivered: int | None, exc: LasiumError) -> None:
        """Record a skipped shard; ``delivered``: its tasks read before the failure (None: not known)."""
        entry = self.shard_set.entries.get(url)
        unread = None if entry is None or delivered is None else max(0, entry.num_tasks - delivered)
        self._skipped.append({"shard": url, "unread": unread})
        message = str(exc).removeprefix(f"{url}: ")
        log.warning("skipping shard %s (--skip-corrupt): %s", url, message)

    def _items(self, urls: list[str], rank_urls: list[str], reader: int, *key: object) -> Iterator[EncodedItem]:
        """Tasks of ``urls``, still encoded, in a fresh random shard order each round, forever (or one round).

        ``rank_urls``: all of the rank's shards (of this source), read instead once every shard of ``urls``
        was skipped. ``key`` names a mixture source.
        """
        bad = self._bad
        pool = urls
        round_index = 0
        while True:
            order = numpy_rng(self.seed, "shard-order", self.rank, reader, round_index, *key).permutation(len(pool))
            produced = 0
            for i in order:
                url = pool[int(i)]
                if url in bad:
                    continue
                delivered = 0
                try:
                    for index, decode in self.shard_set.lazy_tasks(url):
                        if url in bad:  # one of its tasks failed to decode (below, in _decoded): read no more
                            break
                        delivered += 1
                        yield url, index, decode
                except LasiumError as exc:
                    if not self.skip_corrupt:
                        raise
                    bad.add(url)  # never read again in this run
                    self._skip(url, delivered, exc)
                produced += delivered
            round_index += 1
            if produced == 0:
                if pool is urls and any(u not in bad for u in rank_urls if u not in urls):
                    pool = rank_urls  # this reader's own shards are all skipped: read the rank's others
                    log.warning(
                        "every shard of reader %d (rank %d) was skipped; it reads the rank's other %d shard(s) instead",
                        reader,
                        self.rank,
                        len(rank_urls) - len(urls),
                    )
                    continue
                raise ShardError(
                    f"no readable task left in the {len(rank_urls)} shard(s) of rank {self.rank} "
                    f"(first {rank_urls[0]})" + ("; every one was skipped" if bad else "")
                )
            if not self.endless:
                return

    def _decoded(self, items: Iterator[EncodedItem]) -> Iterator[Item]:
        """Decode each task as it leaves the shuffle buffer. Under ``skip_corrupt`` a task that does not decode is
        dropped and its shard is skipped (read no more, reported like a shard that cannot be read)."""
        for url, index, decode in items:
            try:
                support, query = decode()
            except LasiumError as exc:
                if not self.skip_corrupt:
                    raise
                if url not in self._bad:
                    self._bad.add(url)
                    self._skip(url, None, exc)
                continue
            yield url, index, support, query

    def _shuffled_items(self, reader: int) -> Iterator[Item]:
        """This reader's shuffled tasks: of its shards, or, for a weighted mixture, of each source's, mixed by
        weight."""
        if self.mixture is None:
            urls, _ = split_shards(self.shard_set.urls, self.rank, self.world_size, reader, self.readers)
            rank_urls = self.shard_set.urls[self.rank :: self.world_size]
            return self._decoded(
                shuffled(
                    self._items(urls, rank_urls, reader),
                    self.buffer,
                    numpy_rng(self.seed, "shuffle-buffer", self.rank, reader),
                )
            )
        streams = []
        buffer = max(1, self.buffer // len(self.mixture.sources))  # the memory of one buffer, shared
        for i, source in enumerate(self.mixture.sources):
            urls, _ = split_shards(source.urls, self.rank, self.world_size, reader, self.readers)
            rank_urls = source.urls[self.rank :: self.world_size]
            rng = numpy_rng(self.seed, "shuffle-buffer", self.rank, reader, "source", i)
            streams.append(self._decoded(shuffled(self._items(urls, rank_urls, reader, "source", i), buffer, rng)))
        return mix(streams, self.mixture.probabilities(), numpy_rng(self.seed, "mixture", self.rank, reader))

    def _batches(self, reader: int) -> Iterator[dict[str, Any]]:
        items = self._shuffled_items(reader)
        size, N = self.meta_batch * self.group, self.shard_set.layout.ways
        done = batches_before(self.start_item, reader, self.readers)
        for _ in range(done * size):  # resuming: the tasks of items consumed before the checkpoint
            if next(items, None) is None:
                return
        # the item in progress at the checkpoint comes from this reader: drop its meta-batches already used
        cut = self.start_offset * self.meta_batch if reader == self.start_item % self.readers else 0
        pending: list[Item] = []
        for item in items:
            pending.append(item)
            if len(pending) < size:
                continue
            global_index = done * self.readers + reader  # this item's position in the rank's stream
            rng = numpy_rng(self.seed, "labels", self.rank, global_index)
            perm = np.stack([rng.permutation(N) for _ in range(size)]).astype(np.int64)
            skipped, self._skipped = self._skipped, []
            yield {
                "support": np.stack([it[2] for it in pending[cut:]]),
                "query": np.stack([it[3] for it in pending[cut:]]),
                "perm": perm[cut:],
                "shards": [it[0] for it in pending[cut:]],
                "indices": np.array([it[1] for it in pending[cut:]], dtype=np.int64),
                "skipped": skipped,
            }
            done += 1
            cut = 0
            pending = []


def make_loader(stream: TaskStream, *, pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ``stream`` with its worker count; batching already happened in the workers."""
    workers = stream.loader_workers
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


@dataclass
class SkippedShards:
    """The shards a run skipped under ``--skip-corrupt``, gathered from the items of every worker: shard URL →
    tasks it did not deliver (None: no manifest entry tells how many)."""

    unread: dict[str, int | None] = field(default_factory=dict)

    def record(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            unread = event["unread"]
            self.unread.setdefault(str(event["shard"]), None if unread is None else int(unread))

    def __bool__(self) -> bool:
        return bool(self.unread)

    def summary(self) -> str:
        """One line: how many shards and tasks were skipped, and which shards."""
        known = [n for n in self.unread.values() if n is not None]
        unknown = len(self.unread) - len(known)
        tasks = f"{sum(known)} task(s)"
        if unknown:
            tasks += (
                f" and an unknown number of tasks of {unknown} shard(s) (no manifest, or a task that did not decode)"
            )
        return (
            f"--skip-corrupt skipped {len(self.unread)} shard(s), {tasks} not trained on: "
            f"{listing(sorted(self.unread), 3)}"
        )


def meta_batches(
    items: Iterator[dict[str, Any]], meta_batch: int, device: torch.device, skipped: SkippedShards | None = None
) -> Iterator[tuple[tuple[torch.Tensor, ...], list[str]]]:
    """Meta-batches on ``device`` from loader items: ((support, labels, query, labels), shards), item by item.

    Each item goes to the device in one copy and is sliced there. ``skipped`` collects the items' skip records.
    """
    for item in items:
        item = check_batch(item)
        if skipped is not None:
            skipped.record(item.get("skipped", []))
        s, sl, q, ql = to_device(item["support"], item["query"], item["perm"], device)
        for a in range(0, s.shape[0], meta_batch):
            yield (
                (s[a : a + meta_batch], sl[a : a + meta_batch], q[a : a + meta_batch], ql[a : a + meta_batch]),
                item["shards"][a : a + meta_batch],
            )


def check_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Raise the worker's error in the trainer's process (one line), else return the batch."""
    if "error" in batch:
        raise ShardError(batch["error"])
    return batch
