"""Meta-training throughput: is the input pipeline fast enough, and what does vmap over tasks buy?

1. Input pipeline (ProtoNets): tasks/s of training steps fed from task shards on disk (the streaming
   DataLoader) against the same learner fed from in-memory batches already on the device; the ratio
   should be ≥ 0.9 (the pipeline keeps up). The loader alone (no training) is timed as well.
2. Second-order MAML: vmap over the tasks of a meta-batch against a Python loop over tasks
   (meta-batch 32 on a GPU, 4 on a CPU).
3. Training speed of each algorithm (maml, fomaml, protonets) from in-memory batches.
4. Precision: a ProtoNets step and a second-order MAML step in bf16 autocast against fp32, interleaved in one
   run; the bf16/fp32 ratio is what ``--precision auto`` buys on devices with native bf16 (CUDA,
   AVX512-BF16/AMX CPUs). On a GPU also at 84x84x3, the colour size (``--precision-shapes``).
5. Batch norm: a ProtoNets step with the backbone's per-task native batch norm against one reduction over
   all tasks (``--only batchnorm``); the faster one is the device's default in ``lasium.train.backbone``.
6. Layout (CPU): a ProtoNets step with the backbone channels-last throughout against plain NCHW
   (``--only layout``; ``Conv4.cpu_channels_last``).

Tasks are 5-way 1+5-shot 28×28×1 (random content; speed does not depend on it). Shards are written to
a temporary folder with ``lasium.shards.write_shard``. Every ratio comes from one run on one device.

    python benchmarks/bench_train.py --quick                 # CPU smoke run, a minute or two
    python benchmarks/bench_train.py --json-out bench.json   # full run, device auto (CUDA if present)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from lasium.precision import autocast_factory, autocast_for, cpu_has_native_bf16, resolve_precision
from lasium.runtime import RankInfo, resolve_device
from lasium.tasks import to_device
from lasium.train import (
    Conv4,
    LearnerConfig,
    MetaLearner,
    TaskBatchNorm2d,
    TaskStream,
    build_learner,
    check_batch,
    make_loader,
    meta_batches,
    meta_step,
    open_shard_set,
    synthetic_tasks,
    write_synthetic_shards,
)

WAYS, SHOTS, QUERIES, SHAPE = 5, 1, 5, (28, 28, 1)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], steps: int, warmup: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - start) / steps


def memory_batches(
    meta_batch: int, count: int, device: torch.device, shape: tuple[int, int, int] = SHAPE
) -> list[tuple[torch.Tensor, ...]]:
    """``count`` meta-batches as uint8 tensors on the device (what an ideal loader would deliver)."""
    tasks = synthetic_tasks(meta_batch * count, WAYS, SHOTS, QUERIES, shape, "random", seed=1)
    perm = torch.stack([torch.randperm(WAYS) for _ in range(meta_batch * count)])
    s, q = torch.from_numpy(tasks.support).to(device), torch.from_numpy(tasks.query).to(device)
    return [
        (
            s[i * meta_batch : (i + 1) * meta_batch],
            q[i * meta_batch : (i + 1) * meta_batch],
            perm[i * meta_batch : (i + 1) * meta_batch].to(device),
        )
        for i in range(count)
    ]


def learner_and_optimizer(
    algo: str, device: torch.device, inner_steps: int = 5, shape: tuple[int, int, int] = SHAPE
) -> tuple[MetaLearner, torch.optim.Optimizer]:
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo=algo, ways=WAYS, image_shape=shape, inner_steps=inner_steps)).to(device)
    return learner, torch.optim.Adam(learner.parameters(), lr=1e-3)


def bench_input_pipeline(args: argparse.Namespace, device: torch.device, shard_dir: Path) -> dict[str, Any]:
    ctx = RankInfo(device=device)
    autocast, _ = autocast_for("auto", device)
    learner, optimizer = learner_and_optimizer("protonets", device)
    step_fn = torch.compile(learner.meta_gradients) if args.compile else learner.meta_gradients
    T = args.proto_meta_batch
    batches = memory_batches(T, 8, device)
    cycle = itertools.cycle(batches)

    def from_memory() -> None:
        s, q, p = next(cycle)
        meta_step(learner, optimizer, step_fn, to_device(s, q, p, device), autocast, ctx)

    shard_set = open_shard_set(shard_dir)
    stream = TaskStream(shard_set, T, seed=0, workers=args.workers, group=args.loader_group)
    loader = iter(make_loader(stream, pin_memory=device.type == "cuda"))
    batches = meta_batches(loader, T, device)

    def from_shards() -> None:
        batch, _ = next(batches)
        meta_step(learner, optimizer, step_fn, batch, autocast, ctx)

    def loader_only() -> None:  # one item (G meta-batches) straight from the DataLoader, nothing on the device
        check_batch(next(loader))

    warm = max(3, args.steps // 10)
    memory_s = timed(from_memory, args.steps, warm, device)
    shards_s = timed(from_shards, args.steps, warm, device)
    loader_s = timed(loader_only, max(2, args.steps // args.loader_group), 1, device) / args.loader_group
    memory_s2 = timed(from_memory, args.steps, 1, device)  # again: guards against drift between the two
    memory_s = min(memory_s, memory_s2)
    return {
        "algo": "protonets",
        "container": args.container,
        "workers": args.workers,
        "meta_batch": T,
        "loader_group": args.loader_group,
        "in_memory_tasks_per_s": T / memory_s,
        "from_shards_tasks_per_s": T / shards_s,
        "loader_only_tasks_per_s": T / loader_s,
        "ratio_shards_vs_memory": memory_s / shards_s,
    }


def bench_maml_vmap(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    autocast, _ = autocast_for("auto", device)
    learner, _ = learner_and_optimizer("maml", device)
    T = args.maml_meta_batch
    s, q, p = memory_batches(T, 1, device)[0]
    batch = to_device(s, q, p, device)
    result: dict[str, Any] = {"algo": "maml (second order, 5 inner steps)", "meta_batch": T}
    for name, vectorize in (("vmap", True), ("loop", False)):

        def step() -> None:
            with autocast():
                learner.meta_gradients(*batch, vectorize=vectorize)

        result[f"{name}_tasks_per_s"] = T / timed(step, args.maml_steps, 1, device)
    result["speedup_vmap_vs_loop"] = result["vmap_tasks_per_s"] / result["loop_tasks_per_s"]
    return result


def bench_algorithms(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    ctx = RankInfo(device=device)
    autocast, _ = autocast_for("auto", device)
    out = {}
    for algo, T, steps in (
        ("protonets", args.proto_meta_batch, args.steps),
        ("fomaml", args.maml_meta_batch, args.maml_steps),
        ("maml", args.maml_meta_batch, args.maml_steps),
    ):
        learner, optimizer = learner_and_optimizer(algo, device)
        cycle = itertools.cycle(memory_batches(T, 4, device))

        def step() -> None:
            s, q, p = next(cycle)
            meta_step(learner, optimizer, learner.meta_gradients, to_device(s, q, p, device), autocast, ctx)

        out[algo] = {"meta_batch": T, "tasks_per_s": T / timed(step, steps, 2, device)}
    return out


def bench_precision(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """tasks/s of one meta-gradient step in fp32 and in bf16 autocast, per algorithm and image shape; rounds
    interleave the two so drift on a shared machine hits both. (ProtoNets' batched path goes channels-last by itself
    under CPU bf16.) The first shape's figures sit at the top level (``protonets``, ``maml``), every other shape's
    under its name (``84x84x3``)."""
    out: dict[str, Any] = {}
    for index, shape in enumerate(args.precision_shapes):
        figures = out if index == 0 else out.setdefault("x".join(map(str, shape)), {})
        scale = (SHAPE[0] * SHAPE[1]) / (shape[0] * shape[1])  # fewer steps for bigger images: similar time per shape
        for algo, T, steps in (
            ("protonets", args.precision_meta_batch, max(2, round(args.steps * scale))),
            ("maml", args.maml_meta_batch, max(2, round(args.maml_steps * scale))),
        ):
            learner, _ = learner_and_optimizer(algo, device, shape=shape)
            s, q, p = memory_batches(T, 1, device, shape)[0]
            batch = to_device(s, q, p, device)
            best = {"fp32": float("inf"), "bf16": float("inf")}
            for _ in range(args.precision_rounds):
                for name in best:
                    autocast = autocast_factory(name, device)

                    def step() -> None:
                        with autocast():
                            learner.meta_gradients(*batch)

                    best[name] = min(best[name], timed(step, steps, 1, device))
            figures[algo] = {
                "meta_batch": T,
                "image_shape": list(shape),
                "fp32_tasks_per_s": T / best["fp32"],
                "bf16_tasks_per_s": T / best["bf16"],
                "ratio_bf16_vs_fp32": best["fp32"] / best["bf16"],
            }
            if algo == "maml":
                figures[algo]["algo"] = "maml (second order, 5 inner steps)"
    return out


def protonets_step_rates(
    args: argparse.Namespace, device: torch.device, variants: dict[str, Callable[[], Any]]
) -> dict[str, float]:
    """tasks/s of a ProtoNets meta-gradient step under each variant (a context manager that switches one thing in
    the backbone), the best of interleaved rounds, so drift on a shared machine hits every variant alike."""
    learner, _ = learner_and_optimizer("protonets", device)
    s, q, p = memory_batches(args.precision_meta_batch, 1, device)[0]
    batch = to_device(s, q, p, device)
    autocast, _ = autocast_for("auto", device)
    best = dict.fromkeys(variants, float("inf"))

    def step() -> None:
        with autocast():
            learner.meta_gradients(*batch)

    for _ in range(args.precision_rounds):
        for name, variant in variants.items():
            with variant():
                best[name] = min(best[name], timed(step, args.steps, 1, device))
    return {name: args.precision_meta_batch / seconds for name, seconds in best.items()}


def rates_report(args: argparse.Namespace, device: torch.device, rates: dict[str, float]) -> dict[str, Any]:
    """The figures of an A/B part: each variant's tasks/s and the first variant's speed relative to the second."""
    (a, rate_a), (b, rate_b) = rates.items()
    return {
        "meta_batch": args.precision_meta_batch,
        "precision": resolve_precision("auto", device),
        **{f"{name}_tasks_per_s": rate for name, rate in rates.items()},
        f"ratio_{a}_vs_{b}": rate_a / rate_b,
    }


def bench_batch_norm(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """tasks/s of a ProtoNets meta-gradient step with each of the backbone's two grouped batch norms (the native
    kernel once per task vs one reduction over all tasks); ``grouped_batch_norm`` picks the first on a CPU and the
    second elsewhere, and this ratio is the evidence."""
    rates = protonets_step_rates(
        args,
        device,
        {
            kind: lambda kind=kind: mock.patch.object(TaskBatchNorm2d, "grouped", kind)
            for kind in ("per_block", "one_reduction")
        },
    )
    return {
        **rates_report(args, device, rates),
        "default_on_this_device": "per_block" if device.type == "cpu" else "one_reduction",
    }


def bench_layout(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """tasks/s of a ProtoNets meta-gradient step with the backbone's CPU path channels-last throughout (the default)
    and plain NCHW (``Conv4.cpu_channels_last``)."""
    if device.type != "cpu":
        return {"skipped": "the layout switch is a CPU path; run with --device cpu"}
    rates = protonets_step_rates(
        args,
        device,
        {
            name: lambda flag=flag: mock.patch.object(Conv4, "cpu_channels_last", flag)
            for name, flag in (("channels_last", True), ("nchw", False))
        },
    )
    return rates_report(args, device, rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few steps, small meta-batches (CPU smoke run)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--container", choices=["wds", "hdf5"], default="wds")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers [default: 6 on CUDA, 1 on CPU]")
    parser.add_argument(
        "--loader-group", type=int, default=None, help="meta-batches per DataLoader item [default: 8 on CUDA, 1 on CPU]"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the ProtoNets meta-gradient")
    parser.add_argument(
        "--shard-dir", type=Path, default=None, help="where to write the shards [default: a temporary folder]"
    )
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--only", choices=["precision", "batchnorm", "layout"], default=None, help="run one part only")
    parser.add_argument(
        "--precision-shapes",
        default=None,
        help="image shapes HxWxC of the precision part, comma-separated [GPU 28x28x1,84x84x3; CPU 28x28x1]",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    if args.workers is None:
        args.workers = min(6, os.cpu_count() or 1) if gpu else 1
    if args.loader_group is None:
        args.loader_group = 8 if gpu else 1
    args.proto_meta_batch = 32 if gpu else (8 if args.quick else 16)
    args.maml_meta_batch = 32 if gpu else 4
    args.steps = (30 if args.quick else 200) if gpu else (6 if args.quick else 20)
    args.maml_steps = (3 if args.quick else 10) if gpu else 2
    args.precision_meta_batch = 32 if gpu else 4  # CPU: the reference meta-batch of the CPU reproduction
    args.precision_rounds = 2 if args.quick else 3
    shapes = args.precision_shapes or ("28x28x1,84x84x3" if gpu else "28x28x1")
    try:
        args.precision_shapes = [tuple(int(n) for n in shape.split("x")) for shape in shapes.split(",")]
    except ValueError:
        parser.error(f"--precision-shapes {shapes!r}: give HxWxC shapes such as 28x28x1,84x84x3")
    if any(len(shape) != 3 for shape in args.precision_shapes):
        parser.error(f"--precision-shapes {shapes!r}: give HxWxC shapes such as 28x28x1,84x84x3")
    tasks_per_shard = 1000 if gpu else 200
    shards = 16 if gpu else 4
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if gpu else platform.processor() or "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "quick": args.quick,
        "precision": resolve_precision("auto", device),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "tasks": f"{WAYS}-way {SHOTS}+{QUERIES}-shot {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]}",
    }

    def record(key: str, value: Any) -> None:
        """Print one part's figures and rewrite --json-out with every part so far (a run stopped by a time limit,
        as in gpu_check.sh, keeps the parts it finished)."""
        report[key] = value
        print(json.dumps(value, indent=2), flush=True)
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2) + "\n")

    if args.only in (None, "batchnorm"):
        record("batch_norm", bench_batch_norm(args, device))
    if args.only in (None, "layout"):
        record("layout", bench_layout(args, device))
    if args.only in (None, "precision"):
        record("precision_ratio", bench_precision(args, device))
    if args.only is not None:
        return
    with tempfile.TemporaryDirectory(dir=args.shard_dir) as tmp:
        start = time.perf_counter()
        write_synthetic_shards(
            tmp, container=args.container, shards=shards, tasks_per_shard=tasks_per_shard, kind="random", name="bench"
        )
        report["shards_written"] = {
            "count": shards,
            "tasks": shards * tasks_per_shard,
            "seconds": time.perf_counter() - start,
        }
        record("input_pipeline", bench_input_pipeline(args, device, Path(tmp)))
    record("maml_vmap", bench_maml_vmap(args, device))
    record("algorithms", bench_algorithms(args, device))


if __name__ == "__main__":
    main()
