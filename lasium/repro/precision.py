"""Does bf16 change accuracy? One identical short ProtoNets run in fp32 and in bf16, each scored in its precision
(``lasium-repro precision``)::

    lasium-repro precision --shards runs/sweep/shards/n-sigma1 --work runs/prec

Trains ``lasium-train --algo protonets --augment shift5`` for ``--iterations`` × 4 tasks with ``--precision fp32``
and with ``--precision bf16`` (same seed, same shards), scores each with ``lasium-eval --precision`` of the same
kind on the fixed Omniglot test tasks (1- and 5-shot), and writes ``precision.json`` and ``precision.md``: the
accuracies, their 95% CIs, whether they overlap, and the wall times (not a speed measurement: see
``benchmarks/bench_train.py --only precision``).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasium.errors import LasiumError
from lasium.safe_io import replace_atomically

from .options import argv_of
from .stages import StageRunner, resume_evaluation, resume_training
from .sweep import stage_env

FORMAT = "lasium-precision-check"
COMPARED_PRECISIONS = (
    "fp32",
    "bf16",
)  # the two arms of the precision check (lasium.precision.PRECISIONS: the option values)


class StageFailed(LasiumError):
    """A stage of an experiment failed (its log says why)."""


@dataclass(frozen=True)
class PrecisionOptions:
    """The options of ``lasium-repro precision`` (each a command-line option of the same name)."""

    shards: Path  # a LASIUM shard set (e.g. 2,000 LASIUM-N tasks)
    work: Path = Path("runs/prec")
    results: Path = Path("results")
    iterations: int = 500
    tasks: int = 1000  # test tasks per K_tr
    threads: int = 1
    resume: bool = False

    def command_line(self) -> str:
        return shlex.join(["lasium-repro", "precision", "--shards", str(self.shards), *argv_of(self)])


def describe_cpu() -> str:
    """This CPU in words, and whether bf16 is native on it (else bf16 is emulated: same numerics, much slower)."""
    from lasium.precision import cpu_has_native_bf16
    from lasium.runtime import cpu_model

    model = cpu_model()
    bf16 = "native bf16 (AVX512-BF16/AMX)" if cpu_has_native_bf16() else "no native bf16: bf16 is emulated"
    return f"{model}, {os.cpu_count()} cores, {bf16}"


def render(page: dict[str, Any]) -> str:
    """The page (markdown) of a precision check's results."""
    rows, seconds, within = page["rows"], page["stage_seconds"], page["each_within_the_others_ci"]
    sizes = page.get("sizes", {})
    lines = [
        "# fp32 vs bf16: the same ProtoNets run in each precision",
        "",
        f"Command: `{page['command']}` ({page['device']}).",
        "",
        "`lasium-train --algo protonets --augment shift5`, "
        f"{sizes.get('iterations', '?')} iterations × 4 tasks, seed 0, the same shards; "
        "each scored by `lasium-eval` in its own precision on the "
        f"{sizes.get('tasks', '?')} fixed Omniglot test tasks (5-way, 15 queries).",
        "",
        "| precision | 1-shot | 5-shot | train s | eval s |",
        "|---|---|---|---|---|",
    ]
    for precision, row in rows.items():
        r = row["results"]
        lines.append(
            f"| {precision} | {r['1']['accuracy_pct']:.2f} ± {r['1']['ci95_pct']:.2f} | {r['5']['accuracy_pct']:.2f} ± "
            f"{r['5']['ci95_pct']:.2f} | {seconds.get(f'train-{precision}', 0):.0f} "
            f"| {seconds.get(f'eval-{precision}', 0):.0f} |"
        )
    digests = {row["episode_digest"] for row in rows.values()}
    lines += [
        "",
        f"Each difference within the smaller CI: 1-shot {within['1']}, 5-shot {within['5']}. Same episodes: "
        f"{len(digests) == 1}.",
        "",
    ]
    return "\n".join(lines)


def run(options: PrecisionOptions) -> dict[str, Any]:
    """Train and score the run in each precision; write the page; return its record. A failing stage raises
    :class:`StageFailed` naming its log folder."""
    work = options.work
    runner = StageRunner(work, stage_env(options.threads), resume=options.resume, tag="precision")
    rows = {}
    for precision in COMPARED_PRECISIONS:
        run_dir, out = work / precision, work / f"eval-{precision}.json"
        train = [
            "--shards",
            str(options.shards),
            "--algo",
            "protonets",
            "--augment",
            "shift5",
            "--precision",
            precision,
            "--iterations",
            str(options.iterations),
            "--meta-batch",
            "4",
            "--val-every",
            "0",
            "--workers",
            "1",
            "--checkpoint-every",
            "0",
            "--log-every",
            "50",
            "--seed",
            "0",
            "--out",
            str(run_dir),
            "--quiet",
        ]
        evaluate = [
            "--checkpoint",
            str(run_dir),
            "--precision",
            precision,
            "--shots",
            "1,5",
            "--tasks",
            str(options.tasks),
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
        if not (
            runner.run(
                f"train-{precision}",
                "lasium-train",
                train,
                produces=run_dir / "last" / "state.json",
                continue_with=resume_training(run_dir),
            )
            and runner.run(
                f"eval-{precision}", "lasium-eval", evaluate, produces=out, continue_with=resume_evaluation(out)
            )
        ):
            raise StageFailed(f"the {precision} run failed; see {work / 'logs'}")
        report = json.loads(out.read_text())
        rows[precision] = {
            "results": {
                str(r["shots"]): {k: r[k] for k in ("accuracy_pct", "ci95_pct", "tasks")} for r in report["results"]
            },
            "episode_digest": report["episode_digest"],
            "precision_used": report["precision"],
        }

    def gap(k: str) -> float:
        return abs(rows["fp32"]["results"][k]["accuracy_pct"] - rows["bf16"]["results"][k]["accuracy_pct"])

    cis = {k: [rows[p]["results"][k]["ci95_pct"] for p in COMPARED_PRECISIONS] for k in ("1", "5")}
    page = {
        "format": FORMAT,
        "command": options.command_line(),
        "device": describe_cpu(),
        "sizes": {"iterations": options.iterations, "tasks": options.tasks},
        "rows": rows,
        "stage_seconds": {s["name"]: s["seconds"] for s in runner.stages},
        "cis_overlap": {k: gap(k) <= sum(cis[k]) for k in cis},
        "each_within_the_others_ci": {k: gap(k) <= min(cis[k]) for k in cis},
    }
    options.results.mkdir(parents=True, exist_ok=True)
    text = json.dumps(page, indent=2) + "\n"
    replace_atomically(options.results / "precision.json", lambda tmp: tmp.write_text(text))
    replace_atomically(options.results / "precision.md", lambda tmp: tmp.write_text(render(page)))
    print(render(page))
    return page
