"""lasium.shards: round trips, reproducibility, manifest and sidecars, index rebuild, sources, interoperability."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from shards_helpers import expected_tasks, make_batch, make_header, write_set  # noqa: E402

import lasium
from lasium.errors import ShardError
from lasium.shards import (
    build_manifest_from_sidecars,
    decode_wds_sample,
    iter_shard_tasks,
    iter_tasks,
    read_manifest,
    resolve_shard_urls,
    write_manifest,
    write_shard,
)
from lasium.tasks import TaskBatch

CONTAINERS = ["wds", "hdf5"]
EXT = {"wds": "tar", "hdf5": "h5"}


def assert_tasks_equal(tasks, batch: TaskBatch, latents: bool) -> None:
    assert len(tasks) == len(batch)
    for i, task in enumerate(tasks):
        assert task.support.dtype == np.uint8 and task.query.dtype == np.uint8
        np.testing.assert_array_equal(task.support, batch.support[i])
        np.testing.assert_array_equal(task.query, batch.query[i])
        if latents:
            assert task.latents.dtype == np.float16
            np.testing.assert_array_equal(task.latents, batch.latents[i])
        else:
            assert task.latents is None
        assert task.meta == {**batch.metas[i], "index": i, "strategy": "ro"}


@pytest.mark.parametrize("latents", [False, True], ids=["plain", "latents"])
@pytest.mark.parametrize("container", CONTAINERS)
def test_round_trip(tmp_path, container, latents):
    write_set(tmp_path, container, latents)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["manifest.json"] + [f"tiny-00000{s}.{EXT[container]}{side}" for s in range(3) for side in ("", ".json")]
    )
    tasks = list(iter_tasks(tmp_path))
    assert_tasks_equal(tasks, expected_tasks(7, latents), latents)
    assert tasks[0].support.flags.writeable  # readers may hand arrays straight to torch


@pytest.mark.parametrize("container", CONTAINERS)
def test_same_content_gives_byte_identical_files(tmp_path, container):
    write_set(tmp_path / "a", container, latents=True)
    time.sleep(1.1)  # a timestamp anywhere in the files would now differ
    write_set(tmp_path / "b", container, latents=True)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_tar_members_are_plain_npy_and_json(tmp_path):
    write_set(tmp_path, "wds", latents=True)
    batch = expected_tasks(7, latents=True)
    with tarfile.open(tmp_path / "tiny-000001.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members[:4]] == [
            "task-000000003.support.npy",
            "task-000000003.query.npy",
            "task-000000003.latents.npy",
            "task-000000003.meta.json",
        ]
        assert {(m.mtime, m.uid, m.gid, m.mode, m.uname, m.gname) for m in members} == {(0, 0, 0, 0o644, "", "")}
        for member, arr in (("support", batch.support[3]), ("query", batch.query[3]), ("latents", batch.latents[3])):
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            assert tar.extractfile(f"task-000000003.{member}.npy").read() == buf.getvalue()
        meta = json.loads(tar.extractfile("task-000000003.meta.json").read())
    assert meta == {"anchors": batch.metas[3]["anchors"], "index": 3, "strategy": "ro"}


def test_tar_encoder_vectorized_and_loop_paths_agree():
    from lasium.shards.wds_encode import wds_chunks
    from lasium.shards.writer import task_metas_json

    batch = make_batch(10, 9, latents=True)
    metas = task_metas_json(batch, 10, {"strategy": "ro"})
    metas[4] = (
        metas[4][:-1] + b', "note": "' + b"x" * 600 + b'"}'
    )  # one meta spans two blocks: that chunk takes the loop
    as_bytes = lambda chunks: b"".join(bytes(c) for c in chunks)  # noqa: E731
    fast = as_bytes(wds_chunks(batch, 10, metas, chunk_tasks=4))
    slow = as_bytes(wds_chunks(batch, 10, metas, chunk_tasks=4, vectorized=False))
    assert fast == slow
    with tarfile.open(fileobj=io.BytesIO(fast)) as tar:
        assert len(tar.getmembers()) == 9 * 4
        assert json.loads(tar.extractfile("task-000000014.meta.json").read())["note"] == "x" * 600


def test_manifest_and_sidecars(tmp_path):
    header = write_set(tmp_path, "hdf5", latents=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert set(manifest) == {
        "format",
        "format_version",
        "tool_version",
        "container",
        "name",
        "config",
        "generator",
        "source",
        "image_codec",
        "shards",
        "num_tasks",
    }
    assert (manifest["format"], manifest["format_version"], manifest["tool_version"]) == (
        "lasium-task-shards",
        1,
        lasium.__version__,
    )
    assert (manifest["container"], manifest["name"], manifest["num_tasks"]) == ("hdf5", "tiny", 7)
    assert (
        manifest["config"] == header["config"]
        and manifest["generator"] == header["generator"]
        and manifest["source"] is None
    )
    assert [(s["file"], s["first_task"], s["num_tasks"]) for s in manifest["shards"]] == [
        ("tiny-000000.h5", 0, 3),
        ("tiny-000001.h5", 3, 3),
        ("tiny-000002.h5", 6, 1),
    ]
    for s in manifest["shards"]:
        data = (tmp_path / s["file"]).read_bytes()
        assert s["bytes"] == len(data) and s["sha256"] == hashlib.sha256(data).hexdigest()
        sidecar = json.loads((tmp_path / (s["file"] + ".json")).read_text())
        assert sidecar["shard"] == s
        assert {k: sidecar[k] for k in ("config", "generator", "source", "container", "name")} == {
            k: manifest[k] for k in ("config", "generator", "source", "container", "name")
        }
    m = read_manifest(tmp_path / "manifest.json")
    assert m.to_dict() == manifest and m.root == tmp_path


def test_hdf5_file_repeats_the_shard_entry(tmp_path):
    import h5py

    write_set(tmp_path, "hdf5")
    with h5py.File(tmp_path / "tiny-000001.h5", "r") as f:
        shard = json.loads(f.attrs["lasium_shard"])
        header = json.loads(f.attrs["lasium_header"])
        assert f["support"].chunks == (1,) + f["support"].shape[1:]
        assert f["support"].compression == "gzip"
    assert shard == {
        "format": "lasium-task-shards",
        "format_version": 1,
        "file": "tiny-000001.h5",
        "first_task": 3,
        "num_tasks": 3,
    }
    assert header["config"]["num_tasks"] == 7


def test_manifest_refuses_bad_versions_and_json(tmp_path):
    write_set(tmp_path, "wds")
    path = tmp_path / "manifest.json"
    d = json.loads(path.read_text())
    path.write_text(json.dumps({**d, "format_version": 2}))
    with pytest.raises(ShardError, match="format version 2"):
        read_manifest(tmp_path)
    path.write_text("{not json")
    with pytest.raises(ShardError, match="not valid JSON"):
        read_manifest(tmp_path)


def test_writer_validates_batch_against_config(tmp_path):
    header = make_header(num_tasks=7, tasks_per_shard=3)
    good = make_batch(0, 3)
    bad_cases = {
        "wrong dtype": TaskBatch(good.support.astype(np.float32), good.query, None, good.metas),
        "wrong shape": TaskBatch(good.support[:, :2], good.query, None, good.metas),
        "unexpected latents": make_batch(0, 3, latents=True),
        "wrong task count": make_batch(0, 2),
    }
    for _what, batch in bad_cases.items():
        with pytest.raises(ShardError):
            write_shard(tmp_path, "tiny", 0, 0, batch, "wds", header)
    with pytest.raises(ShardError, match="tasks 3..5"):
        write_shard(tmp_path, "tiny", 1, 4, make_batch(4, 3), "wds", header)
    with pytest.raises(ShardError, match="latents missing"):
        write_shard(tmp_path, "tiny", 0, 0, good, "wds", make_header(latents=True))
    with pytest.raises(ShardError, match="lacks seed"):
        bad = make_header()
        del bad["config"]["seed"]
        write_shard(tmp_path, "tiny", 0, 0, good, "wds", bad)
    with pytest.raises(ShardError, match="invalid shard-set name"):
        write_shard(tmp_path, "../x", 0, 0, good, "wds", header)
    assert list(tmp_path.iterdir()) == []


def test_index_rebuilds_manifest_from_sidecars(tmp_path):
    write_set(tmp_path, "wds")
    original = (tmp_path / "manifest.json").read_bytes()
    (tmp_path / "manifest.json").unlink()
    m = build_manifest_from_sidecars(tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == original
    assert m.num_tasks == 7


def test_index_reports_gaps_overlaps_and_mixed_sets(tmp_path):
    header = write_set(tmp_path, "wds", manifest=False)
    (tmp_path / "tiny-000001.tar.json").unlink()  # shard 1's write "did not finish"
    with pytest.raises(ShardError, match=r"tiny-000001.tar \(shard without sidecar.*missing tasks 3..5"):
        build_manifest_from_sidecars(tmp_path)
    m = build_manifest_from_sidecars(tmp_path, allow_gaps=True)
    assert [e.file for e in m.shards] == ["tiny-000000.tar", "tiny-000002.tar"] and m.num_tasks == 4
    # a sidecar claiming an overlapping range
    side = json.loads((tmp_path / "tiny-000002.tar.json").read_text())
    side["shard"]["first_task"] = 2
    (tmp_path / "tiny-000002.tar.json").write_text(json.dumps(side))
    with pytest.raises(ShardError, match="overlapping"):
        build_manifest_from_sidecars(tmp_path, allow_gaps=True)
    # a shard of another config in the same folder
    write_shard(tmp_path, "tiny", 1, 3, make_batch(3, 3), "wds", {**header, "config": {**header["config"], "seed": 99}})
    with pytest.raises(ShardError, match="disagrees"):
        build_manifest_from_sidecars(tmp_path, allow_gaps=True)


def test_write_manifest_refuses_incomplete_set(tmp_path):
    header = make_header(num_tasks=7, tasks_per_shard=3)
    entry = write_shard(tmp_path, "tiny", 0, 0, make_batch(0, 3), "wds", header)
    with pytest.raises(ShardError, match="incomplete"):
        write_manifest(tmp_path, header, [entry])
    assert write_manifest(tmp_path, header, [entry], allow_gaps=True).num_tasks == 3


@pytest.mark.parametrize("container", CONTAINERS)
def test_sources_brace_list_manifest_file_and_pipe(tmp_path, container):
    write_set(tmp_path, container)
    want = expected_tasks(7)
    ext = EXT[container]
    paths = [str(tmp_path / f"tiny-00000{s}.{ext}") for s in range(3)]
    sources = [
        str(tmp_path),
        str(tmp_path / "manifest.json"),
        str(tmp_path / f"tiny-{{000000..000002}}.{ext}"),
        paths,
        [f"file:{p}" for p in paths],
        [f"pipe:cat {p}" for p in paths],
    ]
    for source in sources:
        assert_tasks_equal(list(iter_tasks(source)), want, False)
    urls, manifest = resolve_shard_urls(str(tmp_path / f"tiny-{{000000..000002}}.{ext}"))
    assert urls == paths and manifest is None
    urls, manifest = resolve_shard_urls(tmp_path)
    assert urls == paths and manifest is not None and manifest.num_tasks == 7


def test_folder_without_manifest_uses_sidecars_or_files(tmp_path):
    write_set(tmp_path, "wds", manifest=False)
    urls, manifest = resolve_shard_urls(tmp_path)
    assert manifest is not None and len(urls) == 3
    for side in tmp_path.glob("*.json"):
        side.unlink()
    (tmp_path / ".tiny-000003.tar.tmp").write_bytes(b"partial")  # a killed write's leftover is not a shard
    urls, manifest = resolve_shard_urls(tmp_path)
    assert manifest is None and [Path(u).name for u in urls] == [f"tiny-00000{s}.tar" for s in range(3)]
    assert len(list(iter_tasks(tmp_path))) == 7


def test_shuffle_shards_is_seeded(tmp_path):
    write_set(tmp_path, "wds", num_tasks=12, tasks_per_shard=2)
    order = lambda seed: [t.meta["index"] for t in iter_tasks(tmp_path, shuffle_shards=True, seed=seed)]  # noqa: E731
    assert order(1) == order(1)
    assert sorted(order(1)) == list(range(12))
    assert any(order(s) != list(range(12)) for s in range(3))


def test_pipe_failure_is_a_shard_error(tmp_path):
    with pytest.raises(ShardError, match="status"):
        list(iter_shard_tasks(f"pipe:cat {tmp_path}/missing-000000.tar"))
    with pytest.raises(ShardError, match="status"):
        list(iter_shard_tasks(f"pipe:cat {tmp_path}/missing-000000.h5"))


def test_stock_webdataset_and_h5py_read_the_spec(tmp_path):
    """Interoperability: no lasium reader, only what docs/shard-format.md tells a user."""
    import h5py
    import webdataset as wds

    write_set(tmp_path / "w", "wds", latents=True)
    write_set(tmp_path / "h", "hdf5", latents=True)
    want = expected_tasks(7, latents=True)

    urls = [str(tmp_path / "w" / f"tiny-00000{s}.tar") for s in range(3)]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [f"task-{i:09d}" for i in range(7)]
    for i, s in enumerate(samples):
        assert set(s) - {"__key__", "__url__", "__local_path__"} == {
            "support.npy",
            "query.npy",
            "latents.npy",
            "meta.json",
        }
        support = np.load(io.BytesIO(s["support.npy"]), allow_pickle=False)
        query = np.load(io.BytesIO(s["query.npy"]), allow_pickle=False)
        latents = np.load(io.BytesIO(s["latents.npy"]), allow_pickle=False)
        assert (support.dtype, support.shape) == (np.uint8, (3, 1, 4, 4, 1))
        assert (query.dtype, query.shape) == (np.uint8, (3, 2, 4, 4, 1))
        assert (latents.dtype, latents.shape) == (np.float16, (3, 3, 5))
        np.testing.assert_array_equal(query, want.query[i])
        assert json.loads(s["meta.json"])["index"] == i

    for s in range(3):
        with h5py.File(tmp_path / "h" / f"tiny-00000{s}.h5", "r") as f:
            n = f["support"].shape[0]
            assert f["support"].dtype == np.uint8 and f["support"].shape == (n, 3, 1, 4, 4, 1)
            assert f["query"].dtype == np.uint8 and f["query"].shape == (n, 3, 2, 4, 4, 1)
            assert f["latents"].dtype == np.float16 and f["latents"].shape == (n, 3, 3, 5)
            metas = [json.loads(m) for m in f["meta"].asstr()[:]]
            assert [m["index"] for m in metas] == list(range(3 * s, 3 * s + n))
            np.testing.assert_array_equal(f["support"][0], want.support[3 * s])


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "gnu", "pax"]
)
def test_reader_accepts_shards_repacked_by_other_tools(tmp_path, fmt):
    """A user may re-tar a shard (other tar formats, owners, mtimes, a directory entry): same tasks."""
    write_set(tmp_path, "wds")
    repacked = tmp_path / "re" / "tiny-000001.tar"
    repacked.parent.mkdir()
    with tarfile.open(tmp_path / "tiny-000001.tar") as src, tarfile.open(repacked, "w", format=fmt) as dst:
        folder = tarfile.TarInfo("extracted")
        folder.type = tarfile.DIRTYPE
        dst.addfile(folder)
        for member in src.getmembers():
            data = src.extractfile(member).read()
            member.mtime, member.uname, member.pax_headers = 1_700_000_000, "someone", {"comment": "repacked"}
            dst.addfile(member, io.BytesIO(data))
    tasks = list(iter_shard_tasks(str(repacked)))
    assert [t.meta["index"] for t in tasks] == [3, 4, 5]
    np.testing.assert_array_equal(tasks[2].query, expected_tasks(7).query[5])


def test_trainer_style_webdataset_pipeline_with_safe_decoder(tmp_path):
    import webdataset as wds

    write_set(tmp_path, "wds")
    urls, manifest = resolve_shard_urls(tmp_path)
    dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).map(
        lambda s: decode_wds_sample(s, layout=manifest.layout)
    )
    assert_tasks_equal(list(dataset), expected_tasks(7), False)
