"""How far an interrupted stage of the reproduction got, read from what it left in the work folder (its complete
shards, its latest checkpoint, the tasks its evaluation scored): what ``--resume`` continues from, and what the
estimates of :mod:`lasium.repro.plan` still count."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from .stages import canonical

EVAL_RESUMES = "continues exactly from the tasks already scored (its partial file)"  # what --plan says of lasium-eval


def gen_progress(shards: Path, tasks: int) -> float:
    """Fraction of ``tasks`` that the complete shard files in ``shards`` hold (their sidecars say how many, for a
    set of ``tasks`` tasks: another config's shards in the folder are not this stage's progress)."""
    done = 0
    for sidecar in shards.glob("*.json") if shards.is_dir() else []:
        try:
            meta = json.loads(sidecar.read_text())
            if int(meta["config"]["num_tasks"]) == tasks:
                done += int(meta["shard"]["num_tasks"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return min(1.0, done / max(1, tasks))


def train_progress(run: Path, iterations: int) -> float:
    """Fraction of ``iterations`` up to the run's latest checkpoint."""
    from lasium.train import checkpoint_step, latest_checkpoint

    latest = latest_checkpoint(run)
    step = checkpoint_step(latest) if latest is not None else None
    return 0.0 if step is None else min(1.0, step / max(1, iterations))


def eval_progress(out: Path) -> float:
    """Fraction of the tasks an interrupted evaluation to ``out`` already scored (its partial file)."""
    from lasium.evaluate import partial_path

    try:
        doc = json.loads(partial_path(out).read_text())
        tasks = int(doc["key"]["protocol"]["tasks"]) * len(doc["key"]["protocol"]["shots"])
        scored = sum(len(e.get("accuracies", [])) for e in doc.get("shots", {}).values())
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    return min(1.0, scored / max(1, tasks))


def stage_left(
    work: Path, name: str, console: str, args: list[str], progress: float, *, keeps_own: bool = False
) -> float:
    """The fraction of a stage of ``work`` still to run: 0 when it finished with this command, else 1 − its
    ``progress``, counted when the stage was last started with this command (as ``--resume`` would continue it) or,
    with ``keeps_own``, always (a rerun of ``lasium-gen`` keeps the shards of its own config by itself)."""
    display = shlex.join([console] + args)
    logs = work / "logs"
    for path, fraction in ((logs / f"{name}.done.json", 0.0), (logs / f"{name}.started.json", 1.0 - progress)):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        same = canonical(record.get("command", ""), work) == canonical(display, work)
        if same and record.get("status", "ok") == "ok":
            return fraction
    return 1.0 - progress if keeps_own else 1.0
