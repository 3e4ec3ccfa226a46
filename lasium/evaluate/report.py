"""Showing and saving evaluation results: a plain-text table for the screen, JSON written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lasium import safe_io
from lasium.evaluate.evaluator import EvalReport
from lasium.train import ALGORITHMS


def _adapts(algo: str | None) -> bool:
    """Whether the report's learner adapts to each task: its class says (an unknown name is assumed to)."""
    learner = ALGORITHMS.get(algo or "")
    return learner.adapts if learner is not None else True


def format_table(report: EvalReport) -> str:
    """A small fixed-width table: one row per K_tr with accuracy ± 95% CI in percent, tasks and seconds."""
    p = report.protocol
    m = report.method
    name = m.get("checkpoint") or f"{m.get('baseline', m.get('kind'))} {m.get('algo', '')}".strip()
    lines = [
        f"{name} ({report.learner.get('algo')}) on {report.dataset['name']} {report.dataset['split']}: "
        f"{p['ways']}-way, {p['queries']} queries/class, {p['tasks']} tasks, seed {p['seed']}"
        + (
            f", {p['adapt_steps']} adaptation steps of lr {p['adapt_lr']:g}"
            if _adapts(report.learner.get("algo"))
            else ""
        ),
        f"{'shots':>5}  {'accuracy %':>10}  {'95% CI':>7}  {'tasks':>5}  {'seconds':>8}",
    ]
    for r in report.results:
        lines.append(
            f"{r.shots:>5}  {100 * r.accuracy:>10.2f}  "
            f"{'±' + format(100 * r.ci95, '.2f'):>7}  {r.tasks:>5}  {r.seconds:>8.1f}"
        )
    lines.append(
        f"device {report.device.get('name') or report.device['type']} ({report.device['type']}), {report.precision}, "
        f"wall {report.wall_seconds:.1f} s, episodes {report.episode_digest[:16]}"
    )
    if report.train_config:
        t = report.train_config
        lines.append(
            f"trained: {t.get('iterations')} steps x {t.get('meta_batch')} tasks, augment {t.get('augment', 'none')}, "
            f"precision {(report.checkpoint_state or {}).get('precision') or t.get('precision')}"
            + (f", scored: moving average of the weights (decay {t['ema_decay']:g})" if t.get("ema_decay") else "")
        )
    return "\n".join(lines)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically (see :func:`lasium.safe_io.write_json_atomic`), keys in insertion order
    so a report reads top-down (protocol, method, results) as it was built."""
    return safe_io.write_json_atomic(path, obj, sort_keys=False)
