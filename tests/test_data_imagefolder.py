"""The generic ``imagefolder:PATH`` dataset: layouts, channels, splits, caching and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lasium.data.imagefolder as imagefolder_module
from lasium.data import IMAGEFOLDER_SPLIT_SEED, load_imagefolder, load_split, load_unlabeled
from lasium.data.imagefolder import imagefolder_class_split
from lasium.errors import DataError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LASIUM_CACHE", str(folder))
    return folder


def save(path: Path, img: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def gray(value: int, size=(40, 30)) -> Image.Image:
    return Image.new("L", size, value)


def make_folder(root: Path, classes: int = 10, per_class: int = 4, rgb_class: int | None = None) -> Path:
    """Class c holds gray images of brightness 20 * c (+ index); one class may hold RGB JPEGs."""
    for c in range(classes):
        for i in range(per_class):
            if c == rgb_class:
                save(root / f"class{c:02d}" / f"{i}.jpg", Image.new("RGB", (64, 48), (200, 30, 10)))
            else:
                save(root / f"class{c:02d}" / f"{i}.png", gray(20 * c + i))
    return root


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_folder_without_splits_is_split_by_the_fixed_seed(tmp_path: Path, cache: Path) -> None:
    root = make_folder(tmp_path / "pics")
    (root / "README.md").write_text("ignored: files directly in PATH are not images of a class")
    data = load_imagefolder(root, progress=False)
    assert data.images.shape == (40, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.name == f"imagefolder:{root.resolve()}"
    assert data.class_names == [f"class{c:02d}" for c in range(10)]
    assert data.image_ids[0] == "pics/class00/0.png"
    assert data.class_splits == imagefolder_class_split(10) and IMAGEFOLDER_SPLIT_SEED == 2021
    assert [data.class_splits.count(s) for s in ("train", "val", "test")] == [7, 1, 2]
    # Pixels are the sources' values, resized (uniform images stay uniform), not inverted.
    assert (data.images[4 * 3 + 2] == 20 * 3 + 2).all()
    train = load_split(f"imagefolder:{root}", "train", progress=False)
    assert train.num_classes == 7 and len(train) == 28 and train.image_shape == (28, 28, 1)
    assert all(data.class_splits[data.class_names.index(n)] == "train" for n in train.class_names)
    pool = load_unlabeled(f"imagefolder:{root}", progress=False)
    assert np.array_equal(pool.images, train.images)


def test_split_sizes_follow_omniglot_proportions() -> None:
    for n, sizes in [(3, [1, 1, 1]), (10, [7, 1, 2]), (1623, [1200, 100, 323]), (100, [74, 6, 20])]:
        splits = imagefolder_class_split(n)
        assert [splits.count(s) for s in ("train", "val", "test")] == sizes
    with pytest.raises(DataError, match="need at least 3"):
        imagefolder_class_split(2)


def test_explicit_split_folders(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "split"
    for split, names in {"train": ["a", "b", "c"], "val": ["d", "e"], "test": ["f", "g"]}.items():
        for n in names:
            for i in range(3):
                save(root / split / n / f"{i}.png", gray(10 * i))
    data = load_imagefolder(root, progress=False)
    assert data.class_splits == ["train"] * 3 + ["val"] * 2 + ["test"] * 2
    val = load_split(f"imagefolder:{root}", "val", progress=False)
    assert val.class_names == ["d", "e"] and val.image_ids[0] == "split/val/d/0.png"
    assert data.info["split_seed"] is None


def test_partial_split_folders_and_stray_folders(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "partial"
    save(root / "train" / "a" / "0.png", gray(1))
    save(root / "test" / "b" / "0.png", gray(1))
    with pytest.raises(DataError, match="has no val classes"):
        load_split(f"imagefolder:{root}", "val", progress=False)
    assert load_split(f"imagefolder:{root}", "test", progress=False).class_names == ["b"]
    save(root / "extra" / "c" / "0.png", gray(1))
    with pytest.raises(DataError, match=r"also extra/; move class folders inside"):
        load_imagefolder(root, progress=False)


def test_channels_auto_and_forced(tmp_path: Path, cache: Path) -> None:
    mixed = make_folder(tmp_path / "mixed", classes=4, per_class=2, rgb_class=1)
    auto = load_imagefolder(mixed, progress=False)
    assert auto.images.shape[-1] == 3
    red = auto.images[2]  # class01, first image: an RGB JPEG
    assert red[..., 0].mean() > 150 and red[..., 2].mean() < 60
    assert (auto.images[0, ..., 0] == auto.images[0, ..., 1]).all()  # gray images stay gray in RGB
    forced = load_imagefolder(mixed, channels=1, progress=False)
    assert forced.images.shape == (8, 28, 28, 1)
    rgb = load_imagefolder(make_folder(tmp_path / "gray", classes=3), channels=3, image_size=(16, 20), progress=False)
    assert rgb.images.shape == (12, 16, 20, 3)
    with pytest.raises(DataError, match="channels"):
        load_imagefolder(mixed, channels=2, progress=False)


def test_small_images_are_enlarged_and_transparency_is_shown_over_white(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "tiny"
    for c in range(3):
        save(root / f"c{c}" / "0.png", Image.new("RGBA", (8, 8), (0, 0, 0, 0)))
        save(root / f"c{c}" / "1.png", Image.new("L", (8, 8), 0))
    data = load_imagefolder(root, progress=False)
    assert data.images.shape == (6, 28, 28, 3)  # RGBA is not a grayscale mode
    assert (data.images[0] == 255).all() and (data.images[1] == 0).all()


def test_cache_hit_and_invalidation(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "pics", classes=3, per_class=2)
    first = load_imagefolder(root, progress=False)
    assert first.info["cache"] == "written" and len(files_under(cache)) == 2
    calls = []
    real = imagefolder_module.run_jobs
    monkeypatch.setattr(imagefolder_module, "run_jobs", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = load_imagefolder(root, progress=False)
    assert calls == [] and second.info["cache"] == "hit" and np.array_equal(first.images, second.images)
    changed = root / "class01" / "0.png"
    save(changed, gray(250))
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = load_imagefolder(root, progress=False)
    assert calls == [1] and (third.images[2] == 250).all() and third.fingerprints != first.fingerprints


def test_bad_folders_are_refused_without_leaving_cache_files(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist or is not a folder"):
        load_imagefolder(tmp_path / "missing", progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"no class folders in"):
        load_imagefolder(empty, progress=False)

    root = make_folder(tmp_path / "notes", classes=3)
    (root / "class01" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"class01/notes.txt is not an image file .*remove it or move it"):
        load_imagefolder(root, progress=False)

    root = make_folder(tmp_path / "fake", classes=3)
    (root / "class02" / "9.jpg").write_text("text pretending to be a jpeg")
    with pytest.raises(DataError, match=r"class02/9.jpg is not a readable image") as info:
        load_imagefolder(root, progress=False)
    assert "\n" not in str(info.value)

    root = make_folder(tmp_path / "truncated", classes=3)
    broken = root / "class00" / "0.png"
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(DataError, match=r"class00/0.png is not a readable image"):
        load_imagefolder(root, channels=1, progress=False)

    root = make_folder(tmp_path / "hollow", classes=3)
    (root / "class03").mkdir()
    with pytest.raises(DataError, match=r"class03 holds no images"):
        load_imagefolder(root, progress=False)

    root = make_folder(tmp_path / "nested", classes=3)
    save(root / "class00" / "deeper" / "0.png", gray(0))
    with pytest.raises(DataError, match=r"unexpected folder .*deeper"):
        load_imagefolder(root, progress=False)
    assert files_under(cache) == []


def test_hidden_files_are_skipped(tmp_path: Path, cache: Path) -> None:
    root = make_folder(tmp_path / "pics", classes=3, per_class=2)
    (root / "class00" / ".DS_Store").write_bytes(b"\0\0junk")
    (root / ".hidden").mkdir()
    assert load_imagefolder(root, progress=False).images.shape[0] == 6


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "deep"
    for c in range(3):
        save(root / f"c{c}" / "0.png", Image.fromarray(np.full((28, 28), 257 * 100 * c // 2, np.uint16)))
    data = load_imagefolder(root, progress=False)
    assert data.images.shape == (3, 28, 28, 1)
    assert [int(v) for v in data.images[:, 0, 0, 0]] == [0, 50, 100]


def test_flat_folder_is_an_unlabeled_train_collection(tmp_path: Path, cache: Path) -> None:
    root = tmp_path / "flat"
    for i in range(6):
        save(root / f"img{i}.png", gray(30 * i))
    (root / "LICENSE.txt").write_text("ignored like any file that is not an image")
    data = load_imagefolder(root, progress=False)
    assert data.images.shape == (6, 28, 28, 1) and data.info["labeled"] is False
    assert data.image_ids == [f"flat/img{i}.png" for i in range(6)] and data.class_splits == ["train"]
    pool = load_unlabeled(f"imagefolder:{root}", progress=False)
    assert len(pool) == 6 and [int(v) for v in pool.images[:, 0, 0, 0]] == [30 * i for i in range(6)]
    assert load_imagefolder(root, progress=False).info["cache"] == "hit"
    for split in ("train", "test"):
        with pytest.raises(DataError, match=r"flat folder of unlabeled images.*PATH/<class>/<image>"):
            load_split(f"imagefolder:{root}", split, progress=False)
