"""The sweep's task-mixture points (``lasium-repro sweep --mixtures``): LASIUM strategies and UMTRA mixed in given
proportions (``lasium-train --shards SET:WEIGHT``, each task drawn from a set with its weight), scored on validation
tasks like every sweep point. A LASIUM source may name its own generator (``n@omniglot-gan``: the sweep's strategy
on that generator's latent space instead of the sweep's ``--generator``), so tasks of two generators can be mixed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from lasium.errors import ConfigError

from .sweep_page import PARAMETERS

if TYPE_CHECKING:
    from .sweep import Point, PointBudget

MIXTURE_SOURCES = ("n", "ro", "oc", "umtra")  # what a mixture point mixes: LASIUM strategies (σ/α --tuned-for), UMTRA


def split_source(source: str) -> tuple[str, str | None]:
    """``"n@omniglot-gan"`` → ``("n", "omniglot-gan")``; ``"n"`` → ``("n", None)`` (the sweep's generator)."""
    strategy, at, generator = source.partition("@")
    return strategy, (generator if at else None)


def parse_mixture(text: str) -> tuple[tuple[str, float], ...]:
    """``"n:0.5+umtra:0.5"`` → ``(("n", 0.5), ("umtra", 0.5))``, ``"n:0.5+n@omniglot-gan:0.5"`` →
    ``(("n", 0.5), ("n@omniglot-gan", 0.5))``; a one-line :class:`ConfigError` for anything else (an unknown source, a
    source twice, a generator on UMTRA or an empty one, a weight that is not a positive number)."""
    parts: list[tuple[str, float]] = []
    for item in text.split("+"):
        source, _, weight = item.rpartition(":")
        strategy, generator = split_source(source)
        try:
            value = float(weight)
        except ValueError:
            value = float("nan")
        if (
            strategy not in MIXTURE_SOURCES
            or (generator is not None and (strategy == "umtra" or not generator.strip()))
            or not value > 0
            or source in dict(parts)
        ):
            raise ConfigError(
                f"--mixtures takes SOURCE[@GENERATOR]:WEIGHT joined by + (sources {', '.join(MIXTURE_SOURCES)}, each "
                "once; a LASIUM source may name its generator, e.g. n@omniglot-gan; positive weights), mixtures "
                f"separated by commas, e.g. n:0.5+umtra:0.5; got {text!r}"
            )
        parts.append((source, value))
    return tuple(parts)


def mixture_generators(mixtures: tuple[str, ...]) -> tuple[str, ...]:
    """The generators the sources of ``mixtures`` name after ``@``, each once, in order (not the sweep's own
    ``--generator``, which the other sources use); a one-line :class:`ConfigError` when two of them would name their
    sets' folders alike (:func:`generator_tag`)."""
    named = (split_source(source)[1] for text in mixtures for source, _ in parse_mixture(text))
    generators = tuple(dict.fromkeys(g for g in named if g is not None))
    tags: dict[str, str] = {}
    for generator in generators:
        other = tags.setdefault(generator_tag(generator), generator)
        if other != generator:
            raise ConfigError(
                f"--mixtures names two generators whose sets would share a folder ({other!r}, {generator!r}); "
                "give one of them under another folder name"
            )
    return generators


def generator_tag(generator: str) -> str:
    """A generator spec as part of a folder name: ``runs/gan-fit`` → ``gan-fit`` (its last path part, other characters
    than letters, digits, ``.``, ``_`` and ``-`` as ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(generator.rstrip("/")).name or generator)


def safe_name(source: str) -> str:
    """A source as part of a folder name: ``n`` → ``n``, ``n@runs/gan-fit`` → ``n-at-gan-fit``."""
    strategy, generator = split_source(source)
    return strategy if generator is None else f"{strategy}-at-{generator_tag(generator)}"


def mixture_commands(point: Point, budget: PointBudget, work: Path) -> dict[str, list[str]]:
    """A mixture point's stages: a generation per source (a LASIUM strategy with its --tuned-for σ/α, on the
    source's own generator when it names one, or UMTRA with its defaults; ``budget.tasks`` tasks each, one set per
    source shared by every mixture), training on all of them (``--shards SET:WEIGHT``), the validation score."""
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
            strategy, generator = split_source(source)
            part = Point("parameter", strategy, PARAMETERS[strategy][0], None, point.augment)
            gen = commands(part, budget, work)["gen"]
            shards = work / "shards" / part.shard_name
            if generator is not None:  # its own set, named after the generator
                shards = shards.with_name(f"{part.shard_name}-at-{generator_tag(generator)}")
                gen[gen.index("--out") + 1] = str(shards)
                gen += ["--generator", generator]
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
