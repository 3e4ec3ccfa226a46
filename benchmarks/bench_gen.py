"""End-to-end LASIUM task synthesis speed (tasks/s to disk) against the generator-forward bound.

    python benchmarks/bench_gen.py --n-tasks 1e6                       # GPU: bundled Omniglot GAN
    python benchmarks/bench_gen.py --random-init --n-tasks 1e6 --compile
    python benchmarks/bench_gen.py --quick --random-init               # 2-core CPU smoke run
    python benchmarks/bench_gen.py --generator runs/gan --json-out results/bench_gen.json

Measured in one run, on one device, for 5-way 1+5-shot tasks (30 images each):

* bound: images/s of the bare decoder at a large batch (bf16 autocast on CUDA, fp32 on CPU) ÷ images
  per task; with ``--compile`` also the ``torch.compile`` bound;
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
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lasium.cli_support import parse_count
from lasium.generate.job.config import GenerationConfig
from lasium.generate.job.job import GenerationJob, HostStager
from lasium.generate.synthesis.anchors import default_epsilon, min_pairwise_sq_distance
from lasium.generate.synthesis.strategies import class_latents
from lasium.generate.synthesis.synthesizer import to_uint8_nhwc
from lasium.runtime import RankInfo
from lasium.seeding import torch_generator
from lasium.shards.format import expected_shard_tasks

WAYS, SHOTS, QUERIES = 5, 1, 5
IMAGES_PER_TASK = WAYS * (SHOTS + QUERIES)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device) -> Any:
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def load_model(args: argparse.Namespace, device: torch.device) -> Any:
    if args.random_init:
        from lasium.generate.models.gan import GANGenerator, gan_architecture
        from lasium.generate.models.interface import ModuleGenerator, state_dict_sha256

        torch.manual_seed(0)
        net = GANGenerator(gan_architecture((28, 28, 1), 128))
        return ModuleGenerator(
            net,
            kind="gan",
            name="random-init lasium-gan-v1",
            latent_dim=128,
            image_shape=(28, 28, 1),
            weights_sha256=state_dict_sha256(net),
            device=device,
        )
    from lasium.generate import load_generator

    return load_generator(args.generator, device=device)


def time_loop(step: Callable[[], Any], device: torch.device, min_seconds: float, warmup: int = 2) -> tuple[float, int]:
    for _ in range(warmup):
        step()
    sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        if n >= 3 or device.type != "cuda":
            sync(device)
            if time.perf_counter() - t0 >= min_seconds:
                return time.perf_counter() - t0, n


def generator_bound(model: Any, batch: int, device: torch.device, seconds: float, compiled: bool) -> dict[str, Any]:
    """Images/s of the bare network (the ceiling: every task needs 30 decoded images)."""
    network = torch.compile(model.network, dynamic=False) if compiled else model.network
    z = torch.randn(batch, model.latent_dim, device=device, generator=torch_generator(0, "bound", device=device))

    @torch.inference_mode()
    def step() -> Any:
        with autocast(device):
            return network(z)

    elapsed, n = time_loop(step, device, seconds, warmup=3 if compiled else 2)
    images_per_s = batch * n / elapsed
    return {
        "batch_images": batch,
        "images_per_s": images_per_s,
        "tasks_per_s": images_per_s / IMAGES_PER_TASK,
        "compiled": compiled,
    }


def reference_style(
    model: Any, tasks: int, device: torch.device, epsilon: float, alpha: float = 0.2, meta_batch: int = 4
) -> dict[str, Any]:
    """The reference implementation's synthesis: per-task rejection loop in Python, one generator call
    per meta-batch of 4 tasks (LASIUM-RO), images brought to the host as uint8."""
    g = torch_generator(0, "reference-style", device=device)
    d = model.latent_dim
    made, candidates = 0, 0
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        while made < tasks:
            latents = []
            for _ in range(meta_batch):
                while True:  # one tuple at a time, as the reference does
                    z = model.sample_prior(WAYS, g)
                    candidates += 1
                    if float(min_pairwise_sq_distance(z[None])) > epsilon:
                        break
                latents.append(class_latents(z[None], "ro", alpha, SHOTS + QUERIES, g, model.sample_prior)[0])
            with autocast(device):
                images = model.decode(torch.stack(latents).reshape(-1, d))
            to_uint8_nhwc(images).cpu()
            made += meta_batch
    elapsed = time.perf_counter() - t0
    return {"tasks": made, "seconds": elapsed, "tasks_per_s": made / elapsed, "acceptance": made / candidates}


def job_config(
    args: argparse.Namespace, out: Path, fmt: str, n_tasks: int, compiled: bool, compression: str | None = "none"
) -> GenerationConfig:
    return GenerationConfig(
        strategy="ro",
        num_tasks=n_tasks,
        ways=WAYS,
        shots=SHOTS,
        queries=QUERIES,
        container=fmt,
        compression=compression,
        out=str(out),
        tasks_per_shard=args.tasks_per_shard,
        seed=0,
        device=args.device,
        workers=args.workers,
        compile=compiled,
        decode_tasks=args.decode_tasks,
        progress=args.progress,
        overwrite=True,
    )


BYTES_PER_TASK_WDS = 26_500  # 5-way 1+5-shot 28×28×1 WebDataset task, measured; used to refuse runs that cannot fit


def end_to_end(
    args: argparse.Namespace,
    model: Any,
    out: Path,
    fmt: str,
    n_tasks: int,
    compiled: bool,
    compression: str | None = "none",
) -> dict[str, Any]:
    """The real job, timed from the first shard to the last fsync (startup excluded, reported apart).
    ``compression``: none (plain .tar) or gzip (.tar.gz); hdf5 runs use None (its default, gzip)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    need, free = n_tasks * BYTES_PER_TASK_WDS * 1.05, shutil.disk_usage(out.parent).free
    if need > free:
        raise RuntimeError(
            f"{n_tasks} tasks need about {need / 1e9:.1f} GB, "
            f"{out.parent} has {free / 1e9:.1f} GB free; lower --n-tasks"
        )
    t0 = time.perf_counter()
    job = GenerationJob(
        job_config(args, out, fmt, n_tasks, compiled, compression),
        model=model,
        rank=RankInfo(),
        log=lambda m: print(m, file=sys.stderr),
    )
    res = job.run()
    wall = time.perf_counter() - t0
    return {
        "format": fmt,
        "compression": job.config.resolved_compression,
        "tasks": res.tasks_written,
        "shards": res.shards_written,
        "bytes": res.bytes_written,
        "bytes_per_task": res.bytes_written / max(1, res.tasks_written),
        "seconds": res.seconds,
        "wall_seconds": wall,
        "tasks_per_s": res.tasks_per_second,
        "compiled": compiled,
    }


def synthesis_to_host(args: argparse.Namespace, model: Any, device: torch.device, n_tasks: int) -> dict[str, Any]:
    """The job's device loop (anchors, strategy, decode, uint8, pinned copy) without writing."""
    cfg = job_config(args, Path(tempfile.gettempdir()) / "unused", "wds", n_tasks, False)
    job = GenerationJob(cfg, model=model, rank=RankInfo(), log=lambda m: None)
    synth = job.synth
    assert synth is not None
    stager = HostStager(device, 3, cfg.tasks_per_shard)
    shards = list(range(cfg.num_shards))
    warm = synth.shard(min(n_tasks, cfg.tasks_per_shard), torch_generator(1, "warm", device=device))
    del warm
    sync(device)
    t0 = time.perf_counter()
    pending = []
    candidates = 0
    for s in shards:
        _, n = expected_shard_tasks(job.header["config"], s)
        shard = synth.shard(n, torch_generator(0, "shard", s, device=device))
        candidates += shard.stats.candidates
        pending.append(stager.stage(shard))
        if len(pending) > 2:
            p = pending.pop(0)
            p.arrays()
            stager.release(p)
    for p in pending:
        p.arrays()
    elapsed = time.perf_counter() - t0
    # candidates drawn per task (whole chunks of 8192 tuples, so small runs overstate it)
    return {
        "tasks": n_tasks,
        "seconds": elapsed,
        "tasks_per_s": n_tasks / elapsed,
        "anchor_candidates_per_task": candidates / n_tasks,
    }


def determinism(args: argparse.Namespace, model: Any, root: Path, n_tasks: int) -> dict[str, Any]:
    """Same config + seed twice on this device with different writers / shards in flight → same shards."""
    from lasium.shards import read_manifest

    hashes = []
    for i, (workers, in_flight) in enumerate([(0, 1), (args.workers if args.workers is not None else 2, 3)]):
        cfg = job_config(args, root / f"det{i}", "wds", n_tasks, False)
        cfg.workers, cfg.in_flight, cfg.name, cfg.progress = workers, in_flight, "det", False
        GenerationJob(cfg, model=model, rank=RankInfo(), log=lambda m: None).run()
        hashes.append({e.file: e.sha256 for e in read_manifest(root / f"det{i}").shards})
    return {"tasks": n_tasks, "identical": hashes[0] == hashes[1], "shards": len(hashes[0])}


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
            lambda: end_to_end(args, model, root / "wds-gz", "wds", n_tasks, False, "gzip"),
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
    results["ratios"] = ratios

    print(
        f"\nLASIUM task synthesis, {results['task']} tasks, {results['device']} "
        f"({device.type}), generator {results['generator']}"
    )
    for key in (
        "bound_eager",
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
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
