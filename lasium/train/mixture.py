"""Task mixtures: ``--shards A:0.7 --shards B:0.3`` trains on tasks drawn from several shard sets in set proportions.

A ``--shards`` value may end in ``:<weight>`` (a positive number); only such a *trailing* number is a
weight, so URLs and paths with colons keep working: ``pipe:aws s3 cp s3://b/x.tar -``, ``http://host:8080``
(a port after a bare host is not a weight), and a path that exists as written (a folder named ``set:2``)
are sources without a weight. Give a weight to every source or to none.

* With weights (several sources), every stream (one per rank and DataLoader worker) reads each source
  on its own (its share of that source's shards, its own shuffle buffer) and draws, for every next task,
  the source with probability weight / Σ weights, from ``default_rng(derive_seed(seed, "mixture", rank,
  reader))``. The draw depends only on the task's position in the stream, so a stream is reproducible
  and the trainer's resume (which replays the stream) continues it exactly.
* Without weights the sources are pooled as before: every round reads each task once, so each source
  contributes in proportion to its task count.

The run config records the mixture (``TrainConfig.mixture``): the sampling (``weighted`` or ``pooled``)
and, per source, its weight (normalised), task count and shard count. Task mixtures as a way to combine
unsupervised task constructions: LASIUM (Khodadadeh et al., ICLR 2021) with UMTRA (NeurIPS 2019) or
CACTUs (Hsu et al., ICLR 2019).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from lasium.errors import ConfigError, LasiumError
from lasium.shards.format import SIDECAR_SUFFIX
from lasium.shards.manifest import read_sidecar
from lasium.shards.streams import url_to_path
from lasium.train.shard_access import ShardSet, expand_sources, open_shard_set

T = TypeVar("T")
_WEIGHT = re.compile(r"(?P<source>.+):(?P<weight>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")
_URL_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/]*")  # scheme://host, where ':<digits>' is a port
MIX_BLOCK = 4096  # source draws per call of the random generator


def split_weight(text: str) -> tuple[str, float | None]:
    """``"A:0.5"`` → ``("A", 0.5)``; a value without a trailing ``:<number>`` (or a URL port, or an existing
    path) → ``(text, None)``."""
    m = _WEIGHT.fullmatch(text)
    if m is None or _URL_AUTHORITY.fullmatch(m["source"]) or Path(text).exists():
        return text, None
    weight = float(m["weight"])
    if not (math.isfinite(weight) and weight > 0):
        raise ConfigError(
            f"--shards {text}: the weight after the last ':' must be a positive number, got {m['weight']}"
        )
    return m["source"], weight


@dataclass
class MixtureSource:
    """One ``--shards`` source of a mixture: its shard URLs and what is known of its size."""

    source: str
    urls: list[str]
    weight: float | None = None  # as given; None = not given
    num_tasks: int | None = None  # None = unknown (shards without manifest or sidecars)


@dataclass
class Mixture:
    """The sources of a run and how tasks are drawn from them (``weighted`` or ``pooled``)."""

    sources: list[MixtureSource]

    @property
    def weighted(self) -> bool:
        """Tasks are drawn by weight (weights given, several sources); else the shards are pooled."""
        return len(self.sources) > 1 and all(s.weight is not None for s in self.sources)

    def probabilities(self) -> np.ndarray:
        """Normalised weights: the given ones, else task counts (NaN where a count is unknown)."""
        weights = [s.weight for s in self.sources if s.weight is not None]
        counts = [s.num_tasks for s in self.sources if s.num_tasks is not None]
        if self.weighted:  # every source has a weight
            w = np.array([float(x) for x in weights])
        elif len(counts) == len(self.sources):
            w = np.array([float(x) for x in counts])
        else:
            return np.full(len(self.sources), np.nan)
        return w / w.sum()

    def record(self) -> dict[str, Any]:
        """For the run config: sampling, and per source its normalised weight, task and shard counts."""
        p = self.probabilities()
        return {
            "sampling": "weighted" if self.weighted else "pooled",
            "sources": [
                {
                    "source": s.source,
                    "weight": None if math.isnan(w) else round(float(w), 12),
                    "num_tasks": s.num_tasks,
                    "num_shards": len(s.urls),
                }
                for s, w in zip(self.sources, p.tolist())
            ],
        }

    def check_ranks(self, world_size: int) -> None:
        """A weighted mixture splits every source across ranks: each needs a shard per rank."""
        if not self.weighted:
            return
        for s in self.sources:
            if len(s.urls) < world_size:
                raise ConfigError(
                    f"--shards {s.source}: {len(s.urls)} shard(s) cannot feed {world_size} ranks in a weighted mixture "
                    "(every rank reads every source); write the set with more, smaller shards"
                )


def _task_count(urls: list[str], manifest: Any) -> int | None:
    if manifest is not None:
        return int(manifest.num_tasks)
    total = 0
    for url in urls:
        path = url_to_path(url) if not url.startswith("pipe:") else None
        sidecar = path.with_name(path.name + SIDECAR_SUFFIX) if path is not None else None
        if sidecar is None or not sidecar.is_file():
            return None
        try:
            total += read_sidecar(sidecar)[1].num_tasks
        except LasiumError:
            return None
    return total


def open_mixture(values: str | Path | Sequence[str | Path], *, allow_partial: bool = False) -> tuple[ShardSet, Mixture]:
    """Resolve ``--shards`` values (each maybe with a ``:<weight>``) to the union :class:`ShardSet` and the
    :class:`Mixture` (``allow_partial``: accept sets without a manifest that miss task ranges, see
    :func:`lasium.train.shard_access.open_shard_set`)."""
    if isinstance(values, (str, Path)):
        values = [values]
    parsed = [split_weight(str(v)) for v in values]
    given = [w is not None for _, w in parsed]
    if any(given) and not all(given):
        missing = next(str(v) for v, g in zip(values, given) if not g)
        raise ConfigError(
            "give a weight to every --shards source or to none (e.g. "
            f"--shards A:0.7 --shards B:0.3); {missing} has none"
        )
    sources = [source for source, _ in parsed]
    shard_set = open_shard_set(sources, allow_partial=allow_partial)  # layouts agree, shards exist, none twice
    mixture = []
    for source, weight in parsed:
        # a folder of shard sets stands for its sets; its weight is shared by task count
        sets, _ = expand_sources([source], allow_partial=allow_partial)
        counted = [(s, *shard_set.resolved[s]) for s in sets]  # as open_shard_set resolved them: no second GET
        tasks = [_task_count(urls, manifest) for _, urls, manifest in counted]
        total = sum(n or 0 for n in tasks)
        for (name, urls, _), n in zip(counted, tasks):
            share = (
                None
                if weight is None
                else (weight * (n or 0) / total if total and None not in tasks else weight / len(sets))
            )
            mixture.append(MixtureSource(name, urls, share, n))
    return shard_set, Mixture(mixture)


def mix(streams: Sequence[Iterator[T]], probabilities: np.ndarray, rng: np.random.Generator) -> Iterator[T]:
    """Items from ``streams``: each next item from stream i with probability ``probabilities[i]``.

    The choices are drawn in blocks from ``rng``.

    Ends when a chosen stream ends (only one-round streams end).
    """
    cumulative = np.cumsum(np.asarray(probabilities, dtype=np.float64))
    cumulative[-1] = 1.0
    while True:
        for choice in np.searchsorted(cumulative, rng.random(MIX_BLOCK), side="right").tolist():
            item = next(streams[choice], None)
            if item is None:
                return
            yield item


__all__ = ["Mixture", "MixtureSource", "mix", "open_mixture", "split_weight"]
