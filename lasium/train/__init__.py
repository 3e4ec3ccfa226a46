"""lasium.train: meta-learners (MAML, first-order MAML, ProtoNets), shard streaming and the trainer.

Depends on the shared core only: it never imports ``lasium.generate`` or ``lasium.evaluate``.

- Learners: :class:`MAML`, :class:`FirstOrderMAML`, :class:`ProtoNets` (base :class:`MetaLearner`, backbone
  injected or named in :data:`BACKBONES`), each with ``adapt(support, labels, params) -> params`` (MAML: plus
  ``steps``, ``lr``) and ``predict(params, query) -> logits`` for one task (vmappable; ``adapt_tasks`` /
  ``predict_tasks`` vmap them over a task axis).
- :func:`load_learner` (a run folder or checkpoint folder → learner, :class:`TrainConfig`).
- :func:`train` / :class:`Trainer` (``lasium-train``), streaming in :mod:`lasium.train.streaming`.

Names are imported on first use (PEP 562), so ``import lasium.train`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "MetaLearner": "lasium.train.learner",
    "LearnerConfig": "lasium.train.learner",
    "MAML": "lasium.train.maml",
    "FirstOrderMAML": "lasium.train.maml",
    "ProtoNets": "lasium.train.protonets",
    "ALGORITHMS": "lasium.train.registry",
    "build_learner": "lasium.train.registry",
    "TrainConfig": "lasium.train.config",
    "load_learner": "lasium.train.checkpoint",
    "find_checkpoint": "lasium.train.checkpoint",
    "read_configs": "lasium.train.checkpoint",
    "STATE_FILE": "lasium.train.checkpoint",
    "inner_loop_options": "lasium.train.learner",
    "BACKBONES": "lasium.train.backbone",
    "LR_SCHEDULES": "lasium.train.lr_schedule",
    "DISTANCES": "lasium.train.distances",
    "DEFAULT_DISTANCE": "lasium.train.distances",
    "DEFAULT_TEMPERATURE": "lasium.train.distances",
    "save_checkpoint": "lasium.train.checkpoint",
    "train": "lasium.train.trainer",
    "Trainer": "lasium.train.trainer",
    "TrainResult": "lasium.train.trainer",
    "DEFAULT_FOR_GENERATED": "lasium.train.augment",
    "resolve_preset": "lasium.train.augment",
    "latest_checkpoint": "lasium.train.run_folder",
    "checkpoint_step": "lasium.train.run_folder",
    "kept_checkpoints": "lasium.train.run_folder",
    "open_shard_set": "lasium.train.shard_access",
    "TaskStream": "lasium.train.streaming",
    "make_loader": "lasium.train.streaming",
    # the pieces the speed benchmarks time one by one (benchmarks/bench_train.py, bench_eval.py, bench_verify.py)
    "Conv4": "lasium.train.backbone",
    "TaskBatchNorm2d": "lasium.train.backbone",
    "check_batch": "lasium.train.streaming",
    "meta_batches": "lasium.train.streaming",
    "meta_step": "lasium.train.trainer",
    "synthetic_tasks": "lasium.train.synthetic",
    "write_synthetic_shards": "lasium.train.synthetic",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.train.augment import DEFAULT_FOR_GENERATED, resolve_preset
    from lasium.train.backbone import BACKBONES, Conv4, TaskBatchNorm2d
    from lasium.train.checkpoint import STATE_FILE, find_checkpoint, load_learner, read_configs, save_checkpoint
    from lasium.train.config import TrainConfig
    from lasium.train.distances import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE, DISTANCES
    from lasium.train.learner import LearnerConfig, MetaLearner, inner_loop_options
    from lasium.train.lr_schedule import LR_SCHEDULES
    from lasium.train.maml import MAML, FirstOrderMAML
    from lasium.train.protonets import ProtoNets
    from lasium.train.registry import ALGORITHMS, build_learner
    from lasium.train.run_folder import checkpoint_step, kept_checkpoints, latest_checkpoint
    from lasium.train.shard_access import open_shard_set
    from lasium.train.streaming import TaskStream, check_batch, make_loader, meta_batches
    from lasium.train.synthetic import synthetic_tasks, write_synthetic_shards
    from lasium.train.trainer import Trainer, TrainResult, meta_step, train
