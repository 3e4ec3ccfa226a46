"""The dataset registry and the memory-mapped image cache that the large colour datasets share."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lasium.data import cache as cache_module
from lasium.data.cache import cached_image_array, fingerprint, load_image_array, take_rows
from lasium.data.datasets import default_image_size
from lasium.data.preprocess import decode_files, decode_into
from lasium.data.registry import DATASETS, dataset_choices_text, resolve_dataset
from lasium.errors import ConfigError


def test_registry_names_and_resolution() -> None:
    assert list(DATASETS) == ["omniglot", "celeba", "celeba-attributes", "mini-imagenet", "imagefolder"]
    assert dataset_choices_text() == "omniglot, celeba, celeba-attributes, mini-imagenet or imagefolder:PATH"
    spec, argument = resolve_dataset("imagefolder:~/pics")
    assert spec.name == "imagefolder" and argument == "~/pics"
    assert resolve_dataset("mini-imagenet") == (DATASETS["mini-imagenet"], None)
    assert [default_image_size(d) for d in ("omniglot", "celeba", "mini-imagenet", "imagefolder:x")] == [28, 84, 84, 28]
    with pytest.raises(ConfigError, match=r"unknown dataset 'mini_imagenet' \(did you mean mini-imagenet\?\)"):
        resolve_dataset("mini_imagenet")
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'; use omniglot, celeba"):
        resolve_dataset("cifar")
    with pytest.raises(ConfigError, match="imagefolder needs a path"):
        resolve_dataset("imagefolder")
    with pytest.raises(ConfigError, match="unknown dataset 'celeba:x'"):
        resolve_dataset("celeba:x")
    for spec in DATASETS.values():
        assert callable(spec.load_function())  # every line points at a real loader


def naive_fingerprint(images: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(
        json.dumps({"shape": list(images.shape), "dtype": str(images.dtype), "labels": False}, sort_keys=True).encode()
    )
    h.update(np.ascontiguousarray(images).tobytes())
    return h.hexdigest()


def test_fingerprint_in_blocks_equals_one_pass(monkeypatch, tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (37, 5, 4, 3), dtype=np.uint8)
    expected = naive_fingerprint(images)
    monkeypatch.setattr(cache_module, "HASH_BLOCK_BYTES", 150)  # a few rows per block
    assert fingerprint(images) == expected
    np.save(tmp_path / "x.npy", images)
    assert fingerprint(np.load(tmp_path / "x.npy", mmap_mode="r")) == expected


def test_take_rows_views_contiguous_runs_only() -> None:
    array = np.arange(20).reshape(10, 2)
    view = take_rows(array, np.arange(3, 7))
    assert np.shares_memory(view, array) and view.tolist() == array[3:7].tolist()
    copy = take_rows(array, np.array([1, 2, 5]))
    assert not np.shares_memory(copy, array) and copy.tolist() == array[[1, 2, 5]].tolist()
    assert take_rows(array, np.array([], np.int64)).shape == (0, 2)


def fill_with(values: np.ndarray):
    calls = []

    def fill(out: np.ndarray) -> None:
        calls.append(1)
        out[:] = values

    return fill, calls


def test_cached_image_array_writes_once_then_maps(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)
    fill, calls = fill_with(values)
    ids = [f"x/{i}" for i in range(6)]
    ranges = {"train": (0, 4), "test": (4, 6)}
    first = cached_image_array(tmp_path, "stem", "k1", {"m": 1}, ids, values.shape, fill, ranges)
    assert first.status == "written" and isinstance(first.images, np.memmap) and not first.images.flags.writeable
    np.testing.assert_array_equal(first.images, values)
    assert first.fingerprints == {"train": fingerprint(values[:4]), "test": fingerprint(values[4:])}
    second = cached_image_array(tmp_path, "stem", "k1", {"m": 1}, ids, values.shape, fill, ranges)
    assert second.status == "hit" and calls == [1] and second.fingerprints == first.fingerprints
    assert load_image_array(tmp_path, "stem", "other-key") is None  # a stale key is rebuilt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stem.json", "stem.npy"]


def test_killed_writer_leaves_nothing_that_counts(tmp_path: Path) -> None:
    values = np.ones((3, 2, 2, 1), np.uint8)

    def dies(out: np.ndarray) -> None:
        out[0] = 7
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cached_image_array(tmp_path, "s", "k", {}, ["a", "b", "c"], values.shape, dies, {})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".s.npy.partial").write_bytes(b"left by a killed run")  # SIGKILL leaves the partial file
    (tmp_path / "s.npy").write_bytes(b"an array without its index")
    fill, calls = fill_with(values)
    again = cached_image_array(tmp_path, "s", "k", {}, ["a", "b", "c"], values.shape, fill, {})
    assert again.status == "written" and calls == [1] and not (tmp_path / ".s.npy.partial").exists()


def test_unwritable_cache_decodes_into_memory_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    values = np.full((2, 3, 3, 3), 9, np.uint8)
    fill, _ = fill_with(values)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = cached_image_array(blocker / "sub", "s", "k", {}, ["a", "b"], values.shape, fill, {"train": (0, 2)})
    assert result.status == "not writable" and "could not write the dataset cache" in str(caught[0].message)
    np.testing.assert_array_equal(result.images, values)


def test_decode_into_fills_rows_in_order_on_worker_processes(tmp_path: Path, monkeypatch) -> None:
    from lasium.data import preprocess

    monkeypatch.setattr(preprocess, "CHUNK_IMAGES", 3)
    files = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        Image.new("L", (6, 6), 20 * i).save(path)
        files.append(str(path))
    for workers in (1, 2):
        out = np.zeros((10, 6, 6, 1), np.uint8)
        decode_into(out, decode_files, files, ((6, 6), "L", "fix"), workers=workers, desc="t", progress=False)
        assert out[:, 0, 0, 0].tolist() == [20 * i for i in range(10)]
