"""Compressed WebDataset shards (<name>-NNNNNN.tar.gz): same tasks as .tar, stock readers, reproducible bytes,
damage caught by name."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from shards_helpers import expected_tasks, make_batch, make_header, write_set  # noqa: E402

from lasium.errors import ShardError  # noqa: E402
from lasium.shards import (  # noqa: E402
    build_manifest_from_sidecars,
    iter_tasks,
    read_manifest,
    verify_shard_set,
    write_manifest,
    write_shard,
)
from lasium.shards.gz import GzipReader, gzip_writer  # noqa: E402


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_gzip_set_holds_the_tasks_of_the_plain_set_in_a_third_of_the_bytes_or_less(tmp_path):
    write_set(tmp_path / "raw", "wds")
    write_set(tmp_path / "gz", "wds", compression="gzip")
    names = sorted(p.name for p in (tmp_path / "gz").iterdir())
    assert names == ["manifest.json"] + [f"tiny-00000{i}.tar.gz{s}" for i in range(3) for s in ("", ".json")]
    m = read_manifest(tmp_path / "gz")
    assert m.container == "wds" and m.compression == "gzip" and [e.file for e in m.shards][0] == "tiny-000000.tar.gz"
    for i in range(3):  # the .tar.gz is exactly the .tar, gzipped
        raw = (tmp_path / "raw" / f"tiny-00000{i}.tar").read_bytes()
        assert gzip.decompress((tmp_path / "gz" / f"tiny-00000{i}.tar.gz").read_bytes()) == raw
    want = expected_tasks(7)
    got = list(iter_tasks(tmp_path / "gz"))
    assert [t.meta["index"] for t in got] == list(range(7))
    assert all(
        np.array_equal(t.support, want.support[i]) and np.array_equal(t.query, want.query[i]) for i, t in enumerate(got)
    )
    assert verify_shard_set(tmp_path / "gz").ok


def test_bytes_are_reproducible_and_the_gzip_header_is_fixed(tmp_path):
    write_set(tmp_path / "a", "wds", compression="gzip", latents=True)
    write_set(tmp_path / "b", "wds", compression="gzip", latents=True)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    write_set(tmp_path / "c", "wds", compression="gzip", latents=True, seed=1)
    assert digests(tmp_path / "c")["tiny-000000.tar.gz"] != digests(tmp_path / "a")["tiny-000000.tar.gz"]
    head = (tmp_path / "a" / "tiny-000000.tar.gz").read_bytes()[:10]
    # magic, deflate, no flags (no file name), mtime 0, XFL 0 (level 6, the default), OS 255 (unknown)
    assert head == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def test_stock_webdataset_tarfile_and_tar_read_it(tmp_path):
    import webdataset as wds

    write_set(tmp_path, "wds", compression="gzip", latents=True)
    want = expected_tasks(7, latents=True)
    samples = list(wds.WebDataset(str(tmp_path / "tiny-{000000..000002}.tar.gz"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == [f"task-{i:09d}" for i in range(7)]
    assert np.array_equal(np.load(io.BytesIO(samples[4]["latents.npy"]), allow_pickle=False), want.latents[4])
    with tarfile.open(tmp_path / "tiny-000001.tar.gz", "r:gz") as tar:
        meta = json.loads(tar.extractfile("task-000000003.meta.json").read())
    assert meta["index"] == 3
    if shutil.which("tar"):
        listing = subprocess.run(
            ["tar", "-tzf", str(tmp_path / "tiny-000000.tar.gz")], capture_output=True, text=True, check=True
        )
        assert listing.stdout.split()[:4] == [
            "task-000000000.support.npy",
            "task-000000000.query.npy",
            "task-000000000.latents.npy",
            "task-000000000.meta.json",
        ]
        out = tmp_path / "x"
        out.mkdir()
        subprocess.run(["tar", "-xzf", str(tmp_path / "tiny-000000.tar.gz"), "-C", str(out)], check=True)
        support = np.load(out / "task-000000002.support.npy", allow_pickle=False)
        assert np.array_equal(support, want.support[2])


@pytest.mark.parametrize("damage", ["truncate", "flip", "crc", "garbage"])
def test_damaged_gzip_shard_is_named_by_reader_and_verify(tmp_path, damage):
    write_set(tmp_path, "wds", compression="gzip")
    shard = tmp_path / "tiny-000001.tar.gz"
    data = bytearray(shard.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "flip":
        data[len(data) // 2] ^= 0x40
    elif damage == "crc":
        data[-8] ^= 1  # the CRC-32 of the trailer: the content decodes, the check at the end fails
    else:
        data += b"not gzip"
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"tiny-000001\.tar\.gz"):
        list(iter_tasks(tmp_path))
    report = verify_shard_set(tmp_path)
    assert [p.file for p in report.problems] == ["tiny-000001.tar.gz"]


def test_gzip_reader_accepts_concatenated_members_and_zero_padding():
    payload = bytes(range(256)) * 500
    parts = []
    for chunk in (payload[:40000], payload[40000:]):
        buf = io.BytesIO()
        w = gzip_writer(buf, 1)
        w.write(chunk)
        w.close()
        parts.append(buf.getvalue())
    stream = parts[0] + b"\x00" * 7 + parts[1] + b"\x00" * 3
    reader = GzipReader(io.BytesIO(stream), "x")
    assert reader.read(10) == payload[:10] and reader.read() == payload[10:]
    assert gzip.decompress(parts[0] + parts[1]) == payload


@pytest.mark.parametrize("tail", [b"\x00" * 700, b"\x00" * 700 + b"junk"])
def test_gzip_reader_ends_after_a_large_member_and_padding(tail):
    # the whole stream arrives in one read and inflates to more than 1 MiB: the first decompress call is output-limited,
    # and at the member's end zlib leaves the padding in unused_data and a stale copy in unconsumed_tail
    payload = bytes(range(256)) * 6000
    stream = gzip.compress(payload, mtime=0) + tail
    reader = GzipReader(io.BytesIO(stream), "big.tar.gz")
    if tail.endswith(b"junk"):
        with pytest.raises(ShardError, match="unexpected bytes after the gzip data"):
            reader.read()
    else:
        assert reader.read() == payload


def test_plain_tar_named_gz_and_mixed_sets_are_refused(tmp_path):
    write_set(tmp_path / "raw", "wds")
    (tmp_path / "raw" / "tiny-000000.tar").rename(tmp_path / "raw" / "lie-000000.tar.gz")
    with pytest.raises(ShardError, match="not gzip-compressed"):
        list(iter_tasks([str(tmp_path / "raw" / "lie-000000.tar.gz")]))
    header = make_header(6, 3)
    entries = [
        write_shard(tmp_path / "mix", "tiny", 0, 0, make_batch(0, 3), "wds", header),
        write_shard(tmp_path / "mix", "tiny", 1, 3, make_batch(3, 3), "wds", header, compression="gzip"),
    ]
    with pytest.raises(ShardError, match="mix .tar and .tar.gz"):
        write_manifest(tmp_path / "mix", header, entries)
    with pytest.raises(ShardError, match="mixes .tar and .tar.gz"):
        build_manifest_from_sidecars(tmp_path / "mix")


def test_index_rebuilds_a_gzip_manifest(tmp_path):
    write_set(tmp_path, "wds", compression="gzip")
    want = (tmp_path / "manifest.json").read_bytes()
    (tmp_path / "manifest.json").unlink()
    build_manifest_from_sidecars(tmp_path)
    assert (tmp_path / "manifest.json").read_bytes() == want


def test_unknown_compression_is_refused(tmp_path):
    with pytest.raises(ShardError, match="unknown compression 'lzf' for wds"):
        write_shard(tmp_path, "tiny", 0, 0, make_batch(0, 3), "wds", make_header(3, 3), compression="lzf")
