"""Choose LASIUM's σ/α and the training augmentation from evidence: a sweep scored on Omniglot *validation* tasks.

    python benchmarks/sweep_omniglot.py --work runs/sweep                 # the full sweep (~1-2 h on a 2-core CPU)
    python benchmarks/sweep_omniglot.py --work runs/sweep --resume        # continue an interrupted sweep
    python benchmarks/sweep_omniglot.py --quick --work /tmp/sweep         # smoke run (tiny sizes)
    python benchmarks/sweep_omniglot.py --algo maml --only parameter --strategies oc --values 0.2,0.6 \
        --val-tasks 300 --work runs/sweep-maml --results runs/sweep-maml/results   # MAML's own α for oc

Every point is the real pipeline at a reduced budget: ``lasium-gen`` (bundled GAN, ``--tasks`` tasks) →
``lasium-train --algo protonets`` (or ``--algo maml``: second order, 5 inner steps; shards then use ``--tuned-for
maml``; ``--iterations`` × ``--meta-batch``) → ``lasium-eval --split val`` (the val split's classes, never the test
split; 1- and 5-shot; MAML adapts 50 steps). Two families of points:

- strategy parameters, with the augmentation fixed at ``shift5``: σ for ``n``, α for ``ro`` and ``oc``;
- augmentation presets (``lasium.train.augment``), on one shard set (``n``, σ of ``--augment-sigma``).

Writes ``results/sweep.json``, ``results/sweep.md`` and ``results/sweep.png`` after every point, so an
interrupted sweep still leaves a page; with ``--resume`` finished stages are reused (see ``stages.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stages import StageRunner  # beside this script
from sweep_report import PARAMETERS, PRESET_OF, draw, render

REPO = Path(__file__).resolve().parent.parent

AUGMENTS = ("none", "shift5", "umtra", "shift7", "shift5-affine", "shift5-strokes", "shift5-erase", "shift5-support")


@dataclass
class Point:
    """One sweep point: a shard set (strategy, parameter) and a training augmentation."""

    family: str  # parameter | augment
    strategy: str
    parameter: str
    value: float | None  # None: the --tuned-for value of σ/α (no flag)
    augment: str

    @property
    def shard_name(self) -> str:
        return f"{self.strategy}-{self.parameter}{'-preset' if self.value is None else format(self.value, 'g')}"

    @property
    def key(self) -> str:
        return f"{self.shard_name}-{self.augment}"


def plan(augment_sigma: float, strategies: list[str], values: list[float] | None = None) -> list[Point]:
    """The sweep's points; ``values``: the parameter values of every strategy (default: ``PARAMETERS``)."""
    # Augmentations first: they move accuracy most (shift5 alone is worth ~18 points), σ/α less.
    points = [Point("augment", "n", "sigma", augment_sigma, a) for a in AUGMENTS]
    points += [
        Point("parameter", s, PARAMETERS[s][0], v, "shift5") for s in strategies for v in (values or PARAMETERS[s][1])
    ]
    seen, unique = set(), []
    for p in points:  # the n / shift5 point belongs to both families; run it once (as an augment point)
        if p.key not in seen:
            seen.add(p.key)
            unique.append(p)
    return unique


def commands(point: Point, args: argparse.Namespace, work: Path) -> dict[str, list[str]]:
    """The three stages of a point (console script + arguments), fully determined by the point and the options."""
    shards, run, out = (
        work / "shards" / point.shard_name,
        work / "runs" / point.key,
        work / "evals" / f"{point.key}.json",
    )
    algo = getattr(args, "algo", "protonets")  # callers with no --algo (gan_epoch_curve) train ProtoNets
    return {
        "gen": [
            "lasium-gen",
            "--strategy",
            point.strategy,
            *([] if point.value is None else [f"--{point.parameter}", f"{point.value:g}"]),
            "--tuned-for",
            PRESET_OF[algo],
            "--n-tasks",
            str(args.tasks),
            "--tasks-per-shard",
            str(min(args.tasks, 500)),
            "--decode-tasks",
            "50",
            "--workers",
            "1",
            "--precision",
            args.gen_precision,
            "--shots",
            "1",
            "--queries",
            "5",
            "--seed",
            str(args.seed),
            "--out",
            str(shards),
            "--quiet",
        ]
        + args.common,
        "train": [
            "lasium-train",
            "--shards",
            str(shards),
            "--algo",
            algo,
            "--augment",
            point.augment,
            "--iterations",
            str(args.iterations),
            "--meta-batch",
            str(args.meta_batch),
            "--val-every",
            "0",
            "--workers",
            "1",
            "--checkpoint-every",
            "0",
            "--log-every",
            "50",
            "--seed",
            str(args.seed),
            "--out",
            str(run),
            "--quiet",
        ]
        + args.common,
        "eval": [
            "lasium-eval",
            "--checkpoint",
            str(run),
            "--split",
            "val",
            "--shots",
            "1,5",
            "--tasks",
            str(args.val_tasks),
            "--seed",
            "0",
            "--out",
            str(out),
            "--quiet",
        ]
        + args.common,
    }


def run_point(
    runner: StageRunner, point: Point, cmds: dict[str, list[str]], work: Path, made: set[str]
) -> dict[str, Any] | None:
    shards, run, out = (
        work / "shards" / point.shard_name,
        work / "runs" / point.key,
        work / "evals" / f"{point.key}.json",
    )
    if point.shard_name not in made:  # one shard set serves every augmentation point
        if not runner.run(
            f"gen-{point.shard_name}", cmds["gen"][0], cmds["gen"][1:], point.key, produces=shards / "manifest.json"
        ):
            return None
        made.add(point.shard_name)
    if not runner.run(
        f"train-{point.key}", cmds["train"][0], cmds["train"][1:], point.key, produces=run / "last" / "state.json"
    ):
        return None
    if not runner.run(f"eval-{point.key}", cmds["eval"][0], cmds["eval"][1:], point.key, produces=out):
        return None
    return json.loads(out.read_text())


def summarise(point: Point, report: dict[str, Any] | None, cmds: dict[str, list[str]]) -> dict[str, Any]:
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
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="runs/sweep", help="shards, runs, evals and logs go here")
    p.add_argument("--results", default=str(REPO / "results"), help="where sweep.md/.json/.png go")
    p.add_argument("--tasks", type=int, default=2000, help="generated tasks per shard set")
    p.add_argument(
        "--algo",
        choices=list(PRESET_OF),
        default="protonets",
        help="the learner every point trains (its shards use the σ/α tuned for it: --tuned-for) [protonets]",
    )
    p.add_argument("--iterations", type=int, default=1000, help="training iterations per point")
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--val-tasks", type=int, default=1000, help="validation tasks per K_tr")
    p.add_argument("--strategies", default="n,ro,oc", help="strategies of the parameter family")
    p.add_argument(
        "--values",
        default=None,
        help="σ/α values of every strategy in the parameter family, e.g. 0.2,0.6 [n: 0.5,1,2; ro, oc: 0.2,0.5,0.8]",
    )
    p.add_argument(
        "--augment-sigma", type=float, default=1.0, help="σ of the n shard set the augmentation family trains on"
    )
    p.add_argument("--only", choices=["parameter", "augment"], default=None, help="run one family only")
    p.add_argument(
        "--gen-precision", default="bf16", help="lasium-gen --precision of every shard set (one value for all)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of every stage")
    p.add_argument("--resume", action="store_true", help="reuse stages whose identical command already succeeded")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    p.add_argument(
        "--render", action="store_true", help="only rewrite sweep.md and sweep.png from the sweep.json in --results"
    )
    args = p.parse_args()
    if args.render:
        results = json.loads((Path(args.results) / "sweep.json").read_text())
        (Path(args.results) / "sweep.md").write_text(render(results))
        draw(results, Path(args.results) / "sweep.png")
        return
    if args.quick:
        args.tasks, args.iterations, args.val_tasks = 24, 4, 10
    args.common = (["--device", args.device] if args.device != "auto" else []) + (
        ["--data-root", args.data_root] if args.data_root else []
    )
    work = Path(args.work)
    if work.exists() and any(work.iterdir()) and not args.resume:
        sys.exit(f"error: {work} holds an earlier sweep; pass --resume to continue it or choose another --work")
    work.mkdir(parents=True, exist_ok=True)
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    runner = StageRunner(work, env, resume=args.resume, tag="sweep")
    try:
        values = [float(v) for v in args.values.split(",")] if args.values else None
    except ValueError:
        sys.exit(f"error: --values takes numbers separated by commas, e.g. 0.2,0.6; got {args.values!r}")
    points = plan(args.augment_sigma, args.strategies.split(","), values)
    if args.only:
        points = [pt for pt in points if pt.family == args.only]
    # the n/σ/shift5 point is run once, as an augment point; it also belongs in the parameter table
    shared = [pt.key for pt in points if pt.family == "augment" and pt.augment == "shift5"]

    import platform

    start = time.time()
    rows: list[dict[str, Any]] = []
    made: set[str] = set()
    sizes = {k: getattr(args, k) for k in ("tasks", "iterations", "meta_batch", "val_tasks", "seed", "threads")}
    if args.algo != "protonets":  # (ProtoNets pages keep their recorded sizes, so --resume reuses their points)
        sizes["algo"] = args.algo
    command = "python benchmarks/sweep_omniglot.py " + " ".join(sys.argv[1:])
    # Across sessions the work folder is gone but the page is committed: a point whose recorded commands equal
    # today's is taken from the page instead of being run again.
    earlier = {}
    if args.resume and (results_dir / "sweep.json").is_file():
        earlier = {
            r["key"]: r
            for r in json.loads((results_dir / "sweep.json").read_text()).get("rows", [])
            if r["status"] == "ok"
        }
    for point in points:
        cmds = commands(point, args, work)
        recorded = earlier.get(point.key)
        if recorded and recorded.get("commands") == {k: " ".join(v) for k, v in cmds.items()}:
            print(f"[sweep] {point.key}: reused from {results_dir / 'sweep.json'}", flush=True)
            rows.append(dict(recorded, reused=True))
        else:
            rows.append(summarise(point, run_point(runner, point, cmds, work, made), cmds))
        results = {
            "format": "lasium-sweep-omniglot",
            "command": command,
            "device": f"{platform.machine()} CPU, {os.cpu_count()} cores"
            if args.device in ("auto", "cpu")
            else args.device,
            "sizes": sizes,
            "wall_seconds": round(time.time() - start, 1),
            "shared_keys": shared,
            "rows": rows,
            "stages": runner.stages,
            "planned": len(points),
            **({"values": values} if values else {}),
        }
        (results_dir / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")
        (results_dir / "sweep.md").write_text(render(results))
        try:
            draw(results, results_dir / "sweep.png")
        except Exception as exc:  # a picture must not cost the page
            print(f"[sweep] no plot: {exc!r}", file=sys.stderr)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"[sweep] {ok}/{len(rows)} points in {time.time() - start:.0f} s; see {results_dir / 'sweep.md'}")


if __name__ == "__main__":
    main()
