"""Diagnostics go through logging (lasium.logs): one plain line each on stderr, INFO by default, and every
command's -q/--quiet and -v/--verbose map to levels (lasium.cli_support, shared by all the commands)."""

from __future__ import annotations

import logging

import click
import pytest
from click.testing import CliRunner

from lasium import logs
from lasium.cli_support import OneLineCommand, OneLineGroup

log = logging.getLogger("lasium.test_logging")


def _say() -> None:
    log.debug("detail")
    log.info("note: a note")
    log.warning("a warning")
    click.echo("the result")


@click.command(cls=OneLineCommand)
def command() -> None:
    _say()


@click.command(cls=OneLineCommand)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def own_quiet(quiet: bool) -> None:
    _say()
    click.echo(f"progress bar: {not quiet}")


@click.group(cls=OneLineGroup)
def group() -> None:
    pass


@group.command()
def sub() -> None:
    _say()


def lines(result) -> list[str]:
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_level_for():
    assert logs.level_for() == logging.INFO
    assert logs.level_for(quiet=True) == logging.WARNING
    assert logs.level_for(verbose=1) == logging.DEBUG and logs.level_for(verbose=3) == logging.DEBUG
    assert logs.level_for(quiet=True, verbose=2) == logging.WARNING  # -q wins


DEFAULT = ["note: a note", "warning: a warning", "the result"]
QUIET = ["warning: a warning", "the result"]
VERBOSE = ["debug: detail", *DEFAULT]


@pytest.mark.parametrize(
    ("args", "want"),
    [([], DEFAULT), (["-q"], QUIET), (["--quiet"], QUIET), (["-v"], VERBOSE), (["--verbose"], VERBOSE)],
)
def test_flags_map_to_levels(args, want):
    assert lines(CliRunner().invoke(command, args)) == want
    # the next command run in the same process starts from the default again
    assert lines(CliRunner().invoke(command, [])) == DEFAULT


@pytest.mark.parametrize(
    ("args", "want"),
    [
        (["sub"], DEFAULT),
        (["-q", "sub"], QUIET),
        (["sub", "-q"], QUIET),
        (["-v", "sub"], VERBOSE),
        (["sub", "-v"], VERBOSE),
    ],
)
def test_a_group_and_its_subcommands_take_the_flags(args, want):
    assert lines(CliRunner().invoke(group, args)) == want


def test_a_commands_own_quiet_keeps_its_meaning_and_qq_hides_the_notes():
    assert lines(CliRunner().invoke(own_quiet, [])) == [*DEFAULT, "progress bar: True"]
    assert lines(CliRunner().invoke(own_quiet, ["--quiet"])) == [*DEFAULT, "progress bar: False"]
    assert lines(CliRunner().invoke(own_quiet, ["-q"])) == [*DEFAULT, "progress bar: False"]
    assert lines(CliRunner().invoke(own_quiet, ["-qq"])) == [*QUIET, "progress bar: False"]
    assert lines(CliRunner().invoke(own_quiet, ["-q", "-v"])) == [*VERBOSE, "progress bar: False"]


def test_without_a_command_warnings_and_notes_reach_stderr_as_before(capfd):
    logs.set_level(logs.DEFAULT_LEVEL)
    _say()
    out, err = capfd.readouterr()
    assert err.splitlines() == ["note: a note", "warning: a warning"] and out == "the result\n"


@pytest.mark.parametrize(
    "main",
    [
        "lasium.shards.cli",
        "lasium.data.cli",
        "lasium.train.cli",
        "lasium.evaluate.cli",
        "lasium.generate.job.cli",
        "lasium.generate.models.fit_cli",
        "lasium.repro.cli",
    ],
)
def test_every_command_lists_the_flags(main):
    import importlib

    cli = importlib.import_module(main).main
    commands = [cli, *getattr(cli, "commands", {}).values()]
    for cmd in commands:
        opts = {opt for p in cmd.params for opt in getattr(p, "opts", ())}
        assert {"-q", "--quiet", "-v", "--verbose"} <= opts, (main, cmd.name)
