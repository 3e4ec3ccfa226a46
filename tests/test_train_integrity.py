"""The trainer uses no byte a manifest does not vouch for (issue 25, part 2).

A set of three shards (two tasks each) is damaged in one shard, shard 1, in each way below: one pixel byte
changed in a plain ``.tar`` (on disk and served over HTTP from 127.0.0.1), a ``.tar.gz`` gzipped again with
a changed byte, a pixel changed inside an HDF5 shard, a manifest whose sha256 no longer matches the file, and
a file whose size differs. ``lasium-train`` stops on each with one line naming the shard (exit 2); with
``--skip-corrupt`` it skips the shard with any ``--workers`` count (with 2 or 3 workers, shard 1 is one
worker's only shard) and ends with a count of what it skipped. The trainer's task stream is checked task by
task: every task it yields is the original task of its index, byte for byte, and none comes from shard 1.

A set without a manifest whose sidecars leave a task range uncovered (what a disk-full job leaves) is refused
with the missing range, unless ``--allow-partial``.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fault_server import static_server

from lasium.errors import ShardError
from lasium.shards import iter_tasks
from lasium.shards.cli import main as shards_main
from lasium.shards.integrity import forget_checked
from lasium.train.cli import main as train_main
from lasium.train.shard_access import open_shard_set
from lasium.train.streaming import TaskStream, check_batch, make_loader
from lasium.train.synthetic import write_synthetic_shards

SHAPE = (16, 16, 1)
BAD = 1  # the damaged shard
TASKS_PER_SHARD = 2
DAMAGES = ["tar-pixel", "tar-gz-regzipped", "hdf5-pixel", "manifest-sha256", "size"]
KINDS = DAMAGES + [f"http-{damage}" for damage in DAMAGES]  # each read from the folder, and over HTTP


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    """Intact sets, one per container/compression, written once."""
    root = tmp_path_factory.mktemp("intact")
    sets = {}
    for key, container, compression in (("tar", "wds", "none"), ("gz", "wds", "gzip"), ("h5", "hdf5", "auto")):
        sets[key] = root / key
        write_synthetic_shards(
            sets[key],
            container=container,
            compression=compression,
            shards=3,
            tasks_per_shard=TASKS_PER_SHARD,
            image_shape=SHAPE,
            kind="random",
            seed=4,
            name=f"set{key}",
        )
    return sets


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A static file server on 127.0.0.1: (root folder, base URL)."""
    root = tmp_path_factory.mktemp("www")
    with static_server(root) as url:
        yield root, url


def flip_pixel_in_tar(data: bytes, index: int) -> bytes:
    """The tar ``data`` with the first support pixel of task ``index`` inverted (a valid tar still)."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.getmember(f"task-{index:09d}.support.npy")
    npy = data[member.offset_data : member.offset_data + 10]
    pixel = member.offset_data + 10 + int.from_bytes(npy[8:10], "little")
    out = bytearray(data)
    out[pixel] ^= 0xFF
    return bytes(out)


def damaged_set(kind: str, originals: dict[str, Path], tmp_path: Path, server) -> tuple[str, str]:
    """A copy of an intact set with shard 1 damaged as ``kind`` says: (--shards value, damaged shard's file).

    ``http-<damage>``: the same damage, the set served over HTTP (its manifest's URL is the --shards value)."""
    damage = kind.removeprefix("http-")
    key = {"tar-gz-regzipped": "gz", "hdf5-pixel": "h5"}.get(damage, "tar")
    root = server[0] / tmp_path.name if kind.startswith("http") else tmp_path
    folder = root / f"damaged-{kind}"
    shutil.copytree(originals[key], folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    name = manifest["shards"][BAD]["file"]
    shard = folder / name
    first = BAD * TASKS_PER_SHARD
    if damage == "tar-pixel":
        shard.write_bytes(flip_pixel_in_tar(shard.read_bytes(), first))
    elif damage == "tar-gz-regzipped":
        tar = flip_pixel_in_tar(gzip.decompress(shard.read_bytes()), first)
        shard.write_bytes(gzip.compress(tar, compresslevel=1, mtime=0))
    elif damage == "hdf5-pixel":
        import h5py

        with h5py.File(shard, "r+") as f:
            f["support"][0, 0, 0, 0, 0, 0] = 255 - f["support"][0, 0, 0, 0, 0, 0]
    elif damage == "manifest-sha256":
        entry = manifest["shards"][BAD]
        entry["sha256"] = ("0" if entry["sha256"][0] != "0" else "1") + entry["sha256"][1:]
        (folder / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "size":
        with open(shard, "ab") as f:
            f.write(bytes(512))  # still a valid tar: the end-of-archive marker comes first
    else:
        raise AssertionError(kind)
    if kind.startswith("http"):
        return f"{server[1]}/{tmp_path.name}/{folder.name}/manifest.json", name
    return str(folder), name


def train_args(shards: str, out: Path, *extra: str) -> list[str]:
    # 3 steps of 2 tasks with a 1-task shuffle buffer read 7 tasks: more than the 4 of the intact shards, so the
    # first round over the shards reaches the damaged one whatever the order
    return [
        "--shards",
        shards,
        "--algo",
        "protonets",
        "--iterations",
        "3",
        "--meta-batch",
        "2",
        "--shuffle-buffer",
        "1",
        "--val-dataset",
        "none",
        "--device",
        "cpu",
        "--checkpoint-every",
        "0",
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def invoke(cli, args: list[str]):
    forget_checked()
    return CliRunner().invoke(cli, args)


def one_line_error(result) -> str:
    """The one ``error:`` line of a command that exited 2 (besides its run folder and any note or warning)."""
    assert result.exit_code == 2, result.output
    info = ("run folder: ", "note: ", "warning: ")
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith(info)]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "kind,workers", [(kind, 0) for kind in KINDS] + [("tar-pixel", 2), ("http-tar-gz-regzipped", 2)]
)
def test_lasium_train_refuses_a_shard_whose_bytes_differ(kind, workers, originals, tmp_path, server):
    shards, name = damaged_set(kind, originals, tmp_path, server)
    line = one_line_error(invoke(train_main, train_args(shards, tmp_path / "run", "--workers", str(workers))))
    assert name in line and ("sha256" in line or "bytes, the manifest says" in line), line
    assert "--skip-corrupt" in line


@pytest.mark.parametrize(
    "kind,workers",
    [
        ("tar-pixel", 0),
        ("tar-pixel", 1),
        ("tar-pixel", 2),
        ("tar-pixel", 3),  # one shard per worker: the bad shard is a worker's only one
        ("tar-pixel", 5),  # more workers than shards
        ("http-tar-pixel", 2),
        ("http-tar-gz-regzipped", 5),
        ("tar-gz-regzipped", 3),
        ("hdf5-pixel", 2),
        ("manifest-sha256", 1),
        ("size", 3),
    ],
)
def test_skip_corrupt_skips_it_with_any_worker_count(kind, workers, originals, tmp_path, server):
    shards, name = damaged_set(kind, originals, tmp_path, server)
    key = {"tar-gz-regzipped": "gz", "hdf5-pixel": "h5"}.get(kind.removeprefix("http-"), "tar")
    want = {t.meta["index"]: t for t in iter_tasks(originals[key])}
    bad = set(range(BAD * TASKS_PER_SHARD, (BAD + 1) * TASKS_PER_SHARD))

    # the trainer's task stream: 3 rounds' worth of tasks, every one the original of its index
    forget_checked()
    stream = TaskStream(open_shard_set(shards), 2, seed=1, workers=workers, shuffle_buffer=2, skip_corrupt=True)
    items = [check_batch(item) for _, item in zip(range(6), make_loader(stream))]
    seen = []
    for item in items:
        for index, support, query in zip(item["indices"].tolist(), item["support"], item["query"]):
            assert np.array_equal(support.numpy(), want[index].support)
            assert np.array_equal(query.numpy(), want[index].query)
            seen.append(index)
    assert not bad & set(seen) and set(seen) == set(want) - bad
    skips = [s for item in items for s in item["skipped"]]
    assert skips and {s["shard"].rsplit("/", 1)[-1] for s in skips} == {name}
    assert all(s["unread"] == TASKS_PER_SHARD for s in skips)

    # lasium-train: trains, warns, and ends with the count
    result = invoke(train_main, train_args(shards, tmp_path / "run", "--workers", str(workers), "--skip-corrupt"))
    assert result.exit_code == 0, result.output
    if workers == 0:  # (a DataLoader worker's warnings go to the real stderr, which the runner does not capture)
        assert f"warning: skipping shard {shards.rsplit('/', 1)[0] if kind.startswith('http') else shards}/{name}" in (
            result.stderr
        )
    summary = [line for line in result.stderr.splitlines() if "--skip-corrupt skipped" in line]
    assert len(summary) == 1 and "skipped 1 shard(s), 2 task(s) not trained on" in summary[0], result.stderr
    assert name in summary[0]


def test_a_skipped_shard_on_every_reader_stops_with_one_line(originals, tmp_path):
    folder = tmp_path / "all-bad"
    shutil.copytree(originals["tar"], folder)
    for shard in sorted(folder.glob("*.tar")):
        shard.write_bytes(flip_pixel_in_tar(shard.read_bytes(), int(shard.name[-10:-4]) * TASKS_PER_SHARD))
    line = one_line_error(
        invoke(train_main, train_args(str(folder), tmp_path / "run", "--workers", "2", "--skip-corrupt"))
    )
    assert "no readable task left in the 3 shard(s) of rank 0" in line and "every one was skipped" in line


def test_library_readers_check_bytes_too(originals, tmp_path, server):
    shards, name = damaged_set("tar-pixel", originals, tmp_path, server)
    forget_checked()
    got = []
    with pytest.raises(ShardError, match=f"{name}: sha256 .* differs from the manifest's"):
        for task in iter_tasks(shards):
            got.append(task.meta["index"])
    assert got == [0, 1]  # shard 0's tasks, then nothing of shard 1
    result = invoke(shards_main, ["preview", shards, "--start", "2", "--tasks", "1", "--out", str(tmp_path / "p.png")])
    assert name in one_line_error(result) and not (tmp_path / "p.png").exists()
    # a shard given by path is checked against its sidecar
    forget_checked()
    with pytest.raises(ShardError, match="sha256 .* differs"):
        [check_batch(item) for item in make_loader(TaskStream(open_shard_set([f"{shards}/{name}"]), 1, endless=False))]


def test_a_rewritten_file_is_checked_again(originals, tmp_path):
    folder = tmp_path / "set"
    shutil.copytree(originals["tar"], folder)
    forget_checked()
    assert len(list(iter_tasks(folder))) == 6  # every shard checked, and remembered
    shard = folder / "settar-000001.tar"
    shard.write_bytes(flip_pixel_in_tar(shard.read_bytes(), 2))  # same size, same inode: a new change time
    with pytest.raises(ShardError, match="settar-000001.tar: sha256"):
        list(iter_tasks(folder))


def write_partial(folder: Path, manifest: bool = False) -> None:
    """What a disk-full job leaves: 10 one-task shards with sidecars, no manifest, shards 2..4 never written."""
    write_synthetic_shards(folder, shards=10, tasks_per_shard=1, image_shape=SHAPE, name="part", manifest=manifest)
    for i in (2, 3, 4):
        (folder / f"part-{i:06d}.tar").unlink()
        (folder / f"part-{i:06d}.tar.json").unlink()


def test_a_partial_set_without_manifest_is_refused_unless_asked(tmp_path):
    folder = tmp_path / "part"
    write_partial(folder)
    line = one_line_error(invoke(train_main, train_args(str(folder), tmp_path / "run", "--workers", "0")))
    assert "missing tasks 2..4" in line and "--allow-partial" in line
    assert not (tmp_path / "run").exists()

    with pytest.raises(ShardError, match=r"missing tasks 2\.\.4"):
        list(iter_tasks(folder))
    assert [t.meta["index"] for t in iter_tasks(folder, allow_partial=True)] == [0, 1, 5, 6, 7, 8, 9]

    verify = CliRunner().invoke(shards_main, ["verify", str(folder), "--no-progress"])
    assert verify.exit_code == 1 and "missing tasks 2..4" in verify.output
    verify = CliRunner().invoke(shards_main, ["verify", str(folder), "--no-progress", "--allow-partial"])
    assert verify.exit_code == 0 and verify.stdout.startswith("ok: 7 shards, 7 tasks"), verify.output
    assert "tasks 2..4 missing" in verify.stderr
    out = tmp_path / "p.png"
    assert "missing tasks 2..4" in one_line_error(
        CliRunner().invoke(shards_main, ["preview", str(folder), "--out", out])
    )
    assert CliRunner().invoke(shards_main, ["preview", str(folder), "--out", out, "--allow-partial"]).exit_code == 0
    inspect = CliRunner().invoke(shards_main, ["inspect", str(folder)])
    assert inspect.exit_code == 0 and "missing    tasks 2..4 (a partial set)" in inspect.output, inspect.output

    # bare shard files (no sidecars): a skipped shard number is just as missing
    for sidecar in folder.glob("*.json"):
        sidecar.unlink()
    line = one_line_error(invoke(train_main, train_args(str(folder), tmp_path / "run2", "--workers", "0")))
    assert "missing shard(s) part-000002, part-000003, part-000004" in line and "--allow-partial" in line


@pytest.mark.slow  # a real (3-step) training run
def test_lasium_train_takes_a_partial_set_when_asked(tmp_path):
    folder = tmp_path / "part"
    write_partial(folder)
    result = invoke(train_main, train_args(str(folder), tmp_path / "run", "--workers", "0", "--allow-partial"))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "train_config.json").read_text())["allow_partial"] is True


def test_help_teaches_the_new_options():
    text = CliRunner().invoke(train_main, ["--help"]).output
    assert "--allow-partial" in text and "sha256" in text
    for command in ("verify", "preview"):
        assert "--allow-partial" in CliRunner().invoke(shards_main, [command, "--help"]).output


def test_an_hdf5_shard_replaced_after_its_check_is_refused(originals, tmp_path, monkeypatch):
    """h5py reads a local shard by path: the file it opens must be the one that was checked, unchanged."""
    import os

    import h5py

    import lasium.shards.reader as reader

    folder = tmp_path / "set"
    shutil.copytree(originals["h5"], folder)
    checked = reader.open_checked_shard

    def replaced_after_the_check(url, entry):
        f = checked(url, entry)
        other = tmp_path / "other.h5"
        shutil.copyfile(url, other)
        with h5py.File(other, "r+") as h:
            h["support"][0, 0, 0, 0, 0, 0] = 255 - h["support"][0, 0, 0, 0, 0, 0]
        os.replace(other, url)  # another file at the same path, as 'mv' or a careless copy would leave
        return f

    forget_checked()
    monkeypatch.setattr(reader, "open_checked_shard", replaced_after_the_check)
    with pytest.raises(ShardError, match="seth5-000000.h5 changed after it was checked"):
        list(iter_tasks(folder))
