"""The lasium-gen batch job: determinism, resume, refusal of mixed sets, --shards, formats, failures."""

from __future__ import annotations

import errno
import io
import json
import tarfile
from pathlib import Path

import gen_tiny
import numpy as np
import pytest

from lasium.errors import ConfigError
from lasium.generate.job.config import GenerationConfig
from lasium.generate.job.job import GenerationJob
from lasium.generate.sources.generator import GeneratorOptions
from lasium.generate.sources.real import RealOptions
from lasium.runtime import RankInfo
from lasium.shards import build_manifest_from_sidecars, iter_tasks, read_manifest, verify_shard_set


def run(out: Path, *, model=None, rank: RankInfo | None = None, **kw):
    kw.setdefault("strategy", "ro")
    kw.setdefault("num_tasks", 45)
    kw.setdefault("tasks_per_shard", 10)
    kw.setdefault("workers", 0)
    kw.setdefault("device", "cpu")
    kw.setdefault("decode_tasks", 4)
    kw.setdefault("anchor_chunk", 1024)
    cfg = GenerationConfig.build(out=str(out), progress=False, **kw)
    return GenerationJob(
        cfg, model=model if model is not None else gen_tiny.tiny_gan(), rank=rank or RankInfo(), log=lambda m: None
    ).run()


def shard_hashes(folder: Path) -> dict[str, str]:
    return {e.file: e.sha256 for e in read_manifest(folder).shards}


def files(folder: Path) -> list[str]:
    """The folder's files but the set's card (README.md, preview.png: see test_gen_compression.py)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("README.md", "preview.png"))


def test_same_seed_same_bytes_whatever_workers_and_shards_in_flight(tmp_path):
    ref = run(tmp_path / "ref", save_latents=True)
    assert ref.manifest_written and ref.tasks_written == 45 and ref.shards_written == 5
    want = shard_hashes(tmp_path / "ref")
    for i, kw in enumerate([dict(workers=0, in_flight=1), dict(workers=1, in_flight=3), dict(workers=2, in_flight=2)]):
        out = tmp_path / f"run{i}"
        run(out, save_latents=True, name="ref", **kw)
        assert shard_hashes(out) == want, kw
    other_seed = run(tmp_path / "seed1", save_latents=True, seed=1, name="ref")
    assert other_seed.manifest_written and shard_hashes(tmp_path / "seed1") != want


def test_shards_ranges_and_ranks_reassemble_the_same_set(tmp_path):
    want = shard_hashes(Path(run(tmp_path / "full").out_dir))
    parts = tmp_path / "parts"
    first = run(parts, shard_range="0:2", name="full")
    assert not first.manifest_written and not (parts / "manifest.json").exists()
    run(parts, shard_range="2:", name="full")
    build_manifest_from_sidecars(parts)
    assert shard_hashes(parts) == want
    ranks = tmp_path / "ranks"
    results = [run(ranks, name="full", rank=RankInfo(r, 2, r)) for r in (1, 0)]  # rank 0 last: it writes the manifest
    assert [sorted(e.first_task for e in res.entries) for res in results] == [[10, 30], [0, 20, 40]]
    assert results[1].manifest_written and shard_hashes(ranks) == want


def test_resume_skips_complete_shards_and_redoes_damaged_ones(tmp_path):
    out = tmp_path / "set"
    run(out)
    want = shard_hashes(out)
    (out / "set-000001.tar").unlink()  # lost
    (out / "set-000002.tar.json").unlink()  # shard without sidecar: unfinished write
    with open(out / "set-000003.tar", "ab") as f:  # wrong size
        f.write(b"x")
    res = run(out)
    assert res.shards_skipped == 2 and res.shards_written == 3
    assert shard_hashes(out) == want
    # Same-size corruption is caught only with verify_existing (full sha256).
    p = out / "set-000004.tar"
    data = bytearray(p.read_bytes())
    data[700] ^= 0xFF
    p.write_bytes(bytes(data))
    assert run(out).shards_written == 0
    assert run(out, verify_existing=True).shards_written == 1
    assert shard_hashes(out) == want and verify_shard_set(out).ok


def test_different_config_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "set"
    run(out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="different config.*seed"):
        run(out, seed=5)
    with pytest.raises(ConfigError, match="different config"):
        run(out, strategy="oc")
    (out / "manifest.json").unlink()  # sidecars alone also tell
    with pytest.raises(ConfigError, match="different config"):
        run(out, num_tasks=50)
    res = run(out, seed=5, num_tasks=25, overwrite=True)
    assert res.shards_written == 3
    assert files(out) == ["manifest.json", "notes.txt"] + sorted(
        f"set-00000{i}.tar{s}" for i in range(3) for s in ("", ".json")
    )
    assert read_manifest(out).config["seed"] == 5


def test_wds_is_read_back_by_stock_readers_and_verifies(tmp_path):
    out = tmp_path / "w"
    run(out, save_latents=True, container="wds", num_tasks=12)
    assert verify_shard_set(out).ok
    tasks = list(iter_tasks(out))
    assert len(tasks) == 12 and tasks[3].meta["index"] == 3 and tasks[3].meta["strategy"] == "ro"
    # Plain tarfile + numpy, no lasium: the spec alone is enough.
    with tarfile.open(out / "w-000000.tar") as tar:
        names = tar.getnames()
        assert names[:4] == [
            "task-000000000.support.npy",
            "task-000000000.query.npy",
            "task-000000000.latents.npy",
            "task-000000000.meta.json",
        ] or sorted(names[:4]) == sorted(
            [
                "task-000000000.support.npy",
                "task-000000000.query.npy",
                "task-000000000.latents.npy",
                "task-000000000.meta.json",
            ]
        )
        support = np.load(io.BytesIO(tar.extractfile("task-000000000.support.npy").read()), allow_pickle=False)
        latents = np.load(io.BytesIO(tar.extractfile("task-000000000.latents.npy").read()), allow_pickle=False)
        meta = json.loads(tar.extractfile("task-000000000.meta.json").read())
    assert support.dtype == np.uint8 and support.shape == (5, 1, 8, 8, 1)
    assert latents.dtype == np.float16 and latents.shape == (5, 6, 8)
    assert np.array_equal(support, tasks[0].support) and meta["index"] == 0
    import webdataset as wds

    samples = list(wds.WebDataset(str(out / "w-000001.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples[:2]] == ["task-000000010", "task-000000011"]
    assert np.array_equal(np.load(io.BytesIO(samples[0]["query.npy"]), allow_pickle=False), tasks[10].query)


def test_hdf5_is_read_back_by_h5py_and_verifies(tmp_path):
    h5py = pytest.importorskip("h5py")
    out = tmp_path / "h"
    run(out, container="hdf5", num_tasks=12)
    assert verify_shard_set(out).ok
    assert files(out)[:2] == ["h-000000.h5", "h-000000.h5.json"]
    tasks = list(iter_tasks(out))
    with h5py.File(out / "h-000001.h5", "r") as f:
        assert f["support"].shape == (2, 5, 1, 8, 8, 1) and f["query"].dtype == np.uint8
        assert np.array_equal(f["query"][1], tasks[11].query)
    # hdf5 and wds hold the same tasks
    run(tmp_path / "w", container="wds", num_tasks=12, name="h")
    for a, b in zip(tasks, iter_tasks(tmp_path / "w")):
        assert np.array_equal(a.support, b.support) and np.array_equal(a.query, b.query)


def test_enospc_in_the_writer_ends_cleanly_with_no_partial_shard(tmp_path, monkeypatch):
    import lasium.shards.atomic as atomic

    real_write = atomic.HashingWriter.write
    budget = {"bytes": 150_000}

    def write(self, data):
        budget["bytes"] -= len(memoryview(data))
        if budget["bytes"] < 0:
            raise OSError(errno.ENOSPC, "No space left on device", "fake")
        return real_write(self, data)

    monkeypatch.setattr(atomic.HashingWriter, "write", write)
    out = tmp_path / "full"
    with pytest.raises(OSError) as info:
        run(out, num_tasks=100)
    assert info.value.errno == errno.ENOSPC
    # Complete shards (with sidecars) may stay for resume; nothing partial or orphaned is visible.
    names = files(out)
    shards = [n for n in names if n.endswith(".tar")]
    assert all(n + ".json" in names for n in shards)
    assert not [n for n in names if n.startswith(".")]
    assert not (out / "manifest.json").exists()


def test_library_rank_split_takes_shards_mod_world(tmp_path):
    cfg = GenerationConfig(
        95, options=GeneratorOptions(strategy="n"), tasks_per_shard=10, out=str(tmp_path / "x"), progress=False
    )
    job = GenerationJob(cfg, model=gen_tiny.tiny_gan(), rank=RankInfo(2, 3, 0), log=lambda m: None)
    assert job.my_shards() == [2, 5, 8]
    cfg.shard_range = "3:9"
    assert job.my_shards() == [5, 8]


def _image_folder(root: Path, classes: int = 12, per_class: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        d = root / f"class{c:02d}"
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, size=(28, 28), dtype=np.uint8)).save(d / f"{i}.png")
    return root


def test_vae_anchors_real_images_are_member_zero(tmp_path, monkeypatch):
    from lasium.data import load_unlabeled

    folder = _image_folder(tmp_path / "imgs")
    dataset = f"imagefolder:{folder}"
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    model = gen_tiny.tiny_vae(4, (28, 28, 1))
    res = run(tmp_path / "v", model=model, strategy="oc", num_tasks=12, dataset=dataset, epsilon=0.5, save_latents=True)
    unlabeled = load_unlabeled(dataset)
    m = read_manifest(res.out_dir)
    assert m.config["anchors"] == "vae-encoded-train-images" and m.config["alpha"] == 0.4  # VAE-MAML reference α
    assert m.source["fingerprint"] == unlabeled.fingerprint and m.generator["kind"] == "vae"
    by_id = {image_id: unlabeled.images[i] for i, image_id in enumerate(unlabeled.image_ids)}
    for task in iter_tasks(res.out_dir):
        ids = task.meta["anchor_source_ids"]
        assert len(set(ids)) == 5
        for row, image_id in enumerate(ids):
            assert np.array_equal(task.support[row, 0], by_id[image_id])  # the real pixels, not a reconstruction
        assert not np.array_equal(task.support[0, 0], task.query[0, 0])


@pytest.mark.omniglot
def test_real_source_writes_episode_sampler_tasks(tmp_path, omniglot_root):
    from lasium.data import EpisodeSampler, load_split
    from lasium.seeding import derive_seed

    out = tmp_path / "real"
    cfg = GenerationConfig(
        source="real",
        options=RealOptions(dataset="omniglot", split="val"),
        data_root=str(omniglot_root),
        num_tasks=7,
        tasks_per_shard=4,
        out=str(out),
        workers=0,
        progress=False,
        seed=3,
    )
    res = GenerationJob(cfg, rank=RankInfo(), log=lambda m: None).run()
    assert res.manifest_written and verify_shard_set(out).ok
    m = read_manifest(out)
    assert m.generator is None and m.source["split"] == "val" and m.config["strategy"] == "real"
    split = load_split("omniglot", "val", data_root=omniglot_root)
    want = EpisodeSampler(split, 5, 1, 5, derive_seed(3, "shard", 1)).tasks(0, 3)
    got = list(iter_tasks(out))[4:]
    for t in range(3):
        assert np.array_equal(got[t].support, want.support[t]) and np.array_equal(got[t].query, want.query[t])
        assert got[t].meta["source_ids"] == want.metas[t]["source_ids"] and got[t].meta["index"] == 4 + t
        assert got[t].meta["anchor_source_ids"] == [row[0] for row in want.metas[t]["source_ids"]]


def test_writer_pool_without_shared_memory_sends_arrays(tmp_path, monkeypatch):
    import lasium.generate.job.writers as writers

    want = shard_hashes(Path(run(tmp_path / "ref", num_tasks=30).out_dir))

    class NoShm:
        def __init__(self, *a, **k):
            raise OSError(28, "No space left on device", "/dev/shm")

    monkeypatch.setattr(writers.shared_memory, "SharedMemory", NoShm)
    run(tmp_path / "pipe", num_tasks=30, workers=1, name="ref")
    assert shard_hashes(tmp_path / "pipe") == want


def test_overwrite_in_array_parts_keeps_the_other_parts_new_shards(tmp_path):
    out = tmp_path / "set"
    run(out, seed=1)  # an old set: 5 shards
    first = run(out, seed=2, shard_range="0:3", overwrite=True)  # part 1 of the new set replaces shards 0-2 only
    assert first.shards_written == 3
    second = run(out, seed=2, shard_range="3:", overwrite=True)  # part 2 must not delete part 1's new shards
    assert second.shards_written == 2
    build_manifest_from_sidecars(out)
    assert shard_hashes(out) == shard_hashes(Path(run(tmp_path / "ref", seed=2, name="set").out_dir))


def test_bf16_precision_on_cpu_is_recorded_deterministic_and_a_different_set(tmp_path):
    fp32 = run(tmp_path / "fp32", name="s", precision="fp32")
    bf16 = run(tmp_path / "bf16", name="s", precision="bf16")
    assert read_manifest(tmp_path / "fp32").config["precision"] == "fp32"
    assert read_manifest(tmp_path / "bf16").config["precision"] == "bf16-autocast"
    again = run(tmp_path / "bf16-again", name="s", precision="bf16", workers=1)
    assert fp32.manifest_written and bf16.manifest_written and again.manifest_written
    assert shard_hashes(tmp_path / "bf16-again") == shard_hashes(tmp_path / "bf16")
    # Rerunning into the fp32 folder with bf16 is a different shard set: refused without --overwrite.
    with pytest.raises(ConfigError):
        run(tmp_path / "fp32", name="s", precision="bf16")


def test_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="precision"):
        GenerationConfig.build(strategy="ro", num_tasks=1, precision="fp8")
