"""lasium.data on a miniature Omniglot (official layout, a few characters): loading, caching, splits, errors.

Real-Omniglot tests are in test_data_omniglot.py; episodes, image folders, downloads and the CLI have
their own files.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lasium.data.omniglot as omniglot_module
from lasium.data import (
    OMNIGLOT_SPLIT_SEED,
    cache_dir,
    data_root,
    fingerprint,
    load_omniglot,
    load_split,
    load_unlabeled,
    omniglot_class_split,
)
from lasium.data.datasets import labeled_split, unlabeled_train
from lasium.data.miniature import miniature_entries, miniature_layout, write_miniature_omniglot, write_zip
from lasium.errors import ConfigError, DataError

BG, EV = "images_background.zip", "images_evaluation.zip"


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("LASIUM_CACHE", str(folder))
    return folder


@pytest.fixture
def mini(tmp_path: Path):
    root = tmp_path / "data"
    return root, write_miniature_omniglot(root)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("images were decoded although the cache should have been used")

    monkeypatch.setattr(omniglot_module, "run_jobs", refuse)


def test_package_exports_resolve_without_importing_torch() -> None:
    import subprocess
    import sys

    import lasium.data

    assert sorted(lasium.data.__all__) == sorted(lasium.data._EXPORTS)
    assert all(getattr(lasium.data, name) is not None for name in lasium.data.__all__)
    # Loading data must not drag torch in (the CLI's info/download and decoding stay light).
    code = (
        "import sys, lasium.data; lasium.data.load_split; lasium.data.download_omniglot; print('torch' in sys.modules)"
    )
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


# --- paths -------------------------------------------------------------------------------------


def test_paths_explicit_then_environment_then_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LASIUM_DATA", raising=False)
    monkeypatch.delenv("LASIUM_CACHE", raising=False)
    assert data_root() == Path("~/.cache/lasium/data").expanduser()
    assert cache_dir() == Path("~/.cache/lasium/cache").expanduser()
    monkeypatch.setenv("LASIUM_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("LASIUM_CACHE", str(tmp_path / "c"))
    assert data_root() == tmp_path / "d" and cache_dir() == tmp_path / "c"
    assert data_root(tmp_path / "x") == tmp_path / "x" and cache_dir(tmp_path / "y") == tmp_path / "y"


# --- the class split -----------------------------------------------------------------------------


def test_omniglot_class_split_is_pinned() -> None:
    splits = omniglot_class_split()
    assert OMNIGLOT_SPLIT_SEED == 2021
    ids = {s: [i + 1 for i, x in enumerate(splits) if x == s] for s in ("train", "val", "test")}
    assert [len(ids[s]) for s in ("train", "val", "test")] == [1200, 100, 323]
    # Global character ids (1-based) pinned: the split must never change silently.
    assert ids["train"][:5] == [2, 4, 5, 6, 7] and ids["train"][-3:] == [1620, 1622, 1623]
    assert ids["val"][:5] == [1, 13, 24, 27, 84] and ids["val"][-3:] == [1549, 1574, 1621]
    assert ids["test"][:5] == [3, 22, 29, 30, 34] and ids["test"][-3:] == [1611, 1614, 1616]
    assert set(ids["train"]).isdisjoint(ids["val"]) and set(ids["train"]).isdisjoint(ids["test"])
    assert set(ids["val"]).isdisjoint(ids["test"])
    assert sorted(ids["train"] + ids["val"] + ids["test"]) == list(range(1, 1624))
    assert omniglot_class_split() == splits
    with pytest.raises(ValueError):
        omniglot_class_split(10, (5, 2, 2))


# --- loading a miniature ---------------------------------------------------------------------------


def test_miniature_loads_with_the_right_shapes_order_and_ink(mini, cache: Path) -> None:
    root, layout = mini
    data = load_omniglot(root, layout=layout, progress=False)
    n = layout.num_characters * layout.drawers
    assert data.images.shape == (n, 28, 28, 1) and data.images.dtype == np.uint8
    assert data.image_ids[:2] == ["omniglot/0001_01", "omniglot/0001_02"]
    assert data.image_ids[-1] == f"omniglot/{layout.num_characters:04d}_{layout.drawers:02d}"
    assert len(set(data.image_ids)) == n
    assert np.array_equal(data.image_class, np.repeat(np.arange(layout.num_characters), layout.drawers))
    assert data.class_names[0] == "Alphabet_00/character01"
    assert data.class_splits == omniglot_class_split(layout.num_characters, layout.split_sizes)
    # Ink is bright on a dark background: corners are black, strokes reach full brightness.
    assert (data.images[:, 0, 0, 0] == 0).all() and (data.images[:, -1, -1, 0] == 0).all()
    assert (data.images.reshape(n, -1).max(axis=1) >= 200).all()
    assert (data.images > 127).mean() < 0.3
    assert data.info["cache"] == "written"


def test_labeled_and_unlabeled_views(mini, cache: Path) -> None:
    root, layout = mini
    data = load_omniglot(root, layout=layout, progress=False)
    seen = []
    for split, size in zip(("train", "val", "test"), layout.split_sizes):
        part = labeled_split(data, split)
        assert part.num_classes == size and len(part) == size * layout.drawers
        assert part.labels.dtype == np.int64 and set(part.labels.tolist()) == set(range(size))
        assert (part.class_counts() == layout.drawers).all()
        assert part.fingerprint == fingerprint(part.images, part.labels)
        assert part.split == split and part.name == "omniglot"
        # The image of each id is the one decoded for it.
        index = [data.image_ids.index(i) for i in part.image_ids[:3]]
        assert np.array_equal(part.images[:3], data.images[index])
        seen.append(set(part.class_names))
    assert seen[0].isdisjoint(seen[1]) and seen[0].isdisjoint(seen[2]) and seen[1].isdisjoint(seen[2])
    pool = unlabeled_train(data)
    train = labeled_split(data, "train")
    assert not hasattr(pool, "labels")
    assert np.array_equal(pool.images, train.images) and pool.image_ids == train.image_ids
    assert pool.fingerprint == fingerprint(train.images) != train.fingerprint


def test_parallel_decoding_matches_serial(mini, tmp_path: Path) -> None:
    root, layout = mini
    serial = load_omniglot(root, tmp_path / "c1", layout=layout, workers=1, progress=False)
    parallel = load_omniglot(root, tmp_path / "c2", layout=layout, workers=2, progress=False)
    assert np.array_equal(serial.images, parallel.images) and serial.image_ids == parallel.image_ids
    assert serial.fingerprints == parallel.fingerprints


def test_each_image_size_gets_its_own_cache_entry(mini, cache: Path) -> None:
    root, layout = mini
    small = load_omniglot(root, image_size=(14, 12), layout=layout, progress=False)
    assert small.images.shape[1:] == (14, 12, 1)
    assert len(files_under(cache)) == 2
    assert load_omniglot(root, layout=layout, progress=False).images.shape[1:] == (28, 28, 1)
    assert len(files_under(cache)) == 4


# --- the cache ---------------------------------------------------------------------------------------


def test_second_load_uses_the_cache(mini, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, layout = mini
    first = load_omniglot(root, layout=layout, progress=False)
    names = files_under(cache)
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npy")
    assert names[0].startswith("omniglot/omniglot-28x28-")
    forbid_decoding(monkeypatch)
    second = load_omniglot(root, layout=layout, progress=False)
    assert second.info["cache"] == "hit"
    assert np.array_equal(first.images, second.images) and first.image_ids == second.image_ids
    assert first.fingerprints == second.fingerprints and first.class_splits == second.class_splits
    # The entry is plain npy + JSON, readable without pickle.
    arr = np.load(cache / names[1], allow_pickle=False)
    assert np.array_equal(arr, first.images)
    assert json.loads((cache / names[0]).read_text())["format"] == "lasium-decoded-v1"


def test_changed_zip_invalidates_the_cache(mini, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, layout = mini
    load_omniglot(root, layout=layout, progress=False)
    calls = []
    real_run_jobs = omniglot_module.run_jobs
    monkeypatch.setattr(omniglot_module, "run_jobs", lambda *a, **k: calls.append(1) or real_run_jobs(*a, **k))
    load_omniglot(root, layout=layout, progress=False)
    assert calls == []
    zip_path = root / "omniglot" / BG
    st = zip_path.stat()
    os.utime(zip_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the same bytes, touched (a copy, a remount)
    assert load_omniglot(root, layout=layout, progress=False).info["cache"] == "hit" and calls == []
    with zipfile.ZipFile(zip_path, "a") as z:  # other bytes
        z.comment = b"changed"
    again = load_omniglot(root, layout=layout, progress=False)
    assert calls == [1] and again.info["cache"] == "written"


def test_damaged_cache_entry_is_rebuilt(mini, cache: Path) -> None:
    root, layout = mini
    first = load_omniglot(root, layout=layout, progress=False)
    npy = next(cache.rglob("*.npy"))
    npy.write_bytes(b"not an npy file")
    again = load_omniglot(root, layout=layout, progress=False)
    assert again.info["cache"] == "written" and np.array_equal(again.images, first.images)


def test_cache_never_goes_into_the_data_root(mini, cache: Path) -> None:
    root, layout = mini
    before = files_under(root)
    load_omniglot(root, layout=layout, progress=False)
    assert files_under(root) == before


def test_unwritable_cache_warns_and_still_loads(mini, tmp_path: Path) -> None:
    root, layout = mini
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the dataset cache"):
        data = load_omniglot(root, blocker, layout=layout, progress=False)
    assert data.info["cache"] == "not writable" and len(data.image_ids) == layout.num_characters * layout.drawers


# --- bad input: one line naming the file and the fix, nothing in the cache -------------------------------


def build(root: Path, edit=None, stored: bool = False) -> tuple[Path, object]:
    """Write a miniature zip pair after ``edit(background entries, evaluation entries)``."""
    layout = miniature_layout()
    entries = miniature_entries(layout)
    if edit is not None:
        edit(*entries)
    for name, e in zip((BG, EV), entries):
        path = root / "omniglot" / name
        if stored:
            path.parent.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
                for member in sorted(e):
                    zf.writestr(member, e[member])
        else:
            write_zip(path, e)
    return root, layout


def first_png(entries: dict[str, bytes]) -> str:
    return next(n for n in sorted(entries) if n.endswith(".png"))


def png_of_size(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("1", (w, h), 1).save(buf, format="PNG")
    return buf.getvalue()


def _drop_drawer(bg, ev):
    del bg[first_png(bg)]


def _drop_character(bg, ev):
    for name in [n for n in bg if "/character01/" in n and "Alphabet_00" in n]:
        del bg[name]


def _text_file(bg, ev):
    bg["images_background/readme.txt"] = b"hello"


def _text_named_png(bg, ev):
    bg[first_png(bg)] = b"this is not a png at all"


def _wrong_size(bg, ev):
    ev[first_png(ev)] = png_of_size(50, 50)


def _renumbered(bg, ev):
    folder = [n for n in bg if n.endswith(".png") and "0001_" in n]
    for name in folder:
        bg[name.replace("0001_", "0099_")] = bg.pop(name)


def _wrong_top(bg, ev):
    for name in [n for n in ev if n.endswith(".png")][:1]:
        ev[name.replace("images_evaluation/", "images_background/")] = ev.pop(name)


@pytest.mark.parametrize(
    "edit, pattern",
    [
        (_drop_drawer, r"holds 19 drawings, expected drawers 01-20"),
        (_drop_character, r"images_background.zip holds 5 characters, expected 6"),
        (_text_file, r"unexpected entry 'images_background/readme.txt'"),
        (
            _text_named_png,
            r"images_background/Alphabet_00/character01/0001_01.png in images_background.zip is not a readable image",
        ),
        (_wrong_size, r"0007_01.png in images_evaluation.zip is 50x50 pixels, expected 105x105"),
        (_renumbered, r"character ids 0002..0099"),
        (_wrong_top, r"unexpected entry 'images_background/"),
    ],
    ids=[
        "missing-drawer",
        "missing-character",
        "text-file",
        "text-named-png",
        "wrong-size",
        "id-gap",
        "wrong-top-folder",
    ],
)
def test_bad_layout_or_content_is_refused(tmp_path: Path, cache: Path, edit, pattern) -> None:
    root, layout = build(tmp_path / "data", edit)
    with pytest.raises(DataError, match=pattern) as info:
        load_omniglot(root, layout=layout, progress=False)
    message = str(info.value)
    assert "\n" not in message and "lasium-data download omniglot" in message
    assert files_under(cache) == []


def test_damaged_member_is_named(tmp_path: Path, cache: Path) -> None:
    root, layout = build(tmp_path / "data", stored=True)
    path = root / "omniglot" / EV
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(first_png(dict.fromkeys(zf.namelist(), b"")))
    # Flip bytes inside the stored PNG data: its CRC-32 no longer matches.
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 40
    raw[start : start + 8] = bytes(b ^ 0xFF for b in raw[start : start + 8])
    path.write_bytes(bytes(raw))
    for workers in (1, 2):
        with pytest.raises(DataError, match=rf"{info.filename} in images_evaluation.zip is damaged"):
            load_omniglot(root, layout=layout, workers=workers, progress=False)
    assert files_under(cache) == []


def test_truncated_zip_is_refused(tmp_path: Path, cache: Path) -> None:
    root, layout = build(tmp_path / "data")
    path = root / "omniglot" / BG
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"images_background.zip is not a readable zip .*truncated or corrupt"):
        load_omniglot(root, layout=layout, progress=False)
    assert files_under(cache) == []


def test_missing_folder_or_zip(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(
        DataError, match=r"Omniglot not found: .*omniglot does not exist; .*--data-root.*lasium-data download"
    ):
        load_omniglot(tmp_path / "nothing", progress=False)
    root, layout = build(tmp_path / "data")
    (root / "omniglot" / EV).unlink()
    with pytest.raises(DataError, match=r"images_evaluation.zip is missing"):
        load_omniglot(root, layout=layout, progress=False)
    assert files_under(cache) == []


def test_real_layout_refuses_a_miniature(mini, cache: Path) -> None:
    root, _ = mini
    with pytest.raises(DataError, match=r"holds 6 characters, expected 964"):
        load_split("omniglot", "train", data_root=root, progress=False)


def test_load_split_argument_errors(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_split("mnist", "train")
    with pytest.raises(ConfigError, match="unknown split"):
        load_split("omniglot", "validation")
    with pytest.raises(ConfigError, match="image size"):
        load_unlabeled("omniglot", image_size=(28, 28, 1))
    with pytest.raises(ConfigError, match="channels"):
        load_unlabeled("omniglot", channels=2)
    with pytest.raises(ConfigError, match="imagefolder needs a path"):
        load_unlabeled("imagefolder:")


def test_data_root_pointing_at_the_omniglot_folder_gets_a_hint(mini, cache: Path) -> None:
    root, layout = mini
    with pytest.raises(DataError, match=rf"the data root is the folder above it: --data-root {root}$"):
        load_omniglot(root / "omniglot", layout=layout, progress=False)


def test_failed_cache_write_leaves_no_files(mini, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import lasium.data.cache as cache_module

    root, layout = mini

    def disk_full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache_module, "atomic_save_json", disk_full)
    with pytest.warns(UserWarning, match="No space left on device"):
        data = load_omniglot(root, layout=layout, progress=False)
    assert data.info["cache"] == "not writable" and files_under(cache) == []
