"""Errors meant for the user: each carries one line that says what is wrong and how to fix it.

Command-line entry points turn a :class:`LasiumError` into that line on stderr and exit code 2
(see :mod:`lasium.cli_support`); library callers can catch the subclasses.
"""


class LasiumError(Exception):
    """Bad input or environment the user can fix; the message is shown as is, without a traceback."""


class DataError(LasiumError):
    """A dataset is missing, corrupt or laid out wrongly."""


class ShardError(LasiumError):
    """A task shard or manifest is missing, corrupt, unsafe or inconsistent."""


class CheckpointError(LasiumError):
    """A model checkpoint is missing, corrupt, unsafe or does not match its config."""


class ConfigError(LasiumError):
    """An option or configuration value is invalid."""
