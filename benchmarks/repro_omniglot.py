"""Reproduce LASIUM on Omniglot end to end and write results/omniglot.md + omniglot.json (+ PNG curves, previews).

    python benchmarks/repro_omniglot.py                      # GPU sizes, bundled omniglot-gan
    python benchmarks/repro_omniglot.py --fit                # fit a fresh GAN first (--fit-minutes budget)
    python benchmarks/repro_omniglot.py --generator runs/gan --budget-seconds 300
    python benchmarks/repro_omniglot.py --quick --fit        # tiny sizes: a few minutes on a 2-core CPU
    python benchmarks/repro_omniglot.py --sizes cpu --resume # the reference budgets on a 2-core CPU: across sessions
    python benchmarks/repro_omniglot.py --sizes cpu --ablation  # + the ablation, one ingredient at a time (ProtoNets)
    python benchmarks/repro_omniglot.py --sizes cpu-reduced  # the earlier reduced CPU configuration (smoke, ~1.5 h)
    python benchmarks/repro_omniglot.py --sizes cpu --only other --results runs/other  # UMTRA, CACTUs, mixture only

Two cores, two rows at once (one --work, a --results page each; the last run merges them into results/):
    python benchmarks/repro_omniglot.py --sizes cpu --threads 1 --keep-shards --only protonets-n --results runs/a
    python benchmarks/repro_omniglot.py --sizes cpu --threads 1 --keep-shards --only maml-ro --results runs/b --resume
    python benchmarks/repro_omniglot.py --sizes cpu --resume --reuse-results runs/a/omniglot.json \\
        --reuse-results runs/b/omniglot.json    # runs what is left, keeps both rows

Pipeline (each stage is the real console command, run as a subprocess; its exact command line, status and
wall time are recorded): generator (bundled, given, or ``lasium-fit``) → ``lasium-gen`` per strategy (n, ro,
oc; the preset of the learner) → ``lasium-shards preview`` → ``lasium-train`` (ProtoNets, MAML) →
``lasium-eval`` (1000 test tasks, 1- and 5-shot, same episodes for every method); baselines: training from
scratch (``lasium-eval --baseline scratch``) and the supervised upper bound (``lasium-gen --source real`` on
the labeled train split, then the same training); other task sources (optional, last): UMTRA and CACTUs
(``lasium-gen --source umtra|cactus``, their defaults) with both learners at the LASIUM rows' budgets, and ProtoNets
on a LASIUM-N + UMTRA mixture of those rows' shard sets (``lasium-train --shards A:0.5 --shards B:0.5``). Rows run
in priority order; with ``--budget-seconds`` a row starts only if its estimated time still fits, every command is
killed at the deadline, and the page says what was skipped. A failing stage is recorded and the rest go on.
Results are rewritten after every row, so an interrupted run still leaves a page. Every size is a named field of
``Sizes`` (``repro_sizes.py``); the rows are planned in ``repro_rows.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

# Sizes and rows live beside this script; imported here for the driver and re-exported for its users (tests).
from repro_rows import (
    GENERATOR_SOURCES,
    MIXTURE,
    OTHER_SOURCES,
    STRATEGY_NAMES,
    Row,
    chosen_rows,
    only_names,
    plan_ablation,
    plan_longer_maml,
    plan_other_sources,
    plan_rows,
    reference_sigma_protonets,
    select_rows,
)
from repro_sizes import CACTUS_SETUP_CPU, PRESETS, RATES, Sizes
from stages import same_commands

REPO = Path(__file__).resolve().parent.parent

__all__ = [
    "CACTUS_SETUP_CPU",
    "GENERATOR_SOURCES",
    "MIXTURE",
    "OTHER_SOURCES",
    "PRESETS",
    "RATES",
    "STRATEGY_NAMES",
    "Row",
    "Sizes",
    "chosen_rows",
    "only_names",
    "plan_ablation",
    "plan_longer_maml",
    "plan_other_sources",
    "plan_rows",
    "reference_sigma_protonets",
    "select_rows",
]


def print_plan(args: argparse.Namespace, sizes: Sizes) -> None:
    """``--plan``: each row, done (on a results page, same commands) or to run with its estimated time; runs nothing."""
    from repro_pipeline import Pipeline
    from repro_records import describe_device

    device_type, device = describe_device(args.device)
    pipe = Pipeline(
        argparse.Namespace(**{**vars(args), "resume": True}), sizes, RATES[device_type], device_type, device
    )
    pipe.generator = {"spec": str(Path(args.work) / "gan") if args.fit else args.generator}
    left = 0.0
    print(f"rows of --sizes {args.sizes} on {device.get('name')} (estimates from RATES[{device_type!r}]):")
    for row in chosen_rows(args, sizes, device.get("native_bf16", True)):
        earlier = pipe.committed_rows.get(row.key)
        if earlier and same_commands(earlier.get("commands"), pipe.planned_commands(row)):
            one, five = (earlier["eval"][k]["accuracy_pct"] for k in ("1", "5"))
            print(f"  {row.key:<28} done: {one:.2f} / {five:.2f}")
            continue
        hours = pipe.estimate(row) / 3600
        for part in pipe.components(row):  # what this row generates is made once per run
            pipe.made[pipe.shard_key(part)] = Path()
        left += hours
        print(f"  {row.key:<28} to run: ~{hours:.1f} h" + (" (optional)" if row.optional else ""))
    print(f"~{left:.1f} h of stages left, one at a time (two --only drivers on two cores halve the wall time)")


def protocol_of(args: argparse.Namespace, sizes: Sizes) -> dict[str, Any]:
    """The evaluation protocol every row is scored with (recorded on the page)."""
    return {
        "dataset": "omniglot",
        "split": "test",
        "ways": 5,
        "shots": sizes.eval_shots,
        "queries": 15,
        "tasks": sizes.eval_tasks,
        "seed": args.eval_seed,
        "adapt_steps": sizes.adapt_steps,
        "adapt_lr": sizes.adapt_lr,
    }


def write_page_only(args: argparse.Namespace, sizes: Sizes) -> None:
    """``--page-only``: rewrite the page from the rows results pages hold (same commands); the rest say "not run"."""
    from repro_pipeline import Pipeline
    from repro_records import describe_device

    device_type, device = describe_device(args.device)
    pipe = Pipeline(
        argparse.Namespace(**{**vars(args), "resume": True}), sizes, RATES[device_type], device_type, device
    )
    if args.fit:  # the page is rewritten, the GAN is not fitted again
        pipe.generator = {"spec": str(Path(args.work) / "gan"), "description": "GAN fitted by the run"}
    else:
        pipe.prepare_generator()
    for row in chosen_rows(args, sizes, device.get("native_bf16", True)):
        pipe.note_row(row)
    Path(args.results).mkdir(parents=True, exist_ok=True)
    pipe.write(protocol_of(args, sizes))
    done = sum(r["status"] == "ok" for r in pipe.rows)
    print(f"[repro] page: {done} of {len(pipe.rows)} rows done; see {Path(args.results) / 'omniglot.md'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sizes",
        choices=sorted(PRESETS),
        default=None,
        help="stage sizes: gpu (default; ~6 min on one H100/H200), cpu (reference budgets, hours on 2 cores: use "
        "--resume), cpu-reduced (the earlier reduced configuration, ~1.5 h), quick (smoke run)",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="after the main rows, LASIUM-N + ProtoNets with one ingredient added at a time (page: ablation table)",
    )
    p.add_argument("--quick", action="store_true", help="same as --sizes quick (CPU smoke run, a few minutes)")
    p.add_argument("--fit", action="store_true", help="fit a fresh GAN with lasium-fit (budget: --fit-minutes)")
    p.add_argument("--fit-minutes", type=float, default=None, help="wall-clock budget of --fit [preset]")
    p.add_argument(
        "--generator", default="omniglot-gan", help="generator for lasium-gen when not --fit [omniglot-gan, bundled]"
    )
    p.add_argument(
        "--budget-seconds", type=float, default=None, help="stop starting rows that would not fit; kill at the deadline"
    )
    p.add_argument(
        "--only",
        default=None,
        help="comma-separated row keys or row families (lasium, supervised, scratch, other) to run "
        "(default: all, in priority order)",
    )
    p.add_argument(
        "--optional",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the optional rows (MAML n/oc, supervised MAML, the other task sources: UMTRA, CACTUs, the mixture) "
        "[yes with --sizes gpu or cpu; rows named by --only run unless --no-optional]",
    )
    p.add_argument(
        "--maml-algo", choices=["maml", "fomaml"], default=None, help="MAML variant for the MAML rows [maml]"
    )
    p.add_argument("--work", default="runs/repro-omniglot", help="shards, runs, evals and logs go here")
    p.add_argument("--results", default=str(REPO / "results"), help="where omniglot.md/.json and PNGs go")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (passed to every stage)")
    p.add_argument("--data-root", default=None, help="dataset root [default: $LASIUM_DATA]")
    p.add_argument("--seed", type=int, default=0, help="seed of generation, training and scratch init")
    p.add_argument(
        "--eval-seed", type=int, default=0, help="episode seed of the evaluation (same tasks for every method)"
    )
    p.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS of every stage [unchanged; 1 with --quick on a CPU]"
    )
    p.add_argument(
        "--reuse-results",
        action="append",
        metavar="PAGE",
        help="with --resume: also reuse the finished rows of this omniglot.json (e.g. a second driver's --results, run "
        "in parallel with other --only rows on the same --work); repeatable",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="run nothing: list the rows in order, which the results page (and --reuse-results pages) already holds "
        "with today's commands, and the estimated hours of the rest (for planning a session)",
    )
    p.add_argument(
        "--page-only",
        action="store_true",
        help="run nothing: rewrite the results page from the rows results pages hold with today's commands (yours, "
        "--reuse-results'), the others marked 'not run' with their estimate",
    )
    p.add_argument("--keep-shards", action="store_true", help="keep the shard sets (default: deleted at the end)")
    p.add_argument("--overwrite", action="store_true", help="clear a previous run in --work first")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a previous run in --work: stages whose identical command already succeeded are reused, and a "
        "stage that was cut off continues (lasium-gen keeps its shards, lasium-train and lasium-eval get --resume)",
    )
    args = p.parse_args()
    # Stages run in their own sessions (so a timeout can kill a stage with its workers); a SIGTERM to this driver
    # (e.g. from `timeout`) must take the running stage down too: turn it into SystemExit, which Pipeline.run handles.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    # ablation and longer-MAML keys: the same at every size
    known = only_names(plan_rows("maml") + plan_longer_maml(PRESETS["cpu"]) + plan_ablation(PRESETS["cpu"]))
    if args.only and set(args.only.split(",")) - set(known):
        sys.exit(f"error: --only names unknown rows; rows (or a family of rows): {', '.join(known)}")
    if args.quick and args.sizes not in (None, "quick"):
        sys.exit("error: --quick and --sizes disagree; give one of them")
    args.sizes = "quick" if args.quick else (args.sizes or "gpu")
    args.quick = args.sizes == "quick"
    sizes = PRESETS[args.sizes]
    sizes = replace(
        sizes, **{k: v for k, v in (("fit_minutes", args.fit_minutes), ("maml_algo", args.maml_algo)) if v is not None}
    )
    if args.plan:
        print_plan(args, sizes)
        return
    if args.page_only:
        write_page_only(args, sizes)
        return
    work = Path(args.work)
    marker = work / "repro-omniglot.json"  # says this folder is ours to clear with --overwrite
    if args.resume and args.overwrite:
        sys.exit("error: --resume and --overwrite contradict each other; give one of them")
    committed = Path(args.results) / "omniglot.json"
    if args.reuse_results and not args.resume:
        sys.exit("error: --reuse-results takes rows into a resumed run; add --resume")
    if args.resume and not marker.is_file() and not committed.is_file():
        sys.exit(f"error: no previous run to resume: neither {work} nor {committed} holds one; drop --resume")
    if work.exists() and any(work.iterdir()) and not args.resume:
        if not args.overwrite:
            sys.exit(f"error: {work} holds a previous run; pass --overwrite to clear it or choose another --work")
        if not marker.is_file():
            sys.exit(f"error: {work} is not a folder of this driver (no {marker.name}); choose another --work")
        for sub in ("shards", "runs", "evals", "logs", "gan"):
            shutil.rmtree(work / sub, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        marker.write_text(json.dumps({"argv": sys.argv, "started": time.time()}) + "\n")
    Path(args.results).mkdir(parents=True, exist_ok=True)
    if not args.resume:  # a resumed run reuses its previews
        for old in Path(args.results).glob("preview-*.png"):
            old.unlink()
    for old in ("curves-protonets.png", "curves-maml.png"):
        (Path(args.results) / old).unlink(missing_ok=True)

    from repro_pipeline import Pipeline  # beside this script (sys.path[0] when run as one)
    from repro_records import describe_device

    device_type, device = describe_device(args.device)
    pipe = Pipeline(args, sizes, RATES[device_type], device_type, device)
    protocol = protocol_of(args, sizes)
    rows = chosen_rows(args, sizes, device.get("native_bf16", True))
    pipe.generator["ok"] = pipe.prepare_generator()
    pipe.write(protocol)
    for row in rows:
        pipe.do_row(row)
        pipe.write(protocol)
    try:
        pipe.draw_curves()
    except Exception as exc:  # a picture must not cost the page
        pipe.stages.append(
            {"name": "curves", "status": "failed", "seconds": 0.0, "command": "", "note": repr(exc)[:200]}
        )
    if not args.keep_shards:
        shutil.rmtree(work / "shards", ignore_errors=True)
    pipe.write(protocol)
    ok = sum(1 for r in pipe.rows if r["status"] == "ok")
    print(
        f"[repro] {ok}/{len(pipe.rows)} rows done in {time.time() - pipe.start:.0f} s; "
        f"see {Path(args.results) / 'omniglot.md'}"
    )


if __name__ == "__main__":
    main()
