"""Accuracy along one training run (``lasium-repro step-curve``): the validation accuracy of the checkpoints a
``lasium-train`` run kept (``--checkpoint-every``), i.e. the budget lever read off one run instead of one run per
budget.

``lasium-train`` keeps its learning rate constant (Adam, no schedule) and draws each task once, so the checkpoint at
step *s* of a longer run is a run of *s* iterations over *s* × meta-batch distinct tasks of the same kind: scoring
the checkpoints at 1×, 2×, 4×, 8× of the reference budget on validation episodes says what more iterations and more
distinct tasks were worth, at the price of evaluations only::

    lasium-repro step-curve --run runs/repro-cpu/runs/maml-n-x8 --steps 1000,2000,4000,8000
    lasium-repro step-curve --run runs/repro-cpu/runs/protonets-n-x4 --resume   # the default steps: see below

Each step is one stage, ``lasium-eval --checkpoint RUN/step-NNNNNNN --split val --shots 1,5`` (the final step:
``RUN/last``), on the validation characters, never the test split. The default steps are the run's final step and
its halves down to the first checkpoint kept. Results: ``step-curve.json``, ``.md`` and ``.png`` in the results
folder (default ``results/levers/steps-<run>``), where the Omniglot page's levers table reads them.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .options import argv_of
from .records import machine
from .stages import StageRunner, resume_evaluation
from .sweep import stage_env

FORMAT = "lasium-step-curve"
PAGE = "step-curve"  # the results' file name without suffix
QUICK_TASKS = 10  # --quick: validation tasks per K_tr


@dataclass(frozen=True)
class StepCurveOptions:
    """The options of ``lasium-repro step-curve`` (each a command-line option of the same name)."""

    run: Path  # a lasium-train run folder with step-NNNNNNN/ checkpoints
    steps: tuple[int, ...] = ()  # empty: the final step and its halves down to the first checkpoint kept
    val_tasks: int = 1000
    seed: int = 0
    work: Path | None = None  # None: runs/steps-<run name>
    results: Path | None = None  # None: results/levers/steps-<run name>
    threads: int | None = None
    resume: bool = False

    def command_line(self) -> str:
        return shlex.join(["lasium-repro", "step-curve", "--run", str(self.run), *argv_of(self)])

    def work_folder(self) -> Path:
        return self.work if self.work is not None else Path("runs") / f"steps-{self.run.resolve().name}"

    def results_folder(self) -> Path:
        return self.results if self.results is not None else Path("results/levers") / f"steps-{self.run.resolve().name}"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(run=str(self.run), steps=list(self.steps), work=str(self.work_folder()))
        out["results"] = str(self.results_folder())
        return out


def train_config(run: Path) -> dict[str, Any]:
    """The run's ``train_config.json``; a :class:`ConfigError` line when ``run`` is not a lasium-train run folder."""
    path = run / "train_config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{run} has no train_config.json: give a lasium-train run folder (--out of lasium-train)"
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path} is not readable JSON ({exc}); give a lasium-train run folder") from None
    if not isinstance(config, dict) or not {"algo", "meta_batch", "iterations"} <= set(config):
        raise ConfigError(f"{path} is not a lasium-train config (no algo, meta_batch, iterations)")
    return config


def checkpoints(run: Path) -> dict[int, Path]:
    """Step → checkpoint folder: every ``step-NNNNNNN/`` with its weights, and ``last/`` at its own step."""
    from lasium.train import kept_checkpoints

    return kept_checkpoints(run)


def default_steps(found: dict[int, Path]) -> tuple[int, ...]:
    """The final step and its halves (while a checkpoint was kept at each) down to the first checkpoint."""
    if not found:
        return ()
    steps, step = [], max(found)
    while step in found:
        steps.append(step)
        if step % 2:
            break
        step //= 2
    return tuple(sorted(steps))


def chosen_steps(options: StepCurveOptions) -> dict[int, Path]:
    found = checkpoints(options.run)
    if not found:
        raise ConfigError(
            f"no checkpoints under {options.run}: give a lasium-train run folder trained with --checkpoint-every N"
        )
    steps = options.steps or default_steps(found)
    missing = sorted(set(steps) - set(found))
    if missing:
        kept = ", ".join(map(str, found)) if len(found) <= 12 else f"{min(found)} to {max(found)}, {len(found)} in all"
        raise ConfigError(f"no checkpoint at steps {missing} in {options.run} (kept: {kept}); choose kept --steps")
    return {s: found[s] for s in sorted(steps)}


def scores(report_path: Path) -> tuple[dict[str, dict[str, Any]], str, str | None]:
    """A ``lasium-eval`` report's accuracy by K_tr (``{"1": {accuracy_pct, ci95_pct, tasks}, ...}``), its episode
    digest and the precision it scored in."""
    report = json.loads(report_path.read_text())
    val = {str(r["shots"]): {k: r[k] for k in ("accuracy_pct", "ci95_pct", "tasks")} for r in report["results"]}
    return val, str(report["episode_digest"]), report.get("precision")


def run(options: StepCurveOptions) -> dict[str, Any]:
    """Score each chosen checkpoint on validation episodes (``resume``: reusing finished stages), writing the page
    after each; return the results as written. A step whose evaluation fails is recorded as failed."""
    if options.val_tasks < 1:
        raise ConfigError(f"--val-tasks must be at least 1 (got {options.val_tasks})")
    config = train_config(options.run)
    chosen = chosen_steps(options)
    work, folder = options.work_folder(), options.results_folder()
    if work.exists() and any(work.iterdir()) and not options.resume:
        raise ConfigError(f"{work} holds an earlier curve; pass --resume to continue it or choose another --work")
    runner = StageRunner(work, stage_env(options.threads), resume=options.resume, tag="steps")
    sources = (config.get("mixture") or {}).get("sources") or []
    sizes = {
        "algo": config["algo"],
        "tasks": sum(int(s.get("num_tasks", 0)) for s in sources) or None,
        "iterations": int(config["iterations"]),
        "meta_batch": int(config["meta_batch"]),
        "val_tasks": options.val_tasks,
        "seed": options.seed,
    }
    start, rows, results = time.time(), [], {}
    for step, checkpoint in chosen.items():
        name = f"step-{step:07d}"
        out = work / "evals" / f"{name}.json"
        args = ["--checkpoint", str(checkpoint), "--split", "val", "--shots", "1,5", "--tasks", str(options.val_tasks),
                "--seed", str(options.seed), "--out", str(out), "--quiet"]  # fmt: skip
        ok = runner.run(f"eval-{name}", "lasium-eval", args, produces=out, continue_with=resume_evaluation(out))
        row: dict[str, Any] = {
            "key": name,
            "step": step,
            "tasks_seen": step * sizes["meta_batch"],
            "checkpoint": str(checkpoint),
            "status": "ok" if ok else "failed",
            "stages": [runner.stages[-1]],
        }
        if ok:
            row["val"], row["episode_digest"], row["precision"] = scores(out)
        rows.append(row)
        results = {
            "format": FORMAT,
            "command": options.command_line(),
            "options": options.to_json(),
            "device": machine("auto"),  # where lasium-eval (device auto) scored
            "run": str(options.run),
            "train": {
                k: config.get(k)
                for k in ("algo", "augment", "lr", "meta_batch", "iterations", "shards", "seed", "ways")
            }
            | {"lr_schedule": config.get("lr_schedule") or "constant"},  # runs from before the option: constant
            "sizes": sizes,
            "wall_seconds": round(time.time() - start, 1),
            "rows": rows,
        }
        write_page(results, folder)
    done = sum(r["status"] == "ok" for r in rows)
    print(f"[steps] {done}/{len(rows)} checkpoints scored in {time.time() - start:.0f} s; see {folder / PAGE}.md")
    return results


def _learner(algo: str) -> str:
    """How pages name the learner of an ``--algo``."""
    from .sweep_page import LEARNER_NAMES

    return LEARNER_NAMES.get(algo, algo)


def _cell(row: dict[str, Any], shots: str) -> str:
    cell = row.get("val", {}).get(shots)
    return f"{cell['accuracy_pct']:.2f} ± {cell['ci95_pct']:.2f}" if cell else "–"


def render(results: dict[str, Any], charts: tuple[str, ...] = ()) -> str:
    """The page (markdown)."""
    s, t = results["sizes"], results["train"]
    first = min((r["step"] for r in results["rows"]), default=0)
    precisions = sorted({str(r["precision"]) for r in results["rows"] if r.get("precision")})
    device = results["device"] + (f", precision {' and '.join(precisions)}" if precisions else "")
    lines = [
        f"# Accuracy along one training run ({_learner(t['algo'])}, Omniglot validation tasks)",
        "",
        f"Command: `{results['command']}`. Device: {device}. Run: `{results['run']}` "
        f"(`lasium-train --algo {t['algo']} --augment {t['augment']} --iterations {s['iterations']:,} --meta-batch "
        f"{s['meta_batch']}`, lr {t['lr']}, shards `{', '.join(map(str, t['shards'] or []))}`"
        + (f", {s['tasks']:,} tasks" if s.get("tasks") else "")
        + ").",
        "",
        (
            "`lasium-train` keeps its learning rate constant and draws each task once, so the checkpoint at step s is "
            "a run of s iterations over s × meta-batch distinct tasks."
            if t.get("lr_schedule", "constant") == "constant"
            else f"This run anneals its learning rate (`--lr-schedule {t['lr_schedule']}` over {s['iterations']:,} "
            "iterations), so a checkpoint before the last is not a shorter run of the same schedule."
        )
        + (f" Training tasks are {t['ways']}-way; validation stays 5-way." if t.get("ways", 5) not in (5, None) else "")
        + " Each checkpoint: `lasium-eval --split val --shots "
        f"1,5 --tasks {s['val_tasks']} --seed {s['seed']}` (validation characters, never the test split; 5-way, 15 "
        "queries; mean ± 95% CI).",
        "",
        "| step | distinct tasks seen | × the first step scored | val 1-shot | val 5-shot | status |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        ratio = f"{r['step'] / first:g}×" if first else "–"
        lines.append(
            f"| {r['step']:,} | {r['tasks_seen']:,} | {ratio} | {_cell(r, '1')} | {_cell(r, '5')} | {r['status']} |"
        )
    lines.append("")
    lines += [line for name in charts for line in (f"![validation accuracy against training steps]({name})", "")]
    return "\n".join(lines)


def draw(results: dict[str, Any], path: Path) -> Path:
    from .charts import line_chart

    series: dict[str, list[tuple[float, float, float]]] = {}
    for r in results["rows"]:
        for shots in ("1", "5"):
            cell = r.get("val", {}).get(shots)
            if cell:
                series.setdefault(f"val {shots}-shot", []).append((r["step"], cell["accuracy_pct"], cell["ci95_pct"]))
    t = results["train"]
    return line_chart(
        series,
        path,
        title=f"{_learner(t['algo'])}: Omniglot 5-way validation accuracy along one run",
        xlabel=f"training steps (× {results['sizes']['meta_batch']} distinct tasks each; log scale)",
        ylabel="accuracy (%), error bars: 95% CI",
        xscale="log2",
    )


def write_page(results: dict[str, Any], folder: Path, *, write_json: bool = True) -> tuple[str, ...]:
    """Draw the chart and write the page (and, with ``write_json``, its JSON) into ``folder``; return the chart
    names. Without matplotlib the page is written without the chart."""
    from .charts import write_results_page

    return write_results_page(results, folder, PAGE, draw, render, write_json=write_json, tag="steps")
