"""Shard bytes per task and the trainer's read-and-decode rate for each way of storing tasks, side by side.

    python benchmarks/bench_codecs.py --json-dir results            # 28×28×1 and 84×84×3, one run
    python benchmarks/bench_codecs.py --quick                        # smoke run (fewer tasks and rounds)

Candidates (all WebDataset; public API only: ``lasium-gen``'s job, ``write_shard``/``write_manifest``, and the
trainer's input path ``open_shard_set`` → ``TaskStream`` → ``make_loader``):

* ``npy``: raw uint8 arrays in a plain ``.tar`` (the format's original layout);
* ``npy+gzip-L``: the same tar gzipped at level L (``--compression gzip``, ``.tar.gz``);
* ``png``, ``webp``: lossless image members (``--image-codec``; one mosaic per support/query);
* ``jpeg``: the lossy option (quality 90, 4:4:4), with its largest pixel error and PSNR.

Task sources: at 28×28×1 the bundled Omniglot GAN (``lasium-gen --generator omniglot-gan --strategy oc``, fp32);
at 84×84×3 (a) a randomly initialised 84-px GAN of lasium's own architecture (``gan_architecture((84, 84, 3))``,
what ``lasium-fit --image-size 84`` starts from) run through ``lasium-gen`` as an external factory, whose images
are almost flat (its row in the table shows what untrained generators give, not natural images); (b) a
natural-image proxy: 84×84 views of the colour photographs that scikit-image ships (``skimage.data``: astronaut,
chelsea, coffee, rocket, ...), each a random crop of 100–300 px resized to 84 px as mini-ImageNet images are
(skipped when scikit-image is not installed); (c) uniform noise, the incompressible worst case.

Bytes per task = shard bytes / tasks (the tar or .tar.gz files; manifest and sidecars excluded); "% of raw" =
over the task's pixel bytes N·(K+Q)·H·W·C. Read rate = tasks/s through the trainer's input path in this process
(``workers=0``, size and sha256 check, decode, batching), the median over interleaved rounds. At 84×84×3 the
ProtoNets training rate (lasium-train's defaults: Conv4, meta-batch 4, fp32 on the CPU, from in-memory batches)
is timed in the same rounds, for the target "decode rate at least 5× the training rate".
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from webp_effort import effort_table, webp_effort  # beside this script: lossless WebP at several encoder efforts

from lasium.shards import iter_tasks, read_manifest, write_manifest, write_shard
from lasium.tasks import TaskBatch

WAYS, SHOTS, QUERIES = 5, 1, 5
TASKS_PER_SHARD = 20
CANDIDATES: list[tuple[str, str, str, int | None]] = [  # (label, image codec, compression, gzip level)
    ("npy", "npy", "none", None),
    ("npy+gzip-1", "npy", "gzip", 1),
    ("npy+gzip-6", "npy", "gzip", 6),
    ("npy+gzip-9", "npy", "gzip", 9),
    ("png", "png", "none", None),
    ("webp", "webp", "none", None),
    ("jpeg", "jpeg", "none", None),
]


def random_gan84() -> torch.nn.Module:
    """A randomly initialised 84×84×3 generator of lasium's GAN architecture (seed 0), for ``lasium-gen``."""
    from lasium.generate import GANGenerator, gan_architecture

    torch.manual_seed(0)
    net = GANGenerator(gan_architecture((84, 84, 3))).eval()
    net.latent_dim = 128  # type: ignore[assignment]
    return net


def generated_tasks(folder: Path, tasks: int, generator: str) -> tuple[TaskBatch, dict[str, Any]]:
    """Tasks from ``lasium-gen`` (strategy oc, seed 0, fp32 on the CPU) and the set's header."""
    from lasium.generate import GenerationConfig, run_generation

    config = GenerationConfig.build(
        num_tasks=tasks,
        tasks_per_shard=TASKS_PER_SHARD,
        out=str(folder),
        name="src",
        generator=generator,
        strategy="oc",
        seed=0,
        device="cpu",
        precision="fp32",
        workers=0,
        progress=False,
        image_codec="npy",
    )
    run_generation(config, log=lambda _: None)
    m = read_manifest(folder)
    return batch_of(list(iter_tasks(folder))), m.header


def batch_of(tasks: list[Any]) -> TaskBatch:
    return TaskBatch(
        np.stack([t.support for t in tasks]),
        np.stack([t.query for t in tasks]),
        None,
        [{k: v for k, v in t.meta.items() if k != "index"} for t in tasks],
    )


def photo_tasks(tasks: int, size: int = 84, seed: int = 0) -> TaskBatch | None:
    """Tasks of 84×84 views of scikit-image's colour photographs (None when scikit-image is missing)."""
    try:
        import skimage.data as data
    except ImportError:
        return None
    from PIL import Image

    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "cat"]
    photos = [np.asarray(getattr(data, n)())[..., :3] for n in names]
    rng = np.random.default_rng(seed)
    count = tasks * WAYS * (SHOTS + QUERIES)
    out = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        photo = photos[int(rng.integers(len(photos)))]
        side = int(rng.integers(100, min(300, *photo.shape[:2]) + 1))
        y, x = int(rng.integers(photo.shape[0] - side + 1)), int(rng.integers(photo.shape[1] - side + 1))
        crop = Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.BILINEAR)
        out[i] = np.asarray(crop)
    return split_batch(out.reshape(tasks, WAYS, SHOTS + QUERIES, size, size, 3))


def noise_tasks(tasks: int, size: int, channels: int, seed: int = 0) -> TaskBatch:
    rng = np.random.default_rng(seed)
    return split_batch(rng.integers(0, 256, (tasks, WAYS, SHOTS + QUERIES, size, size, channels), dtype=np.uint8))


def batch_of_first(batch: TaskBatch, n: int) -> TaskBatch:
    return TaskBatch(batch.support[:n], batch.query[:n], None, batch.metas[:n])


def split_batch(images: np.ndarray) -> TaskBatch:
    return TaskBatch(
        np.ascontiguousarray(images[:, :, :SHOTS]),
        np.ascontiguousarray(images[:, :, SHOTS:]),
        None,
        [{"strategy": "oc"} for _ in range(len(images))],
    )


def header_for(batch: TaskBatch, base: dict[str, Any] | None, codec: str, compression: str) -> dict[str, Any]:
    h, w, c = batch.support.shape[-3:]
    config = dict(base["config"]) if base else {"strategy": "oc", "seed": 0}
    config.update(
        ways=WAYS,
        shots=SHOTS,
        queries=QUERIES,
        image_shape=[int(h), int(w), int(c)],
        tasks_per_shard=TASKS_PER_SHARD,
        num_tasks=len(batch),
        save_latents=False,
        format="wds",
    )
    config.pop("image_codec", None)
    config.pop("compression", None)
    if codec != "npy":
        config["image_codec"] = codec
    if compression != "none":
        config["compression"] = compression
    return {"config": config, "generator": base.get("generator") if base else None, "source": None}


def write_candidate(folder: Path, batch: TaskBatch, base: dict[str, Any] | None, cand: tuple) -> float:
    """Write the set; return write seconds."""
    _, codec, compression, level = cand
    header = header_for(batch, base, codec, compression)
    start = time.perf_counter()
    entries = []
    for s, first in enumerate(range(0, len(batch), TASKS_PER_SHARD)):
        part = TaskBatch(
            batch.support[first : first + TASKS_PER_SHARD],
            batch.query[first : first + TASKS_PER_SHARD],
            None,
            batch.metas[first : first + TASKS_PER_SHARD],
        )
        entries.append(
            write_shard(folder, "c", s, first, part, "wds", header, compression=compression, compression_level=level)
        )
    seconds = time.perf_counter() - start
    write_manifest(folder, header, entries)
    return seconds


def read_rate(folder: Path, tasks: int) -> float:
    """Tasks/s through lasium-train's input path (one epoch, workers=0)."""
    from lasium.train import TaskStream, make_loader, open_shard_set

    start = time.perf_counter()
    stream = TaskStream(open_shard_set(folder), 4, seed=0, workers=0, endless=False)
    got = sum(len(item["indices"]) for item in make_loader(stream))
    seconds = time.perf_counter() - start
    assert got == tasks, (got, tasks)
    return tasks / seconds


def check_content(folder: Path, batch: TaskBatch, lossless: bool) -> dict[str, float]:
    """Decoded vs original pixels: exact for lossless codecs (asserted), max error and PSNR otherwise."""
    got = list(iter_tasks(folder))
    support = np.stack([t.support for t in got]).astype(np.int16)
    query = np.stack([t.query for t in got]).astype(np.int16)
    diff = np.concatenate([(support - batch.support).ravel(), (query - batch.query).ravel()])
    max_err = int(np.abs(diff).max())
    if lossless:
        assert max_err == 0, f"{folder}: a lossless candidate changed pixels"
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return {"max_abs_error": max_err, "psnr_db": math.inf if mse == 0 else 10 * math.log10(255**2 / mse)}


def protonets_rate(image_shape: tuple[int, int, int], steps: int) -> Callable[[], float]:
    """A timer of ProtoNets training steps (tasks/s) on in-memory batches, lasium-train's CPU defaults."""
    from lasium.precision import autocast_for
    from lasium.runtime import RankInfo
    from lasium.tasks import to_device
    from lasium.train import LearnerConfig, TrainConfig, build_learner, meta_step, synthetic_tasks

    device = torch.device("cpu")
    meta_batch = TrainConfig(shards=[], out="").meta_batch  # lasium-train's default (4)
    torch.manual_seed(0)
    learner = build_learner(LearnerConfig(algo="protonets", ways=WAYS, image_shape=image_shape))
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    autocast, _ = autocast_for("fp32", device)
    tasks = synthetic_tasks(meta_batch * 2, WAYS, SHOTS, QUERIES, image_shape, "random", seed=1)
    s, q = torch.from_numpy(tasks.support), torch.from_numpy(tasks.query)
    perm = torch.stack([torch.randperm(WAYS) for _ in range(meta_batch * 2)])
    batches = [to_device(s[i::2], q[i::2], perm[i::2], device) for i in range(2)]
    ctx = RankInfo(device=device)

    def run() -> float:
        start = time.perf_counter()
        for i in range(steps):
            meta_step(learner, optimizer, learner.meta_gradients, batches[i % 2], autocast, ctx)
        return steps * meta_batch / (time.perf_counter() - start)

    run()  # warm-up
    return run


def bench_size(
    label: str, sources: dict[str, tuple[TaskBatch, dict[str, Any] | None]], root: Path, rounds: int, steps: int
) -> dict[str, Any]:
    results: dict[str, Any] = {"sources": {}}
    first = next(iter(sources.values()))[0]
    h, w, c = first.support.shape[-3:]
    raw = WAYS * (SHOTS + QUERIES) * h * w * c
    results["raw_pixel_bytes_per_task"] = int(raw)
    proto = protonets_rate((int(h), int(w), int(c)), steps) if steps else None
    proto_rates: list[float] = []
    for name, (batch, base) in sources.items():
        rows: dict[str, Any] = {}
        folders = {}
        for cand in CANDIDATES:
            folder = root / f"{label}-{name}-{cand[0]}"
            seconds = write_candidate(folder, batch, base, cand)
            size = sum(e.bytes for e in read_manifest(folder).shards)
            lossless = cand[1] != "jpeg"
            rows[cand[0]] = {
                "image_codec": cand[1],
                "compression": cand[2],
                "gzip_level": cand[3],
                "lossless": lossless,
                "bytes_per_task": size / len(batch),
                "percent_of_raw": 100 * size / len(batch) / raw,
                "write_tasks_per_s": len(batch) / seconds,
                **check_content(folder, batch, lossless),
                "read_tasks_per_s_rounds": [],
            }
            folders[cand[0]] = folder
        for _ in range(rounds):  # interleaved: every candidate once per round, then the training rate
            for key, folder in folders.items():
                rows[key]["read_tasks_per_s_rounds"].append(read_rate(folder, len(batch)))
            if proto is not None:
                proto_rates.append(proto())
        for row in rows.values():
            row["read_tasks_per_s"] = statistics.median(row["read_tasks_per_s_rounds"])
            row["read_vs_npy"] = row["read_tasks_per_s"] / statistics.median(rows["npy"]["read_tasks_per_s_rounds"])
            row["read_vs_gzip1"] = row["read_tasks_per_s"] / statistics.median(
                rows["npy+gzip-1"]["read_tasks_per_s_rounds"]
            )
        results["sources"][name] = {"tasks": len(batch), "candidates": rows}
    if proto_rates:
        rate = statistics.median(proto_rates)
        results["protonets_train_tasks_per_s"] = rate
        results["protonets_train_tasks_per_s_rounds"] = proto_rates
        for source in results["sources"].values():
            for row in source["candidates"].values():
                row["read_vs_protonets_train"] = row["read_tasks_per_s"] / rate
    return results


def table(results: dict[str, Any]) -> str:
    lines = []
    for name, source in results["sources"].items():
        lines.append(f"\n{name} ({source['tasks']} tasks; raw {results['raw_pixel_bytes_per_task']:,} B/task)")
        extra = "  ×train" if "protonets_train_tasks_per_s" in results else ""
        lines.append(f"  {'candidate':<12} {'B/task':>9} {'% raw':>6} {'read t/s':>9} {'×npy':>5} {'×gz1':>5}{extra}")
        for key, row in source["candidates"].items():
            tail = f"  {row['read_vs_protonets_train']:6.1f}" if extra else ""
            lines.append(
                f"  {key:<12} {row['bytes_per_task']:9,.0f} {row['percent_of_raw']:6.1f} "
                f"{row['read_tasks_per_s']:9,.0f} {row['read_vs_npy']:5.2f} {row['read_vs_gzip1']:5.2f}{tail}"
            )
    if "protonets_train_tasks_per_s" in results:
        lines.append(f"ProtoNets training: {results['protonets_train_tasks_per_s']:.1f} tasks/s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=60, help="tasks per source [default: 60]")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved read rounds [default: 5]")
    parser.add_argument("--train-steps", type=int, default=10, help="ProtoNets steps per round at 84 px")
    parser.add_argument("--sizes", default="28,84", help="which task sizes [default: 28,84]")
    parser.add_argument("--quick", action="store_true", help="20 tasks, 2 rounds, 3 training steps")
    parser.add_argument("--json-dir", type=Path, default=None, help="write bench_codecs_28.json / _84.json here")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.rounds, args.train_steps = 20, 2, 3
    if args.tasks % 4:
        parser.error(
            f"--tasks must be a multiple of 4 (the read path's meta-batch, which drops a partial one), not {args.tasks}"
        )
    torch.set_num_threads(1)
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = args.sizes.split(",")
        out: dict[str, dict[str, Any]] = {}
        if "28" in sizes:
            gan = generated_tasks(root / "gen28", args.tasks, "omniglot-gan")
            out["28"] = bench_size("28", {"omniglot-gan": gan}, root, args.rounds, 0)
        if "84" in sizes:
            sources: dict[str, tuple[TaskBatch, dict[str, Any] | None]] = {
                "gan84-random-init": generated_tasks(root / "gen84", args.tasks, "bench_codecs:random_gan84")
            }
            photos = photo_tasks(args.tasks)
            if photos is not None:
                sources["photos-skimage"] = (photos, None)
            sources["noise"] = (noise_tasks(args.tasks, 84, 3), None)
            out["84"] = bench_size("84", sources, root, args.rounds, args.train_steps)
            effort_batch = photos if photos is not None else sources["gan84-random-init"][0]
            out["84"]["webp_effort"] = {
                "source": "photos-skimage" if photos is not None else "gan84-random-init",
                "tasks": min(10, len(effort_batch)),
                "rows": webp_effort(batch_of_first(effort_batch, 10), max(2, args.rounds // 2)),
            }
    for size, results in out.items():
        results["machine"] = machine
        print(f"== {size}x{size}: {table(results)}")
        if "webp_effort" in results:
            effort = results["webp_effort"]
            print(f"lossless WebP encoder effort ({effort['source']}, {effort['tasks']} tasks):")
            print(effort_table(effort["rows"]))
        if args.json_dir:
            args.json_dir.mkdir(parents=True, exist_ok=True)
            path = args.json_dir / f"bench_codecs_{size}.json"
            path.write_text(json.dumps(results, indent=2) + "\n")
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
