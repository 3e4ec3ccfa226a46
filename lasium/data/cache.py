"""The decoded-dataset cache: one ``.npy`` of uint8 images plus one JSON index per dataset version.

Decoding 32460 Omniglot PNGs takes seconds; loading the cached 25 MB array takes milliseconds. A cache
entry is named by a key that hashes everything its content depends on (the source files' sizes and
modification times, the image shape, the preprocessing version, the class split), so a changed zip or
a new preprocessing simply misses the cache and is decoded again.

Both files are written atomically (temporary name in the same folder, then rename), the ``.npy`` first
and the JSON last: an entry counts as present only when its JSON exists, so a killed writer leaves no
half-written entry. The array is read with ``np.load(allow_pickle=False)`` and the index is plain JSON:
nothing in the cache is ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lasium.safe_io import replace_atomically
from lasium.tasks import hwc

if TYPE_CHECKING:
    from lasium.data.attributes import AttributeTable

CACHE_FORMAT = "lasium-decoded-v1"
IMAGE_CACHE_FORMAT = "lasium-images-v1"
SPLITS = ("train", "val", "test")
HASH_BLOCK_BYTES = 64 << 20


@dataclass
class DecodedDataset:
    """A whole dataset decoded once: every image of every split, in a fixed order.

    ``images`` (n, H, W, C) uint8; ``image_class`` (n,) int64 indexes ``class_names``;
    ``class_splits[c]`` is the split ("train" | "val" | "test") class ``c`` belongs to;
    ``fingerprints`` holds one sha256 per split and ``"unlabeled"`` (train images only);
    ``info`` describes the source (files, split seed, preprocessing) for ``lasium-data info``.
    """

    name: str
    images: np.ndarray
    image_class: np.ndarray
    image_ids: list[str]
    class_names: list[str]
    class_splits: list[str]
    fingerprints: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    # How real tasks are built from a labeled split (a key of lasium.data.episodes.EPISODE_SAMPLERS):
    # "classes" = N of the split's classes; "attributes" = CelebA attribute conjunctions (see attributes).
    task_kind: str = "classes"
    attributes: AttributeTable | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return hwc(self.images.shape[1:])

    def split_indices(self, split: str) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(image indices, dense labels 0..C-1, class indices) of ``split``, classes in dataset order."""
        classes = [c for c, s in enumerate(self.class_splits) if s == split]
        remap = np.full(len(self.class_names), -1, np.int64)
        remap[classes] = np.arange(len(classes), dtype=np.int64)
        index = np.flatnonzero(remap[self.image_class] >= 0)
        return index, remap[self.image_class[index]], classes

    def compute_fingerprints(self) -> None:
        """Fill ``fingerprints`` for every split present and for the unlabeled train images."""
        self.fingerprints = {}
        for split in SPLITS:
            index, labels, classes = self.split_indices(split)
            if classes:
                self.fingerprints[split] = fingerprint(self.images[index], labels)
        index, _, _ = self.split_indices("train")
        self.fingerprints["unlabeled"] = fingerprint(self.images[index])


def fingerprint(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """sha256 (hex) of decoded content: the image shape, the uint8 pixels and, if given, the labels.

    Two loads give the same fingerprint exactly when they give the same arrays, whatever the
    machine, so a shard manifest can name the data its VAE anchors came from. The pixels are hashed in
    blocks of rows, so a memory-mapped array of gigabytes is never copied whole.
    """
    h = hashlib.sha256()
    header = {"shape": list(images.shape), "dtype": str(images.dtype), "labels": labels is not None}
    h.update(json.dumps(header, sort_keys=True).encode())
    pixels = np.ascontiguousarray(images)
    if pixels.ndim == 0:
        h.update(pixels.tobytes())
    else:
        step = max(1, HASH_BLOCK_BYTES // max(1, pixels[:1].nbytes))
        for start in range(0, pixels.shape[0], step):
            h.update(np.ascontiguousarray(pixels[start : start + step]).data)
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


def labeled_fingerprint(image_fingerprint: str, labels: np.ndarray) -> str:
    """sha256 (hex) of a split whose pixels are already fingerprinted (:func:`fingerprint` of the images alone)
    and of its labels: what :func:`fingerprint` ``(images, labels)`` is for the datasets whose images live in a
    memory-mapped cache (CelebA, mini-ImageNet), without reading gigabytes of pixels on every load.
    Equal exactly when both the pixels and the labels are equal."""
    h = hashlib.sha256()
    header = {"images": image_fingerprint, "labels": int(labels.shape[0]), "kind": "labeled-split"}
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


def take_rows(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``array[index]`` for sorted row indices: a view (no copy, still memory-mapped) when they are one
    contiguous run, as every split of a dataset cached in split order is; a copy otherwise."""
    index = np.asarray(index)
    if index.size and int(index[-1]) - int(index[0]) + 1 == index.size and bool(np.all(np.diff(index) == 1)):
        return array[int(index[0]) : int(index[-1]) + 1]
    return array[index]


def cache_key(material: dict[str, Any]) -> str:
    """A short, stable hash of everything an entry depends on."""
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file object)`` to a temporary file beside ``path``, then rename it."""

    def fill(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            write(f)

    replace_atomically(path, fill)


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def atomic_save_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda f: f.write(json.dumps(obj, indent=None, sort_keys=True).encode()))


def entry_paths(folder: Path, stem: str) -> tuple[Path, Path]:
    return folder / f"{stem}.npy", folder / f"{stem}.json"


def save_entry(folder: Path, stem: str, key: str, material: dict[str, Any], data: DecodedDataset) -> bool:
    """Store ``data`` under ``folder/stem.{npy,json}``; returns False (with a warning) if the folder is not writable.

    A read-only cache only costs speed (the next load decodes again), so it is not an error.
    """
    npy, index = entry_paths(folder, stem)
    record = {
        "format": CACHE_FORMAT,
        "key": key,
        "material": material,
        "name": data.name,
        "shape": list(data.images.shape),
        "image_ids": data.image_ids,
        "image_class": data.image_class.tolist(),
        "class_names": data.class_names,
        "class_splits": data.class_splits,
        "fingerprints": data.fingerprints,
        "info": data.info,
    }
    try:
        atomic_save_npy(npy, data.images)
        try:
            atomic_save_json(index, record)
        except BaseException:
            npy.unlink(missing_ok=True)  # no orphan array without its index
            raise
    except OSError as exc:
        warnings.warn(
            f"could not write the dataset cache in {folder} ({exc.strerror or exc}); "
            f"the next load decodes again: set LASIUM_CACHE or --cache-dir to a writable folder",
            stacklevel=3,
        )
        return False
    return True


def load_entry(folder: Path, stem: str, key: str) -> DecodedDataset | None:
    """The cached dataset, or None when absent, stale or unreadable (then it is simply rebuilt)."""
    npy, index = entry_paths(folder, stem)
    if not index.is_file() or not npy.is_file():
        return None
    try:
        record = json.loads(index.read_text())
        if record.get("format") != CACHE_FORMAT or record.get("key") != key:
            return None
        images = np.load(npy, allow_pickle=False)
        image_class = np.asarray(record["image_class"], dtype=np.int64)
        ok = (
            images.dtype == np.uint8
            and list(images.shape) == record["shape"]
            and images.ndim == 4
            and len(record["image_ids"]) == images.shape[0] == image_class.shape[0]
            and len(record["class_names"]) == len(record["class_splits"])
        )
        if not ok:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        # A damaged entry (disk full while writing, edited by hand) is rebuilt, never trusted.
        return None
    return DecodedDataset(
        name=record["name"],
        images=images,
        image_class=image_class,
        image_ids=list(record["image_ids"]),
        class_names=list(record["class_names"]),
        class_splits=list(record["class_splits"]),
        fingerprints=dict(record["fingerprints"]),
        info=dict(record["info"]),
    )


# ----------------------------------------------------------------------------- memory-mapped image arrays


@dataclass
class ImageArray:
    """The decoded pixels of a large dataset, in one ``.npy`` read as a read-only memory map.

    ``images`` (n, H, W, C) uint8; ``image_ids`` its rows' ids; ``fingerprints[name]`` =
    :func:`fingerprint` of the rows of each named range (the splits, stored contiguously); ``path`` the
    ``.npy``; ``status`` "hit", "written" or "not writable" (decoded into memory, nothing cached).
    """

    images: np.ndarray
    image_ids: list[str]
    fingerprints: dict[str, str]
    path: Path
    status: str


def load_image_array(folder: Path, stem: str, key: str) -> ImageArray | None:
    """The cached array memory-mapped read-only, or None when absent, stale or damaged (then it is rebuilt)."""
    npy, index = entry_paths(folder, stem)
    if not index.is_file() or not npy.is_file():
        return None
    try:
        record = json.loads(index.read_text())
        if record.get("format") != IMAGE_CACHE_FORMAT or record.get("key") != key:
            return None
        images = np.load(npy, mmap_mode="r", allow_pickle=False)
        ok = images.dtype == np.uint8 and images.ndim == 4 and list(images.shape) == record["shape"]
        if not ok or len(record["image_ids"]) != images.shape[0]:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return ImageArray(images, list(record["image_ids"]), dict(record["fingerprints"]), npy, "hit")


def _reserve(path: Path, nbytes: int) -> None:
    """Allocate ``nbytes`` on disk for ``path`` now, so a full disk is an ``OSError`` here rather than a
    crash (SIGBUS) while pixels are written through the memory map; skipped where the file system cannot."""
    import errno
    import os

    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, nbytes)
        except AttributeError:  # no posix_fallocate on this platform
            return
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                return
            raise


def cached_image_array(
    folder: Path,
    stem: str,
    key: str,
    material: dict[str, Any],
    image_ids: list[str],
    shape: tuple[int, int, int, int],
    fill: Callable[[np.ndarray], None],
    ranges: dict[str, tuple[int, int]],
) -> ImageArray:
    """The pixels of ``image_ids``: memory-mapped from ``folder/stem.npy`` when its JSON index holds ``key``,
    else decoded now by ``fill(out)`` (which writes every row of ``out``, uint8 ``shape``) straight into a
    memory-mapped temporary file that is then renamed into place; the JSON index is written last.

    Nothing of the dataset is ever held in memory whole (CelebA at 84x84x3 is 4.3 GB). A killed writer leaves
    only ``.stem.npy.partial``, overwritten by the next run. ``ranges`` names the row ranges to fingerprint.
    A cache folder that cannot be written costs a warning and a decode into memory.
    """
    hit = load_image_array(folder, stem, key)
    if hit is not None:
        return hit
    npy, index = entry_paths(folder, stem)
    nbytes = int(np.prod(shape))
    fingerprints: dict[str, str] = {}

    def digest(images: np.ndarray) -> None:
        fingerprints.update({name: fingerprint(images[a:b]) for name, (a, b) in ranges.items()})

    def write(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        offset = int(out.offset)
        del out
        _reserve(tmp, offset + nbytes)
        out = np.lib.format.open_memmap(tmp, mode="r+")
        fill(out)
        out.flush()
        digest(out)
        del out

    try:
        folder.mkdir(parents=True, exist_ok=True)
        replace_atomically(npy, write, temp=folder / f".{stem}.npy.partial")
    except OSError as exc:
        import errno

        if exc.errno == errno.ENOSPC:
            from lasium.errors import DataError

            raise DataError(
                f"the decoded cache needs {nbytes / 1e9:.1f} GB in {folder} and that disk is full; free space "
                "there or choose another cache folder (--cache-dir or LASIUM_CACHE)"
            ) from None
        warnings.warn(
            f"could not write the dataset cache in {folder} ({exc.strerror or exc}); decoding into memory "
            f"({nbytes / 1e9:.1f} GB) and again on the next load: set LASIUM_CACHE or --cache-dir to a writable "
            "folder",
            stacklevel=3,
        )
        images = np.empty(shape, np.uint8)
        fill(images)
        digest(images)
        return ImageArray(images, image_ids, fingerprints, npy, "not writable")
    record = {
        "format": IMAGE_CACHE_FORMAT,
        "key": key,
        "material": material,
        "shape": list(shape),
        "image_ids": image_ids,
        "fingerprints": fingerprints,
    }
    try:
        atomic_save_json(index, record)
    except BaseException:
        npy.unlink(missing_ok=True)  # no orphan array without its index
        raise
    return ImageArray(np.load(npy, mmap_mode="r", allow_pickle=False), image_ids, fingerprints, npy, "written")
