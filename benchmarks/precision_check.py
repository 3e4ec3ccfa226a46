"""Does bf16 change accuracy? One identical short ProtoNets run in fp32 and in bf16, each scored in its precision.

    python benchmarks/precision_check.py --shards runs/sweep/shards/n-sigma1 --work runs/prec

Trains ``lasium-train --algo protonets --augment shift5`` for ``--iterations`` × 4 tasks with ``--precision fp32``
and with ``--precision bf16`` (same seed, same shards), scores each with ``lasium-eval --precision`` of the
same kind on the 1000 fixed Omniglot test tasks (1- and 5-shot), and writes ``results/precision.json`` and
``results/precision.md``: the accuracies, their 95% CIs, whether they overlap, and the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from stages import StageRunner  # beside this script

REPO = Path(__file__).resolve().parent.parent


def describe_cpu() -> str:
    """This CPU in words, and whether bf16 is native on it (else bf16 is emulated: same numerics, much slower)."""

    from repro_records import cpu_model  # beside this script

    from lasium.precision import cpu_has_native_bf16

    model = cpu_model()
    bf16 = "native bf16 (AVX512-BF16/AMX)" if cpu_has_native_bf16() else "no native bf16: bf16 is emulated"
    return f"{model}, {os.cpu_count()} cores, {bf16}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", required=True, help="a LASIUM shard set (e.g. 2,000 LASIUM-N tasks)")
    p.add_argument("--work", default="runs/prec")
    p.add_argument("--results", default=str(REPO / "results"))
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--tasks", type=int, default=1000, help="test tasks per K_tr")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args()
    work = Path(args.work)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    runner = StageRunner(work, env, resume=args.resume, tag="precision")
    rows = {}
    for precision in ("fp32", "bf16"):
        run, out = work / precision, work / f"eval-{precision}.json"
        train = [
            "--shards",
            args.shards,
            "--algo",
            "protonets",
            "--augment",
            "shift5",
            "--precision",
            precision,
            "--iterations",
            str(args.iterations),
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
            str(run),
            "--quiet",
        ]
        evaluate = [
            "--checkpoint",
            str(run),
            "--precision",
            precision,
            "--shots",
            "1,5",
            "--tasks",
            str(args.tasks),
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
        if not (
            runner.run(f"train-{precision}", "lasium-train", train, produces=run / "last" / "state.json")
            and runner.run(f"eval-{precision}", "lasium-eval", evaluate, produces=out)
        ):
            sys.exit(f"error: the {precision} run failed; see {work / 'logs'}")
        report = json.loads(out.read_text())
        rows[precision] = {
            "results": {
                str(r["shots"]): {k: r[k] for k in ("accuracy_pct", "ci95_pct", "tasks")} for r in report["results"]
            },
            "episode_digest": report["episode_digest"],
            "precision_used": report["precision"],
        }
    stage_seconds = {s["name"]: s["seconds"] for s in runner.stages}
    overlap = {
        k: abs(rows["fp32"]["results"][k]["accuracy_pct"] - rows["bf16"]["results"][k]["accuracy_pct"])
        <= rows["fp32"]["results"][k]["ci95_pct"] + rows["bf16"]["results"][k]["ci95_pct"]
        for k in ("1", "5")
    }
    within = {
        k: abs(rows["fp32"]["results"][k]["accuracy_pct"] - rows["bf16"]["results"][k]["accuracy_pct"])
        <= min(rows["fp32"]["results"][k]["ci95_pct"], rows["bf16"]["results"][k]["ci95_pct"])
        for k in ("1", "5")
    }
    page = {
        "command": "python benchmarks/precision_check.py " + " ".join(sys.argv[1:]),
        "device": describe_cpu(),
        "rows": rows,
        "stage_seconds": stage_seconds,
        "cis_overlap": overlap,
        "each_within_the_others_ci": within,
    }
    results = Path(args.results)
    (results / "precision.json").write_text(json.dumps(page, indent=2) + "\n")
    lines = [
        "# fp32 vs bf16: the same ProtoNets run in each precision",
        "",
        f"Command: `{page['command']}` ({page['device']}).",
        "",
        "`lasium-train --algo protonets --augment shift5`, "
        f"{args.iterations} iterations × 4 tasks, seed 0, the same shards; "
        "each scored by `lasium-eval` in its own precision on the "
        f"{args.tasks} fixed Omniglot test tasks (5-way, 15 queries).",
        "",
        "| precision | 1-shot | 5-shot | train s | eval s |",
        "|---|---|---|---|---|",
    ]
    for precision, row in rows.items():
        r = row["results"]
        lines.append(
            f"| {precision} | {r['1']['accuracy_pct']:.2f} ± {r['1']['ci95_pct']:.2f} | {r['5']['accuracy_pct']:.2f} ± "
            f"{r['5']['ci95_pct']:.2f} | {stage_seconds.get(f'train-{precision}', 0):.0f} "
            f"| {stage_seconds.get(f'eval-{precision}', 0):.0f} |"
        )
    lines += [
        "",
        f"Each difference within the smaller CI: 1-shot {within['1']}, 5-shot {within['5']}. Same episodes: "
        f"{rows['fp32']['episode_digest'] == rows['bf16']['episode_digest']}.",
        "",
    ]
    (results / "precision.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
