"""lasium.shards safety and robustness: no unpickling, refused members, corrupt shards, atomic writes."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from shards_helpers import make_batch, make_header, write_set  # noqa: E402

from lasium.errors import ShardError
from lasium.shards import (
    build_manifest_from_sidecars,
    iter_shard_tasks,
    iter_tasks,
    resolve_shard_urls,
    verify_shard_set,
    write_shard,
)


class CreatesFile:
    """Unpickling this object creates ``path``: the proof that something was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def tar_with(path: Path, members: dict[str, bytes]) -> str:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def object_npy(arr: np.ndarray) -> bytes:
    """A planted ``.npy`` of dtype object: the npy header, then the pickled array (as numpy itself would write it)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, np.lib.format.header_data_from_array_1_0(arr))
    pickle.dump(arr, buf, protocol=3)
    return buf.getvalue()


def good_members(index: int = 0) -> dict[str, bytes]:
    batch = make_batch(index, 1)
    key = f"task-{index:09d}"
    return {
        f"{key}.support.npy": npy(batch.support[0]),
        f"{key}.query.npy": npy(batch.query[0]),
        f"{key}.meta.json": json.dumps({"index": index}).encode(),
    }


def test_planted_payload_is_live(tmp_path):
    """The payload used below really does create its file when unpickled (so the next tests can fail)."""
    target = tmp_path / "proof"
    pickle.loads(pickle.dumps(CreatesFile(str(target))))
    assert target.exists()


@pytest.mark.parametrize("suffix", ["pyd", "pickle", "pth", "npz", "txt"])
def test_unknown_member_is_refused_and_never_unpickled(tmp_path, suffix):
    target = tmp_path / "pwned"
    payload = pickle.dumps(CreatesFile(str(target)))
    url = tar_with(tmp_path / "evil-000000.tar", {**good_members(0), f"task-000000000.evil.{suffix}": payload})
    with pytest.raises(ShardError) as err:
        list(iter_shard_tasks(url))
    assert f"task-000000000.evil.{suffix}" in str(err.value) and "evil-000000.tar" in str(err.value)
    assert not target.exists()


def test_unknown_member_refused_in_webdataset_pipeline(tmp_path):
    import webdataset as wds

    from lasium.shards import decode_wds_sample

    target = tmp_path / "pwned"
    url = tar_with(
        tmp_path / "evil-000000.tar",
        {**good_members(0), "task-000000000.x.pyd": pickle.dumps(CreatesFile(str(target)))},
    )
    with pytest.raises(ShardError, match=r"task-000000000\.x\.pyd"):
        list(wds.WebDataset([url], shardshuffle=False, empty_check=False).map(decode_wds_sample))
    assert not target.exists()


def test_object_array_npy_is_refused(tmp_path):
    target = tmp_path / "pwned"
    members = good_members(0)
    members["task-000000000.support.npy"] = object_npy(np.array([CreatesFile(str(target))], dtype=object))
    url = tar_with(tmp_path / "evil-000000.tar", members)
    with pytest.raises(ShardError, match=r"task-000000000\.support\.npy.*(object|pickle)"):
        list(iter_shard_tasks(url))
    assert not target.exists()


def test_wrong_dtype_member_is_refused(tmp_path):
    members = good_members(0)
    members["task-000000000.query.npy"] = npy(np.zeros((3, 2, 4, 4, 1), np.float64))
    with pytest.raises(ShardError, match="dtype float64"):
        list(iter_shard_tasks(tar_with(tmp_path / "x-000000.tar", members)))


def test_hdf5_refuses_unknown_objects_and_dtypes(tmp_path):
    import h5py

    write_set(tmp_path, "hdf5", num_tasks=3, tasks_per_shard=3)
    shard = tmp_path / "tiny-000000.h5"
    cases = {
        "extra dataset": lambda f: f.create_dataset(
            "payload", data=np.void(pickle.dumps(CreatesFile(str(tmp_path / "pwned"))))
        ),
        "reference dtype": lambda f: (f.__delitem__("query"), f.create_dataset("query", (3,), dtype=h5py.ref_dtype)),
        "vlen ints as meta": lambda f: (
            f.__delitem__("meta"),
            f.create_dataset("meta", (3,), dtype=h5py.vlen_dtype(np.int32)),
        ),
        "external link": lambda f: (
            f.__delitem__("query"),
            f.__setitem__("query", h5py.ExternalLink("/etc/passwd", "/x")),
        ),
    }
    original = shard.read_bytes()
    for what, edit in cases.items():
        shard.write_bytes(original)
        with h5py.File(shard, "a") as f:
            edit(f)
        with pytest.raises(ShardError, match="tiny-000000.h5") as err:
            list(iter_shard_tasks(str(shard)))
        assert any(w in str(err.value) for w in ("payload", "query", "meta")), what
    assert not (tmp_path / "pwned").exists()


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(bytes(data[: len(data) // 2 + 100]))
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
    elif how == "header":  # scribble over the second member's tar header / the HDF5 object headers
        data[1024:1100] = b"\xff" * 76 if path.suffix == ".tar" else data[1024:1100]
        if path.suffix == ".h5":
            data[0:8] = b"NOTHDF5!"
        path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "garbage", "header"])
@pytest.mark.parametrize("container", ["wds", "hdf5"])
def test_corrupt_shard_is_named_by_reader_and_verify(tmp_path, container, how):
    write_set(tmp_path, container)
    ext = "tar" if container == "wds" else "h5"
    bad = tmp_path / f"tiny-000001.{ext}"
    size = bad.stat().st_size
    _corrupt(bad, how)
    with pytest.raises(ShardError, match=f"tiny-000001.{ext}"):
        list(iter_shard_tasks(str(bad)))
    with pytest.raises(ShardError, match=f"tiny-000001.{ext}"):
        list(iter_tasks(tmp_path))
    report = verify_shard_set(tmp_path)
    assert not report.ok and [p.file for p in report.problems] == [bad.name]
    if bad.stat().st_size == size:
        assert "sha256" in report.problems[0].message


def test_corrupt_hdf5_chunk_is_an_error_not_garbage(tmp_path):
    import h5py

    write_set(tmp_path, "hdf5", num_tasks=3, tasks_per_shard=3)
    shard = tmp_path / "tiny-000000.h5"
    with h5py.File(shard, "r") as f:
        info = f["query"].id.get_chunk_info(1)  # task 1's compressed query chunk
    data = bytearray(shard.read_bytes())
    for k in range(5):
        data[info.byte_offset + info.size // 2 + k] ^= 0x55
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match="tiny-000000.h5: cannot read tasks"):
        list(iter_shard_tasks(str(shard)))


def test_tar_without_end_marker_is_truncated(tmp_path):
    url = tar_with(tmp_path / "x-000000.tar", good_members(0))
    data = Path(url).read_bytes()
    members_end = 3 * 1024  # three members of one header block and one data block each (tiny tasks)
    assert data[members_end : members_end + 1024] == bytes(1024)
    Path(url).write_bytes(data[:members_end])  # whole members, but no end-of-archive marker
    with pytest.raises(ShardError, match="x-000000.tar.*truncated"):
        list(iter_shard_tasks(url))


def test_flipped_image_bytes_caught_by_verify(tmp_path):
    write_set(tmp_path, "wds")
    shard = tmp_path / "tiny-000002.tar"
    data = bytearray(shard.read_bytes())
    data[700] ^= 0xFF  # inside task 6's support pixels: structurally fine, content wrong
    shard.write_bytes(bytes(data))
    report = verify_shard_set(tmp_path)
    assert [(p.file, "sha256" in p.message) for p in report.problems] == [("tiny-000002.tar", True)]


@pytest.mark.parametrize("container", ["wds", "hdf5"])
def test_shape_mismatch_with_manifest_names_shard_and_task(tmp_path, container):
    write_set(tmp_path, container)
    path = tmp_path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"]["ways"] = 4
    path.write_text(json.dumps(manifest))
    with pytest.raises(
        ShardError,
        match=r"tiny-000000\.(tar|h5).*task.*0.*support is uint8\(3, 1, 4, 4, 1\), expected uint8\(4, 1, 4, 4, 1\)",
    ):
        list(iter_tasks(tmp_path))
    report = verify_shard_set(tmp_path)
    assert len(report.problems) == 3 and all("expected uint8(4" in p.message for p in report.problems)


def test_exception_mid_write_leaves_nothing(tmp_path, monkeypatch):
    import lasium.shards.atomic as atomic

    header = make_header(num_tasks=3, tasks_per_shard=3)
    for container in ("wds", "hdf5"):
        old = write_shard(tmp_path, "tiny", 0, 0, make_batch(0, 3), container, header)
        before = (tmp_path / old.file).read_bytes()
        real_write = atomic.HashingWriter.write
        calls = []

        def failing_write(self, data, calls=calls, real_write=real_write):  # bound now: one pair per container
            calls.append(len(data))
            if len(calls) == 2:
                raise OSError("disk fell off")
            return real_write(self, data)

        monkeypatch.setattr(atomic.HashingWriter, "write", failing_write)
        batch = make_batch(0, 3, seed=5)
        if container == "wds":  # write in several chunks so the failure is mid-shard
            import lasium.shards.wds_encode as enc

            monkeypatch.setattr(enc, "TASKS_PER_CHUNK", 1)
            monkeypatch.setattr(enc.wds_chunks, "__defaults__", (1, True))
        else:  # an HDF5 image is one write: fail the first one
            calls.append(0)
        with pytest.raises(OSError, match="disk fell off"):
            write_shard(tmp_path, "tiny", 0, 0, batch, container, header)
        monkeypatch.undo()
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == [n for n in names if not n.startswith(".")]  # no temporary file left
        assert (tmp_path / old.file).read_bytes() == before  # the old complete shard is untouched ...
        assert not (tmp_path / (old.file + ".json")).exists()  # ... but no longer vouched for by a sidecar


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import lasium.shards.atomic as atomic
    import lasium.shards.wds_encode as enc
    from shards_helpers import make_batch, make_header
    from lasium.shards import write_shard

    real_write = atomic.HashingWriter.write
    def slow_write(self, data):
        n = real_write(self, data)
        self.raw.flush()
        Path({marker!r}).write_text("writing")
        time.sleep(30)  # stay mid-shard until the test kills us (it does as soon as it sees the marker)
        return n
    atomic.HashingWriter.write = slow_write
    enc.wds_chunks.__defaults__ = (1, True)
    write_shard({out!r}, "tiny", 1, 3, make_batch(3, 3), "wds", make_header(num_tasks=7, tasks_per_shard=3))
    print("finished")
""")


def test_killed_writer_leaves_no_visible_shard(tmp_path):
    out = tmp_path / "set"
    write_set(out, "wds", manifest=False)
    (out / "tiny-000001.tar").unlink()
    (out / "tiny-000001.tar.json").unlink()
    marker = tmp_path / "marker"
    script = KILL_SCRIPT.format(marker=str(marker), out=str(out))
    tests = str(Path(__file__).parent)  # shards_helpers, for the child process
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    deadline = time.time() + 60
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert marker.exists(), "writer did not start"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL and b"finished" not in proc.stdout.read()
    names = sorted(p.name for p in out.iterdir())
    assert "tiny-000001.tar" not in names and "tiny-000001.tar.json" not in names
    assert ".tiny-000001.tar.tmp" in names  # the partial write exists only under its hidden name
    # readers, verify and index see a set with a gap, not a broken shard: refused unless a partial set is asked for
    with pytest.raises(ShardError, match=r"incomplete: missing tasks 3\.\.5; .*--allow-partial"):
        resolve_shard_urls(out)
    urls, _ = resolve_shard_urls(out, allow_partial=True)
    assert [Path(u).name for u in urls] == ["tiny-000000.tar", "tiny-000002.tar"]
    assert len(list(iter_tasks(out, allow_partial=True))) == 4
    with pytest.raises(ShardError, match="missing tasks 3..5"):
        build_manifest_from_sidecars(out)
    report = verify_shard_set(out)
    assert [p.message for p in report.problems] == ["missing tasks 3..5 (no shard holds them)"]
    # the rerun overwrites the leftover and completes the set
    write_shard(out, "tiny", 1, 3, make_batch(3, 3), "wds", make_header(num_tasks=7, tasks_per_shard=3))
    assert not (out / ".tiny-000001.tar.tmp").exists()
    assert build_manifest_from_sidecars(out).num_tasks == 7 and verify_shard_set(out).ok
