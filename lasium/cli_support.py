"""Shared behaviour of the console scripts: one-line errors with exit code 2, no tracebacks; SIGTERM as Ctrl-C;
``--version``, and ``-q/--quiet`` / ``-v/--verbose`` setting the level of lasium's logging (:mod:`lasium.logs`)."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import click

from lasium import logs
from lasium.errors import LasiumError, one_line

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler, ``timeout``) raised in the main thread, so a command cleans up as after
    Ctrl-C: worker processes stopped, shared memory and locks released, partial files removed."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside: SIGTERM raises :class:`Terminated` in the main thread instead of ending the process on the spot.

    Only where SIGTERM still has its default action (a handler someone installed is left alone) and only in the
    main thread (the only one that can install a handler). A second SIGTERM ends the process at once, cleanup or
    not; a process forked from this one (a DataLoader worker) that inherits the handler ends as it would have.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not (
        signal.SIG_DFL
    ):
        yield
        return
    owner = os.getpid()

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if os.getpid() != owner:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2."""
    click.echo(f"error: {one_line(message)}", err=True)
    sys.exit(EXIT_USAGE)


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a click command so a :class:`LasiumError` ends the program with one line and exit 2.

    Also maps a full disk (ENOSPC) and permission errors to one line, since those are things the
    user fixes, not bugs. Anything else keeps its traceback: it is our bug and the trace helps. Ctrl-C and
    SIGTERM (:func:`sigterm_as_interrupt`) unwind the command, so its cleanup runs, then exit 130 and 143.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with sigterm_as_interrupt():
                return func(*args, **kwargs)
        except LasiumError as exc:
            fail(str(exc))
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            click.echo("terminated" if terminated else "interrupted", err=True)
            sys.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)
        except OSError as exc:
            import errno

            if exc.errno == errno.ENOSPC:
                fail(
                    "no space left on device while writing "
                    f"{exc.filename or 'output'}; free space or choose another --out"
                )
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                fail(f"cannot write {exc.filename or 'output'}: {exc.strerror}; choose a writable --out")
            if exc.errno in (errno.EISDIR, errno.ENOTDIR):  # a folder where a file belongs, or the other way round
                fail(
                    f"cannot write {exc.filename2 or exc.filename or 'output'}: {exc.strerror}; "
                    "move it aside or choose another path"
                )
            raise

    return wrapper


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from lasium import __version__

    click.echo(f"{ctx.find_root().info_name or 'lasium'} (lasium) {__version__}")
    ctx.exit(0)


_VERBOSITY = "lasium.verbosity"  # ctx.meta key (shared by a group's context and its subcommand's): quiet, verbose


def _verbosity_callback(notes_off_at: int = 1) -> Callable[..., Any]:
    """A click callback that records ``-q``/``-v`` and sets the lasium loggers' level at once (while the
    command line is parsed, before the command runs); a group's flags and its subcommand's add up.
    ``notes_off_at``: how many ``-q`` hide the notes (2 where the first one hides progress bars)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        quiet, verbose = ctx.meta.get(_VERBOSITY, (False, 0))
        if param.name == "verbose":
            verbose = max(verbose, int(value or 0))
        else:
            quiet = quiet or int(value or 0) >= notes_off_at
        ctx.meta[_VERBOSITY] = (quiet, verbose)
        logs.set_level(logs.level_for(quiet, verbose))
        return bool(value) if param.name != "verbose" else value

    return callback


def add_verbosity_options(command: click.Command) -> None:
    """Give ``command`` ``-q/--quiet`` and ``-v/--verbose`` (``-v``: also debug detail).

    ``-q`` silences one layer of output at a time: where the command has its own ``--quiet`` (no progress
    bars), that stays what one ``-q`` does and ``-qq`` also hides the notes (warnings and errors only);
    elsewhere one ``-q`` hides the notes. The command still receives its own ``quiet`` as a bool.
    """
    opts = {opt for p in command.params for opt in getattr(p, "opts", ())}
    own = next((i for i, p in enumerate(command.params) if "--quiet" in getattr(p, "opts", ())), None)
    if own is not None:
        old = command.params[own]
        command.params[own] = click.Option(
            ["-q", "--quiet", old.name or "quiet"],
            count=True,
            callback=_verbosity_callback(notes_off_at=2),
            help=f"{(getattr(old, 'help', None) or 'Less output.').rstrip('.')}; -qq: warnings and errors only.",
        )
    elif "-q" not in opts:
        command.params.append(
            click.Option(
                ["-q", "--quiet"],
                count=True,
                expose_value=False,
                callback=_verbosity_callback(),
                help="Warnings and errors only (no notes).",
            )
        )
    if "--verbose" not in opts and "-v" not in opts:
        command.params.append(
            click.Option(
                ["-v", "--verbose"],
                count=True,
                expose_value=False,
                callback=_verbosity_callback(),
                help="Also debug detail (e.g. each retried remote read).",
            )
        )


class _OneLineUsageErrors(click.Command):
    """click usage errors (unknown option, missing argument, bad number) as one ``error: ...`` line and
    exit 2, like every other lasium error, instead of click's three-line usage block; and ``--version``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any("--version" in getattr(p, "opts", ()) for p in self.params):
            self.params.append(
                click.Option(
                    ["--version"],
                    is_flag=True,
                    expose_value=False,
                    is_eager=True,
                    callback=_print_version,
                    help="Print the lasium version and exit.",
                )
            )
        add_verbosity_options(self)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        logs.set_level(logs.DEFAULT_LEVEL)  # a command run in-process after another starts from the default
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # click >= 8.2: bare group call shows help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "the command"
            fail(f"{exc.format_message()} (see {where} --help)")
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)


class OneLineCommand(_OneLineUsageErrors, click.Command):
    """A click command whose usage errors are one line (use as ``@click.command(cls=OneLineCommand)``)."""


class _SubCommand(click.Command):
    """A subcommand of a :class:`OneLineGroup`: it takes ``-q``/``-v`` too."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_verbosity_options(self)


class OneLineGroup(_OneLineUsageErrors, click.Group):
    """A click group whose (and whose subcommands') usage errors are one line; ``-q``/``-v`` on the group
    or on any subcommand."""

    command_class = _SubCommand

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd``; a command defined elsewhere (``@click.command``) gets ``-q``/``-v`` here."""
        if not isinstance(cmd, (_SubCommand, click.Group)):
            add_verbosity_options(cmd)
        super().add_command(cmd, name)


def one_line_warnings(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a click command so each warning raised while it runs is one ``warning: message`` line on stderr
    (Python's default shows the file, line number and source line of where it was raised)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        previous = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
            click.echo(f"warning: {message}", err=True)

        warnings.showwarning = show
        try:
            return func(*args, **kwargs)
        finally:
            warnings.showwarning = previous

    return wrapper


def parse_count(text: str | int | float) -> int:
    """Parse a count given as ``1000000``, ``1_000_000``, ``1e6`` or ``1,000,000`` (exact integers only)."""
    if isinstance(text, bool):
        raise ValueError("not a count")
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().replace("_", "").replace(",", "")
        try:
            value = int(s)
        except ValueError:
            f = float(s)  # raises ValueError for junk
            if not f.is_integer():
                raise ValueError(f"{text!r} is not a whole number") from None
            value = int(f)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return value


class CountType(click.ParamType):
    """click parameter type for counts such as ``1e6`` or ``1_000_000``."""

    name = "count"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        try:
            return parse_count(value)
        except ValueError as exc:
            self.fail(f"{value!r} is not a count ({exc}); write e.g. 1000000, 1_000_000 or 1e6", param, ctx)


COUNT = CountType()
