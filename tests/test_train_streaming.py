"""Shard streaming: batching, determinism, rank/worker splits, resume positions, bad inputs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from lasium.errors import ShardError
from lasium.train.shard_access import open_shard_set
from lasium.train.streaming import TaskStream, check_batch, make_loader, meta_batches, split_shards, to_device
from lasium.train.synthetic import write_synthetic_shards

SHAPE = (16, 16, 1)


@pytest.fixture(scope="module")
def shard_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shards")
    dirs = {}
    for container in ("wds", "hdf5"):
        dirs[container] = root / container
        write_synthetic_shards(
            dirs[container],
            container=container,
            shards=4,
            tasks_per_shard=6,
            image_shape=SHAPE,
            seed=3,
            name=f"s{container}",
        )
    return dirs


def take(stream: TaskStream, n: int) -> list[dict]:
    return [check_batch(b) for b in itertools.islice(iter(make_loader(stream)), n)]


@pytest.mark.parametrize("container", ["wds", "hdf5"])
def test_batches_have_the_task_layout_and_permuted_labels(shard_dirs, container):
    shard_set = open_shard_set(shard_dirs[container])
    assert shard_set.layout.ways == 5 and shard_set.layout.image_shape == SHAPE and len(shard_set.urls) == 4
    batches = take(
        TaskStream(shard_set, 3, seed=1, shuffle_buffer=5), 12
    )  # 36 tasks > 24 in the set: the stream goes on
    for b in batches:
        assert b["support"].shape == (3, 5, 1, 16, 16, 1) and b["support"].dtype == torch.uint8
        assert b["query"].shape == (3, 5, 5, 16, 16, 1)
        assert all(sorted(p.tolist()) == list(range(5)) for p in b["perm"])
    perms = torch.cat([b["perm"] for b in batches])
    assert len({tuple(p.tolist()) for p in perms}) > 10  # a fresh permutation per task, not a fixed order
    assert {s for b in batches for s in b["shards"]} == set(shard_set.urls)


def test_same_seed_same_stream_other_seed_other_stream(shard_dirs):
    shard_set = open_shard_set(shard_dirs["wds"])
    a = take(TaskStream(shard_set, 2, seed=7, shuffle_buffer=4), 5)
    b = take(TaskStream(shard_set, 2, seed=7, shuffle_buffer=4), 5)
    c = take(TaskStream(shard_set, 2, seed=8, shuffle_buffer=4), 5)
    assert all(torch.equal(x["support"], y["support"]) and torch.equal(x["perm"], y["perm"]) for x, y in zip(a, b))
    assert not all(torch.equal(x["support"], y["support"]) for x, y in zip(a, c))


@pytest.mark.parametrize("workers", [0, 2])
def test_starting_after_k_batches_continues_the_same_stream(shard_dirs, workers):
    shard_set = open_shard_set(shard_dirs["hdf5"])
    full = take(TaskStream(shard_set, 2, seed=5, shuffle_buffer=4, workers=workers), 7)
    rest = take(TaskStream(shard_set, 2, seed=5, shuffle_buffer=4, workers=workers, start=3), 4)
    for x, y in zip(full[3:], rest):
        assert (
            torch.equal(x["support"], y["support"])
            and torch.equal(x["query"], y["query"])
            and torch.equal(x["perm"], y["perm"])
        )


@pytest.mark.parametrize("workers,start", [(0, 4), (2, 5), (2, 6)])
def test_grouped_items_split_into_the_same_meta_batches_and_resume_inside_a_group(shard_dirs, workers, start):
    shard_set = open_shard_set(shard_dirs["wds"])
    full = take(TaskStream(shard_set, 2, seed=5, shuffle_buffer=4, workers=workers), 9)
    items = take(TaskStream(shard_set, 2, seed=5, shuffle_buffer=4, workers=workers, group=3), 3)
    assert [i["support"].shape[0] for i in items] == [6, 6, 6]
    # a grouped stream (G = 3) is its own task order with workers (items alternate between workers) ...
    grouped = [(b[0], b[1]) for b in meta_batches(iter(items), 2, torch.device("cpu"))]
    assert len(grouped) == 9 and grouped[0][0][0].shape == (2, 5, 1, 16, 16)
    if workers == 0:  # ... and the same order as ungrouped meta-batches without
        assert all(
            torch.equal(g[0][0], to_device(f["support"], f["query"], f["perm"], torch.device("cpu"))[0])
            for g, f in zip(grouped, full[:9])
        )
    resumed = take(TaskStream(shard_set, 2, seed=5, shuffle_buffer=4, workers=workers, group=3, start=start), 2)
    assert resumed[0]["support"].shape[0] == 2 * (3 - start % 3)  # the rest of the interrupted group
    after = [(b[0], b[1]) for b in meta_batches(iter(resumed), 2, torch.device("cpu"))]
    for (x, xs), (y, ys) in zip(grouped[start:], after):
        assert xs == ys and all(torch.equal(u, v) for u, v in zip(x, y))


def test_ranks_and_workers_read_distinct_shards(shard_dirs):
    urls = open_shard_set(shard_dirs["wds"]).urls
    r0, r1 = split_shards(urls, 0, 2, 0, 1)[0], split_shards(urls, 1, 2, 0, 1)[0]
    assert set(r0).isdisjoint(r1) and sorted(r0 + r1) == sorted(urls)
    w0, w1 = split_shards(urls, 1, 2, 0, 2)[0], split_shards(urls, 1, 2, 1, 2)[0]
    assert set(w0).isdisjoint(w1) and sorted(w0 + w1) == sorted(r1)
    shared, is_shared = split_shards(urls, 0, 2, 1, 3)  # 2 shards, 3 workers: each worker reads both
    assert is_shared and shared == r0
    with pytest.raises(ShardError, match="4 shard\\(s\\) cannot feed 5 ranks"):
        split_shards(urls, 0, 5, 0, 1)
    # in a real DataLoader with two workers, each worker keeps to its own shards
    shard_set = open_shard_set(shard_dirs["wds"])
    batches = take(TaskStream(shard_set, 2, seed=1, rank=0, world_size=2, workers=2, shuffle_buffer=2), 6)
    assert {s for b in batches[0::2] for s in b["shards"]} == {r0[0]}
    assert {s for b in batches[1::2] for s in b["shards"]} == {r0[1]}


def test_to_device_maps_class_rows_to_their_permuted_labels(shard_dirs):
    b = take(TaskStream(open_shard_set(shard_dirs["wds"]), 2, seed=1, shuffle_buffer=2), 1)[0]
    s, sl, q, ql = to_device(b["support"], b["query"], b["perm"], torch.device("cpu"))
    assert s.shape == (2, 5, 1, 16, 16) and s.dtype == torch.float32 and 0 <= s.min() and s.max() <= 1
    assert q.shape == (2, 25, 1, 16, 16) and ql.shape == (2, 25)
    t, i, j = 1, 3, 2  # query image j of class row i of task t
    torch.testing.assert_close(q[t, i * 5 + j, 0], b["query"][t, i, j, :, :, 0].float() / 255)
    assert ql[t, i * 5 + j] == b["perm"][t, i] and sl[t, i] == b["perm"][t, i]


def test_url_list_brace_pattern_and_pipe(shard_dirs):
    folder = shard_dirs["wds"]
    pattern = str(folder / "swds-{000000..000003}.tar")
    assert len(open_shard_set(pattern).urls) == 4
    pipe = [f"pipe:cat {folder / 'swds-000000.tar'}", f"pipe:cat {folder / 'swds-000001.tar'}"]
    batches = take(TaskStream(open_shard_set(pipe), 2, seed=1, shuffle_buffer=2), 7)  # 14 tasks > 12: second round
    assert {s for b in batches for s in b["shards"]} == set(pipe)


def test_mixed_configurations_are_refused(tmp_path, shard_dirs):
    write_synthetic_shards(tmp_path / "ten", shards=1, tasks_per_shard=2, ways=10, image_shape=SHAPE, name="ten")
    write_synthetic_shards(
        tmp_path / "big", shards=1, tasks_per_shard=2, image_shape=(20, 20, 1), name="big", manifest=False
    )
    with pytest.raises(ShardError, match="mixed shard configurations.*10-way 1\\+5-shot 16x16x1.*5-way"):
        open_shard_set([str(shard_dirs["wds"]), str(tmp_path / "ten")])
    with pytest.raises(ShardError, match="big-000000.tar holds 5-way 1\\+5-shot 20x20x1"):
        open_shard_set([str(shard_dirs["wds"] / "swds-000000.tar"), str(tmp_path / "big" / "big-000000.tar")])
    # without a sidecar the first task tells the layout
    (tmp_path / "big" / "big-000000.tar.json").unlink()
    mixed = [str(shard_dirs["wds"] / "swds-000000.tar"), str(tmp_path / "big" / "big-000000.tar")]
    with pytest.raises(ShardError, match="big-000000.tar holds 5-way 1\\+5-shot 20x20x1"):
        open_shard_set(mixed)
    # remote shards are not all opened up front: a different one is caught, by name, while streaming
    remote = [f"pipe:cat {u}" for u in mixed]
    shard_set = open_shard_set(remote)
    with pytest.raises(ShardError, match="pipe:cat .*big-000000.tar: task 0: support is uint8\\(5, 1, 20, 20, 1\\)"):
        take(TaskStream(shard_set, 2, seed=1, shuffle_buffer=2), 10)


def test_missing_shards_are_clear_errors(tmp_path, shard_dirs):
    with pytest.raises(ShardError, match="does not exist"):
        open_shard_set(str(tmp_path / "nowhere"))
    with pytest.raises(ShardError, match="not found"):
        open_shard_set([str(tmp_path / "x-000000.tar")])
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in shard_dirs["hdf5"].iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "shdf5-000002.h5").unlink()
    with pytest.raises(ShardError, match="shdf5-000002.h5 listed in the manifest .* is missing"):
        open_shard_set(copy)


@pytest.mark.parametrize("container,name", [("wds", "swds-000001.tar"), ("hdf5", "shdf5-000001.h5")])
def test_corrupt_shard_names_itself_and_skip_corrupt_warns(tmp_path, shard_dirs, container, name, capfd):
    copy = tmp_path / container
    copy.mkdir()
    for p in shard_dirs[container].iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    data = (copy / name).read_bytes()
    (copy / name).write_bytes(data[: len(data) // 2])  # truncated, as by an interrupted copy
    shard_set = open_shard_set(copy)
    with pytest.raises(ShardError, match=name):
        take(TaskStream(shard_set, 2, seed=1, shuffle_buffer=2), 12)
    batches = take(TaskStream(shard_set, 2, seed=1, shuffle_buffer=2, skip_corrupt=True), 30)
    assert len(batches) == 30
    assert f"warning: skipping shard {copy / name}" in capfd.readouterr().err
    later = {s for b in batches[-15:] for s in b["shards"]}  # past the first round (< 24 tasks)
    assert str(copy / name) not in later  # a skipped shard is not read again


def test_every_shard_corrupt_stops_with_an_error(tmp_path):
    write_synthetic_shards(tmp_path, shards=1, tasks_per_shard=4, image_shape=SHAPE, name="one")
    path = tmp_path / "one-000000.tar"
    path.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ShardError, match="no readable task"):
        take(TaskStream(open_shard_set(path.as_posix()), 2, skip_corrupt=True), 2)


# The stream's order, pinned (computed before the shuffle buffer held encoded tasks; holding them must not change
# which task comes when): shard number:task index of the first four meta-batches of 2, seed 7, buffer 5.
PINNED_ORDER = {
    ("wds", 0): [["3:21", "3:18"], ["3:22", "0:0"], ["0:1", "3:23"], ["3:19", "0:3"]],
    ("hdf5", 0): [["3:21", "3:18"], ["3:22", "0:0"], ["0:1", "3:23"], ["3:19", "0:3"]],
    ("wds", 2): [["0:3", "0:0"], ["3:19", "3:23"], ["0:4", "2:12"], ["3:21", "3:20"]],
}


@pytest.mark.parametrize("container,workers", sorted(PINNED_ORDER))
def test_stream_order_is_pinned(shard_dirs, container, workers):
    stream = TaskStream(open_shard_set(shard_dirs[container]), 2, seed=7, shuffle_buffer=5, workers=workers)
    got = [
        [f"{int(Path(u).name.split('-')[1].split('.')[0])}:{i}" for u, i in zip(b["shards"], b["indices"].tolist())]
        for b in take(stream, 4)
    ]
    assert got == PINNED_ORDER[(container, workers)]


def test_the_shuffle_buffer_holds_encoded_tasks_and_decodes_only_what_leaves_it(shard_dirs, monkeypatch):
    """A run's first meta-batch waits for its own tasks' decoding, not the whole buffer's (at 84×84×3 a buffer
    of ~400 tasks took seconds to decode before the first step)."""
    import lasium.shards.reader as reader

    shard_set = open_shard_set(shard_dirs["wds"])
    decoded, checked = [], []
    real_decode, real_check = reader.decode_wds_sample, reader._check_wds_sample
    monkeypatch.setattr(reader, "decode_wds_sample", lambda *a: decoded.append(1) or real_decode(*a))
    monkeypatch.setattr(reader, "_check_wds_sample", lambda *a: checked.append(1) or real_check(*a))
    first = take(TaskStream(shard_set, 2, seed=7, shuffle_buffer=20), 1)[0]
    assert first["support"].shape[0] == 2
    assert len(checked) >= 21 and len(decoded) == 2  # 21 tasks read (a full buffer and one more), 2 decoded


def test_a_task_that_does_not_decode_is_skipped_with_its_shard(tmp_path, shard_dirs, capfd):
    """Bytes as the manifest promises, but one task's support.npy is not an array (a crafted set): the stream stops
    with one line naming the shard, or, under skip_corrupt, drops the task and reads that shard no more."""
    import hashlib
    import io
    import json
    import tarfile

    copy = tmp_path / "crafted"
    copy.mkdir()
    for p in shard_dirs["wds"].iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    name = "swds-000002.tar"
    members = []
    with tarfile.open(copy / name) as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read()
            members.append((m, b"\x93NUMPY not an array" if m.name == "task-000000013.support.npy" else data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for m, data in members:
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    (copy / name).write_bytes(buf.getvalue())
    for meta in [copy / "manifest.json", copy / f"{name}.json"]:
        if not meta.is_file():
            continue
        doc = json.loads(meta.read_text())
        for entry in doc.get("shards", []) + ([doc["shard"]] if "shard" in doc else []):  # manifest, sidecar
            if entry["file"] == name:
                entry["bytes"], entry["sha256"] = len(buf.getvalue()), hashlib.sha256(buf.getvalue()).hexdigest()
        meta.write_text(json.dumps(doc))
    shard_set = open_shard_set(copy)
    with pytest.raises(ShardError, match=name):
        take(TaskStream(shard_set, 2, seed=1, shuffle_buffer=3), 12)
    batches = take(TaskStream(shard_set, 2, seed=1, shuffle_buffer=3, skip_corrupt=True), 30)
    assert f"warning: skipping shard {copy / name}" in capfd.readouterr().err
    delivered = [(s, i) for b in batches for s, i in zip(b["shards"], b["indices"].tolist())]
    assert (str(copy / name), 13) not in delivered
    later = {s for s, _ in delivered[-30:]}  # past the first round (24 tasks in the set)
    assert str(copy / name) not in later
