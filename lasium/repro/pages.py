"""Results pages from their stored figures: each experiment's JSON names its ``format``, and :data:`PAGES` maps the
format to what redraws its markdown page and charts beside it (``lasium-repro page``). Nothing runs: a page
regenerated from its JSON shows the same figures.

Adding an experiment's page is one :class:`PageKind` and one line in :data:`PAGES`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError
from lasium.safe_io import replace_atomically

from .curve_page import GENERATOR_KINDS, results_format


@dataclass(frozen=True)
class PageKind:
    """How one experiment's results page is redrawn: ``redraw(results, folder)`` writes its markdown (and charts)
    into ``folder`` and returns the files it wrote."""

    description: str
    redraw: Callable[[dict[str, Any], Path], list[Path]]


def _omniglot(results: dict[str, Any], folder: Path) -> list[Path]:
    from .omniglot_page import write_page

    return write_page(results, folder)[1]  # rewrites omniglot.json too: only its record of the charts can change


def _sweep(results: dict[str, Any], folder: Path) -> list[Path]:
    from .sweep_page import write_page

    return [folder / "sweep.md", *(folder / n for n in write_page(results, folder, write_json=False))]


def _epoch_curve(results: dict[str, Any], folder: Path) -> list[Path]:
    from .curve_page import page_name, results_kind, write_page

    name = page_name(results_kind(results))
    return [folder / f"{name}.md", *(folder / n for n in write_page(results, folder, write_json=False))]


def _precision(results: dict[str, Any], folder: Path) -> list[Path]:
    from .precision import render

    replace_atomically(folder / "precision.md", lambda tmp: tmp.write_text(render(results)))
    return [folder / "precision.md"]


def _step_curve(results: dict[str, Any], folder: Path) -> list[Path]:
    from .step_curve import PAGE, write_page

    return [folder / f"{PAGE}.md", *(folder / n for n in write_page(results, folder, write_json=False))]


PAGES: dict[str, PageKind] = {
    "lasium-repro-omniglot": PageKind("the Omniglot reproduction (lasium-repro omniglot)", _omniglot),
    "lasium-sweep-omniglot": PageKind("the σ/α and augmentation sweep (lasium-repro sweep)", _sweep),
    **{
        results_format(kind): PageKind(f"accuracy against {g.label} training (lasium-repro epoch-curve)", _epoch_curve)
        for kind, g in GENERATOR_KINDS.items()
    },
    "lasium-precision-check": PageKind("fp32 against bf16 (lasium-repro precision)", _precision),
    "lasium-step-curve": PageKind("accuracy along one training run (lasium-repro step-curve)", _step_curve),
}


def redraw_page(path: str | Path) -> list[Path]:
    """Redraw the page of the results JSON at ``path`` beside it; return the files written. A JSON that is not a
    results page of :data:`PAGES` is a :class:`ConfigError`."""
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; give a results JSON such as results/omniglot.json") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc}); give a results JSON") from None
    kind = PAGES.get(results.get("format", "")) if isinstance(results, dict) else None
    if kind is None:
        known = ", ".join(PAGES)
        raise ConfigError(f"{path} is not a results page lasium-repro draws (its format is none of {known})")
    return kind.redraw(results, path.parent)
