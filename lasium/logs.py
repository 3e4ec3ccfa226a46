"""Diagnostics (warnings, notes, debug detail) through :mod:`logging`, shown on stderr as one plain line each.

Library modules log with ``logging.getLogger(__name__)``; everything below the ``lasium`` logger reaches one
handler, installed on first import of lasium (as ``transformers`` does for its own logger), that writes
``warning: ...`` / ``error: ...`` / ``debug: ...`` lines, and INFO lines (notes, ``run folder: ...``) as they
are, on the stderr of the moment, so that a plain script sees what the commands show. The level is INFO;
the commands' ``-q/--quiet`` and ``-v/--verbose`` set it (:func:`level_for`, :mod:`lasium.cli_support`), and
a program sets it with ``logging.getLogger("lasium").setLevel(...)``. To route lasium's records through an
application's own logging setup instead, call :func:`propagate_to_root`.
Results (tables, accuracies) and progress bars are not diagnostics: they stay on stdout/stderr as they are.
"""

from __future__ import annotations

import logging
import sys

ROOT = "lasium"
DEFAULT_LEVEL = logging.INFO
_PREFIX = {
    logging.DEBUG: "debug: ",
    logging.WARNING: "warning: ",
    logging.ERROR: "error: ",
    logging.CRITICAL: "error: ",
}


class LineFormatter(logging.Formatter):
    """``warning: message`` (and ``error:``, ``debug:``); INFO messages as they are (they name themselves:
    ``note: ...``, ``run folder: ...``); a message already starting with its prefix is not prefixed twice."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        prefix = _PREFIX.get(record.levelno, "")
        return message if message.startswith(prefix) else prefix + message


class StderrHandler(logging.Handler):
    """Writes each record as one line to ``sys.stderr`` as it is when the record is emitted (so a redirected
    or captured stderr, as under click's test runner or pytest, receives it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001 - logging must never break the program (logging's own rule)
            self.handleError(record)


def _configure() -> logging.Logger:
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, StderrHandler) for h in logger.handlers):
        handler = StderrHandler()
        handler.setFormatter(LineFormatter())
        logger.addHandler(handler)
        logger.setLevel(DEFAULT_LEVEL)
        logger.propagate = False
    return logger


def level_for(quiet: bool = False, verbose: int = 0) -> int:
    """The level of the commands' flags: ``-q`` → WARNING (warnings and errors only), ``-v`` → DEBUG (also
    what is normally left out, e.g. each retried remote read), neither → INFO (warnings and notes)."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose > 0 else DEFAULT_LEVEL


def set_level(level: int) -> None:
    """Set the level of every lasium logger."""
    _configure().setLevel(level)


def propagate_to_root() -> None:
    """Hand lasium's records to the root logger's handlers (an application's own setup) instead of stderr."""
    logger = _configure()
    for handler in [h for h in logger.handlers if isinstance(h, StderrHandler)]:
        logger.removeHandler(handler)
    logger.propagate = True


_configure()
