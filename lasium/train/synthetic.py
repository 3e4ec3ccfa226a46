"""Small synthetic task-shard sets for tests and benchmarks (written with ``lasium.shards.write_shard``).

``kind="blobs"``: in every task, class i is a bright square at its own random place on a dark noisy
background, and every image of the class shows it (slightly jittered); a learner that learns to look
for the square solves these tasks within a few dozen steps, so learning is visible in short runs.
``kind="random"``: uniform noise (for throughput benchmarks, where content does not matter).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lasium.seeding import numpy_rng
from lasium.shards.format import Manifest
from lasium.shards.manifest import write_manifest
from lasium.shards.writer import write_shard
from lasium.tasks import TaskBatch


def synthetic_tasks(
    count: int,
    ways: int,
    shots: int,
    queries: int,
    image_shape: tuple[int, int, int],
    kind: str = "blobs",
    seed: int = 0,
) -> TaskBatch:
    """``count`` tasks as a :class:`TaskBatch` (uint8 images, class i = row i)."""
    h, w, c = image_shape
    k = shots + queries
    rng = numpy_rng(seed, "synthetic", kind)
    if kind == "random":
        images = rng.integers(0, 256, size=(count, ways, k, h, w, c), dtype=np.uint8)
    elif kind == "blobs":
        side = max(3, min(h, w) // 4)
        images = rng.integers(0, 40, size=(count, ways, k, h, w, c), dtype=np.uint8)
        ys = rng.integers(0, h - side, size=(count, ways))
        xs = rng.integers(0, w - side, size=(count, ways))
        jitter = rng.integers(-1, 2, size=(count, ways, k, 2))
        for t in range(count):
            for i in range(ways):
                for j in range(k):
                    y = int(np.clip(ys[t, i] + jitter[t, i, j, 0], 0, h - side))
                    x = int(np.clip(xs[t, i] + jitter[t, i, j, 1], 0, w - side))
                    images[t, i, j, y : y + side, x : x + side, :] = 230
    else:
        raise ValueError(f"unknown synthetic kind {kind!r}: use blobs or random")
    return TaskBatch(np.ascontiguousarray(images[:, :, :shots]), np.ascontiguousarray(images[:, :, shots:]), None, [])


def write_synthetic_shards(
    out_dir: str | Path,
    *,
    container: str = "wds",
    shards: int = 2,
    tasks_per_shard: int = 16,
    ways: int = 5,
    shots: int = 1,
    queries: int = 5,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    kind: str = "blobs",
    seed: int = 0,
    name: str = "synthetic",
    manifest: bool = True,
    compression: str = "auto",
) -> Manifest | None:
    """A complete shard set in ``out_dir`` (shards, sidecars and, unless ``manifest=False``, manifest.json);
    ``compression`` as in :func:`lasium.shards.write_shard` (``gzip`` gives ``.tar.gz`` WebDataset shards)."""
    total = shards * tasks_per_shard
    header = {
        "config": {
            "ways": ways,
            "shots": shots,
            "queries": queries,
            "image_shape": list(image_shape),
            "seed": seed,
            "tasks_per_shard": tasks_per_shard,
            "num_tasks": total,
            "save_latents": False,
            "strategy": f"synthetic-{kind}",
        },
        "generator": None,
        "source": None,
    }
    batch = synthetic_tasks(total, ways, shots, queries, image_shape, kind, seed)
    entries = []
    for s in range(shards):
        a, b = s * tasks_per_shard, (s + 1) * tasks_per_shard
        part = TaskBatch(batch.support[a:b], batch.query[a:b], None, [])
        entries.append(write_shard(out_dir, name, s, a, part, container, header, compression=compression))
    return write_manifest(out_dir, header, entries) if manifest else None
