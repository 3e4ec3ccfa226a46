"""UMTRA tasks from unlabeled images (``lasium-gen --source umtra``).

The unlabeled train split (:func:`lasium.data.load_unlabeled`, so a flat folder of images works and no
label is ever read) goes to the device once; each shard gathers its tasks' images with one index and
augments all of its queries in one batch (:mod:`lasium.generate.synthesis.umtra`). Shard s uses the
``torch.Generator`` seeded with ``derive_seed(seed, "shard", s)`` on the job's device, so, as for LASIUM
tasks, a shard's bytes depend on the config, the seed and the kind of device only.

Method: Khodadadeh et al., "Unsupervised Meta-Learning for Few-Shot Image Classification", NeurIPS 2019.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
from lasium.generate.synthesis.umtra import (
    EPOCH_RNG,
    ERASE_PROBABILITY,
    MAX_SHIFT,
    UmtraSpec,
    check_images,
    task_images,
    tasks_per_epoch,
    umtra_queries,
)
from lasium.seeding import torch_generator
from lasium.tasks import TaskBatch

if TYPE_CHECKING:  # torch loads when the source opens: lasium-gen --help reads the options only
    import torch


@dataclass
class UmtraOptions(SourceOptions):
    """The images and the query augmentation of UMTRA (the paper's Omniglot values by default)."""

    dataset: str = field(default="omniglot", metadata=DATASET)
    umtra_erase: float = field(
        default=ERASE_PROBABILITY,
        metadata=cli_option(
            "Probability that a query pixel is set to the background (ink only disappears).", type=float
        ),
    )
    umtra_shift: int = field(
        default=MAX_SHIFT, metadata=cli_option("Query shifts dx, dy are integers in [-S, S].", type=int)
    )

    def spec(self, shape: TaskShape) -> UmtraSpec:
        return UmtraSpec(
            ways=shape.ways,
            queries=shape.queries,
            erase_probability=float(self.umtra_erase),
            max_shift=int(self.umtra_shift),
        )

    def check(self, shape: TaskShape) -> None:
        if shape.shots != 1:
            raise ConfigError(f"UMTRA's support is the image itself: --shots must be 1, got {shape.shots}")
        self.spec(shape)  # checks the augmentation options


class UmtraTaskSource(WholeShards):
    """UMTRA tasks from the unlabeled train images of ``dataset`` (``omniglot`` or ``imagefolder:PATH``)."""

    def __init__(
        self,
        dataset: str,
        *,
        spec: UmtraSpec,
        seed: int,
        device: torch.device,
        data_root: str | None = None,
        progress: bool = True,
    ) -> None:
        import torch

        from lasium.data import load_unlabeled

        data = load_unlabeled(dataset, data_root=data_root, progress=progress)
        check_images(len(data), spec.ways, f"{dataset} (train split)")
        self.dataset, self.spec, self.seed, self.device = dataset, spec, int(seed), device
        self.fingerprint = str(data.fingerprint)
        self.image_ids = np.asarray(data.image_ids, dtype=object)
        self.images = torch.as_tensor(np.ascontiguousarray(data.images)).to(device)  # (M, H, W, C) uint8

    @property
    def num_images(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        height, width, channels = (int(s) for s in self.images.shape[1:])
        return height, width, channels

    def describe(self) -> dict[str, Any]:
        """The manifest's ``source`` record: the images, how tasks draw them, and the augmentation."""
        return {
            "kind": "umtra",
            "method": "UMTRA (Khodadadeh et al., NeurIPS 2019)",
            "dataset": self.dataset,
            "split": "train",
            "labels": "never read",
            "fingerprint": self.fingerprint,
            "num_images": self.num_images,
            "tasks_per_epoch": tasks_per_epoch(self.num_images, self.spec.ways),
            "epoch_order": EPOCH_RNG,
            "augmentation": self.spec.record(),
        }

    def set_config(self) -> dict[str, Any]:
        # The source section records the images and the augmentation; the device kind decides the bytes of the
        # random augmentation, as it decides a generator's.
        return {
            "strategy": "umtra",
            "save_latents": False,
            "dataset": self.dataset,
            "device_type": self.device.type,
        }

    def generator_record(self) -> None:
        return None

    def default_folder(self) -> tuple[str, str]:
        return dataset_label(self.dataset), "umtra"

    def shard_batch(self, shard_index: int, first_task: int, num_tasks: int) -> TaskBatch:
        import torch

        picks = task_images(self.num_images, self.spec.ways, self.seed, first_task, num_tasks)
        index = torch.as_tensor(picks, device=self.device)
        support = self.images[index]  # (T, N, H, W, C)
        with torch.inference_mode():
            query = umtra_queries(
                support, self.spec, torch_generator(self.seed, "shard", shard_index, device=self.device)
            )
        ids = self.image_ids[picks].tolist()
        metas = [{"index": first_task + t, "strategy": "umtra", "anchor_source_ids": ids[t]} for t in range(num_tasks)]
        return TaskBatch(support[:, :, None].cpu().numpy(), query.cpu().numpy(), None, metas)


def open_umtra(options: UmtraOptions, context: SourceContext) -> UmtraTaskSource:
    return UmtraTaskSource(
        options.dataset,
        spec=options.spec(context),
        seed=context.seed,
        device=context.device,
        data_root=context.data_root,
        progress=context.progress,
    )


SOURCE = SourceKind(
    "umtra",
    "UMTRA (Khodadadeh et al., NeurIPS 2019): each unlabeled image its own class, augmented queries",
    UmtraOptions,
    open_umtra,
)

__all__ = ["SOURCE", "UmtraOptions", "UmtraTaskSource"]
