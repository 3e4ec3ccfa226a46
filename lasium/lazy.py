"""Lazy package attributes (PEP 562), shared by the packages whose names pull in heavy imports.

A package declares ``_EXPORTS = {name: module}`` and sets
``__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())``: ``import lasium.data`` then stays
light (no torch), and ``from lasium.data import EpisodeSampler`` imports only the module that defines it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package`` for the lazily imported ``exports``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # cached: later lookups no longer reach __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
