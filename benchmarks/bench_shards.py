"""Shard write/read throughput on one core: tasks/s and bytes per task, for each container.

    python benchmarks/bench_shards.py                      # 5-way 1+5-shot 28×28×1, 10k tasks per shard
    python benchmarks/bench_shards.py --tasks 20000 --latents 128 --images noise

Images are synthetic pen strokes on white (Omniglot-like, so HDF5's gzip sees realistic
redundancy) or uniform noise (incompressible, the worst case for gzip). The timed section is
exactly what ``lasium-gen``'s writer processes run: ``write_shard`` on a ready TaskBatch, including
validation, encoding, sha256, fsync, rename and the sidecar.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from lasium.shards import iter_shard_tasks, write_shard
from lasium.shards.wds_encode import wds_chunks
from lasium.shards.writer import hdf5_image, task_metas_json
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


def make_batch(tasks: int, ways: int, shots: int, queries: int, size: int, latent_dim: int, images: str, seed: int = 0) -> TaskBatch:
    rng = np.random.default_rng(seed)
    count = tasks * ways * (shots + queries)
    pics = stroke_images(rng, count, size) if images == "strokes" else rng.integers(0, 256, (count, size, size), dtype=np.uint8)
    pics = pics.reshape(tasks, ways, shots + queries, size, size, 1)
    latents = rng.standard_normal((tasks, ways, shots + queries, latent_dim)).astype(np.float16) if latent_dim else None
    metas = [{"strategy": "ro"} for _ in range(tasks)]
    return TaskBatch(np.ascontiguousarray(pics[:, :, :shots]), np.ascontiguousarray(pics[:, :, shots:]), latents, metas)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=10_000, help="tasks in the shard")
    p.add_argument("--ways", type=int, default=5)
    p.add_argument("--shots", type=int, default=1)
    p.add_argument("--queries", type=int, default=5)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--latents", type=int, default=0, help="latent size D to store (0 = no latents)")
    p.add_argument("--images", choices=("strokes", "noise"), default="strokes")
    p.add_argument("--repeat", type=int, default=3, help="best of this many writes")
    p.add_argument("--out", type=Path, default=None, help="folder for the shards (default: a temporary folder)")
    args = p.parse_args()

    batch = make_batch(args.tasks, args.ways, args.shots, args.queries, args.size, args.latents, args.images)
    config = {"ways": args.ways, "shots": args.shots, "queries": args.queries, "image_shape": [args.size, args.size, 1], "seed": 0,
              "tasks_per_shard": args.tasks, "num_tasks": args.tasks, "save_latents": bool(args.latents), "strategy": "ro"}
    header = {"config": config, "generator": {"kind": "gan", "latent_dim": args.latents or 128}, "source": None}
    print(f"{args.tasks} tasks, {args.ways}-way {args.shots}+{args.queries}-shot {args.size}x{args.size}x1, "
          f"latents {args.latents or 'none'}, {args.images} images")
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
                for chunk in (wds_chunks(batch, 0, metas) if container == "wds" else [hdf5_image(batch, metas, {})]):
                    sha.update(chunk)
                encode_s = min(encode_s, time.process_time() - c0)
            t0 = time.perf_counter()
            n = sum(1 for _ in iter_shard_tasks(str(out / entry.file)))
            read_s = time.perf_counter() - t0
            assert n == args.tasks
            print(f"{container:5s} write_shard {args.tasks / best:8,.0f} tasks/s wall, {args.tasks / best_cpu:8,.0f} per CPU-s  |  "
                  f"encode+sha256 {args.tasks / encode_s:8,.0f} per CPU-s  |  {entry.bytes / args.tasks:8,.0f} bytes/task  |  "
                  f"read {n / read_s:7,.0f} tasks/s wall")


if __name__ == "__main__":
    main()
