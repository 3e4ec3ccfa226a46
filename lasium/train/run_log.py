"""Metrics of a run: one JSON object per line in ``metrics.jsonl``, mirrored to TensorBoard when installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lasium.jsonl_log import JsonLinesLog, read_json_lines

METRICS_FILE = "metrics.jsonl"


class MetricsLog:
    """Appends records ``{"step": ..., "split": "train"|"val", ...}``.

    On resume, drops records past the restart step.
    """

    def __init__(self, run_dir: Path, *, resume_step: int | None = None, tensorboard: bool = True) -> None:
        # An interrupted run may have logged steps after its last checkpoint; they will be redone.
        self._log = JsonLinesLog(Path(run_dir) / METRICS_FILE, key="step", keep_until=resume_step)
        self.path = self._log.path
        self._tb = None
        if tensorboard:
            try:  # optional: only when the tensorboard package is installed
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except ImportError:
                self._tb = None

    def write(self, record: dict[str, Any]) -> None:
        self._log.write(record)
        if self._tb is not None:
            split = record.get("split", "train")
            for key, value in record.items():
                if isinstance(value, (int, float)) and key not in ("step", "time"):
                    self._tb.add_scalar(f"{split}/{key}", value, record["step"])

    def close(self) -> None:
        self._log.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl``."""
    return read_json_lines(Path(run_dir) / METRICS_FILE)
