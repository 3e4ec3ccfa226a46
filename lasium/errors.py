"""Errors meant for the user: each carries one line that says what is wrong and how to fix it.

Command-line entry points turn a :class:`LasiumError` into that line on stderr and exit code 2
(see :mod:`lasium.cli_support`); library callers can catch the subclasses.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, line/paragraph separators and bidirectional overrides: characters that would split a
# message into several lines or let text from a file (a shard member's name, a manifest field) drive the terminal
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x1b``, ``\\u202e``): one printable line."""
    return _UNPRINTABLE.sub(lambda m: repr(m.group())[1:-1], text)


class LasiumError(Exception):
    """Bad input or environment the user can fix; the message is shown as is, without a traceback.

    The message is always one line: control characters in it (say, from a name read out of a damaged file)
    are escaped when the error is made.
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(one_line(a) if isinstance(a, str) else a for a in args))


class DataError(LasiumError):
    """A dataset is missing, corrupt or laid out wrongly."""


class ShardError(LasiumError):
    """A task shard or manifest is missing, corrupt, unsafe or inconsistent."""


class CheckpointError(LasiumError):
    """A model checkpoint is missing, corrupt, unsafe or does not match its config."""


class ConfigError(LasiumError):
    """An option or configuration value is invalid."""
