"""The registry of task sources: ``lasium-gen --source NAME`` looks NAME up here, and nowhere else.

Adding a source is one module in this package (its options dataclass, its ``open`` function and a ``SOURCE``
:class:`~lasium.generate.sources.base.SourceKind`; see :mod:`lasium.generate.sources.base`) and one line below.
The command line, the job and the set header need nothing else: ``lasium-gen`` builds the source's options from
its dataclass, refuses them with any other source, and records NAME as the set config's ``source``.
"""

from __future__ import annotations

import dataclasses

from lasium.errors import ConfigError
from lasium.generate.sources import cactus, generator, real, umtra
from lasium.generate.sources.base import SourceKind, option_flag

TASK_SOURCES: dict[str, SourceKind] = {}
"""Every registered kind of task source, by name (the order of ``--source``'s choices)."""


def register_source(kind: SourceKind) -> SourceKind:
    """Add a kind of task source (its name must be new)."""
    if kind.name in TASK_SOURCES:
        raise ValueError(f"a task source named {kind.name!r} is already registered")
    TASK_SOURCES[kind.name] = kind
    return kind


def get_source(name: str) -> SourceKind:
    """The registered source ``name``; a one-line ConfigError for any other name."""
    if name not in TASK_SOURCES:
        raise ConfigError(f"unknown --source {name!r}; use one of: {', '.join(TASK_SOURCES)}")
    return TASK_SOURCES[name]


def sources_with_option(name: str) -> list[str]:
    """The sources whose options have a field ``name``, in registry order."""
    return [k for k, kind in TASK_SOURCES.items() if any(f.name == name for f in dataclasses.fields(kind.options))]


def refuse_foreign_option(name: str, source: str) -> None:
    """Raise the one-line error for option ``name`` given with ``--source source``, which has no such option."""
    owners = sources_with_option(name)
    if not owners:
        raise ConfigError(f"unknown generation option {name!r}")
    kind = TASK_SOURCES[owners[0]]
    flag = option_flag(next(f for f in dataclasses.fields(kind.options) if f.name == name))
    raise ConfigError(f"{flag} applies to --source {', '.join(owners)}; {source} does not use it")


register_source(generator.SOURCE)
register_source(real.SOURCE)
register_source(umtra.SOURCE)
register_source(cactus.SOURCE)

__all__ = ["TASK_SOURCES", "get_source", "refuse_foreign_option", "register_source", "sources_with_option"]
