"""The meta-training loop: shards in, a learner out, from one CPU to many GPUs on many nodes.

One step: take a meta-batch from the stream, compute the meta-gradient of its tasks with the learner
(vmapped over tasks), average it over ranks, take an Adam step. Every ``log_every`` steps the loss,
accuracy and tasks/s go to ``metrics.jsonl`` and the progress bar; every ``val_every`` steps rank 0
validates on real val episodes; checkpoints go to ``step-NNNNNNN/``, ``best/`` and ``last/``, and every
``checkpoint_minutes`` to ``autosave/``, so a run killed before its next ``step-N/`` loses at most that much.

Example::

    from lasium.train.trainer import train
    from lasium.train.config import TrainConfig
    result = train(TrainConfig(shards=["shards/omniglot-ro"], out="runs/ro-maml", algo="maml", iterations=60_000))
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import torch
from tqdm import tqdm

from lasium.checkpoint_folder import state_dict_sha256
from lasium.errors import CheckpointError, ConfigError
from lasium.precision import Autocast, autocast_factory, resolve_precision
from lasium.runtime import RankInfo
from lasium.seeding import derive_seed, seed_everything
from lasium.train import distributed as D
from lasium.train.augment import augment_batch, get_preset, resolve_preset
from lasium.train.checkpoint import load_training_state, read_configs, rng_state, save_checkpoint
from lasium.train.config import TrainConfig
from lasium.train.learner import MetaGradients, MetaLearner
from lasium.train.lr_schedule import set_learning_rate
from lasium.train.mixture import open_mixture
from lasium.train.registry import ALGORITHMS, build_learner
from lasium.train.run_folder import (
    AUTOSAVE,
    best_to_beat,
    latest_checkpoint,
    refuse_other_run,
    refuse_other_settings,
    tidy_run_folder,
)
from lasium.train.run_log import MetricsLog
from lasium.train.shard_access import ShardSet, describe_layout
from lasium.train.streaming import SkippedShards, TaskStream, make_loader, meta_batches
from lasium.train.validation import Validator, default_val_dataset, omniglot_or_none
from lasium.train.weight_average import WeightAverage

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a run ended with (on every rank; ``val`` and ``best_val_accuracy`` on rank 0 only)."""

    out: Path
    step: int
    train: dict[str, float] = field(default_factory=dict)
    val: dict[str, float] = field(default_factory=dict)
    best_val_accuracy: float | None = None
    shards_read: list[str] = field(default_factory=list)


def meta_step(
    learner: MetaLearner,
    optimizer: torch.optim.Optimizer,
    step_fn: Callable[..., MetaGradients],
    batch: tuple[torch.Tensor, ...],
    autocast: Autocast,
    ctx: RankInfo,
) -> MetaGradients:
    """One optimizer step on the meta-gradient of ``batch`` (support, labels, query, labels), averaged over ranks."""
    with autocast():
        out = step_fn(*batch)
    for name, p in learner.named_parameters():
        p.grad = out.grads[name].to(p.dtype)
    D.all_reduce_mean_([cast(torch.Tensor, p.grad) for p in learner.parameters()], ctx)  # each set just above
    optimizer.step()
    return out


class Trainer:
    """Meta-trains ``config.algo`` on ``config.shards``; ``resume`` continues the run in ``config.out``."""

    def __init__(self, config: TrainConfig, *, resume: bool = False, progress: bool = True) -> None:
        config = copy.deepcopy(config)  # filled in below (task layout, defaults): the caller's object stays as given
        self.config = config.validate()
        self.resume = resume
        self.progress = progress
        self.ctx = D.init_distributed(config.device)
        self.out = Path(config.out)
        self.shard_set: ShardSet
        self.resumed_config: TrainConfig | None = None  # the config of the checkpoint --resume continues
        # --shards A[:weight] …: one layout, maybe weighted
        self.shard_set, self.mixture = open_mixture(config.shards, allow_partial=config.allow_partial)
        config.mixture = self.mixture.record()
        if self.ctx.is_main:
            for note in self.shard_set.notes:  # sets read as one mixture, unrecorded task sources, unchecked bytes
                if note.startswith("warning: "):
                    logger.warning(note)
                else:
                    logger.info("note: %s", note)
        layout = self.shard_set.layout
        config.ways, config.shots, config.queries = layout.ways, layout.shots, layout.queries
        config.image_shape = list(layout.image_shape)
        config.augment = resolve_preset(config.augment, generated=self.shard_set.generated)
        self.checkpoint = self._find_resume_checkpoint()
        self.augment = get_preset(config.augment)
        self.precision = resolve_precision(config.precision, self.ctx.device)
        config.val_dataset = (
            omniglot_or_none(default_val_dataset(config.val_dataset, config.image_shape), config, self.ctx.is_main)
            if config.val_dataset == "auto"
            else config.val_dataset
        )
        if config.loader_group == 0:  # auto: on a GPU a step takes milliseconds, so move 8 meta-batches per transfer
            config.loader_group = 8 if self.ctx.device.type == "cuda" else 1
        if config.validation_ways != config.ways and ALGORITHMS[config.algo].adapts:
            raise ConfigError(
                f"--val-ways {config.val_ways}: a {config.algo} learner has a {config.ways}-way head (the shards' N) "
                "and validates on episodes of that N; drop --val-ways or train protonets"
            )
        self.validator: Validator | None = None
        self.average: WeightAverage | None = None  # --ema-decay: the moving average of the weights (set by run)
        if config.validation_enabled and self.ctx.is_main:  # fail here, before any training, if the data is missing
            self.validator = Validator(
                config.val_dataset,
                ways=config.validation_ways,
                shots=config.shots,
                queries=config.val_queries,
                num_tasks=config.val_tasks,
                image_shape=config.image_shape,
                data_root=config.data_root,
                progress=progress,
            )
        if self.ctx.is_main:  # after every check above: a refused run prints one line, its error
            logger.info("run folder: %s", self.out)

    def _find_resume_checkpoint(self) -> Path | None:
        if self.ctx.is_main and self.out.is_dir():
            tidy_run_folder(self.out)  # a checkpoint write cut by a kill: its temporaries, or a half-done swap
        D.barrier(self.ctx)
        latest = latest_checkpoint(self.out) if self.out.is_dir() else None
        if not self.resume:
            if latest is not None:
                raise ConfigError(
                    f"{self.out} already holds a run ({latest.name}/); "
                    "pass --resume to continue it or choose another --out"
                )
            refuse_other_run(self.out, self.config)
            return None
        if latest is None:
            raise CheckpointError(
                f"nothing to resume in {self.out}: no last/, autosave/ or step-N/ checkpoint; start without --resume"
            )
        saved, saved_train = read_configs(latest)
        mine = self.config.learner_config()
        if (saved.algo, saved.ways, tuple(saved.image_shape), saved.hidden, saved.backbone) != (
            mine.algo,
            mine.ways,
            tuple(mine.image_shape),
            mine.hidden,
            mine.backbone,
        ):
            raise ConfigError(
                f"{latest} holds a {saved.algo} learner ({saved.backbone} backbone) for {saved.ways}-way "
                f"{tuple(saved.image_shape)} tasks; resume it with the same --algo, --backbone and shards"
            )
        refuse_other_settings(latest, saved_train, self.config)
        self.resumed_config = saved_train
        return latest

    def run(self) -> TrainResult:
        cfg, ctx = self.config, self.ctx
        device = ctx.device
        seed_everything(cfg.seed)
        learner = build_learner(cfg.learner_config()).to(device)
        optimizer = torch.optim.Adam(learner.parameters(), lr=cfg.lr)
        self.average = average = WeightAverage(learner, cfg.ema_decay) if cfg.ema_decay else None  # --ema-decay
        published = average.learner if average else learner  # what validation, best/, last/ and lasium-eval see
        start, state = 0, {}
        if self.checkpoint is not None:
            state = load_training_state(self.checkpoint, learner, optimizer, average)
            start = int(state["step"])
            layout = (ctx.world_size, cfg.workers, cfg.loader_group)
            before = (state.get("world_size"), state.get("workers"), state.get("loader_group"))
            if layout != before and ctx.is_main:
                logger.warning(
                    "resuming with ranks, workers, loader group %s instead of %s: "
                    "the task order will differ from an uninterrupted run",
                    layout,
                    before,
                )
        else:
            D.broadcast_([p.data for p in learner.parameters()], ctx)
        stream = TaskStream(
            self.shard_set,
            cfg.meta_batch,
            seed=derive_seed(cfg.seed, "stream"),
            rank=ctx.rank,
            world_size=ctx.world_size,
            workers=cfg.workers,
            shuffle_buffer=cfg.shuffle_buffer,
            skip_corrupt=cfg.skip_corrupt,
            start=start,
            group=cfg.loader_group,
            mixture=self.mixture,
        )
        autocast = autocast_factory(self.precision, device)
        step_fn = torch.compile(learner.meta_gradients) if cfg.compile else learner.meta_gradients
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "train_config.json").write_text(cfg.to_json() + "\n")
        log = MetricsLog(self.out, resume_step=start if self.checkpoint else None) if ctx.is_main else None
        best = best_to_beat(state.get("best_val_accuracy"), self.resumed_config, cfg, warn=ctx.is_main)
        result = TrainResult(self.out, start, best_val_accuracy=best)
        shards_read: set[str] = set()
        if self.progress and ctx.is_main:
            logger.info(
                "training %s on %s: augment %s, %s on %s",
                cfg.algo,
                self.shard_set.describe(),
                cfg.augment,
                self.precision,
                device,
            )
        bar = tqdm(
            total=cfg.iterations,
            initial=start,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            disable=not (self.progress and ctx.is_main),
            desc=f"{cfg.algo} {describe_layout(self.shard_set.layout)}",
        )
        loader = iter(make_loader(stream, pin_memory=device.type == "cuda"))
        skipped = SkippedShards()  # --skip-corrupt: reported at the end of the run
        batches = meta_batches(loader, cfg.meta_batch, device, skipped)
        window = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, accuracy sum, tasks
        tasks_seen = int(state.get("tasks_seen", 0))
        clock, step = time.perf_counter(), start
        saved_at = time.monotonic()  # of the last checkpoint a resume could start from (autosave/ or step-N/)
        try:
            for step in range(start + 1, cfg.iterations + 1):
                batch, shards = next(batches)
                shards_read.update(shards)
                batch = augment_batch(self.augment, batch, cfg.seed, ctx.rank, step)
                lr = set_learning_rate(optimizer, cfg.lr, cfg.lr_schedule, step, cfg.iterations)
                out = meta_step(learner, optimizer, step_fn, batch, autocast, ctx)
                if average is not None:
                    average.update(learner)
                window += torch.stack(
                    [
                        out.loss.sum().double(),
                        out.accuracy.sum().double(),
                        torch.tensor(float(len(out.loss)), dtype=torch.float64, device=device),
                    ]
                )
                tasks_seen += len(out.loss) * ctx.world_size
                bar.update(1)
                last_step = step == cfg.iterations
                if step % cfg.log_every == 0 or last_step:
                    D.all_reduce_mean_([window], ctx)
                    loss, acc, n = window.tolist()
                    now = time.perf_counter()
                    result.train = {
                        "loss": loss / max(n, 1),
                        "accuracy": acc / max(n, 1),
                        "tasks_per_s": n * ctx.world_size / max(now - clock, 1e-9),
                        "lr": lr,
                    }
                    window.zero_()
                    clock = now
                    if log is not None:
                        log.write(
                            {
                                "step": step,
                                "split": "train",
                                "time": time.time(),
                                "tasks_seen": tasks_seen,
                                **result.train,
                            }
                        )
                    bar.set_postfix(
                        loss=f"{result.train['loss']:.3f}",
                        acc=f"{result.train['accuracy']:.3f}",
                        tasks_s=f"{result.train['tasks_per_s']:.0f}",
                        refresh=False,
                    )
                if self.validator is not None and (step % cfg.val_every == 0 or last_step):
                    result.val = self.validator.evaluate(
                        published, device, steps=cfg.val_inner_steps, autocast=autocast
                    )
                    if log is not None:
                        log.write({"step": step, "split": "val", "time": time.time(), **result.val})
                    bar.set_postfix(
                        loss=f"{result.train.get('loss', float('nan')):.3f}",
                        val=f"{result.val['accuracy']:.3f}",
                        refresh=False,
                    )
                    if best is None or result.val["accuracy"] > best:
                        best = result.val["accuracy"]
                        self._save(self.out / "best", learner, optimizer, step, tasks_seen, best, step)
                    clock = time.perf_counter()  # validation time does not count against training speed
                if ctx.is_main and not last_step:
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        self._save(self.out / f"step-{step:07d}", learner, optimizer, step, tasks_seen, best)
                        saved_at = time.monotonic()
                    elif cfg.checkpoint_minutes and time.monotonic() - saved_at >= 60.0 * cfg.checkpoint_minutes:
                        self._save(self.out / AUTOSAVE, learner, optimizer, step, tasks_seen, best)
                        saved_at = time.monotonic()
            result.step = step
            if ctx.is_main:
                self._save(self.out / "last", learner, optimizer, step, tasks_seen, best)
                shutil.rmtree(self.out / AUTOSAVE, ignore_errors=True)  # last/ is newer: nothing to resume from there
        finally:
            bar.close()
            if log is not None:
                log.close()
            del batches, loader
            if skipped:
                logger.warning("rank %d: %s", ctx.rank, skipped.summary())
        result.best_val_accuracy = best
        result.shards_read = sorted(shards_read)
        self._write_rank_summary(published, result)
        D.barrier(ctx)
        return result

    def _save(
        self,
        folder: Path,
        learner: MetaLearner,
        optimizer: torch.optim.Optimizer,
        step: int,
        tasks_seen: int,
        best: float | None,
        best_step: int | None = None,
    ) -> None:
        if not self.ctx.is_main:
            return
        state = {
            "step": step,
            "tasks_seen": tasks_seen,
            "best_val_accuracy": best,
            "world_size": self.ctx.world_size,
            "precision": self.precision,
            "workers": self.config.workers,
            "loader_group": self.config.loader_group,
            "rng": rng_state(),
        }
        if best_step is not None:
            state["best_step"] = best_step
        if self.average is None:
            save_checkpoint(folder, learner, self.config, optimizer, state)
        else:  # the average is the model; the stepped weights are training state
            state["ema_updates"] = self.average.updates
            save_checkpoint(folder, self.average.learner, self.config, optimizer, state, online=learner)

    def _write_rank_summary(self, learner: MetaLearner, result: TrainResult) -> None:
        """``ranks/rank-R.json``: steps, shards this rank read, digest of its final weights."""
        folder = self.out / "ranks"
        folder.mkdir(parents=True, exist_ok=True)
        summary = {
            "rank": self.ctx.rank,
            "world_size": self.ctx.world_size,
            "step": result.step,
            "shards_read": result.shards_read,
            "weights_sha256": state_dict_sha256(learner),
        }
        (folder / f"rank-{self.ctx.rank}.json").write_text(json.dumps(summary, indent=2) + "\n")


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> TrainResult:
    """Run :class:`Trainer` and leave the process group (under ``torchrun``) when done."""
    trainer = Trainer(config, resume=resume, progress=progress)
    try:
        return trainer.run()
    finally:
        D.shutdown(trainer.ctx)
