"""Reproduce LASIUM on Omniglot end to end and write results/omniglot.md + omniglot.json (+ PNG curves, previews).

    python benchmarks/repro_omniglot.py                      # GPU sizes, bundled omniglot-gan
    python benchmarks/repro_omniglot.py --fit                # fit a fresh GAN first (--fit-minutes budget)
    python benchmarks/repro_omniglot.py --generator runs/gan --budget-seconds 300
    python benchmarks/repro_omniglot.py --quick --fit        # tiny sizes: a few minutes on a 2-core CPU
    python benchmarks/repro_omniglot.py --sizes cpu --resume # the reference budgets on a 2-core CPU: several hours, resumable
    python benchmarks/repro_omniglot.py --sizes cpu --ablation  # plus the ablation: one ingredient at a time (ProtoNets, N)
    python benchmarks/repro_omniglot.py --sizes cpu-reduced  # the earlier reduced CPU configuration (smoke runs, ~1.5 h)
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
killed at the deadline, and the page says what was skipped. A failing stage is recorded and the rest go on. Results are rewritten after every
row, so an interrupted run still leaves a page. Every size is a named field of ``Sizes`` below.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Sizes:
    """Every size of the reproduction (the GPU preset, planned for ~6 min on one H100/H200)."""

    fit_minutes: float = 4.0  # --fit: wall-clock budget of lasium-fit
    fit_epochs: int = 300  # --fit: upper bound on epochs
    fit_limit: int = 0  # --fit: train on the first N images only (0 = all)
    gen_tasks_protonets: int = 60_000  # synthetic tasks per strategy for ProtoNets (one pass at meta-batch 32)
    gen_tasks_maml: int = 16_000  # synthetic tasks per strategy for MAML
    gen_tasks_real: int = 60_000  # real labeled train-split tasks (supervised upper bound)
    tasks_per_shard: int = 1000
    decode_tasks: int = 250  # tasks per generator call
    gen_workers: int = 4  # lasium-gen writer processes
    protonets_iterations: int = 1875
    protonets_meta_batch: int = 32
    maml_algo: str = "maml"  # second order, as in the paper (fomaml is several times faster)
    maml_iterations: int = 800  # 12.8k tasks: ~70 s of second-order MAML at ~200 tasks/s
    maml_meta_batch: int = 16
    maml_inner_steps: int = 5
    train_workers: int = 4  # DataLoader workers of lasium-train
    val_every: int = 250
    val_tasks: int = 200
    eval_tasks: int = 1000  # the protocol: 1000 test tasks per K_tr
    eval_tasks_maml: int = 0  # MAML rows: score only the first N of those same episodes (0 = all); CPU only
    gen_precision: str = "auto"  # lasium-gen --precision (bf16 halves CPU decoding time on AVX512-BF16 CPUs)
    eval_shots: str = "1,5"
    adapt_steps: int = 50  # the protocol: MAML adapts 50 steps of lr 0.4
    adapt_lr: float = 0.4
    preview_tasks: int = 4
    augment: str = (
        "auto"  # lasium-train --augment of every trained row (auto: shift5 for generated tasks, none for real)
    )
    train_precision: str = "auto"  # lasium-train --precision (auto: bf16 where native: CUDA, AVX512-BF16/AMX CPUs)
    eval_precision: str = "auto"  # lasium-eval --precision


PRESETS = {
    "gpu": Sizes(),
    # Reduced configuration for a 2-core CPU (about 1.5-2 h measured): fewer tasks and steps; MAML rows are scored on the
    # first 200 of the same 1000 test episodes, because 50-step adaptation of 1000 tasks takes ~40 min there.
    # The reference budgets of the authors' code with distinct tasks (every task drawn is a new one): ProtoNets 8,000
    # iterations x meta-batch 4 = 32,000 tasks, MAML 1,000 x 4 = 4,000 tasks (second order, 5 inner steps), every row
    # scored on all 1000 test tasks. Several hours on a 2-core CPU: run it with --resume across sessions.
    "cpu": Sizes(
        gen_tasks_protonets=32_000,
        gen_tasks_maml=4000,
        gen_tasks_real=32_000,
        tasks_per_shard=1000,
        decode_tasks=50,
        gen_workers=1,
        protonets_iterations=8000,
        protonets_meta_batch=4,
        maml_iterations=1000,
        maml_meta_batch=4,
        train_workers=1,
        val_every=1000,
        val_tasks=100,
    ),
    # The earlier reduced configuration (2,000 tasks reused 4x; MAML rows scored on the first 200 test tasks): smoke runs.
    "cpu-reduced": Sizes(
        gen_tasks_protonets=2000,
        gen_tasks_maml=1000,
        gen_tasks_real=2000,
        tasks_per_shard=500,
        decode_tasks=50,
        gen_workers=1,
        gen_precision="bf16",
        protonets_iterations=1000,
        protonets_meta_batch=8,
        maml_iterations=300,
        maml_meta_batch=4,
        train_workers=1,
        val_every=250,
        val_tasks=100,
        eval_tasks_maml=200,
    ),
    "quick": Sizes(
        fit_minutes=0.5,
        fit_epochs=1,
        fit_limit=256,
        gen_tasks_protonets=48,
        gen_tasks_maml=16,
        gen_tasks_real=48,
        tasks_per_shard=12,
        decode_tasks=12,
        gen_workers=1,
        protonets_iterations=12,
        protonets_meta_batch=4,
        maml_iterations=3,
        maml_meta_batch=2,
        train_workers=1,
        val_every=6,
        val_tasks=10,
        eval_tasks=10,
        adapt_steps=5,
        preview_tasks=2,
    ),
}

# CACTUs' one-off cost before its first task (VAE-encoding the 24,000 train images, then k-means with k = 500 for
# P = 100 partitions, scikit-learn on one core; 420 s measured at nice 10 on a busy 2-core CPU; cached under
# $LASIUM_CACHE/cactus, so the row's second set, of the other learner, reuses it).
CACTUS_SETUP_CPU = 600.0

# Rough throughputs for the budget guard's estimates (per second; "image_step" = seconds per support image per
# MAML step at evaluation). GPU figures follow the design notes' H200 anchors, discounted for small runs.
RATES = {
    "cuda": dict(
        startup=8.0,
        gen=10000.0,
        real=5000.0,
        protonets=4000.0,
        maml=180.0,
        fomaml=700.0,
        eval_proto=0.002,
        image_step=1.5e-5,
        umtra=5000.0,
        cactus=5000.0,
        cactus_setup=120.0,
    ),
    # One stage on one thread while the other core runs another (two --only drivers), fp32 (no native bf16), measured
    # on a 2-core AMD EPYC: lasium-gen ~3.7-7 tasks/s, MAML (second order) 1.8 tasks/s; ProtoNets training and
    # evaluation from the sweep's stages (4,000 tasks in 730 s; 2,000 episodes in 430-770 s). first-order MAML is
    # the old ratio to MAML, not measured. CPUs with native bf16 run gen and training faster than this.
    "cpu": dict(
        startup=8.0,
        gen=5.0,
        real=500.0,
        protonets=5.0,
        maml=1.8,
        fomaml=4.5,
        eval_proto=0.25,
        image_step=1.6e-3,
        umtra=500.0,
        cactus=500.0,
        cactus_setup=CACTUS_SETUP_CPU,
    ),
}

STRATEGY_NAMES = {"n": "N", "ro": "RO", "oc": "OC"}


# Unsupervised task sources other than LASIUM (``lasium-gen --source NAME``, its defaults), and their names on the page.
OTHER_SOURCES = {"umtra": "UMTRA", "cactus": "CACTUs-VAE"}
GENERATOR_SOURCES = tuple(STRATEGY_NAMES)  # sources whose shards a generator makes (LASIUM strategies)
MIXTURE = "mix"  # Row.source of a row that trains on several rows' shard sets (Row.mix)


@dataclass
class Row:
    """One method of ours: where its tasks come from, how it is trained (or not), and whether it is optional."""

    key: str
    label: str
    algo: str  # protonets | maml | fomaml
    source: str  # n | ro | oc | real | scratch | umtra | cactus | mix
    family: str  # lasium | supervised | scratch | other | ablation
    optional: bool = False
    # Settings that differ from the preset's (ablation rows): tasks, iterations, meta_batch, augment, param (σ/α), precision
    overrides: dict[str, Any] = field(default_factory=dict)
    note: str = ""  # what this row changes (ablation rows)
    # source "mix": (source, weight) of each shard set the run mixes (``lasium-train --shards SET:WEIGHT`` each); every
    # set is the one the row of that source with this row's learner generates, so a set is never generated twice
    mix: tuple[tuple[str, float], ...] = ()


def plan_rows(maml_algo: str) -> list[Row]:
    """Rows in priority order: ProtoNets × {ro, n, oc}, MAML × ro, supervised ProtoNets, scratch; then the optional ones."""
    maml_name = "MAML" if maml_algo == "maml" else "first-order MAML"
    rows = [
        Row(f"protonets-{s}", f"LASIUM-{STRATEGY_NAMES[s]}-GAN + ProtoNets (ours)", "protonets", s, "lasium")
        for s in ("ro", "n", "oc")
    ]
    rows.append(Row("maml-ro", f"LASIUM-RO-GAN + {maml_name} (ours)", maml_algo, "ro", "lasium"))
    rows.append(
        Row("protonets-supervised", "supervised ProtoNets (ours, real train tasks)", "protonets", "real", "supervised")
    )
    rows.append(Row("scratch-protonets", "training from scratch, ProtoNets (ours)", "protonets", "scratch", "scratch"))
    rows.append(Row("scratch-maml", "training from scratch, MAML (ours)", "maml", "scratch", "scratch"))
    rows += [
        Row(f"maml-{s}", f"LASIUM-{STRATEGY_NAMES[s]}-GAN + {maml_name} (ours)", maml_algo, s, "lasium", optional=True)
        for s in ("n", "oc")
    ]
    rows.append(
        Row(
            "maml-supervised",
            f"supervised {maml_name} (ours, real train tasks)",
            maml_algo,
            "real",
            "supervised",
            optional=True,
        )
    )
    return rows + plan_other_sources(maml_algo)


def plan_other_sources(maml_algo: str) -> list[Row]:
    """UMTRA and CACTUs with both learners, then ProtoNets on a LASIUM-N + UMTRA mixture (family ``other``).

    Same budgets as the LASIUM rows: the learner's task count (``gen_tasks_protonets`` / ``gen_tasks_maml``),
    iterations, meta-batch and test tasks. ``--augment auto`` stays as it is: it resolves to ``none`` for these
    shards (``ShardSet.generated`` is False for UMTRA and CACTUs sets), so each source is trained as its authors used
    it; the row records the resolved preset. The mixture row is the exception: see its note.

    Optional, like the other comparison rows (MAML n/oc, supervised MAML): they compare other methods and are not
    part of the LASIUM reproduction the targets measure, and at the cpu preset they add hours (two MAML rows scored on
    1,000 tasks, the CACTUs clustering). So they run by default with --sizes gpu or cpu, after every other row, and
    are skipped by --no-optional and the reduced presets without costing anything (nothing of theirs is planned into
    the other rows); --only selects them by key, or all of them as ``--only other``.
    """
    from lasium.train.augment import DEFAULT_FOR_GENERATED

    maml_name = "MAML" if maml_algo == "maml" else "first-order MAML"
    rows = []
    for source, name in OTHER_SOURCES.items():
        for prefix, algo, learner in (("maml", maml_algo, maml_name), ("protonets", "protonets", "ProtoNets")):
            rows.append(Row(f"{prefix}-{source}", f"{name} + {learner} (ours)", algo, source, "other", optional=True))
    rows.append(
        Row(
            "protonets-mix-n-umtra",
            "LASIUM-N-GAN + UMTRA mixture (0.5 / 0.5) + ProtoNets (ours)",
            "protonets",
            MIXTURE,
            "other",
            optional=True,
            # auto would mean none for the whole mixture (UMTRA sets are not generated, and the trainer augments a
            # batch, not a source), leaving the LASIUM-N half without the ~20 points its query augmentation is worth.
            overrides=dict(augment=DEFAULT_FOR_GENERATED),
            note=f"--augment {DEFAULT_FOR_GENERATED} on every query, as in the LASIUM-N row (auto would turn it off for "
            "the whole mixture); UMTRA's queries, already erased and shifted, get it on top",
            mix=(("n", 0.5), ("umtra", 0.5)),
        )
    )
    return rows


def select_rows(rows: list[Row], only: str | None) -> list[Row]:
    """``--only``: rows named by key, or every row of a named family (``other``, ``lasium``, ...), in priority order."""
    if not only:
        return rows
    names = set(only.split(","))
    return [r for r in rows if r.key in names or r.family in names]


def only_names(rows: list[Row]) -> list[str]:
    """What ``--only`` accepts: every row key and every family name."""
    return [r.key for r in rows] + sorted({r.family for r in rows})


def reference_sigma_protonets() -> float:
    """The authors' GAN-ProtoNets σ for LASIUM-N (DESIGN.md), before our sweep moved it."""
    from lasium.generate.synthesis.strategies import REFERENCE_PARAMETERS

    return REFERENCE_PARAMETERS["protonets"]["gan"]["n"]


def plan_ablation(sizes: Sizes) -> list[Row]:
    """LASIUM-N + ProtoNets from the earlier CPU configuration to this one, one ingredient at a time.

    The last ingredient (bf16) gives exactly the main ``protonets-n`` row, which the page uses as the final step.
    Steps whose ingredient changes nothing (a tuned value equal to the reference) are left out.
    """
    from lasium.generate.synthesis.strategies import default_parameter
    from lasium.train.augment import DEFAULT_FOR_GENERATED

    tuned_sigma = default_parameter("n", "gan", "protonets")
    full = dict(
        tasks=sizes.gen_tasks_protonets, iterations=sizes.protonets_iterations, meta_batch=sizes.protonets_meta_batch
    )
    # The earlier configuration at the cpu preset: 2,000 tasks, 1,000 iterations x 8 (each task seen 4 times).
    earlier = dict(
        tasks=max(8, sizes.gen_tasks_protonets // 16),
        iterations=max(2, sizes.protonets_iterations // 8),
        meta_batch=2 * sizes.protonets_meta_batch,
    )
    drawn = earlier["iterations"] * earlier["meta_batch"]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        (
            "0-earlier",
            f"the earlier CPU configuration: {earlier['tasks']:,} tasks reused, no augmentation, fp32",
            dict(earlier, augment="none", param=reference_sigma_protonets(), precision="fp32"),
        ),
        ("1-shift5", "+ query shift (shift5)", dict(augment="shift5")),
        ("2-distinct", f"+ distinct tasks ({drawn:,} generated, each seen once)", dict(tasks=drawn)),
        (
            "3-budget",
            f"+ reference budget ({full['iterations']:,} iterations x {full['meta_batch']} = "
            f"{full['iterations'] * full['meta_batch']:,} distinct tasks)",
            full,
        ),
    ]
    if tuned_sigma != reference_sigma_protonets():
        steps.append(
            (
                "4-sigma",
                f"+ tuned σ ({tuned_sigma:g} instead of {reference_sigma_protonets():g})",
                dict(param=tuned_sigma),
            )
        )
    if DEFAULT_FOR_GENERATED != "shift5":
        steps.append(
            ("5-augment", f"+ best augmentation ({DEFAULT_FOR_GENERATED})", dict(augment=DEFAULT_FOR_GENERATED))
        )
    rows, settings = [], {}
    for key, note, change in steps:
        settings = {**settings, **change}
        rows.append(
            Row(
                f"ablation-{key}",
                f"LASIUM-N-GAN + ProtoNets, {note}",
                "protonets",
                "n",
                "ablation",
                overrides=dict(settings),
                note=note,
            )
        )
    return rows


def chosen_rows(args: argparse.Namespace, sizes: Sizes) -> list[Row]:
    """The rows this invocation runs, in priority order (--only, --optional, --ablation)."""
    rows = plan_rows(sizes.maml_algo)
    # Rows named by --only run whatever the preset; else optional rows run with --optional (default: gpu and cpu sizes).
    if args.only:
        rows = select_rows(rows, args.only)
        if args.optional is False:
            rows = [r for r in rows if not r.optional]
    elif not (args.optional if args.optional is not None else args.sizes in ("gpu", "cpu")):
        rows = [r for r in rows if not r.optional]
    if args.ablation:  # with --only, the ablation steps it names (a key, or the family "ablation")
        rows += select_rows(plan_ablation(sizes), args.only)
    return rows


def print_plan(args: argparse.Namespace, sizes: Sizes) -> None:
    """``--plan``: each row, done (on a results page, same commands) or to run with its estimated time; runs nothing."""
    from repro_pipeline import Pipeline, describe_device

    device_type, device = describe_device(args.device)
    pipe = Pipeline(
        argparse.Namespace(**{**vars(args), "resume": True}), sizes, RATES[device_type], device_type, device
    )
    pipe.generator = {"spec": str(Path(args.work) / "gan") if args.fit else args.generator}
    left = 0.0
    print(f"rows of --sizes {args.sizes} on {device.get('name')} (estimates from RATES[{device_type!r}]):")
    for row in chosen_rows(args, sizes):
        earlier = pipe.committed_rows.get(row.key)
        if earlier and earlier.get("commands") == pipe.planned_commands(row):
            one, five = (earlier["eval"][k]["accuracy_pct"] for k in ("1", "5"))
            print(f"  {row.key:<28} done: {one:.2f} / {five:.2f}")
            continue
        hours = pipe.estimate(row) / 3600
        for part in pipe.components(row):  # what this row generates is made once per run
            pipe.made[pipe.shard_key(part)] = Path()
        left += hours
        print(f"  {row.key:<28} to run: ~{hours:.1f} h" + (" (optional)" if row.optional else ""))
    print(f"~{left:.1f} h of stages left, one at a time (two --only drivers on two cores halve the wall time)")


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
    p.add_argument("--keep-shards", action="store_true", help="keep the shard sets (default: deleted at the end)")
    p.add_argument("--overwrite", action="store_true", help="clear a previous run in --work first")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue a previous run in --work: stages whose identical command already succeeded are reused",
    )
    args = p.parse_args()
    # Stages run in their own sessions (so a timeout can kill a stage with its workers); a SIGTERM to this driver
    # (e.g. from `timeout`) must take the running stage down too: turn it into SystemExit, which Pipeline.run handles.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    known = only_names(plan_rows("maml") + plan_ablation(PRESETS["cpu"]))  # ablation keys: the same at every size
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

    from repro_pipeline import Pipeline, describe_device  # beside this script (sys.path[0] when run as one)

    device_type, device = describe_device(args.device)
    pipe = Pipeline(args, sizes, RATES[device_type], device_type, device)
    protocol = {
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
    rows = chosen_rows(args, sizes)
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
        f"[repro] {ok}/{len(pipe.rows)} rows done in {time.time() - pipe.start:.0f} s; see {Path(args.results) / 'omniglot.md'}"
    )


if __name__ == "__main__":
    main()
