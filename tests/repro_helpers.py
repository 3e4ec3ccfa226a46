"""The reproduction's pieces for tests: a Pipeline on a CPU with nothing run, scored rows, and a stand-in for the
stage runner that records which stages would run and writes the outputs they would leave."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from lasium.repro.options import OmniglotOptions
from lasium.repro.pipeline import Pipeline
from lasium.repro.sizes import RATES


def options_for(tmp_path: Path, **changes: Any) -> OmniglotOptions:
    """Options with the work and results folders under ``tmp_path`` (quick sizes, one thread, on the CPU)."""
    base = OmniglotOptions(sizes="quick", work=tmp_path / "work", results=tmp_path / "results", device="cpu", threads=1)
    return replace(base, **changes)


def driver_pipeline(
    tmp_path: Path,
    *,
    rates: dict[str, float] | None = None,
    device_type: str = "cpu",
    device_record: dict[str, Any] | None = None,
    **changes: Any,
) -> Pipeline:
    """A Pipeline at ``options_for(tmp_path, **changes)`` with the bundled generator; nothing runs."""
    options = options_for(tmp_path, **changes)
    p = Pipeline(
        options,
        sizes=options.stage_sizes(),
        rates=RATES["cpu"] if rates is None else rates,
        device_type=device_type,
        device=device_record or {},
    )
    p.generator = {"spec": "omniglot-gan", "ok": True}
    return p


def scored_row(key: str, label: str, algo: str, family: str, one: float, five: float, **extra: Any) -> dict[str, Any]:
    """A finished row as a results page holds it (1- and 5-shot accuracy with a CI, its training summary)."""
    row = {
        "key": key,
        "label": label,
        "algo": algo,
        "family": family,
        "status": "ok",
        "episode_digest": "d" * 64,
        "eval": {
            "1": {"accuracy_pct": one, "ci95_pct": 0.5, "tasks": 1000},
            "5": {"accuracy_pct": five, "ci95_pct": 0.3, "tasks": 1000},
        },
        "train": {"algo": algo, "step": 100, "meta_batch": 32, "tasks_seen": 3200, "best_val_accuracy": 0.8},
    }
    row.update(extra)
    return row


class FakeStages:
    """Replaces ``Pipeline.run``: records (stage, console, row) and leaves what each stage would (a manifest, a
    checkpoint's state, an evaluation report with ``accuracy`` per row)."""

    def __init__(self, accuracy: float = 50.0) -> None:
        self.ran: list[tuple[str, str, str | None]] = []
        self.accuracy = accuracy

    def __call__(self, name, console, args, row=None, produces=None, continue_with=None) -> bool:
        self.ran.append((name, console, row))
        if console == "lasium-gen":
            out = Path(args[args.index("--out") + 1])
            out.mkdir(parents=True, exist_ok=True)
            source = args[args.index("--source") + 1] if "--source" in args else "generator"
            (out / "manifest.json").write_text(json.dumps({"config": {"source": source}, "source": {"kind": source}}))
        if console == "lasium-train":
            run = Path(args[args.index("--out") + 1])
            (run / "last").mkdir(parents=True, exist_ok=True)
            (run / "last" / "state.json").write_text(json.dumps({"step": 3, "tasks_seen": 6}))
            (run / "metrics.jsonl").write_text(json.dumps({"step": 3, "split": "val", "accuracy": 0.4}) + "\n")
        if console == "lasium-eval":
            Path(produces).parent.mkdir(parents=True, exist_ok=True)
            result = {"accuracy": self.accuracy / 100, "ci95": 0.01, "accuracy_pct": self.accuracy, "ci95_pct": 1.0,
                      "tasks": 10, "seconds": 1}  # fmt: skip
            report = {"episode_digest": "d" * 64, "device": {}, "results": [dict(result, shots=s) for s in (1, 5)]}
            Path(produces).write_text(json.dumps(report))
        return True

    def names(self) -> list[str]:
        return [name for name, _, _ in self.ran]
