"""lasium-gen --source umtra: UMTRA tasks (Khodadadeh et al., NeurIPS 2019) from a flat folder of unlabeled images."""

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

pytestmark = pytest.mark.usefixtures("one_thread")

TESTS = Path(__file__).parent
NUM_IMAGES = 43  # 8 tasks of 5 per epoch; 3 images left out of each epoch


def flat_folder(root: Path, count: int = NUM_IMAGES) -> Path:
    """``count`` distinct 28×28 images, bright ink (255) on a dark (0) background, directly in ``root`` (no classes)."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = np.zeros((28, 28), np.uint8)
        img[8:20, 8:20] = np.where(rng.random((12, 12)) < 0.35, 255, 0)
        Image.fromarray(img).save(root / f"img{i:03d}.png")
    return root


@pytest.fixture
def dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "cache"))
    return f"imagefolder:{flat_folder(tmp_path / 'flat')}"


def run(out: Path, dataset: str, *, rank: RankInfo | None = None, **kw):
    kw.setdefault("num_tasks", 20)
    kw.setdefault("tasks_per_shard", 6)
    kw.setdefault("workers", 0)
    kw.setdefault("device", "cpu")
    cfg = GenerationConfig.build("umtra", dataset=dataset, out=str(out), progress=False, **kw)
    return GenerationJob(cfg, rank=rank or RankInfo(), log=lambda m: None).run()


def shard_hashes(folder: Path) -> dict[str, str]:
    return {e.file: e.sha256 for e in read_manifest(folder).shards}


def shifted(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = image[y − dy, x − dx]``, background 0 shifted in."""
    h, w = image.shape[:2]
    out = np.zeros_like(image)
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def explaining_shifts(support: np.ndarray, query: np.ndarray, reach: int) -> list[tuple[int, int]]:
    """The shifts (dx, dy) with |dx|, |dy| ≤ reach under which ``query`` is the shifted support with pixels
    only removed."""
    return [
        (dx, dy)
        for dx in range(-reach, reach + 1)
        for dy in range(-reach, reach + 1)
        if np.all((query == shifted(support, dx, dy)) | (query == 0))
    ]


def test_queries_are_the_support_shifted_at_most_6px_with_pixels_only_removed(tmp_path, dataset):
    res = run(tmp_path / "u", dataset, num_tasks=12)
    tasks = list(iter_tasks(res.out_dir))
    assert (
        len(tasks) == 12 and tasks[0].support.shape == (5, 1, 28, 28, 1) and tasks[0].query.shape == (5, 5, 28, 28, 1)
    )
    used_shifts, kept = set(), []
    for task in tasks:
        for row in range(5):
            support = task.support[row, 0]
            for query in task.query[row]:
                fits = explaining_shifts(support, query, 6)
                assert fits, (
                    f"task {task.meta['index']} class {row}: a query is not its support shifted ≤ 6 px minus pixels"
                )
                wider = explaining_shifts(support, query, 9)
                assert set(wider) == set(fits)  # no larger shift explains it better: the tested reach is the real one
                used_shifts.update(fits)
                kept.append(np.count_nonzero(query) / max(1, np.count_nonzero(support)))
    # The augmentation really happens: about half the ink is erased, and shifts cover the whole range.
    assert 0.4 < float(np.mean(kept)) < 0.6
    assert max(max(abs(dx), abs(dy)) for dx, dy in used_shifts) == 6


def test_no_two_classes_share_an_image_and_epochs_draw_without_replacement(tmp_path, dataset):
    from lasium.data import load_unlabeled

    res = run(tmp_path / "u", dataset, num_tasks=20)
    pool = load_unlabeled(dataset)
    by_id = {image_id: pool.images[i] for i, image_id in enumerate(pool.image_ids)}
    tasks = list(iter_tasks(res.out_dir))
    for task in tasks:
        ids = task.meta["anchor_source_ids"]
        assert len(set(ids)) == 5 and task.meta["strategy"] == "umtra"
        for row, image_id in enumerate(ids):
            assert np.array_equal(task.support[row, 0], by_id[image_id])  # the support is the image itself
        flat = task.support.reshape(5, -1)
        assert len({row.tobytes() for row in flat}) == 5
    epoch0 = [i for t in tasks[:8] for i in t.meta["anchor_source_ids"]]
    assert len(set(epoch0)) == 40  # 8 tasks × 5 images of one epoch: all distinct
    epoch1 = [i for t in tasks[8:16] for i in t.meta["anchor_source_ids"]]
    assert len(set(epoch1)) == 40 and epoch1 != epoch0  # a new permutation each epoch


def test_labels_are_never_opened(tmp_path, dataset, monkeypatch):
    import lasium.data.datasets as datasets

    def no_labels(*args, **kwargs):
        raise AssertionError("UMTRA must not read a labeled split")

    monkeypatch.setattr(datasets, "labeled_split", no_labels)
    monkeypatch.setattr(datasets, "load_split", no_labels)
    res = run(tmp_path / "u", dataset, num_tasks=6)
    m = read_manifest(res.out_dir)
    assert res.manifest_written and m.generator is None and m.source["labels"] == "never read"


def test_manifest_records_the_method_and_its_options(tmp_path, dataset):
    from lasium.data import load_unlabeled

    res = run(tmp_path / "u", dataset, num_tasks=6, umtra_erase=0.25, umtra_shift=3)
    m = read_manifest(res.out_dir)
    assert m.config["source"] == "umtra" and m.config["strategy"] == "umtra" and m.config["device_type"] == "cpu"
    src = m.source
    assert src["kind"] == "umtra" and src["dataset"] == dataset and src["num_images"] == NUM_IMAGES
    assert src["fingerprint"] == load_unlabeled(dataset).fingerprint and src["tasks_per_epoch"] == 8
    assert src["augmentation"]["erase_probability"] == 0.25 and src["augmentation"]["max_shift"] == 3
    default = read_manifest(run(tmp_path / "d", dataset, num_tasks=6).out_dir).source["augmentation"]
    assert default["erase_probability"] == 0.5 and default["max_shift"] == 6
    from lasium.errors import ConfigError

    with pytest.raises(ConfigError, match="different config.*max_shift"):
        run(tmp_path / "u", dataset, num_tasks=6, umtra_erase=0.25, umtra_shift=4)


def test_same_seed_same_bytes_ranks_and_ranges_reassemble_the_set(tmp_path, dataset):
    want = shard_hashes(run(tmp_path / "ref", dataset).out_dir)
    run(tmp_path / "again", dataset, name="ref", workers=1)
    assert shard_hashes(tmp_path / "again") == want
    assert shard_hashes(run(tmp_path / "seed1", dataset, name="ref", seed=1).out_dir) != want
    ranks = tmp_path / "ranks"
    for r in (1, 0):  # rank 0 last: it writes the manifest
        run(ranks, dataset, name="ref", rank=RankInfo(r, 2, r))
    assert shard_hashes(ranks) == want
    parts = tmp_path / "parts"
    run(parts, dataset, name="ref", shard_range="0:2")
    run(parts, dataset, name="ref", shard_range="2:")
    build_manifest_from_sidecars(parts)
    assert shard_hashes(parts) == want and verify_shard_set(parts).ok


def test_stock_readers_and_verify(tmp_path, dataset):
    import h5py
    import webdataset as wds

    out = tmp_path / "w"
    run(out, dataset, num_tasks=8)
    tasks = list(iter_tasks(out))
    with tarfile.open(out / "w-000001.tar") as tar:
        query = np.load(io.BytesIO(tar.extractfile("task-000000006.query.npy").read()), allow_pickle=False)
        meta = json.loads(tar.extractfile("task-000000006.meta.json").read())
    assert np.array_equal(query, tasks[6].query) and meta["index"] == 6 and meta["strategy"] == "umtra"
    samples = list(wds.WebDataset(str(out / "w-000000.tar"), shardshuffle=False))
    assert np.array_equal(np.load(io.BytesIO(samples[2]["support.npy"]), allow_pickle=False), tasks[2].support)
    h5 = tmp_path / "h"
    run(h5, dataset, num_tasks=8, container="hdf5", name="w")
    with h5py.File(h5 / "w-000001.h5", "r") as f:
        assert np.array_equal(f["query"][0], tasks[6].query) and np.array_equal(f["support"][1], tasks[7].support)
    r = subprocess.run([sys.executable, "-m", "lasium.shards.cli", "verify", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert verify_shard_set(h5).ok


@pytest.mark.parametrize(
    "args, expect",
    [
        (["--shots", "2"], "--shots must be 1"),
        (["--umtra-erase", "1.5"], "--umtra-erase must be a probability"),
        (["--umtra-shift", "-1"], "--umtra-shift must be 0 or more"),
        (["--ways", "50"], "fewer than --ways 50"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, dataset, args, expect):
    out = tmp_path / "o"
    result = CliRunner().invoke(
        main,
        [
            "--source",
            "umtra",
            "--dataset",
            dataset,
            "--n-tasks",
            "10",
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
    assert expect in one_line_error(result)
    assert not out.exists() or not list(out.iterdir())


def test_killed_job_resumes_to_identical_bytes(tmp_path, dataset):
    # Every shard takes at least 0.1 s (a sitecustomize in the child process), so the job can be killed mid-run.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os, time\n"
        "if os.environ.get('LASIUM_TEST_SLOW_UMTRA'):\n"
        "    import lasium.generate.sources.umtra as u\n"
        "    _b = u.UmtraTaskSource.shard_batch\n"
        "    def slow(self, *a):\n"
        "        time.sleep(0.1)\n"
        "        return _b(self, *a)\n"
        "    u.UmtraTaskSource.shard_batch = slow\n"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        LASIUM_TEST_SLOW_UMTRA="1",
    )
    args = [
        "--source",
        "umtra",
        "--dataset",
        dataset,
        "--n-tasks",
        "150",
        "--tasks-per-shard",
        "5",
        "--device",
        "cpu",
        "--quiet",
        "--name",
        "set",
    ]
    ref = tmp_path / "ref"
    assert CliRunner().invoke(main, [*args, "--out", str(ref), "--workers", "0"]).exit_code == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lasium.generate.job.cli", *args, "--out", str(out)]
    assert_kill_and_resume_identical(cmd, env, out, ref)


@pytest.mark.omniglot
def test_omniglot_umtra_tasks_erase_ink_on_a_dark_background(tmp_path, omniglot_root, omniglot_cache, monkeypatch):
    monkeypatch.setenv("LASIUM_CACHE", str(omniglot_cache))
    res = run(tmp_path / "o", "omniglot", data_root=str(omniglot_root), num_tasks=4, tasks_per_shard=4)
    m = read_manifest(res.out_dir)
    assert m.source["num_images"] == 24000 and m.source["tasks_per_epoch"] == 4800 and m.source["dataset"] == "omniglot"
    for task in iter_tasks(res.out_dir):
        assert (
            task.support.shape == (5, 1, 28, 28, 1) and int(task.support[:, 0, 0, 0].max()) == 0
        )  # bright ink, dark border
        for row in range(5):
            for query in task.query[row]:
                assert explaining_shifts(task.support[row, 0], query, 6)


def test_torchrun_two_processes_split_shards(tmp_path, dataset):
    pytest.importorskip("torch.distributed.run")
    args = [
        "--source",
        "umtra",
        "--dataset",
        dataset,
        "--n-tasks",
        "30",
        "--tasks-per-shard",
        "6",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--quiet",
        "--name",
        "s",
    ]
    want = shard_hashes(run(tmp_path / "ref", dataset, num_tasks=30, tasks_per_shard=6, name="s").out_dir)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "lasium.generate.job.cli",
        *args,
        "--out",
        str(tmp_path / "tr"),
    ]
    r = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "rank 1:" in r.stderr and shard_hashes(tmp_path / "tr") == want
