"""Append-only JSON-lines logs (``losses.jsonl`` of ``lasium-fit``, ``metrics.jsonl`` of ``lasium-train``).

One JSON object per line, appended and flushed as it happens. A resumed run first drops the records past
its restart point (they will be redone), rewriting the file atomically, so a crash mid-rewrite never
loses the records that stay. A line that is not a JSON object (the last record torn by a kill, or a damaged
or binary file) is no record: reading skips it, and a resumed run drops it with a note on stderr.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from lasium.safe_io import replace_atomically

log = logging.getLogger(__name__)


class JsonLinesLog:
    """Appends records to ``path``; ``keep_until`` (on resume) first drops records whose ``key`` is larger."""

    def __init__(self, path: str | Path, *, key: str, keep_until: int | None = None, sort_keys: bool = True) -> None:
        self.path = Path(path)
        self.sort_keys = sort_keys
        if keep_until is not None and self.path.is_file():
            lines, records = _parse(self.path)
            kept = [
                line for line, record in zip(lines, records) if record is not None and _at_most(record, key, keep_until)
            ]
            dropped = sum(record is None for record in records)
            if dropped:
                log.info("note: %s: dropped %d unreadable line(s) (torn by a kill, or damaged)", self.path, dropped)
            replace_atomically(self.path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept)))
        self._file = open(self.path, "a", buffering=1)  # line-buffered: every record reaches the file at once

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=self.sort_keys) + "\n")

    def close(self) -> None:
        self._file.close()


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines log (lines that are not JSON objects are skipped)."""
    return [record for record in _parse(Path(path))[1] if record is not None]


def _parse(path: Path) -> tuple[list[str], list[dict[str, Any] | None]]:
    """The non-blank lines of ``path`` and, for each, its record (None: not UTF-8 text holding a JSON object)."""
    lines, records = [], []
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
            record = json.loads(line)
        except ValueError:  # UnicodeDecodeError and JSONDecodeError alike
            line, record = "", None
        lines.append(line)
        records.append(record if isinstance(record, dict) else None)
    return lines, records


def _at_most(record: dict[str, Any], key: str, limit: int) -> bool:
    value = record.get(key, 0)
    return isinstance(value, (int, float)) and value <= limit
