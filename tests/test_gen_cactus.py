"""lasium-gen --source cactus: CACTUs tasks (Hsu, Levine & Finn, ICLR 2019) from k-means partitions of an embedding.

A flat folder of distinct images and a synthetic embedding with obvious clusters: blobs 0-5 hold 8 images
each, blobs 6 and 7 only 2 (fewer than K_tr + K_val = 3, so dropped). Sizes are tiny (k = 8, P = 3).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error
from click.testing import CliRunner
from shards_helpers import assert_kill_and_resume_identical

from lasium.generate.job.cli import main
from lasium.generate.job.config import GenerationConfig
from lasium.generate.job.job import GenerationJob
from lasium.runtime import RankInfo
from lasium.shards import build_manifest_from_sidecars, iter_tasks, read_manifest, verify_shard_set

pytest.importorskip("sklearn")
pytestmark = pytest.mark.usefixtures("one_thread")

TESTS = Path(__file__).parent
BLOB_SIZES = [8, 8, 8, 8, 8, 8, 2, 2]
SMALL_BLOBS = {6, 7}
BLOB_OF = np.random.default_rng(5).permutation(np.repeat(np.arange(8), BLOB_SIZES))  # blob of image i (file order)
M = len(BLOB_OF)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    """(dataset, embedding .npy): distinct 28×28 images directly in a folder, and their clustered embedding."""
    from PIL import Image

    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "flat"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(M):
        img = np.zeros((28, 28), np.uint8)
        img[6:22, 6:22] = np.where(rng.random((16, 16)) < 0.3, 255, 0)
        Image.fromarray(img).save(root / f"img{i:03d}.png")
    centers = rng.normal(size=(8, 6)) * 50
    z = centers[BLOB_OF] + rng.normal(size=(M, 6)) * 0.01
    path = tmp_path / "z.npy"
    np.save(path, z.astype(np.float32))
    return f"imagefolder:{root}", path


def job(
    out: Path, dataset: str, embedding: Path | str, *, rank: RankInfo | None = None, model=None, **kw
) -> GenerationJob:
    kw.setdefault("num_tasks", 20)
    kw.setdefault("tasks_per_shard", 6)
    kw.setdefault("workers", 0)
    kw.setdefault("device", "cpu")
    kw.setdefault("ways", 3)
    kw.setdefault("queries", 2)
    kw.setdefault("clusters", 8)
    kw.setdefault("partitions", 3)
    cfg = GenerationConfig.build(
        "cactus", dataset=dataset, embedding=str(embedding), out=str(out), progress=False, **kw
    )
    return GenerationJob(cfg, rank=rank or RankInfo(), model=model, log=lambda m: None)


def shard_hashes(folder: Path) -> dict[str, str]:
    return {e.file: e.sha256 for e in read_manifest(folder).shards}


def test_partitions_recover_obvious_clusters(tmp_path, data):
    dataset, z = data
    j = job(tmp_path / "c", dataset, z)
    labels = j.source.labels
    assert labels.shape == (3, M)
    for p in range(3):
        per_blob = [set(labels[p, BLOB_OF == b].tolist()) for b in range(8)]
        assert all(len(s) == 1 for s in per_blob), f"partition {p} splits a blob"
        assert len(set().union(*per_blob)) == 8, f"partition {p} merges blobs"
    assert j.source.sampler.kept_counts() == [6, 6, 6]


def test_each_class_is_one_kept_cluster_distinct_within_the_task(tmp_path, data):
    from lasium.data import load_unlabeled

    dataset, z = data
    j = job(tmp_path / "c", dataset, z, num_tasks=60, tasks_per_shard=20)
    res = j.run()
    pool = load_unlabeled(dataset)
    index = {image_id: i for i, image_id in enumerate(pool.image_ids)}
    labels = j.source.labels
    seen_blobs, seen_partitions = set(), set()
    for task in iter_tasks(res.out_dir):
        rows = [[index[i] for i in row] for row in task.meta["source_ids"]]
        blobs = [{int(BLOB_OF[i]) for i in row} for row in rows]
        assert all(len(b) == 1 for b in blobs), "a class mixes clusters"
        blobs = [b.pop() for b in blobs]
        assert len(set(blobs)) == 3 and not set(blobs) & SMALL_BLOBS  # distinct classes; dropped clusters never appear
        p = task.meta["partition"]
        assert [int(labels[p, row[0]]) for row in rows] == task.meta["clusters"]
        for r, row in enumerate(rows):
            assert len(set(row)) == 3  # K_tr + K_val distinct images
            assert np.array_equal(task.support[r, 0], pool.images[row[0]]) and np.array_equal(
                task.query[r], pool.images[row[1:]]
            )
        seen_blobs.update(blobs)
        seen_partitions.add(p)
    assert seen_blobs == set(range(6)) and seen_partitions == {0, 1, 2}


def test_cache_is_reused_and_invalidated_when_the_parameters_change(tmp_path, data, monkeypatch):
    import lasium.generate.synthesis.cactus as cactus

    dataset, z = data
    calls = []
    real = cactus.compute_partitions
    monkeypatch.setattr(cactus, "compute_partitions", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = job(tmp_path / "a", dataset, z).source
    assert first.cache["status"] == "written" and len(calls) == 1
    cached = sorted(p.name for p in (tmp_path / "cache" / "cactus").iterdir())
    assert cached == [f"{first.cache['key']}.json", f"{first.cache['key']}.npy"]
    again = job(tmp_path / "b", dataset, z).source
    assert again.cache["status"] == "hit" and len(calls) == 1 and np.array_equal(again.labels, first.labels)
    assert (
        job(tmp_path / "c", dataset, z, min_cluster_size=4).source.cache["status"] == "hit"
    )  # filtering is not clustering
    for i, change in enumerate([dict(clusters=7), dict(partitions=2), dict(scaling=False), dict(seed=1)]):
        assert job(tmp_path / f"d{i}", dataset, z, **change).source.cache["status"] == "written", change
    assert len(calls) == 5
    moved = tmp_path / "z2.npy"
    np.save(moved, np.load(z) * 2)  # a different embedding
    assert job(tmp_path / "e", dataset, moved).source.cache["status"] == "written"
    # A damaged cache entry is recomputed, never trusted.
    npy = tmp_path / "cache" / "cactus" / f"{first.cache['key']}.npy"
    np.save(npy, np.zeros((3, M), np.int32))
    assert job(tmp_path / "f", dataset, z).source.cache["status"] == "written"


def test_manifest_records_parameters_and_digests(tmp_path, data):
    dataset, z = data
    res = job(tmp_path / "c", dataset, z, min_cluster_size=4).run()
    m = read_manifest(res.out_dir)
    src = m.source
    assert m.generator is None and m.config["source"] == "cactus" and m.config["strategy"] == "cactus"
    assert src["kind"] == "cactus" and src["labels"] == "never read" and src["num_images"] == M
    assert src["embedding"]["kind"] == "file" and src["embedding"]["file"] == "z.npy" and src["embedding"]["dim"] == 6
    assert (
        len(src["embedding"]["sha256"]) == 64
        and len(src["partitions_sha256"]) == 64
        and len(src["image_ids_sha256"]) == 64
    )
    c = src["clustering"]
    assert (c["clusters"], c["partitions"], c["scaling"], c["init"]) == (8, 3, True, "k-means++") and src[
        "min_cluster_size"
    ] == 4


def test_same_seed_same_bytes_ranks_and_ranges_reassemble_the_set(tmp_path, data):
    dataset, z = data
    want = shard_hashes(job(tmp_path / "ref", dataset, z).run().out_dir)
    assert shard_hashes(job(tmp_path / "again", dataset, z, name="ref", workers=1).run().out_dir) == want
    assert shard_hashes(job(tmp_path / "s1", dataset, z, name="ref", seed=1).run().out_dir) != want
    ranks = tmp_path / "ranks"
    for r in (1, 0):
        job(ranks, dataset, z, name="ref", rank=RankInfo(r, 2, r)).run()
    assert shard_hashes(ranks) == want
    parts = tmp_path / "parts"
    job(parts, dataset, z, name="ref", shard_range="0:2").run()
    job(parts, dataset, z, name="ref", shard_range="2:").run()
    build_manifest_from_sidecars(parts)
    assert shard_hashes(parts) == want and verify_shard_set(parts).ok


def test_stock_readers_and_verify(tmp_path, data):
    import h5py
    import webdataset as wds

    dataset, z = data
    out = tmp_path / "w"
    job(out, dataset, z, num_tasks=8).run()
    tasks = list(iter_tasks(out))
    with tarfile.open(out / "w-000001.tar") as tar:
        query = np.load(io.BytesIO(tar.extractfile("task-000000007.query.npy").read()), allow_pickle=False)
        meta = json.loads(tar.extractfile("task-000000007.meta.json").read())
    assert np.array_equal(query, tasks[7].query) and meta["strategy"] == "cactus" and meta["index"] == 7
    samples = list(wds.WebDataset(str(out / "w-000000.tar"), shardshuffle=False))
    assert np.array_equal(np.load(io.BytesIO(samples[1]["support.npy"]), allow_pickle=False), tasks[1].support)
    job(tmp_path / "h", dataset, z, num_tasks=8, container="hdf5", name="w").run()
    with h5py.File(tmp_path / "h" / "w-000001.h5", "r") as f:
        assert np.array_equal(f["support"][0], tasks[6].support)
    r = subprocess.run([sys.executable, "-m", "lasium.shards.cli", "verify", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert verify_shard_set(tmp_path / "h").ok


def test_pixel_and_vae_embeddings(tmp_path, data):
    import gen_tiny

    dataset, _ = data
    pixels = read_manifest(
        job(tmp_path / "p", dataset, "pixels", ways=2, clusters=4, partitions=2, num_tasks=4).run().out_dir
    )
    assert pixels.source["embedding"]["kind"] == "pixels" and pixels.source["embedding"]["dim"] == 28 * 28
    vae = gen_tiny.tiny_vae(4, (28, 28, 1))
    tiny = read_manifest(
        job(tmp_path / "v", dataset, "omniglot-vae", model=vae, ways=2, clusters=4, partitions=2, num_tasks=4)
        .run()
        .out_dir
    )
    assert (
        tiny.source["embedding"]["kind"] == "vae-posterior-mean"
        and tiny.source["embedding"]["generator"]["name"] == "tiny-vae"
    )
    bundled = job(
        tmp_path / "b", dataset, "omniglot-vae", ways=2, clusters=4, partitions=2, num_tasks=4
    )  # the default embedding
    assert bundled.config.options.embedding == GenerationConfig(1, "cactus").options.embedding == "omniglot-vae"
    emb = bundled.header["source"]["embedding"]
    assert emb["generator"]["name"] == "omniglot-vae" and emb["dim"] == 20


def cli(data, out: Path, *args: str):
    dataset, z = data
    return CliRunner().invoke(
        main,
        [
            "--source",
            "cactus",
            "--dataset",
            dataset,
            "--embedding",
            str(z),
            "--n-tasks",
            "10",
            "--ways",
            "3",
            "--queries",
            "2",
            "--clusters",
            "8",
            "--partitions",
            "2",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--workers",
            "0",
            "--quiet",
            *args,
        ],
    )


@pytest.mark.parametrize(
    "case, expect",
    [
        ("rows", "has 51 rows but the train split has 52 images"),
        ("k", "--clusters 60 is larger than the number of images (52)"),
        ("survivors", "only 6 cluster(s) of partition 0 have at least 3 images"),
        ("min-size", "--min-cluster-size 2 is below K_tr + K_val = 3"),
        ("sklearn", "pip install 'lasium[cactus]'"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, data, monkeypatch, case, expect):
    out = tmp_path / "o"
    args: list[str] = []
    if case == "rows":
        short = tmp_path / "short.npy"
        np.save(short, np.load(data[1])[:-1])
        args = ["--embedding", str(short)]
    elif case == "k":
        args = ["--clusters", "60"]
    elif case == "survivors":
        args = ["--ways", "7"]
    elif case == "min-size":
        args = ["--min-cluster-size", "2"]
    else:
        monkeypatch.setitem(sys.modules, "sklearn", None)
        monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    line = one_line_error(cli(data, out, *args))
    assert expect in line, line
    assert not out.exists() or not list(out.iterdir())


def test_killed_job_resumes_to_identical_bytes(tmp_path, data):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, time\n"
        "if os.environ.get('LASIUM_TEST_SLOW_CACTUS'):\n"
        "    import lasium.generate.sources.cactus as c\n"
        "    _b = c.CactusTaskSource.shard_batch\n"
        "    def slow(self, *a):\n"
        "        time.sleep(0.1)\n"
        "        return _b(self, *a)\n"
        "    c.CactusTaskSource.shard_batch = slow\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        LASIUM_TEST_SLOW_CACTUS="1",
    )
    ref = tmp_path / "ref"
    common = ["--n-tasks", "150", "--tasks-per-shard", "5", "--name", "set"]
    assert cli(data, ref, *common).exit_code == 0  # also fills the partition cache the child processes reuse
    dataset, z = data
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "lasium.generate.job.cli",
        "--source",
        "cactus",
        "--dataset",
        dataset,
        "--embedding",
        str(z),
        "--ways",
        "3",
        "--queries",
        "2",
        "--clusters",
        "8",
        "--partitions",
        "2",
        "--out",
        str(out),
        "--device",
        "cpu",
        "--quiet",
        *common,
    ]
    assert_kill_and_resume_identical(cmd, env, out, ref)
