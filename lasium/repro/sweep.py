"""Choose LASIUM's σ/α and the training augmentation from evidence: a sweep scored on Omniglot *validation* tasks
(``lasium-repro sweep``).

Every point is the real pipeline at a reduced budget: ``lasium-gen`` (bundled GAN, ``tasks`` tasks) →
``lasium-train --algo protonets`` (or ``maml``: second order, 5 inner steps; its shards then use ``--tuned-for maml``;
``iterations`` × ``meta_batch``) → ``lasium-eval --split val`` (the val split's classes, never the test split; 1- and
5-shot; MAML adapts 50 steps). Two families of points:

- strategy parameters, with the augmentation fixed at ``shift5``: σ for ``n``, α for ``ro`` and ``oc``;
- augmentation presets (``lasium-train --augment``), on one shard set (``n``, σ of ``augment_sigma``).

Writes ``sweep.json``, ``sweep.md`` and ``sweep.png`` after every point, so an interrupted sweep still leaves a
page; with ``resume`` finished stages are reused (:mod:`lasium.repro.stages`), and points the page already holds
with today's commands are taken from it.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .generators import describe_generator, same_generator
from .options import argv_of
from .point_budget import PointBudget
from .records import machine, point_outputs, reused_seconds, sweep_device
from .stages import REUSED, StageRunner, resume_evaluation, resume_training, same_commands
from .sweep_mixture import mixture_commands, mixture_generators, parse_mixture, safe_name
from .sweep_page import PARAMETERS, PRESET_OF, write_page

AUGMENTS = ("none", "shift5", "umtra", "shift7", "shift5-affine", "shift5-strokes", "shift5-erase", "shift5-support")
FAMILIES = ("parameter", "augment", "mixture")
QUICK = dict(tasks=24, iterations=4, val_tasks=10)  # --quick: a smoke run of every stage
DEFAULT_GENERATOR = "omniglot-gan"  # lasium-gen's own default: its points' commands do not name it


@dataclass(frozen=True)
class SweepOptions:
    """The options of ``lasium-repro sweep`` (each a command-line option of the same name)."""

    budget: PointBudget = field(default_factory=PointBudget)
    strategies: tuple[str, ...] = ("n", "ro", "oc")  # strategies of the parameter family
    values: tuple[float, ...] = ()  # σ/α values of every strategy (empty: PARAMETERS' three per strategy)
    augment_sigma: float = 1.0  # σ of the n shard set the augmentation family trains on
    augments: tuple[str, ...] = AUGMENTS  # the augmentation family's presets (lasium-train --augment), a point each
    only: str | None = None  # one family only: parameter | augment
    work: Path = Path("runs/sweep")
    results: Path = Path("results")
    threads: int = 1  # OMP_NUM_THREADS of every stage
    resume: bool = False
    generator: str = DEFAULT_GENERATOR  # lasium-gen --generator of every point (a bundled name or a lasium-fit folder)
    # task mixtures, each "SOURCE:WEIGHT+SOURCE:WEIGHT..." (sources of MIXTURE_SOURCES, a LASIUM one optionally
    # "@GENERATOR": its tasks from that generator): a point per mixture, trained
    # with lasium-train --shards SET:WEIGHT per source, each set of budget.tasks tasks; empty: no mixture family
    mixtures: tuple[str, ...] = ()
    mixture_augment: str = "shift5-affine"  # lasium-train --augment of the mixture points (auto: none for UMTRA)

    def validate(self) -> SweepOptions:
        self.budget.validate()
        unknown = sorted(set(self.strategies) - set(PARAMETERS))
        if unknown:
            raise ConfigError(f"--strategies names unknown strategies {unknown}; choose from {', '.join(PARAMETERS)}")
        if self.only is not None and self.only not in FAMILIES:
            raise ConfigError(f"--only {self.only!r} is unknown; choose one of {', '.join(FAMILIES)}")
        unknown = sorted(set(self.augments) - set(AUGMENTS))
        if unknown or not self.augments:
            named = f"names unknown presets {unknown}" if unknown else "names no preset"
            raise ConfigError(f"--augments {named}; choose from {', '.join(AUGMENTS)}")
        if self.threads < 1:
            raise ConfigError(f"--threads must be at least 1; got {self.threads}")
        mixture_generators(self.mixtures)  # parses every mixture; each named generator's sets get their own folder
        if self.only == "mixture" and not self.mixtures:
            raise ConfigError("--only mixture runs the --mixtures points; give some, e.g. --mixtures n:0.5+umtra:0.5")
        return self

    def points(self) -> list[Point]:
        """The sweep's points, in the order they run (:func:`plan`)."""
        return plan(
            self.augment_sigma,
            self.strategies,
            list(self.values) or None,
            self.mixtures,
            self.mixture_augment,
            self.only,
            self.augments,
        )

    def command_line(self) -> str:
        """``lasium-repro sweep`` with the options not at their default (what the page records)."""
        return shlex.join(["lasium-repro", "sweep", *argv_of(self)])

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(work=str(self.work), results=str(self.results), strategies=list(self.strategies))
        out["augments"] = list(self.augments)
        out["mixtures"] = list(self.mixtures)
        out["values"] = list(self.values)
        return out


@dataclass
class Point:
    """One sweep point: a shard set (strategy, parameter) and a training augmentation."""

    family: str  # parameter | augment
    strategy: str
    parameter: str
    value: float | None  # None: the --tuned-for value of σ/α (no flag)
    augment: str
    mix: str = ""  # family mixture: its sources and weights ("n:0.5+umtra:0.5"); each source's set is its own

    @property
    def shard_name(self) -> str:
        if self.mix:  # one set per source (see mixture_sets); the point's own name
            return "mix-" + "-".join(f"{safe_name(s)}{w:g}" for s, w in parse_mixture(self.mix))
        return f"{self.strategy}-{self.parameter}{'-preset' if self.value is None else format(self.value, 'g')}"

    @property
    def key(self) -> str:
        return f"{self.shard_name}-{self.augment}"


def plan(
    augment_sigma: float,
    strategies: list[str] | tuple[str, ...],
    values: list[float] | None = None,
    mixtures: tuple[str, ...] = (),
    mixture_augment: str = "shift5-affine",
    only: str | None = None,
    augments: tuple[str, ...] = AUGMENTS,
) -> list[Point]:
    """The sweep's points; ``values``: the parameter values of every strategy (default: ``PARAMETERS``); a point per
    mixture last; ``only``: the points of one family; ``augments``: the augmentation family's presets."""
    # Augmentations first: they move accuracy most (shift5 alone is worth ~18 points), σ/α less.
    points = [Point("augment", "n", "sigma", augment_sigma, a) for a in augments]
    points += [
        Point("parameter", s, PARAMETERS[s][0], v, "shift5") for s in strategies for v in (values or PARAMETERS[s][1])
    ]
    points += [Point("mixture", "mix", "", None, mixture_augment, mix=m) for m in mixtures]
    if only:  # before the merge below: with --only parameter, σ = --augment-sigma is a parameter point
        points = [p for p in points if p.family == only]
    seen, unique = set(), []
    for p in points:  # the n / shift5 point belongs to both families; run it once (as an augment point)
        if p.key not in seen:
            seen.add(p.key)
            unique.append(p)
    return unique


def commands(point: Point, budget: PointBudget, work: Path) -> dict[str, list[str]]:
    """The three stages of a point (console script + arguments), fully determined by the point and the budget.

    These commands are what a resumed sweep compares (a point whose recorded commands differ runs again)."""
    shards, run, out = (
        work / "shards" / point.shard_name,
        work / "runs" / point.key,
        work / "evals" / f"{point.key}.json",
    )
    common = budget.common()
    return {
        "gen": [
            "lasium-gen",
            "--strategy",
            point.strategy,
            *([] if point.value is None else [f"--{point.parameter}", f"{point.value:g}"]),
            "--tuned-for",
            PRESET_OF[budget.algo],
            "--n-tasks",
            str(budget.tasks),
            "--tasks-per-shard",
            str(min(budget.tasks, 500)),
            "--decode-tasks",
            "50",
            "--workers",
            "1",
            "--precision",
            budget.gen_precision,
            "--shots",
            str(budget.shots),
            "--queries",
            str(budget.queries),
            *budget.ways_args(),
            "--seed",
            str(budget.seed),
            "--out",
            str(shards),
            "--quiet",
        ]
        + common,
        "train": [
            "lasium-train",
            "--shards",
            str(shards),
            "--algo",
            budget.algo,
            "--augment",
            point.augment,
            "--iterations",
            str(budget.iterations),
            *budget.train_args(),
            "--meta-batch",
            str(budget.meta_batch),
            "--val-every",
            "0",
            "--workers",
            "1",
            "--checkpoint-every",
            "0",
            "--log-every",
            "50",
            "--seed",
            str(budget.seed),
            "--out",
            str(run),
            "--quiet",
            *budget.precision_args(),
        ]
        + common,
        "eval": [
            "lasium-eval",
            "--checkpoint",
            str(run),
            "--split",
            "val",
            "--shots",
            "1,5",
            "--tasks",
            str(budget.val_tasks),
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
            *budget.precision_args(),
        ]
        + common,
    }


def run_point(
    runner: StageRunner, point: Point, cmds: dict[str, list[str]], work: Path, made: set[str]
) -> dict[str, Any] | None:
    """Generate (once per shard set), train and score a point; its ``lasium-eval`` report, or None if a stage
    failed."""
    run, out = work / "runs" / point.key, work / "evals" / f"{point.key}.json"
    for gen in (cmd for stage, cmd in cmds.items() if stage.startswith("gen")):  # one set, or one per mixed source
        shards = Path(gen[gen.index("--out") + 1])
        if shards.name not in made:  # one shard set serves every augmentation point and every mixture
            if not runner.run(f"gen-{shards.name}", gen[0], gen[1:], point.key, produces=shards / "manifest.json"):
                return None
            made.add(shards.name)
    # an interrupted training or scoring stage continues from its autosave / partial evaluation on --resume
    if not runner.run(
        f"train-{point.key}",
        cmds["train"][0],
        cmds["train"][1:],
        point.key,
        produces=run / "last" / "state.json",
        continue_with=resume_training(run),
    ):
        return None
    if not runner.run(
        f"eval-{point.key}",
        cmds["eval"][0],
        cmds["eval"][1:],
        point.key,
        produces=out,
        continue_with=resume_evaluation(out),
    ):
        return None
    return json.loads(out.read_text())


def point_commands(point: Point, options: SweepOptions) -> dict[str, list[str]]:
    """A point's stage commands under ``options`` (:func:`commands`, or a mixture's), naming the sweep's generator
    in each LASIUM generation when it is not lasium-gen's default."""
    budget, work = options.budget, options.work
    cmds = mixture_commands(point, budget, work) if point.mix else commands(point, budget, work)
    if options.generator != DEFAULT_GENERATOR:
        for stage, cmd in cmds.items():
            if stage.startswith("gen") and "--source" not in cmd and "--generator" not in cmd:
                cmd += ["--generator", options.generator]
    return cmds


def earlier_page(options: SweepOptions, generator: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The sweep's page in ``options.results`` (empty when there is none) and its finished points by key: those
    made with the same generator weights (not points of other weights under the same spec)."""
    path = options.results / "sweep.json"
    if not path.is_file():
        return {}, {}
    page = json.loads(path.read_text())
    if not same_generator(page.get("generator"), generator):
        return page, {}
    return page, {r["key"]: r for r in page.get("rows", []) if r["status"] == "ok"}


def same_point(recorded: dict[str, Any], cmds: dict[str, list[str]]) -> bool:
    """Whether a page's finished point was made with today's commands, so that ``--resume`` takes it from the
    page."""
    return same_commands(recorded.get("commands"), {k: " ".join(v) for k, v in cmds.items()})


def summarise(point: Point, report: dict[str, Any] | None, cmds: dict[str, list[str]]) -> dict[str, Any]:
    """A point's row on the page: what it is, its commands, its validation accuracy per shot, the numerics it ran
    in and what its stages made (:func:`~lasium.repro.records.point_outputs`)."""
    row: dict[str, Any] = {
        **asdict(point),
        "key": point.key,
        "status": "ok" if report else "failed",
        "commands": {k: " ".join(v) for k, v in cmds.items()},
    }
    if report:
        row["val"] = {
            str(r["shots"]): {"accuracy_pct": r["accuracy_pct"], "ci95_pct": r["ci95_pct"], "tasks": r["tasks"]}
            for r in report["results"]
        }
        row["episode_digest"] = report["episode_digest"]
        # what --precision resolved to on this machine (auto: bf16 where it is native, fp32 elsewhere)
        numerics = {"train": report.get("checkpoint_state", {}).get("precision"), "score": report.get("precision")}
        if any(numerics.values()):
            row["numerics"] = numerics
        row["outputs"] = point_outputs(cmds)  # what generation and training made, by content (sha256)
    return row


def stage_env(threads: int | None) -> dict[str, str]:
    """This process's environment, with ``threads`` intra-op threads per stage when given."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def run(options: SweepOptions) -> dict[str, Any]:
    """Run (or resume) the sweep, writing its page after every point; return the results as written."""
    options.validate()
    budget, work, results_dir = options.budget, options.work, options.results
    if work.exists() and any(work.iterdir()) and not options.resume:
        raise ConfigError(f"{work} holds an earlier sweep; pass --resume to continue it or choose another --work")
    work.mkdir(parents=True, exist_ok=True)
    results_dir.mkdir(parents=True, exist_ok=True)
    runner = StageRunner(work, stage_env(options.threads), resume=options.resume, tag="sweep")
    generator = describe_generator(options.generator)  # one line for a spec that names no generator
    for named in mixture_generators(options.mixtures):  # a mixture source's own generator: checked before any stage
        describe_generator(named)
    values = list(options.values) or None
    points = options.points()
    # the n/σ/shift5 point is run once, as an augment point; it also belongs in the parameter table
    shared = [pt.key for pt in points if pt.family == "augment" and pt.augment == "shift5"]
    start = time.time()
    rows: list[dict[str, Any]] = []
    made: set[str] = set()
    sizes = budget.page_sizes(options.threads)
    # Across sessions the work folder is gone but the page is committed: a point whose recorded commands equal
    # today's is taken from the page instead of being run again.
    page, earlier = earlier_page(options, generator) if options.resume else ({}, {})
    results: dict[str, Any] = {}
    here = machine(budget.device)
    for point in points:
        cmds = point_commands(point, options)
        recorded = earlier.get(point.key)
        if recorded is not None and same_point(recorded, cmds):
            print(f"[sweep] {point.key}: reused from {results_dir / 'sweep.json'}", flush=True)
            rows.append(dict(recorded, reused=True))
            # its stage records (commands, wall times) come with it: the page keeps what made the point
            runner.stages += [dict(st, note=REUSED) for st in page.get("stages", []) if st.get("row") == point.key]
        else:
            rows.append(summarise(point, run_point(runner, point, cmds, work, made), cmds))
        results = {
            "format": "lasium-sweep-omniglot",
            "command": options.command_line(),
            "options": options.to_json(),
            "device": sweep_device(here, page.get("device"), rows),
            "sizes": sizes,
            "wall_seconds": round(time.time() - start + reused_seconds(runner.stages), 1),
            "shared_keys": shared,
            "rows": rows,
            "stages": runner.stages,
            "planned": len(points),
            "generator": generator,
            **({"values": values} if values else {}),
        }
        write_page(results, results_dir)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"[sweep] {ok}/{len(rows)} points in {time.time() - start:.0f} s; see {results_dir / 'sweep.md'}")
    return results
