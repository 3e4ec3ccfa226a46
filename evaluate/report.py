"""Showing and saving evaluation results: a plain-text table for the screen, JSON written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lasium.evaluate.evaluator import EvalReport


def format_table(report: EvalReport) -> str:
    """A small fixed-width table: one row per K_tr with accuracy ± 95% CI in percent, tasks and seconds."""
    p = report.protocol
    m = report.method
    name = m.get("checkpoint") or f"{m.get('baseline', m.get('kind'))} {m.get('algo', '')}".strip()
    lines = [
        f"{name} ({report.learner.get('algo')}) on {report.dataset['name']} {report.dataset['split']}: "
        f"{p['ways']}-way, {p['queries']} queries/class, {p['tasks']} tasks, seed {p['seed']}"
        + (f", {p['adapt_steps']} adaptation steps of lr {p['adapt_lr']:g}" if report.learner.get("algo") != "protonets" else ""),
        f"{'shots':>5}  {'accuracy %':>10}  {'95% CI':>7}  {'tasks':>5}  {'seconds':>8}",
    ]
    for r in report.results:
        lines.append(f"{r.shots:>5}  {100 * r.accuracy:>10.2f}  {'±' + format(100 * r.ci95, '.2f'):>7}  {r.tasks:>5}  {r.seconds:>8.1f}")
    lines.append(f"device {report.device.get('name') or report.device['type']} ({report.device['type']}), {report.precision}, "
                 f"wall {report.wall_seconds:.1f} s, episodes {report.episode_digest[:16]}")
    return "\n".join(lines)


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` via a temporary file in the same folder, fsync and rename: readers see
    the old file or the complete new one, never a partial write; a failure leaves no temporary file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, sort_keys=False) + "\n"  # serialise first: a bad value fails before any file exists
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as open() would create it (mkstemp makes it private)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
