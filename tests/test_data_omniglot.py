"""The real Omniglot (skipped unless LASIUM_DATA holds omniglot/images_{background,evaluation}.zip).

The zips are decoded once per test session into a temporary cache (``omniglot_cache``); every test
here reads that cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lasium.data.omniglot as omniglot_module
from lasium.data import EpisodeSampler, fingerprint, load_decoded, load_split, load_unlabeled, omniglot_class_split
from lasium.data.cli import main
from lasium.errors import DataError

pytestmark = pytest.mark.omniglot

SPLIT_SIZES = {"train": (1200, 24000), "val": (100, 2000), "test": (323, 6460)}


@pytest.fixture(scope="session")
def omniglot_cache(omniglot_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder in which all of Omniglot has been decoded (once per session, on all cores)."""
    cache = tmp_path_factory.mktemp("lasium-cache")
    data = load_decoded("omniglot", data_root=omniglot_root, cache_dir=cache, progress=False)
    assert data.info["cache"] == "written"
    return cache


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("Omniglot PNGs were decoded although the cache should have been used")

    monkeypatch.setattr(omniglot_module, "run_jobs", refuse)


def test_splits_sizes_shapes_and_ids(omniglot_root: Path, omniglot_cache: Path, no_decoding) -> None:
    seen: dict[str, set[str]] = {}
    for split, (classes, images) in SPLIT_SIZES.items():
        part = load_split("omniglot", split, data_root=omniglot_root, cache_dir=omniglot_cache)
        assert part.num_classes == classes and len(part) == images
        assert part.images.shape == (images, 28, 28, 1) and part.images.dtype == np.uint8
        assert part.labels.dtype == np.int64 and (part.class_counts() == 20).all()
        assert len(set(part.image_ids)) == images and all(i.startswith("omniglot/") for i in part.image_ids)
        seen[split] = set(part.class_names)
    assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"])
    assert sum(len(s) for s in seen.values()) == 1623


def test_split_is_the_pinned_permutation(omniglot_root: Path, omniglot_cache: Path, no_decoding) -> None:
    data = load_decoded("omniglot", data_root=omniglot_root, cache_dir=omniglot_cache)
    assert data.class_splits == omniglot_class_split()
    # Global id 1 is Arcadian/character01 (val), 2 is train, 3 is test; 0709 is Alphabet_of_the_Magi/character01.
    assert data.class_names[:3] == ["Arcadian/character01", "Arcadian/character02", "Arcadian/character03"]
    assert data.class_splits[:3] == ["val", "train", "test"]
    assert data.class_names[708] == "Alphabet_of_the_Magi/character01"
    assert data.image_ids[708 * 20] == "omniglot/0709_01"
    test = load_split("omniglot", "test", data_root=omniglot_root, cache_dir=omniglot_cache)
    assert test.class_names[0] == "Arcadian/character03" and test.image_ids[0] == "omniglot/0003_01"


def test_ink_is_bright_on_a_dark_background(omniglot_root: Path, omniglot_cache: Path, no_decoding) -> None:
    images = load_unlabeled("omniglot", data_root=omniglot_root, cache_dir=omniglot_cache).images[..., 0]
    assert images.mean() < 50  # mostly background
    assert (images[:, 0, :] == 0).mean() > 0.95 and (images[:, :, -1] == 0).mean() > 0.95
    assert np.median(images.reshape(len(images), -1).max(axis=1)) == 255  # strokes reach full ink
    assert 0.02 < (images > 127).mean() < 0.25


def test_cache_is_used_and_fingerprints_are_of_the_arrays(
    omniglot_root: Path, omniglot_cache: Path, no_decoding
) -> None:
    data = load_decoded("omniglot", data_root=omniglot_root, cache_dir=omniglot_cache)
    assert data.info["cache"] == "hit" and data.info["cache_file"].startswith(str(omniglot_cache))
    train = load_split("omniglot", "train", data_root=omniglot_root, cache_dir=omniglot_cache)
    assert train.fingerprint == fingerprint(train.images, train.labels)
    pool = load_unlabeled("omniglot", data_root=omniglot_root, cache_dir=omniglot_cache)
    assert pool.fingerprint == fingerprint(pool.images) and np.array_equal(pool.images, train.images)
    assert pool.image_ids == train.image_ids and not hasattr(pool, "labels")
    rgb = load_unlabeled("omniglot", data_root=omniglot_root, cache_dir=omniglot_cache, channels=3)
    assert rgb.images.shape == (24000, 28, 28, 3) and np.array_equal(rgb.images[..., 2], pool.images[..., 0])


def test_real_episodes(omniglot_root: Path, omniglot_cache: Path, no_decoding) -> None:
    test = load_split("omniglot", "test", data_root=omniglot_root, cache_dir=omniglot_cache)
    sampler = EpisodeSampler(test, ways=5, shots=5, queries=15, seed=0)
    batch = sampler.tasks(0, 1000)
    assert batch.support.shape == (1000, 5, 5, 28, 28, 1) and batch.query.shape == (1000, 5, 15, 28, 28, 1)
    test_classes = set(test.class_names)
    index_of = {image_id: i for i, image_id in enumerate(test.image_ids)}
    for t in (0, 1, 500, 999):
        meta = batch.metas[t]
        assert len(set(meta["classes"])) == 5 and set(meta["classes"]) <= test_classes
        ids = [i for row in meta["source_ids"] for i in row]
        assert len(set(ids)) == 100
        first = index_of[meta["source_ids"][2][0]]
        assert np.array_equal(batch.support[t, 2, 0], test.images[first])
        assert test.class_names[test.labels[first]] == meta["classes"][2]
    again = EpisodeSampler(test, 5, 5, 15, seed=0).sample(999)
    assert np.array_equal(again.query, batch.query[999]) and again.meta == batch.metas[999]


def test_truncated_copy_of_the_real_zip(omniglot_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "omniglot").mkdir(parents=True)
    source = omniglot_root / "omniglot"
    shutil.copy(source / "images_evaluation.zip", root / "omniglot")
    (root / "omniglot" / "images_background.zip").write_bytes(
        (source / "images_background.zip").read_bytes()[:3_000_000]
    )
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"images_background.zip is not a readable zip"):
        load_split("omniglot", "train", data_root=root, cache_dir=cache, progress=False)
    assert not cache.exists() or not any(cache.rglob("*"))


def test_cli_info(omniglot_root: Path, omniglot_cache: Path) -> None:
    result = CliRunner().invoke(
        main, ["info", "omniglot", "--data-root", str(omniglot_root), "--cache-dir", str(omniglot_cache)]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"data           {omniglot_root / 'omniglot'}" in out and "(hit)" in out
    for split, (classes, images) in SPLIT_SIZES.items():
        assert any(line.split()[:4] == [split, str(classes), str(images), "28x28x1"] for line in out.splitlines())
