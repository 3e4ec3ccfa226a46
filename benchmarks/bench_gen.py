"""End-to-end LASIUM task synthesis speed (tasks/s to disk) against the generator-forward bound.

    python benchmarks/bench_gen.py --n-tasks 1e6                       # GPU: bundled Omniglot GAN
    python benchmarks/bench_gen.py --random-init --n-tasks 1e6 --compile
    python benchmarks/bench_gen.py --quick --random-init               # 2-core CPU smoke run
    python benchmarks/bench_gen.py --generator runs/gan --json-out results/bench_gen.json

Measured in one run, on one device, for 5-way 1+5-shot tasks (30 images each):

* bound: images/s of the bare decoder at a large batch (bf16 autocast on CUDA, fp32 on CPU) ÷ images
  per task; with ``--compile`` also the ``torch.compile`` bound; on a CPU also the decoder in the
  contiguous layout against the job's channels-last one, at the job's call size;
* end-to-end: ``lasium-gen``'s job (anchors by batched ε-rejection, strategy, decoding, uint8, pinned
  copies, writer processes, fsync) writing WebDataset shards; its ratio to the bound;
* synthesis to host: the same device loop without writing (where the job's time goes);
* reference style: the TF reference's loop (one N-tuple drawn at a time in Python until it passes the
  ε test, one generator call per meta-batch of 4 tasks), generation only, no disk;
* the end-to-end job again writing gzip-compressed WebDataset shards (``.tar.gz``), and its ratio to
  the plain ``.tar`` run (``end_to_end_wds_gzip / end_to_end_wds``);
* bytes per task of each container (wds, wds gzip, hdf5).

Speed does not depend on weights, so ``--random-init`` (a freshly initialised GAN of the reference
architecture, :mod:`lasium.generate.models.gan`) is as good as trained weights. Outputs are deleted at the
end unless ``--keep``. Each measurement is fenced: a failure is recorded in the JSON and the rest run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from gen_measures import (  # beside this script: the measurements themselves
    IMAGES_PER_TASK,
    QUERIES,
    SHOTS,
    WAYS,
    determinism,
    end_to_end,
    generator_bound,
    load_model,
    reference_style,
    synthesis_to_host,
)

from lasium.cli_support import parse_count
from lasium.generate import default_epsilon

JSON_OUT: Path | None = None


def fenced(results: dict[str, Any], key: str, fn: Callable[[], Any]) -> Any:
    print(f"[bench_gen] {key} …", file=sys.stderr, flush=True)
    try:
        results[key] = fn()
        print(f"[bench_gen] {key}: {json.dumps(results[key])}", file=sys.stderr, flush=True)
    except Exception as exc:  # a benchmark records failures and goes on
        results[key] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-2000:]}
        print(f"[bench_gen] {key} FAILED: {exc}", file=sys.stderr, flush=True)
    if JSON_OUT is not None:  # after every step, so a run cut short still leaves its numbers
        JSON_OUT.write_text(json.dumps(results, indent=2))
    return results[key]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--generator", default="omniglot-gan", help="bundled name or checkpoint folder (ignored with --random-init)"
    )
    p.add_argument("--random-init", action="store_true", help="randomly initialised GAN of the reference architecture")
    p.add_argument("--n-tasks", default=None, help="tasks for the end-to-end run [GPU 1e6, CPU --quick 120]")
    p.add_argument("--quick", action="store_true", help="small sizes for a CPU")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true", help="also measure with torch.compile'd decoder")
    p.add_argument("--workers", type=int, default=None, help="writer processes (default as lasium-gen)")
    p.add_argument("--tasks-per-shard", type=int, default=None, help="[GPU 1000, CPU 40]")
    p.add_argument("--decode-tasks", type=int, default=None, help="tasks per generator call [GPU 250, CPU 25]")
    p.add_argument(
        "--reference-tasks", type=int, default=None, help="tasks for the reference-style loop [GPU 400, CPU 16]"
    )
    p.add_argument("--hdf5-tasks", default=None, help="tasks for the hdf5 run [n-tasks / 20]")
    p.add_argument(
        "--gzip-tasks", default=None, help="tasks for the gzip-compressed wds run [GPU n-tasks / 10, CPU n-tasks]"
    )
    p.add_argument("--out", default=None, help="scratch folder for shards [a temporary folder]")
    p.add_argument("--keep", action="store_true", help="keep the shards written")
    p.add_argument("--check-determinism", action="store_true", help="also check byte-identical reruns on this device")
    p.add_argument("--progress", action="store_true", help="show the job's progress bars")
    p.add_argument("--json-out", default=None)
    args = p.parse_args()

    from lasium.runtime import resolve_device

    global JSON_OUT
    if args.json_out:
        JSON_OUT = Path(args.json_out)
        JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    n_tasks = parse_count(args.n_tasks) if args.n_tasks else (120 if args.quick or not gpu else 1_000_000)
    args.decode_tasks = args.decode_tasks or (250 if gpu else 20)
    args.tasks_per_shard = args.tasks_per_shard or (1000 if gpu else 40)
    ref_tasks = args.reference_tasks or (400 if gpu else 16)
    hdf5_tasks = (
        parse_count(args.hdf5_tasks)
        if args.hdf5_tasks
        else (max(args.tasks_per_shard, n_tasks // 20) if gpu else max(1, n_tasks // 4))
    )
    # gzip is CPU-bound at any device speed: on an H200 the plain 1e6-task run took 76 s and the gzip one at the same
    # size did not end inside gpu_check's 150 s; a tenth of the tasks still holds hundreds of shards
    gzip_tasks = (
        parse_count(args.gzip_tasks)
        if args.gzip_tasks
        else (max(args.tasks_per_shard, n_tasks // 10) if gpu else n_tasks)
    )
    call_batch = args.decode_tasks * IMAGES_PER_TASK  # the job's generator-call size
    large_batch = max(16384 if gpu else 960, call_batch)
    seconds = 3.0 if gpu else (4.0 if args.quick else 10.0)
    if gpu:
        torch.backends.cudnn.benchmark = False

    results: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if gpu else platform.processor() or "cpu",
        "device_type": device.type,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "task": f"{WAYS}-way {SHOTS}+{QUERIES}-shot",
        "images_per_task": IMAGES_PER_TASK,
        "n_tasks": n_tasks,
        "decode_tasks": args.decode_tasks,
        "tasks_per_shard": args.tasks_per_shard,
        "generator": "random-init" if args.random_init else args.generator,
    }
    model = load_model(args, device)
    results["generator_describe"] = model.describe()
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_gen_"))
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    results["disk_free_gb"] = free / 1e9
    try:
        # The bound is the better of a large batch and the job's own call size (CPUs often peak small).
        fenced(
            results,
            "bound_eager",
            lambda: max(
                (generator_bound(model, b, device, seconds, False) for b in sorted({call_batch, large_batch})),
                key=lambda r: r["tasks_per_s"],
            ),
        )
        if not gpu:
            # the job's channels-last CPU layout against the contiguous one, both at the job's call size
            fenced(
                results,
                "bound_eager_contiguous",
                lambda: generator_bound(model, call_batch, device, seconds, False, channels_last=False),
            )
            fenced(
                results,
                "bound_eager_channels_last",
                lambda: generator_bound(model, call_batch, device, seconds, False, channels_last=True),
            )
        fenced(
            results,
            "reference_style",
            lambda: reference_style(model, ref_tasks, device, default_epsilon(model.latent_dim)),
        )
        fenced(
            results,
            "synthesis_to_host",
            lambda: synthesis_to_host(args, model, device, min(n_tasks, 50_000 if gpu else 60)),
        )
        fenced(results, "end_to_end_wds", lambda: end_to_end(args, model, root / "wds", "wds", n_tasks, False))
        if not args.keep:
            shutil.rmtree(root / "wds", ignore_errors=True)
        # the same job writing gzip-compressed WebDataset shards (.tar.gz): the cost of compression end to end
        fenced(
            results,
            "end_to_end_wds_gzip",
            lambda: end_to_end(args, model, root / "wds-gz", "wds", gzip_tasks, False, "gzip"),
        )
        if not args.keep:
            shutil.rmtree(root / "wds-gz", ignore_errors=True)
        fenced(
            results, "end_to_end_hdf5", lambda: end_to_end(args, model, root / "hdf5", "hdf5", hdf5_tasks, False, None)
        )
        if not args.keep:
            shutil.rmtree(root / "hdf5", ignore_errors=True)
        if args.check_determinism:
            fenced(results, "determinism", lambda: determinism(args, model, root, 5000 if gpu else 40))
        if args.compile:
            # Compiled: the job's call size only (each shape is a compilation).
            fenced(results, "bound_compiled", lambda: generator_bound(model, call_batch, device, seconds, True))
            compiled_model = load_model(args, device)  # the job compiles its model's decoder in place
            fenced(
                results,
                "end_to_end_wds_compiled",
                lambda: end_to_end(args, compiled_model, root / "wds-c", "wds", n_tasks, True),
            )
            if not args.keep:
                shutil.rmtree(root / "wds-c", ignore_errors=True)
    finally:
        if not args.keep and not args.out:
            shutil.rmtree(root, ignore_errors=True)

    ratios = compute_ratios(results)
    results["ratios"] = ratios
    print_summary(results, device, ratios)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(results, indent=2))


def compute_ratios(results: dict[str, Any]) -> dict[str, float]:
    """End-to-end and to-host speed against the bounds and the reference loop; gzip against plain tar."""
    ratios: dict[str, float] = {}

    def tps(key: str) -> float | None:
        r = results.get(key)
        return r.get("tasks_per_s") if isinstance(r, dict) else None

    for e2e, bound in (
        ("end_to_end_wds", "bound_eager"),
        ("end_to_end_wds_compiled", "bound_compiled"),
        ("synthesis_to_host", "bound_eager"),
    ):
        if tps(e2e) and tps(bound):
            ratios[f"{e2e} / {bound}"] = tps(e2e) / tps(bound)
    if tps("bound_eager_channels_last") and tps("bound_eager_contiguous"):
        ratios["bound_eager_channels_last / bound_eager_contiguous"] = tps("bound_eager_channels_last") / tps(
            "bound_eager_contiguous"
        )
    if tps("end_to_end_wds_gzip") and tps("end_to_end_wds"):
        ratios["end_to_end_wds_gzip / end_to_end_wds"] = tps("end_to_end_wds_gzip") / tps(
            "end_to_end_wds"
        )  # target >= 0.9
        ratios["bytes_per_task wds_gzip / wds"] = (
            results["end_to_end_wds_gzip"]["bytes_per_task"] / results["end_to_end_wds"]["bytes_per_task"]
        )
    for e2e in ("end_to_end_wds", "end_to_end_wds_compiled"):
        if tps(e2e) and tps("reference_style"):
            ratios[f"{e2e} / reference_style"] = tps(e2e) / tps("reference_style")
    return ratios


def print_summary(results: dict[str, Any], device: torch.device, ratios: dict[str, float]) -> None:
    print(
        f"\nLASIUM task synthesis, {results['task']} tasks, {results['device']} "
        f"({device.type}), generator {results['generator']}"
    )
    for key in (
        "bound_eager",
        "bound_eager_contiguous",
        "bound_eager_channels_last",
        "bound_compiled",
        "synthesis_to_host",
        "end_to_end_wds",
        "end_to_end_wds_gzip",
        "end_to_end_wds_compiled",
        "end_to_end_hdf5",
        "reference_style",
    ):
        r = results.get(key)
        if isinstance(r, dict) and "tasks_per_s" in r:
            extra = f"  ({r['bytes_per_task']:.0f} bytes/task, {r['tasks']} tasks)" if "bytes_per_task" in r else ""
            print(f"  {key:26s} {r['tasks_per_s']:12,.1f} tasks/s{extra}")
        elif isinstance(r, dict) and "error" in r:
            print(f"  {key:26s} failed: {r['error']}")
    for k, v in ratios.items():
        print(f"  {k:55s} {v:8.2f}")
    if "determinism" in results:
        print(f"  determinism: {results['determinism']}")


if __name__ == "__main__":
    main()
