"""lasium.evaluate: real labeled few-shot benchmarks, scoring and reports (``lasium-eval``).

- :class:`EvalProtocol`, :func:`make_episodes`, :func:`mean_ci95` (:mod:`lasium.evaluate.protocol`): which
  tasks, and how accuracies are summarised;
- :func:`evaluate_checkpoint`, :func:`evaluate_scratch`, :func:`evaluate_learner`
  (:mod:`lasium.evaluate.evaluator`) → :class:`EvalReport`;
- :func:`score_episodes` (:mod:`lasium.evaluate.scoring`): per-task accuracies, adaptation vmapped over chunks;
- :mod:`lasium.evaluate.report` (table, atomic JSON); :func:`partial_path` (where an interrupted
  ``lasium-eval --out`` keeps the tasks it scored, for ``--resume``). The Omniglot reproduction page, its
  published figures and its charts live in :mod:`lasium.repro`.

Names are imported on first use, so ``import lasium.evaluate`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "EvalProtocol": "lasium.evaluate.protocol",
    "Episodes": "lasium.evaluate.protocol",
    "make_episodes": "lasium.evaluate.protocol",
    "mean_ci95": "lasium.evaluate.protocol",
    "parse_shots": "lasium.evaluate.protocol",
    "EvalReport": "lasium.evaluate.evaluator",
    "ShotResult": "lasium.evaluate.evaluator",
    "evaluate_checkpoint": "lasium.evaluate.evaluator",
    "evaluate_learner": "lasium.evaluate.evaluator",
    "evaluate_scratch": "lasium.evaluate.evaluator",
    "score_episodes": "lasium.evaluate.scoring",
    "scratch_learner": "lasium.evaluate.baselines",
    "format_table": "lasium.evaluate.report",
    "write_json_atomic": "lasium.evaluate.report",
    "partial_path": "lasium.evaluate.journal",
    # the scorer's adaptation chunks, which benchmarks/bench_eval.py times
    "chunk_accuracy": "lasium.evaluate.scoring",
    "default_chunk": "lasium.evaluate.scoring",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.evaluate.baselines import scratch_learner
    from lasium.evaluate.evaluator import (
        EvalReport,
        ShotResult,
        evaluate_checkpoint,
        evaluate_learner,
        evaluate_scratch,
    )
    from lasium.evaluate.journal import partial_path
    from lasium.evaluate.protocol import Episodes, EvalProtocol, make_episodes, mean_ci95, parse_shots
    from lasium.evaluate.report import format_table, write_json_atomic
    from lasium.evaluate.scoring import chunk_accuracy, default_chunk, score_episodes
