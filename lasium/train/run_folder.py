"""A run folder of ``lasium-train``: its latest checkpoint, and whether it holds another run than the one asked for."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import fields
from pathlib import Path

from lasium.checkpoint_folder import WEIGHTS_FILE
from lasium.errors import ConfigError
from lasium.train.checkpoint import STATE_FILE
from lasium.train.config import TrainConfig

logger = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d{7,})$")
AUTOSAVE = "autosave"  # the time-based checkpoint (--checkpoint-minutes), rewritten in place, gone once last/ is


def checkpoint_step(folder: Path) -> int | None:
    """The training step a checkpoint folder was saved at (its state.json), None when it has none readable."""
    try:
        return int(json.loads((folder / STATE_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def tidy_run_folder(run_dir: Path) -> list[Path]:
    """Remove what a killed checkpoint write left in ``run_dir`` (``.step-NNNNNNN.tmp-PID`` and the like) when its
    writer is gone, putting back a checkpoint moved aside by a writer killed mid-swap; returns what was removed.
    Run by the run's main process before it looks for a checkpoint to resume."""
    from lasium.safe_io import remove_stale_temporaries

    return remove_stale_temporaries(run_dir)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint of ``run_dir`` with the highest step (``last/``, ``autosave/`` or a periodic ``step-N/``)."""
    best: tuple[int, Path] | None = None
    candidates = [run_dir / "last", run_dir / AUTOSAVE] + (
        [p for p in run_dir.iterdir() if STEP_DIR.match(p.name)] if run_dir.is_dir() else []
    )
    for folder in candidates:
        step = checkpoint_step(folder)
        if step is not None and (best is None or step > best[0]):
            best = (step, folder)
    return None if best is None else best[1]


def kept_checkpoints(run_dir: Path) -> dict[int, Path]:
    """Step → checkpoint folder of every checkpoint a run kept with its weights: each periodic ``step-N/`` and
    ``last/`` at its own step (``best/`` repeats one of them and ``autosave/`` is temporary: neither is listed)."""
    found: dict[int, Path] = {}
    for folder in sorted(run_dir.iterdir()) if run_dir.is_dir() else []:
        if (STEP_DIR.match(folder.name) or folder.name == "last") and (folder / WEIGHTS_FILE).is_file():
            step = checkpoint_step(folder)
            if step is not None:
                found.setdefault(step, folder)
    return dict(sorted(found.items()))


# What makes two runs the same run: a run folder whose train_config.json differs in these holds another run.
RUN_DEFINING = (
    "shards",
    "algo",
    "meta_batch",
    "inner_steps",
    "inner_lr",
    "lr",
    "lr_schedule",
    "ema_decay",
    "distance",
    "temperature",
    "seed",
    "ways",
    "shots",
    "queries",
    "image_shape",
)
# What a resumed run must share with the checkpoint it continues: the optimisation and the task layout. Not the
# shard paths (a set may be copied elsewhere between sessions) nor the iterations (a run may be extended).
RESUME_DEFINING = tuple(k for k in RUN_DEFINING if k != "shards") + ("augment",)


def refuse_other_run(out: Path, config: TrainConfig) -> None:
    """A run folder with another run's train_config.json (started, no checkpoint yet) is never overwritten."""
    path = out / "train_config.json"
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        saved = {}
    mine, defaults = config.to_dict(), {f.name: f.default for f in fields(TrainConfig)}
    # a field newer than the saved file held its default there (lr_schedule: constant)
    differs = [k for k in RUN_DEFINING if saved.get(k, defaults[k]) != mine.get(k)]
    if differs:
        shown = ", ".join(f"{k} {saved.get(k)!r}" for k in differs[:3])
        raise ConfigError(
            f"{out} already holds a different run ({shown}); pass --resume to continue it or choose another --out"
        )


def refuse_other_settings(checkpoint: Path, saved: TrainConfig, config: TrainConfig) -> None:
    """``--resume`` continues only the run ``checkpoint`` belongs to: other :data:`RESUME_DEFINING` settings (another
    --lr, --lr-schedule, --seed, --augment …) would make a run that is neither the old one nor a new one."""
    differs = [k for k in RESUME_DEFINING if getattr(saved, k) != getattr(config, k)]
    if differs:
        shown = ", ".join(f"{k} {getattr(saved, k)!r} (now {getattr(config, k)!r})" for k in differs[:3])
        raise ConfigError(
            f"{checkpoint} was trained with other settings: {shown}; "
            "resume with the run's own options or choose another --out"
        )


def best_to_beat(best: float | None, resumed: TrainConfig | None, config: TrainConfig, *, warn: bool) -> float | None:
    """The validation accuracy a run's next validations must beat to become ``best/``: the one saved with the
    checkpoint ``--resume`` continues (``resumed``'s run), unless the validation episodes now differ (dataset,
    episodes, N, queries, MAML's inner steps); then none, and ``best/`` is chosen again (``warn``: say so)."""
    if resumed is None or best is None or not config.validation_enabled:
        return best
    if resumed.validation_episodes() == config.validation_episodes():
        return best
    if warn:
        logger.warning(
            "validation episodes (dataset, episodes, N, queries, inner steps) are now %s, best/ was chosen on %s: "
            "best/ is chosen again from the next validation on",
            config.validation_episodes(),
            resumed.validation_episodes(),
        )
    return None
