"""Real labeled episodes (``lasium-gen --source real``): the supervised upper bound.

``--source real`` writes tasks drawn from a labeled split of a real dataset, in the same shard format as
synthetic tasks, so the supervised upper bound goes through the very same trainer. Episodes come from
:class:`lasium.data.EpisodeSampler` (the one source of real tasks in lasium), seeded per shard, so a
task depends only on (seed, its shard) exactly as synthetic tasks do.

(VAE anchors, the other use of real images, live in :mod:`lasium.generate.synthesis.anchor_pool`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lasium.data.cache import SPLITS
from lasium.generate.sources.base import (
    DATASET,
    SourceContext,
    SourceKind,
    SourceOptions,
    WholeShards,
    cli_option,
    dataset_label,
)
from lasium.seeding import derive_seed
from lasium.tasks import TaskBatch


@dataclass
class RealOptions(SourceOptions):
    """Which labeled images real episodes come from."""

    dataset: str = field(default="omniglot", metadata=DATASET)
    split: str = field(default="train", metadata=cli_option("Split of the labeled dataset.", choices=SPLITS))


class RealTaskSource(WholeShards):
    """Tasks from a labeled split: shard s uses ``EpisodeSampler(..., seed=derive_seed(seed, "shard", s))``
    and its episodes 0 … T−1."""

    def __init__(
        self,
        dataset: str,
        split: str,
        *,
        ways: int,
        shots: int,
        queries: int,
        seed: int,
        data_root: str | None = None,
        image_size: int | None = None,
    ) -> None:
        from lasium.data import episode_sampler, load_split

        self.images = load_split(dataset, split, data_root=data_root, image_size=image_size)
        self.dataset, self.split = dataset, split
        self.ways, self.shots, self.queries, self.seed = ways, shots, queries, seed
        self._sampler_cls = episode_sampler  # by the split's task kind (CelebA attribute tasks, classes)
        # Fail now, with the sampler's own message, when the split cannot fill a task.
        episode_sampler(self.images, ways, shots, queries, seed)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width, channels = (int(s) for s in self.images.images.shape[1:])
        return height, width, channels

    def describe(self) -> dict[str, Any]:
        """The manifest's ``source`` record."""
        return {
            "kind": "labeled-split",
            "dataset": self.dataset,
            "split": self.split,
            "fingerprint": self.images.fingerprint,
            "num_images": int(len(self.images.images)),
            "num_classes": int(len(self.images.class_names)),
        }

    def set_config(self) -> dict[str, Any]:
        return {"strategy": "real", "save_latents": False, "dataset": self.dataset, "split": self.split}

    def generator_record(self) -> None:
        return None

    def default_folder(self) -> tuple[str, str]:
        """``shards/<dataset>/real-<split>``."""
        return dataset_label(self.dataset), f"real-{self.split}"

    def shard_batch(self, shard_index: int, first_task: int, num_tasks: int) -> TaskBatch:
        sampler = self._sampler_cls(
            self.images, self.ways, self.shots, self.queries, derive_seed(self.seed, "shard", shard_index)
        )
        batch = sampler.tasks(0, num_tasks)
        metas = []
        for t, episode_meta in enumerate(batch.metas):
            meta: dict[str, Any] = {"index": first_task + t, "strategy": "real"}
            meta.update(episode_meta)
            ids = episode_meta.get("source_ids")
            if ids:
                meta["anchor_source_ids"] = [row[0] for row in ids]
            metas.append(meta)
        batch.metas = metas
        return batch


def open_real(options: RealOptions, context: SourceContext) -> RealTaskSource:
    return RealTaskSource(
        options.dataset,
        options.split,
        ways=context.ways,
        shots=context.shots,
        queries=context.queries,
        seed=context.seed,
        data_root=context.data_root,
    )


SOURCE = SourceKind(
    "real",
    "episodes from a labeled split (--dataset, --split): the supervised upper bound",
    RealOptions,
    open_real,
    uses_device=False,  # episodes are numpy indexing of the decoded split
)

__all__ = ["RealOptions", "RealTaskSource", "SOURCE"]
