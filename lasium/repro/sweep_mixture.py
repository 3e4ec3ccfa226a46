"""The sweep's task-mixture points (``lasium-repro sweep --mixtures``): LASIUM strategies and UMTRA mixed in given
proportions (``lasium-train --shards SET:WEIGHT``, each task drawn from a set with its weight), scored on validation
tasks like every sweep point."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lasium.errors import ConfigError

from .sweep_page import PARAMETERS

if TYPE_CHECKING:
    from .sweep import Point, PointBudget

MIXTURE_SOURCES = ("n", "ro", "oc", "umtra")  # what a mixture point mixes: LASIUM strategies (σ/α --tuned-for), UMTRA


def parse_mixture(text: str) -> tuple[tuple[str, float], ...]:
    """``"n:0.5+umtra:0.5"`` → ``(("n", 0.5), ("umtra", 0.5))``; a one-line :class:`ConfigError` for anything else
    (an unknown source, a source twice, a weight that is not a positive number)."""
    parts: list[tuple[str, float]] = []
    for item in text.split("+"):
        source, _, weight = item.partition(":")
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if source not in MIXTURE_SOURCES or not value > 0 or source in dict(parts):
            raise ConfigError(
                f"--mixtures takes SOURCE:WEIGHT joined by + (sources {', '.join(MIXTURE_SOURCES)}, each once, "
                f"positive weights), mixtures separated by commas, e.g. n:0.5+umtra:0.5; got {text!r}"
            )
        parts.append((source, value))
    return tuple(parts)


def mixture_commands(point: Point, budget: PointBudget, work: Path) -> dict[str, list[str]]:
    """A mixture point's stages: a generation per source (a LASIUM strategy with its --tuned-for σ/α, or UMTRA with
    its defaults; ``budget.tasks`` tasks each, one set per source shared by every mixture), training on all of them
    (``--shards SET:WEIGHT``), the validation score."""
    from .sweep import Point, commands

    cmds: dict[str, list[str]] = {}
    sets = []
    for source, weight in parse_mixture(point.mix):
        if source == "umtra":
            shards = work / "shards" / "umtra"
            gen = ["lasium-gen", "--source", "umtra", "--dataset", "omniglot", "--n-tasks", str(budget.tasks),
                   "--tasks-per-shard", str(min(budget.tasks, 500)), "--workers", "1", "--shots", "1", "--queries",
                   "5", *budget.ways_args(), "--seed", str(budget.seed), "--out", str(shards), "--quiet",
                   *budget.common()]  # fmt: skip
        else:
            part = Point("parameter", source, PARAMETERS[source][0], None, point.augment)
            gen = commands(part, budget, work)["gen"]
            shards = work / "shards" / part.shard_name
        cmds[f"gen-{shards.name}"] = gen
        sets.append(f"{shards}:{weight:g}")
    single = commands(Point("parameter", "n", "sigma", None, point.augment), budget, work)
    train = single["train"]
    at = train.index("--shards")
    train = train[:at] + [a for s in sets for a in ("--shards", s)] + train[at + 2 :]
    run = work / "runs" / point.key
    train[train.index("--out") + 1] = str(run)
    evaluate = single["eval"]
    evaluate[evaluate.index("--checkpoint") + 1] = str(run)
    evaluate[evaluate.index("--out") + 1] = str(work / "evals" / f"{point.key}.json")
    return {**cmds, "train": train, "eval": evaluate}
