"""Accuracy against GAN training (``lasium-repro gan-curve``): LASIUM-N + ProtoNets validation accuracy for each
GAN snapshot ``lasium-fit --keep-epochs`` kept.

The LASIUM authors tie accuracy to how long their GAN trained (their figure data, LASIUM-N, 5-way 1-shot, 1,000
iterations: 51.95 / 67.50 / 77.35 / 78.21 / 80.51 after 0 / 10 / 50 / 200 / 400 epochs; ``docs/reference-facts.md``,
"Accuracy against GAN training"). This draws our version from the snapshots a fit kept (``lasium-repro bundled``
keeps 0, 10, 50, 200 and 400 by default)::

    lasium-repro bundled --out runs/bundled                                   # GPU: the fits and their snapshots
    lasium-repro gan-curve --fit runs/bundled/omniglot-gan --work runs/gan-curve
    lasium-repro gan-curve --fit ... --work ... --resume                      # continue an interrupted curve

Every snapshot (each ``epoch-NNNN/`` folder and the final model) gets the same fixed small budget, a sweep point
(:mod:`lasium.repro.sweep`) with ``--generator`` set to the snapshot: ``lasium-gen --strategy n --tuned-for
protonets`` → ``lasium-train --algo protonets --augment auto`` (by default the authors' 1,000 iterations of 4
distinct tasks) → ``lasium-eval --split val`` (validation characters, never the test split; 1- and 5-shot). The
Fréchet distance of a snapshot is shown beside it when ``lasium-repro bundled`` measured it (``fid.json``).

Writes ``accuracy-vs-gan-epochs.json``, ``.md`` and ``.png`` into the results folder after every snapshot. The
published numbers are test accuracies of the authors' setup (no query shift, their GAN); ours are validation
accuracies with this project's trainer, so the comparison is of the curve's shape and level.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError
from lasium.safe_io import replace_atomically

from .charts import ChartsUnavailable, line_chart
from .options import argv_of
from .published import PUBLISHED_GAN_CURVE
from .stages import StageRunner
from .sweep import Point, PointBudget, commands, run_point, stage_env, summarise

NAME = "accuracy-vs-gan-epochs"
PUBLISHED_CURVE = PUBLISHED_GAN_CURVE
QUICK = dict(tasks=24, iterations=4, val_tasks=10)  # --quick: a smoke run of every stage
# The budget of each point: the authors' 1,000 iterations × 4 distinct tasks; the generator's own precision.
CURVE_BUDGET = PointBudget(tasks=4000, iterations=1000, meta_batch=4, val_tasks=1000, gen_precision="auto")


@dataclass(frozen=True)
class CurveOptions:
    """The options of ``lasium-repro gan-curve`` (each a command-line option of the same name)."""

    fit: Path  # a lasium-fit output folder with epoch-NNNN/ snapshots
    budget: PointBudget = field(default_factory=lambda: CURVE_BUDGET)
    epochs: tuple[int, ...] = ()  # only these GAN epochs (empty: every snapshot)
    work: Path = Path("runs/gan-curve")
    results: Path = Path("results")
    threads: int | None = None  # OMP_NUM_THREADS of every stage (None: unchanged)
    resume: bool = False

    def command_line(self) -> str:
        """``lasium-repro gan-curve`` with the options not at their default (what the page records)."""
        return shlex.join(["lasium-repro", "gan-curve", "--fit", str(self.fit), *argv_of(self)])

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(fit=str(self.fit), work=str(self.work), results=str(self.results), epochs=list(self.epochs))
        return out


def snapshots(fit: Path) -> dict[int, Path]:
    """GAN epochs → folder: every complete ``epoch-NNNN/`` snapshot under ``fit`` and the final model itself."""
    found: dict[int, Path] = {}
    for folder in sorted(fit.glob("epoch-*")) + [fit]:
        config = folder / "config.json"
        if not config.is_file():
            continue
        epochs = json.loads(config.read_text()).get("epochs_done")
        if epochs is not None:
            found.setdefault(int(epochs), folder)
    return found


def frechet_distance(folder: Path) -> float | None:
    """The snapshot's Fréchet distance to the test split, when ``lasium-repro bundled`` measured it."""
    fid = folder / "fid.json"
    if not fid.is_file():
        return None
    record = json.loads(fid.read_text())
    value = record.get("fd_generated_vs_test")
    return float(value) if value is not None else None


def device_name(device: str) -> str:
    """The machine the curve's stages ran on, as its page says it."""
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0 if device == "auto" else torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def render(results: dict[str, Any], charts: tuple[str, ...] = (f"{NAME}.png",)) -> str:
    """The page (markdown); ``charts``: the chart files beside it, linked at the end."""
    s = results["sizes"]
    lines = [
        "# Accuracy against GAN training (LASIUM-N + ProtoNets, Omniglot validation tasks)",
        "",
        f"Command: `{results['command']}`. Device: {results['device']}. GAN fit: `{results['fit']}`.",
        "",
        f"Each snapshot: `lasium-gen --strategy n --tuned-for protonets --generator <snapshot>` ({s['tasks']:,} tasks, "
        f"seed {s['seed']}) → `lasium-train --algo protonets --augment auto` ({s['iterations']:,} iterations × "
        f"meta-batch {s['meta_batch']}) → `lasium-eval --split val` ({s['val_tasks']} tasks per K_tr from the "
        "validation characters; 5-way, 15 queries; mean ± 95% CI).",
        "",
        "Published: the LASIUM authors' figure data (LASIUM-N, 5-way 1-shot, 1,000 iterations; test tasks, their "
        "GAN, no query shift). Ours are validation accuracies, so compare the shape and the level, not the digits.",
        "",
        "| GAN epochs | published 1-shot | ours val 1-shot | ours val 5-shot | Fréchet distance | status |",
        "|---|---|---|---|---|---|",
    ]
    epochs = sorted({int(r["gan_epochs"]) for r in results["rows"]} | set(PUBLISHED_CURVE))
    by_epoch = {int(r["gan_epochs"]): r for r in results["rows"]}
    for e in epochs:
        r = by_epoch.get(e)
        published = f"{PUBLISHED_CURVE[e]:.2f}" if e in PUBLISHED_CURVE else "–"
        if r is None:
            lines.append(f"| {e} | {published} | – | – | – | no snapshot |")
            continue
        fd = f"{r['frechet_distance']:.1f}" if r.get("frechet_distance") is not None else "–"
        if r["status"] != "ok":
            lines.append(f"| {e} | {published} | – | – | {fd} | {r['status']} |")
            continue
        v = r["val"]
        cells = [f"{v[k]['accuracy_pct']:.2f} ± {v[k]['ci95_pct']:.2f}" if k in v else "–" for k in ("1", "5")]
        lines.append(f"| {e} | {published} | {cells[0]} | {cells[1]} | {fd} | ok |")
    lines.append("")
    lines += [line for name in charts for line in (f"![accuracy against GAN epochs]({name})", "")]
    return "\n".join(lines)


def draw(results: dict[str, Any], path: Path) -> Path:
    """Ours (validation, 1- and 5-shot, 95% CI error bars) and the published 1-shot curve against GAN epochs."""
    ours: dict[str, list[tuple[float, float, float]]] = {"ours, val 1-shot": [], "ours, val 5-shot": []}
    for r in results["rows"]:
        if r["status"] == "ok":
            for shots in ("1", "5"):
                if shots in r["val"]:
                    cell = r["val"][shots]
                    ours[f"ours, val {shots}-shot"].append((r["gan_epochs"], cell["accuracy_pct"], cell["ci95_pct"]))
    published = [(float(e), v) for e, v in sorted(PUBLISHED_CURVE.items())]
    return line_chart(
        {"published (LASIUM authors), test 1-shot": published, **ours},
        path,
        title="LASIUM-N + ProtoNets: Omniglot 5-way accuracy against GAN training",
        xlabel="GAN training epochs (symmetric log scale)",
        ylabel="accuracy (%), error bars: 95% CI",
        xscale="symlog",
    )


def write_page(results: dict[str, Any], folder: Path, *, write_json: bool = True) -> tuple[str, ...]:
    """Draw the chart and write the page (and, with ``write_json``, its JSON) into ``folder``; return the chart
    names. Without matplotlib the page is written without the chart."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        charts: tuple[str, ...] = (draw(results, folder / f"{NAME}.png").name,)
    except ChartsUnavailable as exc:
        print(f"[curve] no chart: {exc}", file=sys.stderr)
        charts = ()
    if write_json:
        text = json.dumps(results, indent=2) + "\n"
        replace_atomically(folder / f"{NAME}.json", lambda tmp: tmp.write_text(text))
    replace_atomically(folder / f"{NAME}.md", lambda tmp: tmp.write_text(render(results, charts)))
    return charts


def chosen_snapshots(options: CurveOptions) -> dict[int, Path]:
    """The snapshots the curve scores (``epochs``, else every one); a :class:`ConfigError` when there are none."""
    found = snapshots(options.fit)
    if not found:
        raise ConfigError(
            f"no GAN snapshots under {options.fit}: give a lasium-fit output folder (--keep-epochs 0,10,...)"
        )
    if options.epochs:
        missing = sorted(set(options.epochs) - set(found))
        if missing:
            raise ConfigError(f"no snapshot for GAN epochs {missing} under {options.fit} (found {sorted(found)})")
        found = {e: f for e, f in found.items() if e in options.epochs}
    return found


def run(options: CurveOptions) -> dict[str, Any]:
    """Score every chosen snapshot (``resume``: reusing finished stages), writing the page after each; return the
    results as written. A snapshot whose stages fail is recorded as failed and the rest go on."""
    options.budget.validate()
    found = chosen_snapshots(options)
    if options.work.exists() and any(options.work.iterdir()) and not options.resume:
        raise ConfigError(
            f"{options.work} holds an earlier curve; pass --resume to continue it or choose another --work"
        )
    options.results.mkdir(parents=True, exist_ok=True)
    env = stage_env(options.threads)
    # the --tuned-for σ (no --sigma): the product default for LASIUM-N ProtoNets tasks
    point = Point("gan-epochs", "n", "sigma", None, "auto")
    start, rows = time.time(), []
    results: dict[str, Any] = {}
    for epochs, folder in sorted(found.items()):
        work = options.work / f"epoch-{epochs:04d}"
        cmds = commands(point, options.budget, work)
        cmds["gen"] += ["--generator", str(folder)]
        runner = StageRunner(work, env, resume=options.resume, tag=f"curve {epochs}")
        row = summarise(point, run_point(runner, point, cmds, work, set()), cmds)
        row.update(gan_epochs=epochs, snapshot=str(folder), frechet_distance=frechet_distance(folder))
        row["stages"] = runner.stages
        rows.append(row)
        b = options.budget
        results = {
            "format": "lasium-accuracy-vs-gan-epochs",
            "command": options.command_line(),
            "options": options.to_json(),
            "device": device_name(b.device),
            "fit": str(options.fit),
            "sizes": {
                "tasks": b.tasks,
                "iterations": b.iterations,
                "meta_batch": b.meta_batch,
                "val_tasks": b.val_tasks,
                "seed": b.seed,
            },  # fmt: skip
            "published": {str(k): v for k, v in PUBLISHED_CURVE.items()},
            "wall_seconds": round(time.time() - start, 1),
            "rows": rows,
        }
        write_page(results, options.results)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"[curve] {ok}/{len(rows)} snapshots in {time.time() - start:.0f} s; see {options.results / (NAME + '.md')}")
    return results
