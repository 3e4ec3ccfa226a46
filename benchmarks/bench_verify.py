"""What checking every shard against its manifest costs the trainer's read rate.

``lasium-train`` checks each shard's size and sha256 against its manifest entry before it decodes the
shard's tasks (``lasium.shards.integrity``). This benchmark reads one set through the trainer's streaming
path (``open_shard_set`` → ``TaskStream`` → ``make_loader``, the trainer's defaults: meta-batch 4, automatic
shuffle buffer) in two forms that hold the same bytes:

* **checked**: the set as written (manifest and sidecars: every shard is hashed before its tasks are used);
* **plain**: the same shard files (hard links, or copies) in a folder with no manifest and no sidecars, so
  nothing vouches for them and nothing is checked.

and in two ways of reading:

* **one pass**: every task once, with the record of checked files cleared first, so every shard is hashed
  (the worst case: a set larger than what a run reads, or the first round of any run);
* **training stream**: ``--rounds`` rounds of the endless stream, as a run of that many epochs reads it; each
  worker process hashes a shard once, then knows it by its file identity.

Runs alternate plain / checked (``--pairs`` pairs per case); the figures are the medians and the median of
the per-pair ratios, all from this one run: the read rate (tasks/s from the first item on, so starting the
workers does not count) and the CPU time per task (workers included), which a loaded machine disturbs less.
Make a set first, e.g. from the bundled GAN::

    lasium-gen --strategy oc --n-tasks 2000 --out /tmp/bench-verify-set
    python benchmarks/bench_verify.py --set /tmp/bench-verify-set --json-out results/bench_verify_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from lasium.shards import forget_checked, read_manifest
from lasium.train import TaskStream, check_batch, make_loader, open_shard_set


def plain_copy(set_dir: Path, into: Path) -> Path:
    """The set's shard files alone (no manifest, no sidecars): hard links where the file system allows."""
    m = read_manifest(set_dir)
    into.mkdir(parents=True, exist_ok=True)
    for entry in m.shards:
        src, dst = m.shard_path(entry), into / entry.file
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
    return into


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the DataLoader workers, once shut down)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def read_rate(folder: Path, *, workers: int, meta_batch: int, tasks: int, rounds: int | None) -> tuple[float, float]:
    """(tasks/s, CPU seconds per task) through the trainer's streaming path: one pass over the ``tasks``
    tasks (``rounds`` None), or ``rounds`` rounds' worth of the endless stream. The clock starts at the first
    item, so starting the workers does not count; the CPU time counts everything, workers included."""
    forget_checked()  # forked workers start with nothing checked
    cpu = cpu_seconds()
    stream = TaskStream(open_shard_set(str(folder)), meta_batch, workers=workers, endless=rounds is not None)
    items = iter(make_loader(stream))
    want = tasks * (rounds or 1)
    total = len(check_batch(next(items))["support"])
    start, first = time.perf_counter(), total
    for item in items:
        total += len(check_batch(item)["support"])
        if total >= want:
            break
    seconds = time.perf_counter() - start
    del items  # shuts the workers down, so their CPU time is counted
    return (total - first) / seconds, (cpu_seconds() - cpu) / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", type=Path, required=True, help="A shard set with a manifest (e.g. from lasium-gen).")
    ap.add_argument("--workers", default="0,2", help="DataLoader worker counts to measure (trainer default 2).")
    ap.add_argument("--meta-batch", type=int, default=4, help="Tasks per item (trainer default 4).")
    ap.add_argument("--pairs", type=int, default=7, help="Interleaved plain/checked pairs per case.")
    ap.add_argument("--rounds", type=int, default=5, help="Rounds of the endless stream in the training case.")
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    manifest = read_manifest(args.set)
    tasks = manifest.num_tasks
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        plain = plain_copy(args.set, Path(tmp) / "plain")
        print(
            f"set {args.set}: {tasks} tasks in {len(manifest.shards)} shards, "
            f"{sum(e.bytes for e in manifest.shards) / tasks:,.0f} bytes per task; load average {load_before[0]:.2f}"
        )
        for rounds in (None, args.rounds):
            for workers in (int(w) for w in args.workers.split(",")):
                rates: dict[str, list[float]] = {"plain": [], "checked": []}
                cpu: dict[str, list[float]] = {"plain": [], "checked": []}
                options = {"workers": workers, "meta_batch": args.meta_batch, "tasks": tasks}
                read_rate(plain, rounds=None, **options)  # warm the page cache
                for _ in range(args.pairs):
                    for kind, folder in (("plain", plain), ("checked", args.set)):
                        rate, cpu_per_task = read_rate(folder, rounds=rounds, **options)
                        rates[kind].append(rate)
                        cpu[kind].append(cpu_per_task)
                ratios = [c / p for p, c in zip(rates["plain"], rates["checked"])]
                cpu_ratios = [p / c for p, c in zip(cpu["plain"], cpu["checked"])]
                case = "one pass" if rounds is None else f"training stream, {rounds} rounds"
                row = {
                    "case": case,
                    "workers": workers,
                    "plain_tasks_per_s": statistics.median(rates["plain"]),
                    "checked_tasks_per_s": statistics.median(rates["checked"]),
                    "ratio": statistics.median(ratios),
                    "ratios": ratios,
                    "plain_cpu_us_per_task": 1e6 * statistics.median(cpu["plain"]),
                    "checked_cpu_us_per_task": 1e6 * statistics.median(cpu["checked"]),
                    "cpu_ratio": statistics.median(cpu_ratios),
                }
                results.append(row)
                print(
                    f"{case}, --workers {workers}: plain {row['plain_tasks_per_s']:,.0f} tasks/s, checked "
                    f"{row['checked_tasks_per_s']:,.0f} tasks/s, ratio {row['ratio']:.3f} (median of {args.pairs} "
                    f"interleaved pairs, range {min(ratios):.2f}-{max(ratios):.2f}); CPU per task "
                    f"{row['plain_cpu_us_per_task']:.0f} vs {row['checked_cpu_us_per_task']:.0f} µs, "
                    f"ratio {row['cpu_ratio']:.3f}"
                )
    load_after = os.getloadavg()
    print(f"load average at the end {load_after[0]:.2f} ({os.cpu_count()} CPUs)")
    if args.json_out is not None:
        record = {
            "benchmark": "bench_verify",
            "set": str(args.set),
            "tasks": tasks,
            "shards": len(manifest.shards),
            "meta_batch": args.meta_batch,
            "pairs": args.pairs,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
            "load_average": {"start": load_before, "end": load_after},
            "results": results,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
