"""Validation during meta-training on real labeled episodes (the val split of a labeled dataset).

The episodes come from ``lasium.data.EpisodeSampler``: same N and K_tr as the training shards, 15
queries per class, and a fixed seed, so every run (whatever its training seed) is validated on the same
tasks. MAML adapts with its inner loop (``inner_steps`` unless given), ProtoNets use class means.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

from lasium.errors import ConfigError, DataError
from lasium.seeding import numpy_rng
from lasium.tasks import to_device
from lasium.train.config import TrainConfig
from lasium.train.learner import MetaLearner, inner_loop_options

log = logging.getLogger(__name__)

VALIDATION_SEED = 0


def default_val_dataset(option: str, image_shape: list[int] | tuple[int, ...]) -> str:
    """``auto`` → ``omniglot`` for 28×28×1 shards, else ``none``; anything else (a registry name such as
    ``mini-imagenet``, or ``imagefolder:PATH``) as given."""
    if option == "auto":
        return "omniglot" if tuple(image_shape) == (28, 28, 1) else "none"
    return option


# Images per validation forward pass: 100 episodes of 5-way 1-shot with 15 queries (8,000 images, what a pass held
# when it took 100 episodes of any size). 100 20-way episodes (32,000 images) in one pass of Conv-4 peaked at about
# 20 GB of RAM on a 24 GB CPU machine, and the kernel's OOM killer stopped the run at its validation step.
IMAGES_PER_CHUNK = 8_000


class Validator:
    """Fixed val-split episodes, loaded once (so a missing dataset fails before training starts)."""

    def __init__(
        self,
        dataset: str,
        *,
        ways: int,
        shots: int,
        queries: int,
        num_tasks: int,
        image_shape: tuple[int, int, int] | list[int],
        data_root: str | None = None,
        seed: int = VALIDATION_SEED,
        progress: bool = False,
    ) -> None:
        from lasium.data import episode_sampler, load_split

        h, w, c = (int(s) for s in image_shape)
        try:
            images = load_split(dataset, "val", data_root=data_root, image_size=(h, w), channels=c, progress=progress)
        except DataError as exc:
            raise DataError(
                f"validation data: {exc} (or pass --val-dataset none to train without validation)"
            ) from None
        if images.image_shape != (h, w, c):
            raise DataError(
                f"the {dataset} val split has images of {images.image_shape}, the shards {h}x{w}x{c}; "
                "pick a matching --val-dataset or --val-dataset none"
            )
        try:
            sampler = episode_sampler(images, ways, shots, queries, seed)  # CelebA attributes: attribute tasks
        except ConfigError as exc:
            raise DataError(
                f"validation data cannot give {ways}-way {shots}-shot episodes with {queries} queries: {exc}; "
                "pass another --val-dataset or --val-dataset none"
            ) from None
        batch = sampler.tasks(0, num_tasks)
        self.description = f"{num_tasks} {dataset} val episodes ({ways}-way {shots}-shot, {queries} queries)"
        self.support = torch.from_numpy(np.ascontiguousarray(batch.support))
        self.query = torch.from_numpy(np.ascontiguousarray(batch.query))
        self.perm = torch.from_numpy(
            np.stack([numpy_rng(seed, "val-labels", i).permutation(ways) for i in range(num_tasks)])
        )

    def __len__(self) -> int:
        return int(self.support.shape[0])

    @property
    def ways(self) -> int:
        """N of the episodes (support images are (T, N, K_tr, C, H, W))."""
        return int(self.support.shape[1])

    @property
    def images_per_task(self) -> int:
        """Support and query images of one episode (N × (K_tr + K_val))."""
        return int(self.support.shape[1] * self.support.shape[2] + self.query.shape[1] * self.query.shape[2])

    def chunk_tasks(self, images: int = IMAGES_PER_CHUNK) -> int:
        """Episodes per forward pass: as many as hold ``images`` images (at least one)."""
        return max(1, images // self.images_per_task)

    def evaluate(
        self,
        learner: MetaLearner,
        device: torch.device,
        *,
        steps: int | None = None,
        lr: float | None = None,
        chunk: int | None = None,
        autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> dict[str, float]:
        """Mean query accuracy over the episodes and its 95% interval half-width (1.96·std/√n). ``chunk``: episodes
        per forward pass [:meth:`chunk_tasks`]; each episode is adapted and scored on its own, so it changes the memory
        a pass takes, not what it computes."""
        chunk = chunk or self.chunk_tasks()
        learner = learner.with_ways(self.ways)  # ProtoNets trained wider (--val-ways): the same weights
        accuracies = []
        with torch.no_grad():
            for a in range(0, len(self), chunk):
                s, sl, q, ql = to_device(
                    self.support[a : a + chunk], self.query[a : a + chunk], self.perm[a : a + chunk], device
                )
                params = {k: v.detach() for k, v in learner.meta_params().items()}
                with autocast():
                    logits = learner.predict_tasks(
                        learner.adapt_tasks(s, sl, params, **inner_loop_options(learner, steps, lr)), q
                    )
                accuracies.append((logits.argmax(-1) == ql).float().mean(-1).cpu())
        acc = torch.cat(accuracies).double()
        ci = 1.96 * acc.std(unbiased=False).item() / math.sqrt(len(acc)) if len(acc) > 1 else 0.0
        return {"accuracy": acc.mean().item(), "ci95": ci}


def omniglot_or_none(dataset: str, config: TrainConfig, is_main: bool) -> str:
    """``--val-dataset auto`` chose Omniglot: train without validation, with one warning, when it is not there."""
    if dataset != "omniglot" or not config.validation_enabled:
        return dataset
    from lasium.data.omniglot import omniglot_zip_paths

    try:
        omniglot_zip_paths(config.data_root)
    except DataError:
        if is_main:
            log.warning(
                "Omniglot is not in the data root, so this run trains without validation; to validate, run "
                "'lasium-data download omniglot' (or pass --data-root DIR holding omniglot/)"
            )
        return "none"
    return dataset
