"""The rows earlier invocations finished, read back from results pages: the committed ``omniglot.json`` and the
``--reuse-results`` pages other drivers wrote in parallel (one per core). A row is taken again only when it ran the
very commands and generator planned now (``--resume`` across sessions, ``--plan``, ``--page-only``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .generators import legacy_generator, same_generator
from .other_gan import OTHER_GAN
from .stages import page_work, same_commands


@dataclass
class CommittedRows:
    """Finished rows by key, their stages, and the previews the committed page drew."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    stages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    previews: dict[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, pages: list[Path], preset: str, results_dir: Path) -> CommittedRows:
        """The finished rows of ``pages`` written at the sizes ``preset`` (the first page that finished a row wins);
        the previews of the page in ``results_dir`` whose files are still there."""
        found = cls()
        for page in pages:
            committed = json.loads(page.read_text()) if page.is_file() else {}
            if committed.get("preset") != preset:
                continue
            if page == results_dir / "omniglot.json":  # its previews, drawn by an earlier invocation
                for source, name in ((committed.get("images") or {}).get("previews") or {}).items():
                    if (results_dir / name).is_file():
                        found.previews.setdefault(source, name)
            for r in committed.get("rows", []):
                if r.get("family") == OTHER_GAN:  # shown from another GAN's page (--generator-results), never planned
                    continue
                if "generator" not in r and legacy_generator(r):  # written before rows named their generator
                    r["generator"] = legacy_generator(r)
                if "work" not in r and page_work(committed) is not None:  # rows written before rows recorded it
                    r["work"] = str(page_work(committed))
                if r.get("status") == "ok" and found.rows.get(r["key"], {}).get("status") != "ok":
                    found.rows[r["key"]] = r
                    found.stages[r["key"]] = [s for s in committed.get("stages", []) if s.get("row") == r["key"]]
        return found

    def matching(
        self, key: str, commands: dict[str, Any], generator: dict[str, Any] | None, work: Path
    ) -> dict[str, Any] | None:
        """The finished row ``key`` when it ran these ``commands`` (its paths under ``work``, up to how its own
        driver spelled the work folder) with this ``generator``, else None."""
        earlier = self.rows.get(key)
        if (
            not earlier
            or earlier.get("status") != "ok"
            or not same_commands(
                earlier.get("commands"),
                commands,
                work,
                Path(earlier["work"]) if earlier.get("work") else None,  # how its own driver spelled the work folder
            )
            or not same_generator(earlier.get("generator"), generator)
        ):
            return None
        return earlier
