"""lasium.repro: reproducing the LASIUM paper's Omniglot table, and the experiments beside it (``lasium-repro``).

The reproduction is an application of the product: every stage is a console command (``lasium-fit``,
``lasium-gen``, ``lasium-shards``, ``lasium-train``, ``lasium-eval``) run as a subprocess, and the few library names
it reads come from the stages' public exports (``from lasium.train import ...``), never their modules.

- :mod:`~lasium.repro.omniglot` (``lasium-repro omniglot``): the table, driven by :class:`OmniglotOptions`; rows in
  :mod:`~lasium.repro.rows`, sizes in :mod:`~lasium.repro.sizes`, commands in :mod:`~lasium.repro.plan`, running in
  :mod:`~lasium.repro.pipeline` and :mod:`~lasium.repro.stages`, the page in :mod:`~lasium.repro.omniglot_page`;
- :mod:`~lasium.repro.sweep` (``lasium-repro sweep``): σ/α and augmentation on validation tasks;
- :mod:`~lasium.repro.epoch_curve` (``lasium-repro epoch-curve``): accuracy against GAN or VAE training;
- :mod:`~lasium.repro.levers`: what each lever those validation experiments tried was worth (the Omniglot page's
  levers table, read from their results);
- :mod:`~lasium.repro.bundled` (``lasium-repro bundled``): fitting and exporting the bundled generators;
- :mod:`~lasium.repro.precision` (``lasium-repro precision``): fp32 against bf16;
- :mod:`~lasium.repro.pages` (``lasium-repro page``): any results page redrawn from its JSON; charts in
  :mod:`~lasium.repro.charts` (matplotlib, the ``repro`` extra), published figures in
  :mod:`~lasium.repro.published` (sources: ``docs/reference-facts.md``).

Names are imported on first use, so ``import lasium.repro`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "OmniglotOptions": "lasium.repro.options",
    "run_omniglot": "lasium.repro.omniglot",
    "plan_omniglot": "lasium.repro.omniglot",
    "page_only_omniglot": "lasium.repro.omniglot",
    "Sizes": "lasium.repro.sizes",
    "SIZES": "lasium.repro.sizes",
    "Row": "lasium.repro.rows",
    "StageRunner": "lasium.repro.stages",
    "PAGES": "lasium.repro.pages",
    "redraw_page": "lasium.repro.pages",
    "SweepOptions": "lasium.repro.sweep",
    "PointBudget": "lasium.repro.sweep",
    "CurveOptions": "lasium.repro.epoch_curve",
    "BundledOptions": "lasium.repro.bundled",
    "PrecisionOptions": "lasium.repro.precision",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.repro.bundled import BundledOptions
    from lasium.repro.epoch_curve import CurveOptions
    from lasium.repro.omniglot import page_only_omniglot, plan_omniglot, run_omniglot
    from lasium.repro.options import OmniglotOptions
    from lasium.repro.pages import PAGES, redraw_page
    from lasium.repro.precision import PrecisionOptions
    from lasium.repro.rows import Row
    from lasium.repro.sizes import SIZES, Sizes
    from lasium.repro.stages import StageRunner
    from lasium.repro.sweep import PointBudget, SweepOptions
