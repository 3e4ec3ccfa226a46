"""The measurements of ``benchmarks/bench_gen.py``: each returns one JSON-ready record.

The generator-forward bound, the TF reference's synthesis loop, the job's device loop without writing,
the whole ``lasium-gen`` job (timed from its first shard to its last fsync) and a determinism check.
All use 5-way 1+5-shot tasks (:data:`IMAGES_PER_TASK` images each).
"""

from __future__ import annotations

import argparse
import copy
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lasium.generate import (
    GenerationConfig,
    GenerationJob,
    HostStager,
    class_latents,
    min_pairwise_sq_distance,
    to_uint8_nhwc,
)
from lasium.runtime import RankInfo
from lasium.seeding import torch_generator
from lasium.shards import expected_shard_tasks

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
        from lasium.checkpoint_folder import state_dict_sha256
        from lasium.generate import GANGenerator, ModuleGenerator, gan_architecture

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


def generator_bound(
    model: Any, batch: int, device: torch.device, seconds: float, compiled: bool, channels_last: bool | None = None
) -> dict[str, Any]:
    """Images/s of the bare network (the ceiling: every task needs 30 decoded images).

    ``channels_last``: the network's layout; None = as ``lasium-gen`` runs it (channels-last on a CPU).
    """
    if channels_last is None:
        channels_last = device.type == "cpu"
    layout = torch.channels_last if channels_last else torch.contiguous_format
    network = copy.deepcopy(model.network).to(memory_format=layout)
    network = torch.compile(network, dynamic=False) if compiled else network
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
        "channels_last": channels_last,
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
    return GenerationConfig.build(
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
    synth = job.source.synth  # the LASIUM source's TaskSynthesizer
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
        cfg.workers, cfg.name, cfg.progress = workers, "det", False
        cfg.options.in_flight = in_flight
        GenerationJob(cfg, model=model, rank=RankInfo(), log=lambda m: None).run()
        hashes.append({e.file: e.sha256 for e in read_manifest(root / f"det{i}").shards})
    return {"tasks": n_tasks, "identical": hashes[0] == hashes[1], "shards": len(hashes[0])}
