"""lasium: a task factory for unsupervised meta-learning (LASIUM, Khodadadeh et al., ICLR 2021).

Stages: ``lasium.data`` (images, real episodes), ``lasium.generate`` (generators, LASIUM task synthesis),
``lasium.shards`` (the task-shard format), ``lasium.train`` (meta-learners), ``lasium.evaluate``
(few-shot benchmarks).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"

# The pipeline stages live in top-level folders of the repository (generate/, train/, evaluate/) and the
# installed package maps them into this namespace. When Python imports this file straight from a source
# checkout (the repository root on sys.path: `python -m pytest`, `python -c ...`, PYTHONPATH=repo), that
# mapping is absent, so map the three stage names to their folders here.
_STAGES = ("generate", "train", "evaluate")
_CHECKOUT = Path(__file__).resolve().parent.parent


class _SourceCheckoutStages(importlib.abc.MetaPathFinder):
    """Finds ``lasium.<stage>`` in ``<checkout>/<stage>/`` (only installed when running from a checkout)."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        prefix, _, stage = fullname.partition(".")
        if prefix != __name__ or stage not in _STAGES:
            return None
        folder = _CHECKOUT / stage
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


if (_CHECKOUT / "pyproject.toml").is_file() and all((_CHECKOUT / s / "__init__.py").is_file() for s in _STAGES):
    if not any(isinstance(f, _SourceCheckoutStages) for f in sys.meta_path):
        sys.meta_path.append(_SourceCheckoutStages())
