"""CACTUs tasks: classes are k-means clusters of an unsupervised embedding, over many partitions.

Hsu, Levine and Finn, "Unsupervised Learning via Meta-Learning" (CACTUs, ICLR 2019). Every unlabeled
train image is embedded (z, one row per image); k-means with k clusters is run P times: partition 0
clusters the raw embeddings, partition p ≥ 1 clusters ``z ⊙ w_p`` with one ``w_p ~ U[0, 1)^d`` drawn per
partition (the paper's random scaling, so the partitions differ). Clusters with fewer than
K_tr + K_val members are dropped. A task: a random partition, N of its kept clusters, and
K_tr + K_val distinct images of each (support first).

k-means is scikit-learn's ``KMeans`` (k-means++ initialisation), an optional dependency
(``pip install 'lasium[cactus]'``). Partitions are cached under ``LASIUM_CACHE/cactus``, keyed by the
embedding's digest and the parameters that shape them, as ``.npy`` (``allow_pickle=False``) plus JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lasium.errors import ConfigError
from lasium.safe_io import replace_atomically, write_json_atomic
from lasium.seeding import derive_seed, numpy_rng

CLUSTERS = 500
PARTITIONS = 100
N_INIT = 1
MAX_ITER = 300
CACHE_FORMAT = "lasium-cactus-partitions-v1"
INSTALL_HINT = "pip install 'lasium[cactus]'"


@dataclass(frozen=True)
class CactusSpec:
    """What defines CACTUs partitions (``clusters``, ``partitions``, ``scaling``) and tasks (the rest)."""

    ways: int = 5
    shots: int = 1
    queries: int = 5
    clusters: int = CLUSTERS
    partitions: int = PARTITIONS
    scaling: bool = True
    min_cluster_size: int | None = None  # None = shots + queries

    @property
    def members(self) -> int:
        return self.shots + self.queries

    @property
    def min_size(self) -> int:
        return self.members if self.min_cluster_size is None else int(self.min_cluster_size)

    def check(self) -> None:
        if self.clusters < 2:
            raise ConfigError(f"--clusters must be at least 2, got {self.clusters}")
        if self.partitions < 1:
            raise ConfigError(f"--partitions must be at least 1, got {self.partitions}")
        if self.min_size < self.members:
            raise ConfigError(
                f"--min-cluster-size {self.min_size} is below K_tr + K_val = {self.members}: "
                "a class needs that many distinct images"
            )

    def clustering_record(self) -> dict[str, Any]:
        """How the partitions were made (the manifest's ``source.clustering``; also the cache key's parameters)."""
        return {
            "algorithm": "sklearn.cluster.KMeans",
            "init": "k-means++",
            "n_init": N_INIT,
            "max_iter": MAX_ITER,
            "clusters": int(self.clusters),
            "partitions": int(self.partitions),
            "scaling": bool(self.scaling),
            "scale": (
                "partition 0 raw; partition p >= 1 clusters z * w_p, "
                "w_p = default_rng(derive_seed(seed, 'cactus-scale', p)).random(d)"
            )
            if self.scaling
            else "every partition clusters the raw embeddings (differing only by k-means++ seeds)",
            "random_state": "derive_seed(seed, 'cactus-kmeans', p) mod 2**32",
            "dtype": "float64",
        }


def embedding_digest(embeddings: np.ndarray) -> str:
    """sha256 of a float32 embedding matrix (its shape and bytes)."""
    z = np.ascontiguousarray(embeddings, dtype=np.float32)
    h = hashlib.sha256(json.dumps({"shape": list(z.shape), "dtype": "<f4"}).encode())
    h.update(z.astype("<f4", copy=False).tobytes())
    return h.hexdigest()


def check_embeddings(embeddings: np.ndarray, num_images: int, what: str) -> np.ndarray:
    """A finite float32 (M, d) matrix with one row per image, or a one-line :class:`ConfigError`."""
    z = np.asarray(embeddings)
    if z.ndim != 2 or z.dtype.kind not in "fiu":
        raise ConfigError(
            f"{what} must be a 2-D numeric array (images × dimensions), got shape {z.shape} dtype {z.dtype}"
        )
    if z.shape[0] != num_images:
        raise ConfigError(
            f"{what} has {z.shape[0]} rows but the train split has {num_images} images; "
            "give one row per image, in the order of load_unlabeled(dataset).image_ids"
        )
    z = z.astype(np.float32)
    if not np.isfinite(z).all():
        raise ConfigError(f"{what} holds NaN or infinite values")
    return z


def _kmeans() -> Any:
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ConfigError(f"--source cactus needs scikit-learn for k-means: {INSTALL_HINT}") from None
    return KMeans


def compute_partitions(
    embeddings: np.ndarray, spec: CactusSpec, seed: int, *, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """Cluster labels (P, M) int32 of the P partitions (k-means++ with scikit-learn, one run each)."""
    KMeans = _kmeans()
    z = np.asarray(embeddings, dtype=np.float64)
    if spec.clusters > len(z):
        raise ConfigError(
            f"--clusters {spec.clusters} is larger than the number of images ({len(z)}); lower --clusters"
        )
    labels = np.empty((spec.partitions, len(z)), np.int32)
    for p in range(spec.partitions):
        x = z * numpy_rng(seed, "cactus-scale", p).random(z.shape[1]) if spec.scaling and p > 0 else z
        km = KMeans(
            n_clusters=spec.clusters,
            init="k-means++",
            n_init=N_INIT,
            max_iter=MAX_ITER,
            random_state=derive_seed(seed, "cactus-kmeans", p) % 2**32,
        )
        labels[p] = km.fit_predict(x)
        if progress is not None:
            progress(p + 1)
    return labels


def cache_key(digest: str, spec: CactusSpec, seed: int) -> str:
    material = {
        "format": CACHE_FORMAT,
        "embedding_sha256": digest,
        "seed": int(seed),
        "clustering": spec.clustering_record(),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:24]


def load_cached(folder: Path, key: str, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached labels, or None when absent, stale or damaged (then they are computed again)."""
    index, array = folder / f"{key}.json", folder / f"{key}.npy"
    if not index.is_file() or not array.is_file():
        return None
    try:
        record = json.loads(index.read_text())
        labels = np.load(array, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if (
        record.get("format") != CACHE_FORMAT
        or record.get("key") != key
        or labels.dtype != np.int32
        or labels.shape != shape
    ):
        return None
    if hashlib.sha256(labels.tobytes()).hexdigest() != record.get("labels_sha256"):
        return None
    return labels


def save_cached(folder: Path, key: str, labels: np.ndarray, record: dict[str, Any]) -> bool:
    """Write the labels then their JSON index (the entry counts once the JSON exists); False if not writable."""

    def write_array(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, labels, allow_pickle=False)

    try:
        replace_atomically(folder / f"{key}.npy", write_array)
        write_json_atomic(
            folder / f"{key}.json",
            {
                **record,
                "format": CACHE_FORMAT,
                "key": key,
                "labels_sha256": hashlib.sha256(labels.tobytes()).hexdigest(),
            },
        )
    except OSError:
        return False
    return True


def cached_partitions(
    embeddings: np.ndarray,
    spec: CactusSpec,
    seed: int,
    folder: Path,
    *,
    log: Callable[[str], None] = print,
    verbose: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The partitions of ``embeddings`` from the cache, else computed and cached; and a record of the cache use.

    ``log`` gets a line before a (long) clustering when ``verbose``, and a warning when the cache cannot be written.
    """
    digest = embedding_digest(embeddings)
    key = cache_key(digest, spec, seed)
    shape = (spec.partitions, int(len(embeddings)))
    labels = load_cached(folder, key, shape)
    if labels is not None:
        return labels, {"key": key, "status": "hit", "embedding_sha256": digest}
    if spec.clusters > len(embeddings):
        raise ConfigError(
            f"--clusters {spec.clusters} is larger than the number of images ({len(embeddings)}); lower --clusters"
        )
    _kmeans()  # a missing scikit-learn is reported before any work
    if verbose:
        log(
            f"cactus: clustering {len(embeddings)} embeddings into "
            f"{spec.clusters} clusters, {spec.partitions} partition(s) "
            f"(cached under {folder})"
        )
    labels = compute_partitions(embeddings, spec, seed)
    written = save_cached(
        folder, key, labels, {"embedding_sha256": digest, "seed": int(seed), "clustering": spec.clustering_record()}
    )
    if not written:
        log(f"warning: could not write the partition cache in {folder}; set LASIUM_CACHE to a writable folder")
    return labels, {"key": key, "status": "written" if written else "not writable", "embedding_sha256": digest}


class PartitionSampler:
    """Tasks from partitions: task i depends only on (seed, i).

    Task i is drawn with ``default_rng(derive_seed(seed, "cactus-task", i))``.

    A task: partition ``p`` uniform among the P; N distinct clusters uniform among its kept clusters
    (≥ ``min_size`` members); K_tr + K_val distinct members of each, uniform. Row i of the task is the
    i-th cluster drawn, support = its first K_tr images.
    """

    def __init__(self, labels: np.ndarray, spec: CactusSpec, seed: int) -> None:
        self.spec, self.seed = spec, int(seed)
        self.labels = labels
        self.order = np.argsort(labels, axis=1, kind="stable").astype(np.int64)  # members of each cluster, contiguous
        self.kept: list[np.ndarray] = []  # kept cluster ids per partition, ascending
        self.starts: list[np.ndarray] = []  # start of each cluster's members in order[p] (length k + 1)
        for p in range(labels.shape[0]):
            counts = np.bincount(labels[p], minlength=spec.clusters)
            self.kept.append(np.flatnonzero(counts >= spec.min_size))
            self.starts.append(np.concatenate([[0], np.cumsum(counts)]))
        fewest = min(range(len(self.kept)), key=lambda p: len(self.kept[p]))
        if len(self.kept[fewest]) < spec.ways:
            raise ConfigError(
                f"only {len(self.kept[fewest])} cluster(s) of partition {fewest} have at least {spec.min_size} images "
                f"(--min-cluster-size), fewer than --ways {spec.ways}; lower --clusters, --ways or --min-cluster-size"
            )

    def kept_counts(self) -> list[int]:
        """Kept clusters per partition."""
        return [int(len(k)) for k in self.kept]

    def draw(self, index: int) -> tuple[int, np.ndarray, np.ndarray]:
        """(partition, cluster ids (N,), image indices (N, K_tr + K_val)) of task ``index``."""
        spec = self.spec
        rng = numpy_rng(self.seed, "cactus-task", int(index))
        p = min(int(rng.random() * len(self.kept)), len(self.kept) - 1)
        kept = self.kept[p]
        keys = rng.random(len(kept))
        top = np.argpartition(keys, spec.ways - 1)[: spec.ways]
        clusters = kept[top[np.argsort(keys[top], kind="stable")]]
        picks = np.empty((spec.ways, spec.members), np.int64)
        for row, c in enumerate(clusters.tolist()):
            members = self.order[p, self.starts[p][c] : self.starts[p][c + 1]]
            picks[row] = members[np.argsort(rng.random(len(members)), kind="stable")[: spec.members]]
        return p, clusters, picks


def partitions_digest(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype="<i4").tobytes()).hexdigest()


__all__ = [
    "CactusSpec",
    "PartitionSampler",
    "cached_partitions",
    "compute_partitions",
    "embedding_digest",
    "check_embeddings",
    "partitions_digest",
    "CLUSTERS",
    "PARTITIONS",
    "INSTALL_HINT",
]
