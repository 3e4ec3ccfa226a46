"""Shard write/read throughput on one core: tasks/s and bytes per task, for each container.

    python benchmarks/bench_shards.py                      # 5-way 1+5-shot 28×28×1, 10k tasks per shard
    python benchmarks/bench_shards.py --tasks 20000 --latents 128 --images noise
    python benchmarks/bench_shards.py --compression --images gan --json-out results/bench_shards_cpu.json

``--compression`` compares gzip-compressed WebDataset shards (``.tar.gz``) with plain ``.tar``: bytes
per task, write speed, and the trainer's input rate (``lasium.train.open_shard_set`` → ``TaskStream`` →
``make_loader``: the DataLoader path ``lasium-train`` reads through), see :func:`compression_report`.

Images are synthetic pen strokes on white (Omniglot-like, so HDF5's gzip sees realistic
redundancy) or uniform noise (incompressible, the worst case for gzip). The timed section is
exactly what ``lasium-gen``'s writer processes run: ``write_shard`` on a ready TaskBatch, including
validation, encoding, sha256, fsync, rename and the sidecar.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lasium.shards import hdf5_image, iter_shard_tasks, task_metas_json, wds_chunks, write_shard
from lasium.tasks import TaskBatch


def stroke_images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """n white size×size images with a few random-walk pen strokes in black."""
    img = np.full((n, size, size), 255, np.uint8)
    rows = np.arange(n)
    for _ in range(4):
        y, x = rng.integers(2, size - 2, n), rng.integers(2, size - 2, n)
        for _ in range(3 * size // 4):
            y = np.clip(y + rng.integers(-1, 2, n), 1, size - 2)
            x = np.clip(x + rng.integers(-1, 2, n), 1, size - 2)
            img[rows, y, x] = 0
            img[rows, y + 1, x] = 0
    return img


def make_batch(
    tasks: int, ways: int, shots: int, queries: int, size: int, latent_dim: int, images: str, seed: int = 0
) -> TaskBatch:
    rng = np.random.default_rng(seed)
    count = tasks * ways * (shots + queries)
    pics = (
        stroke_images(rng, count, size)
        if images == "strokes"
        else rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    )
    pics = pics.reshape(tasks, ways, shots + queries, size, size, 1)
    latents = rng.standard_normal((tasks, ways, shots + queries, latent_dim)).astype(np.float16) if latent_dim else None
    metas = [{"strategy": "ro"} for _ in range(tasks)]
    return TaskBatch(np.ascontiguousarray(pics[:, :, :shots]), np.ascontiguousarray(pics[:, :, shots:]), latents, metas)


def gan_batch(tasks: int, distinct: int, seed: int = 0) -> TaskBatch:
    """``tasks`` tasks of the bundled Omniglot GAN (LASIUM-RO, MAML preset): ``distinct`` made on the CPU by
    ``lasium.generate.run_generation`` and read back with ``lasium.shards.iter_tasks``, repeated to ``tasks`` (each
    task is larger than gzip's 32 KB window reaches back across tasks, so repeats compress like new tasks)."""
    from lasium.generate import GenerationConfig, run_generation
    from lasium.shards import iter_tasks

    with tempfile.TemporaryDirectory() as tmp:
        cfg = GenerationConfig.build(
            strategy="ro", num_tasks=distinct, device="cpu", out=tmp, decode_tasks=25, seed=seed, progress=False
        )
        run_generation(cfg, log=lambda m: None)
        made = list(iter_tasks(tmp))
    reps = -(-tasks // distinct)
    support = np.stack([t.support for t in made] * reps)[:tasks]
    query = np.stack([t.query for t in made] * reps)[:tasks]
    return TaskBatch(support, query, None, [{"strategy": "ro"} for _ in range(tasks)])


def trainer_read_rate(folder: Path, meta_batch: int, workers: int, repeat: int) -> dict[str, float]:
    """Tasks/s delivered by lasium-train's loader (open_shard_set → TaskStream → DataLoader).

    One pass, best of ``repeat``.
    """
    from lasium.train import TaskStream, make_loader, open_shard_set

    best = 0.0
    tasks = 0
    for _ in range(repeat):
        shard_set = open_shard_set(str(folder))
        stream = TaskStream(shard_set, meta_batch, workers=workers, shuffle_buffer=meta_batch, endless=False)
        t0 = time.perf_counter()
        tasks = 0
        for item in make_loader(stream):
            assert "error" not in item, item
            tasks += len(item["support"])
        best = max(best, tasks / (time.perf_counter() - t0))
    return {"tasks": tasks, "tasks_per_s": best}


def compression_report(args: argparse.Namespace, batch: TaskBatch, header: dict, out: Path) -> dict:
    """gzip .tar.gz against plain .tar: bytes per task, write speed, trainer input rate (workers 0 and 2)."""
    import json
    import platform

    import torch

    from lasium.shards import write_manifest

    shards = args.read_shards
    per = -(-args.tasks // shards)
    config = dict(header["config"], tasks_per_shard=per)
    hdr = dict(header, config=config)
    report: dict = {
        "command": "python " + " ".join(sys.argv),
        "device": f"{platform.processor() or 'cpu'} ({os.cpu_count()} CPUs)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "images": args.images,
        "tasks": args.tasks,
        "shards": shards,
        "task": f"{args.ways}-way {args.shots}+{args.queries}-shot {args.size}x{args.size}x1",
        "meta_batch": args.meta_batch,
        "zlib": __import__("zlib").ZLIB_RUNTIME_VERSION,
    }
    for comp in ("none", "gzip"):
        folder = out / f"set-{comp}"
        entries, t0, c0 = [], time.perf_counter(), time.process_time()
        for s in range(shards):
            first = s * per
            n = min(per, args.tasks - first)
            part = TaskBatch(
                batch.support[first : first + n], batch.query[first : first + n], None, batch.metas[first : first + n]
            )
            entries.append(write_shard(folder, "bench", s, first, part, "wds", hdr, compression=comp))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        write_manifest(folder, hdr, entries)
        nbytes = sum(e.bytes for e in entries)
        r = {
            "bytes": nbytes,
            "bytes_per_task": nbytes / args.tasks,
            "write_tasks_per_s": args.tasks / wall,
            "write_tasks_per_cpu_s": args.tasks / cpu,
        }
        for workers in (0, 2):
            r[f"trainer_read_workers{workers}"] = trainer_read_rate(folder, args.meta_batch, workers, args.repeat)
        report[comp] = r
    raw, gz = report["none"], report["gzip"]
    report["ratios"] = {
        "bytes_per_task gzip/raw": gz["bytes_per_task"] / raw["bytes_per_task"],
        "write gzip/raw (wall)": gz["write_tasks_per_s"] / raw["write_tasks_per_s"],
        **{
            f"trainer_read workers={w} gzip/raw": gz[f"trainer_read_workers{w}"]["tasks_per_s"]
            / raw[f"trainer_read_workers{w}"]["tasks_per_s"]
            for w in (0, 2)
        },
    }
    print(json.dumps(report, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=10_000, help="tasks in the shard")
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--latents", type=int, default=0, help="latent size D to store (0 = no latents)")
    p.add_argument(
        "--images",
        choices=("strokes", "noise", "gan"),
        default="strokes",
        help="gan: tasks of the bundled omniglot-gan (synthesized on the CPU, see --gan-tasks)",
    )
    p.add_argument("--gan-tasks", type=int, default=200, help="distinct GAN tasks synthesized (repeated up to --tasks)")
    p.add_argument(
        "--compression", action="store_true", help="compare .tar.gz with .tar (bytes, write, trainer input rate)"
    )
    p.add_argument("--read-shards", type=int, default=4, help="shards of the --compression sets")
    p.add_argument("--meta-batch", type=int, default=32, help="tasks per trainer step in the --compression read test")
    p.add_argument("--json-out", type=Path, default=None, help="write the --compression figures here")
    p.add_argument("--repeat", type=int, default=3, help="best of this many writes")
    p.add_argument("--out", type=Path, default=None, help="folder for the shards (default: a temporary folder)")
    args = p.parse_args()

    if args.images == "gan":
        batch = gan_batch(args.tasks, min(args.gan_tasks, args.tasks))
    else:
        batch = make_batch(args.tasks, args.ways, args.shots, args.queries, args.size, args.latents, args.images)
    config = {
        "ways": args.ways,
        "shots": args.shots,
        "queries": args.queries,
        "image_shape": [args.size, args.size, 1],
        "seed": 0,
        "tasks_per_shard": args.tasks,
        "num_tasks": args.tasks,
        "save_latents": bool(args.latents),
        "strategy": "ro",
    }
    header = {"config": config, "generator": {"kind": "gan", "latent_dim": args.latents or 128}, "source": None}
    print(
        f"{args.tasks} tasks, {args.ways}-way {args.shots}+{args.queries}-shot {args.size}x{args.size}x1, "
        f"latents {args.latents or 'none'}, {args.images} images"
    )
    if args.compression:
        with tempfile.TemporaryDirectory() as tmp:
            compression_report(args, batch, header, args.out or Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        for container in ("wds", "hdf5"):
            best = best_cpu = float("inf")
            for _ in range(args.repeat):
                for stale in out.glob("bench-000000.*"):  # time a fresh write, not the unlinking of the last one
                    stale.unlink()
                t0, c0 = time.perf_counter(), time.process_time()
                entry = write_shard(out, "bench", 0, 0, batch, container, header)
                best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
            # encode only (metas, tar bytes or HDF5 image, sha256; no file): the CPU cost without the disk
            encode_s = float("inf")
            for _ in range(args.repeat):
                c0 = time.process_time()
                metas = task_metas_json(batch, 0, config)
                sha = hashlib.sha256()
                for chunk in wds_chunks(batch, 0, metas) if container == "wds" else [hdf5_image(batch, metas, {})]:
                    sha.update(chunk)
                encode_s = min(encode_s, time.process_time() - c0)
            t0 = time.perf_counter()
            n = sum(1 for _ in iter_shard_tasks(str(out / entry.file)))
            read_s = time.perf_counter() - t0
            assert n == args.tasks
            print(
                f"{container:5s} write_shard {args.tasks / best:8,.0f} tasks/s wall, "
                f"{args.tasks / best_cpu:8,.0f} per CPU-s  |  "
                f"encode+sha256 {args.tasks / encode_s:8,.0f} per CPU-s  |  "
                f"{entry.bytes / args.tasks:8,.0f} bytes/task  |  "
                f"read {n / read_s:7,.0f} tasks/s wall"
            )


if __name__ == "__main__":
    main()
