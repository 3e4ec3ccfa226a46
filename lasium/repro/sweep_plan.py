"""``lasium-repro sweep --plan``: the points a sweep would run, which are done, and each stage's estimated time,
without running or writing anything (issue 27: plan the order so that each stage fits one sitting of
:data:`~lasium.repro.omniglot.SITTING_HOURS`, and know which stages are longer and continue on ``--resume``).

Estimates come from :data:`~lasium.repro.sizes.RATES` (rough; a CPU with native bf16 has its own entry, unless the
sweep asks for fp32) and count the work already in ``--work`` as ``--resume`` continues it: finished stages, the
complete shards of a generation, a training's latest checkpoint or autosave, the tasks an evaluation scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .generators import describe_generator
from .omniglot import SITTING_HOURS, duration, stage_line
from .progress import EVAL_RESUMES, eval_progress, gen_progress, stage_left, train_progress
from .records import machine
from .sizes import RATES, rates_key, scoring_seconds, training_seconds
from .sweep import Point, SweepOptions, earlier_page, point_commands, same_point

RESUMES = {
    "lasium-gen": "keeps its complete shards",
    "lasium-train": "continues exactly from its autosave or latest checkpoint",
    "lasium-eval": EVAL_RESUMES,
}


def sweep_rates_key(options: SweepOptions, precision: str | None = None) -> str:
    """The :data:`RATES` entry of the sweep's device at ``precision`` (default: the sweep's ``--precision``, that of
    training and scoring; its generation runs at ``--gen-precision``)."""
    from .records import describe_device

    return rates_key(describe_device(options.budget.device)[0], precision or options.budget.precision)


def stage_seconds(console: str, args: list[str], options: SweepOptions, left: float) -> float:
    """Seconds one stage of a point still takes when ``left`` of it is to run, by :data:`RATES` (as the Omniglot
    planner counts them): tasks generated (a mixture's UMTRA set at its own rate), tasks drawn in training, validation
    tasks adapted to."""
    budget = options.budget
    if console == "lasium-gen":
        rates = RATES[sweep_rates_key(options, budget.gen_precision)]
        source = args[args.index("--source") + 1] if "--source" in args else None
        rate = rates.get(source or "gen", rates["gen"])
        return (rates["startup"] + budget.tasks * budget.ways / 5 / rate) * left
    rates = RATES[sweep_rates_key(options)]
    if console == "lasium-train":
        drawn = budget.iterations * budget.meta_batch
        return (rates["startup"] + training_seconds(rates, budget.algo, drawn, budget.ways)) * left
    # every point is scored at K_tr 1 and 5, MAML adapting lasium-eval's default steps (the sweep passes none)
    from lasium.evaluate import EvalProtocol

    adapt_steps = EvalProtocol().adapt_steps
    return rates["startup"] + scoring_seconds(rates, budget.algo, budget.val_tasks, (1, 5), adapt_steps) * left


def stage_progress(console: str, args: list[str], options: SweepOptions) -> float:
    """How far the stage got in ``--work`` (what ``--resume`` continues from)."""
    out = Path(args[args.index("--out") + 1])
    if console == "lasium-gen":
        return gen_progress(out, options.budget.tasks)
    if console == "lasium-train":
        return train_progress(out, options.budget.iterations)
    return eval_progress(out)


def point_stages(
    point: Point, cmds: dict[str, list[str]], options: SweepOptions, made: set[str]
) -> list[dict[str, Any]]:
    """The stages of one point still to run, each ``{"name", "console", "seconds", "resumes"}``; a shard set in
    ``made`` (planned by an earlier point: one set serves several points) is not counted again."""
    stages = []
    for stage, cmd in cmds.items():
        console, args = cmd[0], cmd[1:]
        if stage.startswith("gen"):
            shards = Path(args[args.index("--out") + 1])
            if shards.name in made:
                continue
            made.add(shards.name)
            name = f"gen-{shards.name}"
        else:
            name = f"{stage}-{point.key}"
        progress = stage_progress(console, args, options)
        left = stage_left(options.work, name, console, args, progress, keeps_own=console == "lasium-gen")
        if left > 0:
            seconds = stage_seconds(console, args, options, left)
            stages.append(dict(name=name, console=console, seconds=seconds, resumes=RESUMES[console]))
    return stages


def plan_sweep(options: SweepOptions) -> list[str]:
    """``--plan``: a line per point (taken from the page, finished in ``--work``, or to run with its estimated
    hours), then each stage still to run (marked when it is longer than one sitting) and a total."""
    options.validate()
    generator = describe_generator(options.generator)  # one line for a spec that names no generator
    _, earlier = earlier_page(options, generator)
    lines = [f"points of `{options.command_line()}` as --resume would run them, on {machine(options.budget.device)}"]
    lines[0] += f" (estimates from RATES[{sweep_rates_key(options)!r}]; rough):"
    planned: list[tuple[str, str, list[dict[str, Any]]]] = []  # (point, its line's status, its stages to run)
    left, made = 0.0, set[str]()
    for point in options.points():
        cmds = point_commands(point, options)
        recorded = earlier.get(point.key)
        if recorded is not None and same_point(recorded, cmds):
            one, five = (recorded["val"][k]["accuracy_pct"] for k in ("1", "5"))
            planned.append((point.key, f"done: {one:.2f} / {five:.2f} (on the page)", []))
            continue
        stages = point_stages(point, cmds, options, made)
        seconds = sum(stage["seconds"] for stage in stages)
        left += seconds
        planned.append((point.key, f"to run: {duration(seconds)}" if stages else "finished in --work", stages))
    width = max([32] + [len(key) for key, _, _ in planned] + [len(st["name"]) for *_, sts in planned for st in sts])
    lines += [f"  {key:<{width}} {status}" for key, status, _ in planned]
    stage_lines = [stage_line(stage, width) for *_, stages in planned for stage in stages]
    if stage_lines:
        lines += [
            f"stages to run (one sitting: {SITTING_HOURS:g} h of wall time; a longer stage is cut there and "
            "continued by --resume):",
            *stage_lines,
        ]
    lines.append(f"{duration(left)} of stages left, one at a time" if left > 0 else "no stage left to run")
    return lines
