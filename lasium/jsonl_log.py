"""Append-only JSON-lines logs (``losses.jsonl`` of ``lasium-fit``, ``metrics.jsonl`` of ``lasium-train``).

One JSON object per line, appended and flushed as it happens. A resumed run first drops the records past
its restart point (they will be redone), rewriting the file atomically, so a crash mid-rewrite never
loses the records that stay.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lasium.safe_io import replace_atomically


class JsonLinesLog:
    """Appends records to ``path``; ``keep_until`` (on resume) first drops records whose ``key`` is larger."""

    def __init__(self, path: str | Path, *, key: str, keep_until: int | None = None, sort_keys: bool = True) -> None:
        self.path = Path(path)
        self.sort_keys = sort_keys
        if keep_until is not None and self.path.is_file():
            kept = [
                line
                for line in self.path.read_text().splitlines()
                if line.strip() and json.loads(line).get(key, 0) <= keep_until
            ]
            replace_atomically(self.path, lambda tmp: tmp.write_text("".join(line + "\n" for line in kept)))
        self._file = open(self.path, "a", buffering=1)  # line-buffered: every record reaches the file at once

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, sort_keys=self.sort_keys) + "\n")

    def close(self) -> None:
        self._file.close()


def read_json_lines(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSON-lines log."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
