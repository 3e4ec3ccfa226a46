"""Lossless WebP at several encoder efforts on the same tasks (``benchmarks/bench_codecs.py`` runs it on its 84×84×3
photograph tasks): bytes per task, encode and decode tasks/s in one process, and whether the pixels come back exactly.
Why lasium-gen writes WebP at the least effort: docs/shard-format.md section 14."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from lasium.shards import WebpCodec
from lasium.tasks import TaskBatch

WEBP_EFFORTS = [  # (label, quality, method): libwebp's encoder effort; every one decodes to the same pixels
    ("q0-m0 (the default)", 0, 0),
    ("q25-m1", 25, 1),
    ("q100-m3 (the default before 2026-12-03)", 100, 3),
    ("q100-m6 (smallest)", 100, 6),
]


def webp_effort(batch: TaskBatch, rounds: int) -> dict[str, Any]:
    """Lossless WebP at several encoder efforts on the same tasks, in this process: bytes per task, encode and decode
    tasks/s (one thread; the best of ``rounds`` interleaved rounds), and whether the pixels come back exactly."""
    shapes = [batch.support.shape[1:], batch.query.shape[1:]]
    codecs = {label: WebpCodec(quality=q, method=m) for label, q, m in WEBP_EFFORTS}
    rows: dict[str, dict[str, Any]] = {k: {"encode": [], "decode": []} for k in codecs}
    for _ in range(rounds):
        for label, codec in codecs.items():
            start = time.perf_counter()
            blobs = [(codec.encode(batch.support[i]), codec.encode(batch.query[i])) for i in range(len(batch))]
            rows[label]["encode"].append(len(batch) / (time.perf_counter() - start))
            start = time.perf_counter()
            back = [[codec.decode(b, shape, "m", "s") for b, shape in zip(pair, shapes)] for pair in blobs]
            rows[label]["decode"].append(len(batch) / (time.perf_counter() - start))
            rows[label]["bytes_per_task"] = sum(len(b) for pair in blobs for b in pair) / len(batch)
            rows[label]["exact"] = all(
                np.array_equal(s, batch.support[i]) and np.array_equal(q, batch.query[i])
                for i, (s, q) in enumerate(back)
            )
    return {
        label: {
            "quality": q,
            "method": m,
            "bytes_per_task": rows[label]["bytes_per_task"],
            "encode_tasks_per_s": max(rows[label]["encode"]),
            "decode_tasks_per_s": max(rows[label]["decode"]),
            "exact": rows[label]["exact"],
        }
        for label, q, m in WEBP_EFFORTS
    }


def effort_table(efforts: dict[str, Any]) -> str:
    lines = [f"  {'lossless WebP effort':<42} {'B/task':>9} {'encode t/s':>11} {'decode t/s':>11}  exact"]
    for label, row in efforts.items():
        lines.append(
            f"  {label:<42} {row['bytes_per_task']:9,.0f} {row['encode_tasks_per_s']:11.1f} "
            f"{row['decode_tasks_per_s']:11.1f}  {row['exact']}"
        )
    return "\n".join(lines)
