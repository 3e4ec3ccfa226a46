"""What several ``lasium-repro`` subcommands share: click settings, the parsing of comma-separated values, and the
options of a validation point's budget (``sweep`` and ``epoch-curve``)."""

from __future__ import annotations

import click

from lasium.errors import ConfigError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def names(text: str | None) -> tuple[str, ...]:
    """A comma-separated list of names (empty entries dropped)."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def numbers(text: str | None, kind: type, option: str) -> tuple:
    """A comma-separated list of numbers of ``kind``; a one-line error naming ``option`` otherwise."""
    try:
        return tuple(kind(v) for v in names(text))
    except ValueError:
        raise ConfigError(f"{option} takes numbers separated by commas, e.g. 0.2,0.6; got {text!r}") from None


def budget_options(tasks: int, gen_precision: str, val_tasks: int) -> list:
    """The options of a validation point's budget (shared by sweep and epoch-curve)."""
    return [
        click.option("--tasks", type=int, default=tasks, show_default=True, help="Generated tasks per shard set."),
        click.option("--iterations", type=int, default=1000, show_default=True, help="Training iterations per point."),
        click.option("--meta-batch", type=int, default=4, show_default=True, help="Tasks per training iteration."),
        click.option("--val-tasks", type=int, default=val_tasks, show_default=True, help="Validation tasks per K_tr."),
        click.option("--gen-precision", default=gen_precision, show_default=True, help="lasium-gen --precision."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--data-root", default=None, help="Dataset root of every stage [$LASIUM_DATA]."),
        click.option("--quick", is_flag=True, help="Tiny sizes (24 tasks, 4 iterations, 10 val tasks): a smoke run."),
    ]


def with_options(decorators: list):
    """One decorator applying ``decorators`` in the order listed (a shared group of click options)."""

    def apply(func):
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply
