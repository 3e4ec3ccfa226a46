"""Tiny shard sets for the lasium.shards tests (3-way, 1 support + 2 query, 4×4×1 images)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lasium.shards import write_manifest, write_shard
from lasium.tasks import TaskBatch

WAYS, SHOTS, QUERIES, SIZE, LATENT = 3, 1, 2, 4, 5


def make_header(
    num_tasks: int = 7, tasks_per_shard: int = 3, latents: bool = False, seed: int = 0, **extra: Any
) -> dict[str, Any]:
    config = {
        "ways": WAYS,
        "shots": SHOTS,
        "queries": QUERIES,
        "image_shape": [SIZE, SIZE, 1],
        "seed": seed,
        "tasks_per_shard": tasks_per_shard,
        "num_tasks": num_tasks,
        "save_latents": latents,
        "strategy": "ro",
        "alpha": 0.2,
    }
    config.update(extra)
    generator = {"kind": "gan", "name": "tiny", "latent_dim": LATENT, "weights_sha256": "ab" * 32}
    return {"config": config, "generator": generator, "source": None}


def make_batch(first: int, count: int, latents: bool = False, seed: int = 0) -> TaskBatch:
    """Tasks first..first+count-1; content depends only on (seed, task index), like a real generator."""
    support, query, lat, metas = [], [], [], []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        support.append(rng.integers(0, 256, (WAYS, SHOTS, SIZE, SIZE, 1), dtype=np.uint8))
        query.append(rng.integers(0, 256, (WAYS, QUERIES, SIZE, SIZE, 1), dtype=np.uint8))
        lat.append(rng.standard_normal((WAYS, SHOTS + QUERIES, LATENT)).astype(np.float16))
        metas.append({"anchors": [int(x) for x in rng.integers(0, 1000, WAYS)]})
    return TaskBatch(np.stack(support), np.stack(query), np.stack(lat) if latents else None, metas)


def write_set(
    folder: Path,
    container: str = "wds",
    latents: bool = False,
    num_tasks: int = 7,
    tasks_per_shard: int = 3,
    name: str = "tiny",
    manifest: bool = True,
    seed: int = 0,
    compression: str = "auto",
    **extra: Any,
) -> dict[str, Any]:
    """Write a complete set (``compression="gzip"``: ``.tar.gz`` WebDataset shards; ``extra``: more config keys,
    e.g. ``image_codec="webp"``); returns the header."""
    header = make_header(num_tasks, tasks_per_shard, latents, seed, **extra)
    entries = []
    for shard in range(-(-num_tasks // tasks_per_shard)):
        first = shard * tasks_per_shard
        count = min(tasks_per_shard, num_tasks - first)
        entries.append(
            write_shard(
                folder,
                name,
                shard,
                first,
                make_batch(first, count, latents, seed),
                container,
                header,
                compression=compression,
            )
        )
    if manifest:
        write_manifest(folder, header, entries)
    return header


def expected_tasks(num_tasks: int = 7, latents: bool = False, seed: int = 0) -> TaskBatch:
    return make_batch(0, num_tasks, latents, seed)


def assert_kill_and_resume_identical(
    cmd: list[str], env: dict[str, str], out: Path, ref: Path, *, after_shards: int = 3, total_shards: int = 30
) -> None:
    """Start ``cmd`` (a lasium-gen command line writing to ``out``) with one writer process, SIGKILL it once
    ``after_shards`` shards are complete, rerun it in-process (``--workers 0``) and require the very bytes of
    ``ref``."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([*cmd, "--workers", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("*.tar.json"))) < after_shards:
            assert proc.poll() is None, proc.stderr.read().decode("utf-8", "replace")
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(list(out.glob("*.tar.json"))) < total_shards and not (out / "manifest.json").exists()
    resumed = subprocess.run([*cmd, "--workers", "0"], env=env, check=True, capture_output=True, text=True)
    assert "resuming" in resumed.stderr
    want = {p.name: p.read_bytes() for p in ref.iterdir()}
    got = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert got.keys() == want.keys() and got == want
