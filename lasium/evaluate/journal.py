"""An evaluation's progress on disk, so that an interrupted ``lasium-eval`` continues instead of starting over.

Scoring a MAML learner on 1000 tasks × 2 shots with 50 adaptation steps each takes hours on a CPU; a session
that ends halfway should not throw that away. While it scores, the evaluator writes ``<out>.partial.json``
after every chunk of tasks: the per-task accuracies so far (``null`` for a task not scored yet: with ``--workers``
the scored tasks are several runs, not one prefix), keyed by everything they depend on (the learner's weights, the
protocol, the episodes, the precision, the chunk size and the device type). ``lasium-eval --resume`` takes the
tasks already scored from it when the key matches and scores the others, so the resumed report is the
uninterrupted one: every chunk is scored independently of the others, at the same chunk boundaries.

The file is JSON (nothing is unpickled) and is written atomically; it is removed once the report is written.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lasium import safe_io
from lasium.errors import ConfigError

JOURNAL_FORMAT = "lasium-eval-partial"
JOURNAL_VERSION = 2  # 2: accuracies may hold null (not scored yet); 1 (a prefix) is still read


def partial_path(out: str | Path) -> Path:
    """Where the evaluation written to ``out`` keeps its progress: ``<out>.partial.json`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".partial.json")


class EvalJournal:
    """Per-shot accuracies scored so far, under a key; ``save`` after every chunk, ``discard`` when done.

    ``resume=False`` starts from nothing (an earlier file is overwritten by the first save); ``resume=True``
    reads the file and keeps its tasks for every shot whose key matches this evaluation's.
    """

    def __init__(self, path: str | Path, *, resume: bool) -> None:
        self.path = Path(path)
        self.key: dict[str, Any] = {}
        self.done: dict[str, list[float]] = {}  # by str(shots): accuracies per task, nan = not scored yet
        self.digests: dict[str, str] = {}  # by str(shots): the episodes they were scored on
        self.earlier: dict[str, Any] = {}
        self.resumed: dict[int, int] = {}
        if resume and self.path.is_file():
            try:
                earlier = json.loads(self.path.read_text())
            except (OSError, ValueError) as e:
                raise ConfigError(
                    f"cannot read the partial evaluation {self.path} ({e}); delete it or run without --resume"
                ) from None
            if earlier.get("format") != JOURNAL_FORMAT:
                raise ConfigError(f"{self.path} is not a partial lasium-eval file; delete it or choose another --out")
            self.earlier = earlier

    def start(self, key: dict[str, Any]) -> None:
        """Set the evaluation's key (everything but the episodes); an earlier file with another key is refused."""
        self.key = key
        if self.earlier:
            old = self.earlier.get("key", {})
            differs = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
            if differs:
                raise ConfigError(
                    f"{self.path} holds another evaluation (differs in {', '.join(differs)}); "
                    "run without --resume to start over"
                )
            for shots, entry in self.earlier.get("shots", {}).items():
                self.done[shots] = [math.nan if a is None else float(a) for a in entry.get("accuracies", [])]
                self.digests[shots] = str(entry.get("episode_digest"))

    def scored(self, shots: int, episode_digest: str, total: int) -> np.ndarray:
        """Accuracies already scored for ``shots`` on these episodes: (total,), nan where a task is still to score
        (all nan when nothing matches)."""
        key = str(shots)
        acc = np.full(total, np.nan)
        if self.digests.get(key) != episode_digest:
            self.done.pop(key, None)
            self.digests.pop(key, None)
            return acc
        kept = np.asarray(self.done[key], np.float64)[:total]
        acc[: len(kept)] = kept
        self.resumed[shots] = int(np.count_nonzero(~np.isnan(acc)))
        return acc

    def record(self, shots: int, episode_digest: str, accuracies: np.ndarray) -> None:
        """The accuracies of ``shots``' tasks (nan: not scored yet), saved at once."""
        acc = np.asarray(accuracies, np.float64)
        last = np.flatnonzero(~np.isnan(acc))
        acc = acc[: last[-1] + 1] if len(last) else acc[:0]  # trailing unscored tasks are left out
        self.done[str(shots)], self.digests[str(shots)] = [float(a) for a in acc], episode_digest
        self.save()

    def save(self) -> None:
        shots = {
            s: {"episode_digest": self.digests[s], "accuracies": [None if math.isnan(a) else a for a in acc]}
            for s, acc in self.done.items()
        }
        doc = {"format": JOURNAL_FORMAT, "format_version": JOURNAL_VERSION, "key": self.key, "shots": shots}
        safe_io.write_json_atomic(self.path, doc)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
