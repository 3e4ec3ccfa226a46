"""Accuracy against GAN training: LASIUM-N + ProtoNets validation accuracy for each kept GAN snapshot.

The LASIUM authors tie accuracy to how long their GAN trained (figure data in DESIGN.md: LASIUM-N, 5-way
1-shot, 1,000 iterations; 51.95 / 67.50 / 77.35 / 78.21 / 80.51 after 0 / 10 / 50 / 200 / 400 epochs). This
script draws our version from the snapshots ``lasium-fit --keep-epochs`` leaves (``train_bundled.py`` keeps
0, 10, 50, 200 and 400 by default):

    python benchmarks/train_bundled.py --out runs/bundled                  # GPU: the fits and their snapshots
    python benchmarks/gan_epoch_curve.py --fit runs/bundled/omniglot-gan --work runs/gan-curve
    python benchmarks/gan_epoch_curve.py --fit ... --work ... --resume     # continue an interrupted curve
    python benchmarks/gan_epoch_curve.py --quick --fit /tmp/gan --work /tmp/curve --results /tmp/curve

Every snapshot (each ``epoch-NNNN/`` folder and the final model) gets the same fixed small budget, the
sweep's point (``sweep_omniglot.py``) with ``--generator`` set to the snapshot: ``lasium-gen --strategy n
--tuned-for protonets`` (``--tasks`` tasks) → ``lasium-train --algo protonets --augment auto`` (``--iterations``
× ``--meta-batch``, by default the authors' 1,000 iterations of 4 distinct tasks) → ``lasium-eval --split
val`` (validation characters, never the test split; 1- and 5-shot). The Fréchet distance of a snapshot is
shown beside it when ``train_bundled.py`` measured it (``epoch-NNNN/fid.json``).

Writes ``accuracy-vs-gan-epochs.json``, ``.md`` and ``.png`` into ``--results`` after every snapshot.
The published numbers are test accuracies of the authors' setup (no query shift, their GAN); ours are
validation accuracies with this project's trainer, so the comparison is of the curve's shape and level.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from stages import StageRunner  # beside this script
from sweep_omniglot import Point, commands, run_point, summarise

REPO = Path(__file__).resolve().parent.parent
PUBLISHED_CURVE = {0: 51.95, 10: 67.50, 50: 77.35, 200: 78.21, 400: 80.51}  # LASIUM-N, 5-way 1-shot (DESIGN.md)
NAME = "accuracy-vs-gan-epochs"


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
    fid = folder / "fid.json"
    if not fid.is_file():
        return None
    record = json.loads(fid.read_text())
    value = record.get("fd_generated_vs_test")
    return float(value) if value is not None else None


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0 if device == "auto" else torch.device(device))
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores"


def render(results: dict[str, Any]) -> str:
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
    lines += ["", f"![accuracy against GAN epochs]({NAME}.png)", ""]
    return "\n".join(lines)


def draw(results: dict[str, Any], path: Path) -> None:
    from plots import line_chart

    ours: dict[str, list[tuple[float, float]]] = {"ours, val 1-shot": [], "ours, val 5-shot": []}
    for r in results["rows"]:
        if r["status"] == "ok":
            for shots in ("1", "5"):
                if shots in r["val"]:
                    ours[f"ours, val {shots}-shot"].append((r["gan_epochs"], r["val"][shots]["accuracy_pct"]))
    series = {"published, 1-shot": sorted(PUBLISHED_CURVE.items()), **ours}
    line_chart(
        series,
        path,
        title="LASIUM-N + ProtoNets: Omniglot 5-way accuracy against GAN training",
        xlabel="GAN epochs",
        ylabel="accuracy %",
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fit", type=Path, required=True, help="lasium-fit output folder with epoch-NNNN/ snapshots")
    p.add_argument("--work", type=Path, default=Path("runs/gan-curve"), help="shards, runs, evals and logs go here")
    p.add_argument("--results", type=Path, default=REPO / "results", help=f"where {NAME}.md/.json/.png go")
    p.add_argument("--epochs", default=None, help="only these GAN epochs, comma-separated [every snapshot]")
    p.add_argument("--tasks", type=int, default=4000, help="generated tasks per snapshot [4000: 1000 it × 4]")
    p.add_argument("--iterations", type=int, default=1000, help="ProtoNets iterations [1000, the authors']")
    p.add_argument("--meta-batch", type=int, default=4)
    p.add_argument("--val-tasks", type=int, default=1000, help="validation tasks per K_tr")
    p.add_argument("--gen-precision", default="auto", help="lasium-gen --precision")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root", default=None)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of every stage [unchanged]")
    p.add_argument("--resume", action="store_true", help="reuse stages whose identical command already succeeded")
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke run)")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.iterations, args.val_tasks = 24, 4, 10
    found = snapshots(args.fit)
    if not found:
        sys.exit(f"error: no GAN snapshots under {args.fit}: give a lasium-fit output folder (--keep-epochs 0,10,...)")
    if args.epochs:
        wanted = {int(e) for e in args.epochs.split(",") if e.strip()}
        missing = sorted(wanted - set(found))
        if missing:
            sys.exit(f"error: no snapshot for GAN epochs {missing} under {args.fit} (found {sorted(found)})")
        found = {e: f for e, f in found.items() if e in wanted}
    if args.work.exists() and any(args.work.iterdir()) and not args.resume:
        sys.exit(f"error: {args.work} holds an earlier curve; pass --resume to continue it or choose another --work")
    args.common = (["--device", args.device] if args.device != "auto" else []) + (
        ["--data-root", args.data_root] if args.data_root else []
    )
    args.results.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    # the --tuned-for σ (no --sigma): the product default for LASIUM-N ProtoNets tasks
    point = Point("gan-epochs", "n", "sigma", None, "auto")
    start, rows = time.time(), []
    for epochs, folder in sorted(found.items()):
        work = args.work / f"epoch-{epochs:04d}"
        cmds = commands(point, args, work)
        cmds["gen"] += ["--generator", str(folder)]
        runner = StageRunner(work, env, resume=args.resume, tag=f"curve {epochs}")
        row = summarise(point, run_point(runner, point, cmds, work, set()), cmds)
        row.update(gan_epochs=epochs, snapshot=str(folder), frechet_distance=frechet_distance(folder))
        row["stages"] = runner.stages
        rows.append(row)
        results = {
            "format": "lasium-accuracy-vs-gan-epochs",
            "command": "python benchmarks/gan_epoch_curve.py " + " ".join(sys.argv[1:]),
            "device": device_name(args.device),
            "fit": str(args.fit),
            "sizes": {k: getattr(args, k) for k in ("tasks", "iterations", "meta_batch", "val_tasks", "seed")},
            "published": {str(k): v for k, v in PUBLISHED_CURVE.items()},
            "wall_seconds": round(time.time() - start, 1),
            "rows": rows,
        }
        (args.results / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
        (args.results / f"{NAME}.md").write_text(render(results))
        try:
            draw(results, args.results / f"{NAME}.png")
        except Exception as exc:  # a picture must not cost the page
            print(f"[curve] no plot: {exc!r}", file=sys.stderr)
    ok = sum(r["status"] == "ok" for r in rows)
    print(f"[curve] {ok}/{len(rows)} snapshots in {time.time() - start:.0f} s; see {args.results / (NAME + '.md')}")
    if ok < len(rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
