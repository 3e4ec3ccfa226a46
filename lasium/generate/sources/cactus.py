"""CACTUs tasks from k-means partitions of unlabeled images (``lasium-gen --source cactus``).

Embeds the unlabeled train split (:func:`lasium.data.load_unlabeled`; labels are never read), clusters it
into P partitions (cached, :mod:`lasium.generate.synthesis.cactus`), and draws each task from the
partitions: task i depends only on (seed, i), so shards are deterministic, resumable and can be made by
any rank or array-job part. The embedding is

* a VAE's posterior mean (default ``omniglot-vae``: any ``--generator``-style spec of a VAE), encoded on the
  job's device;
* ``pixels``: the images themselves, flattened, in [0, 1];
* a ``.npy`` file of shape (M, d): one row per image, in the order of ``load_unlabeled(dataset).image_ids``
  (the manifest records that order's sha256), read with ``allow_pickle=False``.

Every process (torchrun rank, array-job part) reuses the partition cache when it holds the entry and
computes it otherwise (k-means is deterministic for a fixed seed, whatever the thread count; the
manifest's ``partitions_sha256`` shows any disagreement). To cluster once, run a first, small job before
the torchrun or array job, with the same ``LASIUM_CACHE``.

Method: Hsu, Levine and Finn, "Unsupervised Learning via Meta-Learning", ICLR 2019.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lasium.errors import ConfigError
from lasium.generate.sources.base import (
    DATASET,
    SourceContext,
    SourceKind,
    SourceOptions,
    TaskShape,
    WholeShards,
    cli_option,
    dataset_label,
)
from lasium.generate.synthesis.cactus import (
    CLUSTERS,
    PARTITIONS,
    CactusSpec,
    PartitionSampler,
    cached_partitions,
    check_embeddings,
    partitions_digest,
)
from lasium.tasks import TaskBatch

if TYPE_CHECKING:  # torch and the models load when the source opens: lasium-gen --help reads the options only
    import torch

    from lasium.generate.models.interface import Generator

DEFAULT_EMBEDDING = "omniglot-vae"
IMAGE_ORDER = "lasium.data.load_unlabeled(dataset).image_ids"


@dataclass
class CactusOptions(SourceOptions):
    """The images, their embedding and the clustering of CACTUs (the paper's k and P by default)."""

    dataset: str = field(default="omniglot", metadata=DATASET)
    embedding: str = field(
        default=DEFAULT_EMBEDDING,
        metadata=cli_option(
            "A VAE (bundled name or lasium-fit folder; its posterior mean), pixels, or PATH.npy (M x d, image order)."
        ),
    )
    clusters: int = field(default=CLUSTERS, metadata=cli_option("k, clusters per k-means partition.", type=int))
    partitions: int = field(default=PARTITIONS, metadata=cli_option("P, k-means partitions.", type=int))
    scaling: bool = field(
        default=True,
        metadata=cli_option(
            "Partitions after the first cluster z * w, w ~ U[0,1)^d (off: all cluster z).",
            flag="--scaling/--no-scaling",
        ),
    )
    min_cluster_size: int | None = field(
        default=None, metadata=cli_option("Drop smaller clusters [default: K_tr + K_val].", type=int)
    )

    def spec(self, shape: TaskShape) -> CactusSpec:
        return CactusSpec(
            ways=shape.ways,
            shots=shape.shots,
            queries=shape.queries,
            clusters=int(self.clusters),
            partitions=int(self.partitions),
            scaling=bool(self.scaling),
            min_cluster_size=self.min_cluster_size,
        )

    def check(self, shape: TaskShape) -> None:
        self.spec(shape).check()


def ids_digest(image_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(image_ids).encode()).hexdigest()


class CactusTaskSource(WholeShards):
    """CACTUs tasks from the unlabeled train images of ``dataset``.

    ``model`` (a VAE) overrides ``embedding``'s loading.
    """

    def __init__(
        self,
        dataset: str,
        *,
        spec: CactusSpec,
        seed: int,
        device: torch.device,
        embedding: str = DEFAULT_EMBEDDING,
        data_root: str | None = None,
        model: Generator | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        from lasium.data import cache_dir, load_unlabeled

        spec.check()
        self.dataset, self.spec, self.seed, self.device_type = dataset, spec, int(seed), device.type
        if embedding in ("pixels",) or embedding.endswith(".npy"):
            data = load_unlabeled(dataset, data_root=data_root, progress=progress)
            images = np.asarray(data.images)
            if embedding == "pixels":
                z = images.reshape(len(images), -1).astype(np.float32) / 255.0
                self.embedding: dict[str, Any] = {"kind": "pixels"}
            else:
                z = self._read_npy(Path(embedding), len(images))
                self.embedding = {"kind": "file", "file": Path(embedding).name}
        else:
            images, z, data, described = self._encode(embedding, dataset, data_root, device, model)
            self.embedding = {"kind": "vae-posterior-mean", "generator": described}
        self.images, self.image_ids = images, list(data.image_ids)
        self.fingerprint = str(data.fingerprint)
        z = check_embeddings(z, len(images), f"the {self.embedding['kind']} embedding")
        if spec.clusters > len(images):
            raise ConfigError(
                f"--clusters {spec.clusters} is larger than the number of images ({len(images)}); lower --clusters"
            )
        self.embedding["dim"] = int(z.shape[1])
        labels, cache = cached_partitions(z, spec, self.seed, cache_dir() / "cactus", log=log, verbose=progress)
        self.embedding["sha256"] = cache["embedding_sha256"]
        self.cache = cache
        self.sampler = PartitionSampler(labels, spec, self.seed)
        self.labels = labels
        self._ids = np.asarray(self.image_ids, dtype=object)

    @staticmethod
    def _read_npy(path: Path, num_images: int) -> np.ndarray:
        if not path.is_file():
            raise ConfigError(f"embedding file {path} not found")
        try:
            z = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"embedding file {path} is not a plain .npy array "
                f"({exc}); save it with np.save(..., allow_pickle=False)"
            ) from None
        return check_embeddings(z, num_images, f"embedding file {path.name}")

    @staticmethod
    def _encode(
        spec: str, dataset: str, data_root: str | None, device: torch.device, model: Generator | None
    ) -> tuple[Any, ...]:
        """(images, posterior means, the unlabeled data, the VAE's description) of a VAE embedding."""
        from lasium.data import UnlabeledImages
        from lasium.generate.models.loading import load_generator
        from lasium.generate.synthesis.anchor_pool import vae_anchor_pool

        model = model if model is not None else load_generator(spec, device=device)
        if model.kind != "vae" or not hasattr(model, "encode"):
            raise ConfigError(
                f"--embedding {spec} is a {model.kind} model without an encoder; give a VAE, pixels or a .npy file"
            )
        pool = vae_anchor_pool(model, dataset, data_root=data_root, device=device)
        images = pool.images.cpu().numpy()
        data = UnlabeledImages(images, pool.image_ids, pool.fingerprint, dataset)
        return images, pool.codes.cpu().numpy(), data, model.describe()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width, channels = (int(s) for s in self.images.shape[1:])
        return height, width, channels

    def describe(self) -> dict[str, Any]:
        """The manifest's ``source`` record: the images, the embedding, the clustering and its result's digest."""
        kept = self.sampler.kept_counts()
        return {
            "kind": "cactus",
            "method": "CACTUs (Hsu, Levine & Finn, ICLR 2019)",
            "dataset": self.dataset,
            "split": "train",
            "labels": "never read",
            "fingerprint": self.fingerprint,
            "num_images": int(len(self.images)),
            "image_order": IMAGE_ORDER,
            "image_ids_sha256": ids_digest(self.image_ids),
            "embedding": self.embedding,
            "clustering": self.spec.clustering_record(),
            "min_cluster_size": self.spec.min_size,
            "partitions_sha256": partitions_digest(self.labels),
            "kept_clusters": {"min": min(kept), "max": max(kept), "total": int(sum(kept))},
            "task_rng": "default_rng(derive_seed(seed, 'cactus-task', i)) per task i",
        }

    def set_config(self) -> dict[str, Any]:
        # The device kind decides the bytes of VAE embeddings, as it decides a generator's.
        return {
            "strategy": "cactus",
            "save_latents": False,
            "dataset": self.dataset,
            "device_type": self.device_type,
        }

    def generator_record(self) -> None:
        return None

    def default_folder(self) -> tuple[str, str]:
        return dataset_label(self.dataset), "cactus"

    def shard_batch(self, shard_index: int, first_task: int, num_tasks: int) -> TaskBatch:
        k_tr = self.spec.shots
        picks = np.empty((num_tasks, self.spec.ways, self.spec.members), np.int64)
        metas = []
        for t in range(num_tasks):
            p, clusters, picks[t] = self.sampler.draw(first_task + t)
            metas.append({"index": first_task + t, "strategy": "cactus", "partition": p, "clusters": clusters.tolist()})
        ids = self._ids[picks].tolist()
        for t, meta in enumerate(metas):
            meta["source_ids"] = ids[t]
            meta["anchor_source_ids"] = [row[0] for row in ids[t]]
        return TaskBatch(self.images[picks[:, :, :k_tr]], self.images[picks[:, :, k_tr:]], None, metas)


def open_cactus(options: CactusOptions, context: SourceContext) -> CactusTaskSource:
    return CactusTaskSource(
        options.dataset,
        spec=options.spec(context),
        seed=context.seed,
        device=context.device,
        embedding=options.embedding,
        data_root=context.data_root,
        model=context.model,
        progress=context.progress,
        log=context.log,
    )


SOURCE = SourceKind(
    "cactus",
    "CACTUs (Hsu, Levine & Finn, ICLR 2019): tasks from k-means partitions of an embedding of unlabeled images",
    CactusOptions,
    open_cactus,
    takes_model=True,  # the embedding VAE
)

__all__ = ["CactusOptions", "CactusTaskSource", "SOURCE"]
