"""Two CPU processes under torchrun (gloo): distinct shards per rank, identical weights at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from lasium.train.synthetic import write_synthetic_shards


def test_two_ranks_read_distinct_shards_and_end_with_identical_weights(tmp_path: Path):
    write_synthetic_shards(
        tmp_path / "shards", container="wds", shards=4, tasks_per_shard=8, image_shape=(16, 16, 1), name="dist"
    )
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "lasium.train.cli",
        "--shards",
        str(tmp_path / "shards"),
        "--algo",
        "fomaml",
        "--inner-steps",
        "1",
        "--iterations",
        "6",
        "--meta-batch",
        "2",
        "--workers",
        "0",
        "--val-dataset",
        "none",
        "--device",
        "cpu",
        "--out",
        str(out),
        "--quiet",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / "ranks" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [6, 6]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    read0, read1 = set(ranks[0]["shards_read"]), set(ranks[1]["shards_read"])
    assert read0 and read1 and read0.isdisjoint(read1)
    names = sorted(Path(u).name for u in read0 | read1)
    assert names == [f"dist-{i:06d}.tar" for i in range(4)]
    # the saved weights are those of the ranks, and training moved them
    state = json.loads((out / "last" / "state.json").read_text())
    assert state["world_size"] == 2 and state["tasks_seen"] == 6 * 2 * 2
    weights = load_file(str(out / "last" / "model.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values())
