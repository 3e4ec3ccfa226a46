"""Evaluation throughput: how many test tasks to score together (``lasium-eval --chunk``) on this device.

``lasium-eval`` scores MAML by adapting ``chunk`` tasks at once (``vmap`` over per-task weights: a grouped
convolution). On a GPU large chunks fill the device; on a CPU the activations of a large chunk leave the caches
and every step gets slower, so the best chunk is a measurement, not a guess. This prints seconds per task of
test-time adaptation (5-way, 15 queries per class, ``--steps`` SGD steps) for each chunk size and each K_tr,
interleaved over ``--reps`` rounds (so a busy machine slows every candidate alike), and the speed of each chunk
relative to the current default (``lasium.evaluate.scoring.DEFAULT_CHUNK``). Every ratio comes from one run.

    python benchmarks/bench_eval.py --quick                      # smoke run, seconds
    python benchmarks/bench_eval.py --chunks 1,2,4,8,16 --json-out results/bench-eval-cpu.json

``--layouts`` compares instead, at chunk 1 (one task, no ``vmap``: the CPU default), the backbone's two ways of
running one batch on a CPU: plain NCHW blocks and the channels-last path with the first convolution as a matrix
product (``Conv4.forward_channels_last``), interleaved in one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from lasium.evaluate import chunk_accuracy, default_chunk
from lasium.precision import autocast_factory, resolve_precision
from lasium.runtime import cpu_model, describe_device, resolve_device
from lasium.train import Conv4, LearnerConfig, build_learner

WAYS, QUERIES, SHAPE = 5, 15, (28, 28, 1)


def random_tasks(count: int, shots: int, device: torch.device, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """``count`` 5-way tasks of random images (speed does not depend on content): support, labels, query, labels."""
    g = torch.Generator().manual_seed(seed)
    h, w, c = SHAPE
    support = torch.rand(count, WAYS * shots, c, h, w, generator=g)
    query = torch.rand(count, WAYS * QUERIES, c, h, w, generator=g)
    support_labels = torch.arange(WAYS).repeat_interleave(shots).repeat(count, 1)
    query_labels = torch.arange(WAYS).repeat_interleave(QUERIES).repeat(count, 1)
    return tuple(t.to(device) for t in (support, support_labels, query, query_labels))


def seconds_per_task(learner, tasks, chunk: int, steps: int, autocast, device: torch.device) -> float:
    """Wall seconds per task of adapting and scoring ``tasks`` in chunks of ``chunk``."""
    total = tasks[0].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for lo in range(0, total, chunk):
        part = [t[lo : lo + chunk] for t in tasks]
        chunk_accuracy(learner, *part, steps=steps, lr=0.4, autocast=autocast)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / total


def header(benchmark: str, args: argparse.Namespace, device: torch.device, precision: str) -> dict[str, Any]:
    """What every result file of this benchmark starts with: what ran, where, and how."""
    return {
        "benchmark": benchmark,
        "algo": args.algo,
        "device": describe_device(device),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "precision": precision,
        "steps": args.steps,
        "tasks": args.tasks,
        "reps": args.reps,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device, local_rank=0)
    precision = resolve_precision(args.precision, device)
    autocast = autocast_factory(precision, device)
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=args.algo, ways=WAYS, image_shape=SHAPE)).to(device).eval()
    chunks = sorted({int(c) for c in args.chunks.split(",")})
    default = default_chunk(device)
    results: dict[str, Any] = {}
    adapting = learner.adapts  # ProtoNets have no steps: the time per task is what it is
    for shots in (int(s) for s in args.shots.split(",")):
        count = max(max(chunks), args.tasks)
        count -= count % max(chunks)  # every chunk size covers the same tasks in whole chunks
        tasks = random_tasks(count, shots, device)
        for chunk in chunks:  # warm-up: one chunk each (kernels, allocator)
            chunk_accuracy(learner, *[t[:chunk] for t in tasks], steps=1, lr=0.4, autocast=autocast)
        times: dict[int, list[float]] = {c: [] for c in chunks}
        for rep in range(args.reps):
            for chunk in chunks if rep % 2 == 0 else reversed(chunks):  # alternate the order: no position bias
                times[chunk].append(seconds_per_task(learner, tasks, chunk, args.steps, autocast, device))
        median = {c: statistics.median(t) for c, t in times.items()}
        base = median.get(default)
        results[str(shots)] = {
            str(c): {
                "seconds_per_task": round(median[c], 5),
                **({"seconds_per_task_50_steps": round(median[c] * 50 / args.steps, 4)} if adapting else {}),
                "speed_vs_default": round(base / median[c], 3) if base else None,
            }
            for c in chunks
        }
    return {**header("bench_eval", args, device, precision), "default_chunk": default, "shots": results}


LAYOUTS = {"nchw": False, "channels-last": True}  # --layouts name -> Conv4.cpu_channels_last


def measure_layouts(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds per task at chunk 1 with each backbone layout (``Conv4.cpu_channels_last``), and the speed of
    channels-last relative to NCHW, interleaved over ``--reps`` rounds."""
    device = resolve_device(args.device, local_rank=0)
    if device.type != "cpu":
        raise SystemExit("--layouts compares the CPU paths of the backbone; run it with --device cpu")
    precision = resolve_precision(args.precision, device)
    autocast = autocast_factory(precision, device)
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=args.algo, ways=WAYS, image_shape=SHAPE)).eval()
    results: dict[str, Any] = {}
    for shots in (int(s) for s in args.shots.split(",")):
        tasks = random_tasks(args.tasks, shots, device)
        times: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for rep in range(args.reps + 1):  # round 0 warms up (kernels, allocator) and is not counted
            for name in LAYOUTS if rep % 2 == 0 else reversed(LAYOUTS):
                part = tasks if rep else tuple(t[:1] for t in tasks)
                with mock.patch.object(Conv4, "cpu_channels_last", LAYOUTS[name]):
                    seconds = seconds_per_task(learner, part, 1, args.steps, autocast, device)
                if rep:
                    times[name].append(seconds)
        median = {name: statistics.median(t) for name, t in times.items()}
        results[str(shots)] = {
            name: {
                "seconds_per_task": round(median[name], 5),
                "speed_vs_nchw": round(median["nchw"] / median[name], 3),
            }
            for name in LAYOUTS
        }
    return {**header("bench_eval_layouts", args, device, precision), "chunk": 1, "shots": results}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=["maml", "fomaml", "protonets"], default="maml", help="learner [maml]")
    p.add_argument("--chunks", default="1,2,4,8,16", help="chunk sizes to compare [1,2,4,8,16]")
    p.add_argument("--shots", default="1,5", help="K_tr values [1,5]")
    p.add_argument("--steps", type=int, default=10, help="adaptation steps per task (time is linear in it) [10]")
    p.add_argument("--tasks", type=int, default=32, help="tasks per measurement [32]")
    p.add_argument("--reps", type=int, default=3, help="interleaved rounds; medians are reported [3]")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--layouts", action="store_true", help="compare the backbone's NCHW and channels-last CPU paths at chunk 1"
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 1 step, 8 tasks, 2 rounds, chunks 2,8")
    p.add_argument("--json-out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.tasks, args.reps, args.chunks = 1, 8, 2, "2,8"
    if args.layouts:
        return print_layouts(measure_layouts(args), args.json_out)
    out = measure(args)
    name = out["device"].get("name") if out["device"].get("type") == "cuda" else out["cpu"]
    what = "scoring (no adaptation)" if args.algo == "protonets" else "test-time adaptation"
    print(f"{args.algo} {what} on {name}, {out['precision']}, {out['threads']} threads")
    column = f"s/task ({out['steps']} steps)" if args.algo != "protonets" else "s/task"
    print(f"{'shots':>5}  {'chunk':>5}  {column:>17}  {'speed vs ' + str(out['default_chunk']):>12}")
    for shots, by_chunk in out["shots"].items():
        for chunk, r in by_chunk.items():
            ratio = "" if r["speed_vs_default"] is None else f"{r['speed_vs_default']:.2f}x"
            print(f"{shots:>5}  {chunk:>5}  {r['seconds_per_task']:>17.3f}  {ratio:>12}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return out


def print_layouts(out: dict[str, Any], json_out: Path | None) -> dict[str, Any]:
    print(f"{out['algo']} test-time adaptation on {out['cpu']}, {out['precision']}, {out['threads']} threads, chunk 1")
    print(f"{'shots':>5}  {'layout':>13}  {'s/task (' + str(out['steps']) + ' steps)':>17}  {'speed vs nchw':>13}")
    for shots, by_layout in out["shots"].items():
        for name, r in by_layout.items():
            print(f"{shots:>5}  {name:>13}  {r['seconds_per_task']:>17.3f}  {r['speed_vs_nchw']:>12.2f}x")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
