"""Rows of LASIUM with another GAN than the run's (``lasium-repro omniglot --generator-results PAGE``).

A driver run with ``--generator X`` writes a results page of its own (its rows keep the keys of the bundled GAN's
rows, so the two cannot share one page by key). ``--generator-results`` takes the finished LASIUM rows of such a page
into this page, each under a key and label that name its GAN (``protonets-n@omniglot-gan-h200``), in the family
:data:`OTHER_GAN`: a section of their own beside the row of the same recipe on the run's GAN, counted among the rows
trained on unlabeled images only (issue 27's targets), never among the rows of the bundled GAN as shipped (the
paper's and the project's targets). They are never run again here: their page is their record, stages included.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .generators import short

OTHER_GAN = "other-gan"  # the family of the rows taken from another GAN's page


@cache
def _bundled_by_sha() -> dict[str, str]:
    """The bundled models by the sha256 of their weights (what names a GAN that is a bundled model's weights)."""
    from lasium.checkpoint_folder import WEIGHTS_FILE
    from lasium.errors import CheckpointError
    from lasium.generate import BUNDLED_NAMES, bundled_folder
    from lasium.safe_io import file_sha256

    found = {}
    for name in BUNDLED_NAMES:
        try:
            found[file_sha256(bundled_folder(name) / WEIGHTS_FILE)] = name
        except CheckpointError:  # not exported into this installation
            continue
    return found


def generator_name(record: dict[str, Any]) -> str:
    """A GAN's name on the page: the bundled model its weights are (``omniglot-gan-h200``), else its spec."""
    sha = str(record.get("weights_sha256") or "")
    return _bundled_by_sha().get(sha) or str(record.get("spec") or record.get("name") or sha[:12] or "?")


def rows_from_pages(
    pages: tuple[Path, ...], preset: str, run_generator_sha: str | None, results_dir: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The finished LASIUM rows of ``pages`` (results pages of drivers run with another ``--generator``), renamed
    after their GAN, and their stages (each row names its page relative to ``results_dir``, where the page that
    shows it is written); raises a one-line :class:`ConfigError` for a page that is not such a page."""
    rows: list[dict[str, Any]] = []
    stages: list[dict[str, Any]] = []
    for page in pages:
        try:
            results = json.loads(Path(page).read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--generator-results {page}: not a readable results page ({exc})") from None
        if results.get("preset") != preset:
            raise ConfigError(
                f"--generator-results {page} was written at --sizes {results.get('preset')}, not {preset}; give a "
                "page of the same sizes"
            )
        for row in results.get("rows", []):
            generator = row.get("generator") or {}
            if row.get("family") != "lasium" or row.get("status") != "ok" or not generator.get("weights_sha256"):
                continue
            if generator["weights_sha256"] == run_generator_sha:
                raise ConfigError(
                    f"--generator-results {page}: row {row['key']} is from this run's own GAN; take its rows with "
                    "--reuse-results instead"
                )
            name = generator_name(generator)
            key = f"{row['key']}@{name}"
            rows.append(
                {
                    **row,
                    "key": key,
                    "label": row["label"].removesuffix(" (ours)") + f", GAN `{name}` (ours)",
                    "family": OTHER_GAN,
                    "same_recipe": row["key"],
                    "page": Path(os.path.relpath(Path(page).resolve(), Path(results_dir).resolve())).as_posix(),
                }
            )
            stages += [
                {**s, "row": key, "note": f"from {page}"}
                for s in results.get("stages", [])
                if s.get("row") == row["key"]
            ]
    return rows, stages


def other_gan_table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows of :data:`OTHER_GAN`, each beside the row of the same recipe on the run's GAN (when scored)."""
    theirs = [r for r in rows if r.get("family") == OTHER_GAN]
    if not theirs:
        return []
    by_key = {r["key"]: r for r in rows if r.get("status") == "ok"}
    out = [
        "| method | 1-shot | 5-shot | same recipe, run's GAN | Δ (1-shot / 5-shot) | generator | page |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in theirs:
        figures = [float(r["eval"][k]["accuracy_pct"]) for k in ("1", "5")]
        base = by_key.get(str(r.get("same_recipe")))
        if base and base.get("eval"):
            base_figures = [float(base["eval"][k]["accuracy_pct"]) for k in ("1", "5")]
            base_cell = " / ".join(f"{v:.2f}" for v in base_figures)
            delta = " / ".join(f"{a - b:+.2f}" for a, b in zip(figures, base_figures))
        else:
            base_cell, delta = "not on this page", "–"
        cells = " | ".join(f"{r['eval'][k]['accuracy_pct']:.2f} ± {r['eval'][k]['ci95_pct']:.2f}" for k in ("1", "5"))
        page = str(r["page"])
        out.append(
            f"| **{r['label']}** | {cells} | {base_cell} | {delta} | {short(r.get('generator'))} | "
            f"[{page}]({page.removesuffix('.json')}.md) |"
        )
    return out
