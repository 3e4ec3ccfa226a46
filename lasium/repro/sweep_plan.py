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
from .progress import eval_progress, gen_progress, stage_left, train_progress
from .records import machine
from .sizes import RATES, rates_key
from .stages import same_commands
from .sweep import Point, SweepOptions, earlier_page, plan, point_commands

ADAPT_STEPS = 50  # lasium-eval's adaptation steps for MAML (the protocol's), which sets MAML's scoring time
RESUMES = {
    "lasium-gen": "keeps its complete shards",
    "lasium-train": "continues exactly from its autosave or latest checkpoint",
    "lasium-eval": "continues exactly from the tasks already scored (its partial file)",
}


def sweep_rates_key(options: SweepOptions) -> str:
    """The :data:`RATES` entry of the sweep's device and precision (training and scoring)."""
    from .records import describe_device

    return rates_key(describe_device(options.budget.device)[0], options.budget.precision)


def stage_seconds(console: str, args: list[str], options: SweepOptions, rates: dict[str, float]) -> float:
    """Seconds one stage of a point takes from the start, by :data:`RATES`: tasks generated (one source of a
    mixture each), tasks trained on, validation tasks adapted to."""
    budget = options.budget
    width = budget.ways / 5  # classes per task against the rates' 5-way tasks
    if console == "lasium-gen":
        source = args[args.index("--source") + 1] if "--source" in args else None  # UMTRA, CACTUs: their own rate
        return rates["startup"] + budget.tasks * width / rates.get(source or "gen", rates["gen"])
    if console == "lasium-train":
        return rates["startup"] + budget.iterations * budget.meta_batch * width / rates[budget.algo]
    shots = (1, 5)  # every point is scored at K_tr 1 and 5
    if budget.algo == "protonets":
        return rates["startup"] + rates["eval_proto"] * budget.val_tasks * len(shots)
    return rates["startup"] + rates["image_step"] * budget.val_tasks * ADAPT_STEPS * 5 * sum(shots)


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
    rates = RATES[sweep_rates_key(options)]
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
            seconds = stage_seconds(console, args, options, rates) * left
            stages.append(dict(name=name, console=console, seconds=seconds, resumes=RESUMES[console]))
    return stages


def plan_sweep(options: SweepOptions) -> list[str]:
    """``--plan``: a line per point (taken from the page, finished in ``--work``, or to run with its estimated
    hours), then each stage still to run (marked when it is longer than one sitting) and a total."""
    options.validate()
    generator = describe_generator(options.generator)  # one line for a spec that names no generator
    _, earlier = earlier_page(options, generator)
    lines = [f"points of `{options.command_line()}` on {machine(options.budget.device)}"]
    lines[0] += f" (estimates from RATES[{sweep_rates_key(options)!r}]; rough):"
    planned: list[tuple[str, str, list[dict[str, Any]]]] = []  # (point, its line's status, its stages to run)
    left, made = 0.0, set[str]()
    points = plan(
        options.augment_sigma,
        options.strategies,
        list(options.values) or None,
        options.mixtures,
        options.mixture_augment,
        options.only,
        options.augments,
    )
    for point in points:
        cmds = point_commands(point, options)
        recorded = earlier.get(point.key)
        if recorded and same_commands(recorded.get("commands"), {k: " ".join(v) for k, v in cmds.items()}):
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
