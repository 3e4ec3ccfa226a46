"""What the command-line tests share: ``lasium-gen`` in-process, and the one-line error every bad input gets."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from lasium.generate.job.cli import main as gen_main

TESTS = Path(__file__).parent


def one_line_error(result) -> str:
    """The single ``error: ...`` line of a click result that exited 2 (no traceback), for matching its text."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def invoke_gen(*args: str):
    """``lasium-gen ARGS`` in this process (click's runner); ``--generator gen_tiny:build`` imports from tests/
    (on the path through pytest's ``pythonpath`` option)."""
    return CliRunner().invoke(gen_main, list(args))


def tiny_gen_args(out: Path, *, n_tasks: int = 20, per_shard: int | None = 10) -> list[str]:
    """The common arguments of a small ``lasium-gen`` job with the test generator, inline on the CPU
    (``per_shard=None``: lasium-gen's default shard size)."""
    return [
        "--n-tasks",
        str(n_tasks),
        *(["--tasks-per-shard", str(per_shard)] if per_shard is not None else []),
        "--generator",
        "gen_tiny:build",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--workers",
        "0",
        "--quiet",
    ]
