"""What every command shares: ``--version``, ``python -m lasium COMMAND``, ``python -m <cli module>``."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest
from click.testing import CliRunner

import lasium
from lasium.__main__ import commands

COMMANDS = commands()


def test_every_console_script_is_listed() -> None:
    assert {"data", "shards", "fit", "gen", "train", "eval"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_version(name: str) -> None:
    module, _, function = COMMANDS[name].partition(":")
    command = getattr(import_module(module), function)
    result = CliRunner().invoke(command, ["--version"], prog_name=f"lasium-{name}")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"lasium-{name} (lasium) {lasium.__version__}"


def test_python_m_lasium_runs_a_command_and_refuses_an_unknown_one() -> None:
    ok = subprocess.run([sys.executable, "-m", "lasium", "shards", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("Usage: lasium-shards"), ok.stdout + ok.stderr
    version = subprocess.run([sys.executable, "-m", "lasium", "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"lasium {lasium.__version__}"
    bad = subprocess.run([sys.executable, "-m", "lasium", "nope"], capture_output=True, text=True)
    assert (
        bad.returncode == 2 and bad.stderr.startswith("error: unknown command 'nope'") and "Traceback" not in bad.stderr
    )


def test_cli_modules_run_with_python_m() -> None:
    out = subprocess.run([sys.executable, "-m", "lasium.shards.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "inspect" in out.stdout
