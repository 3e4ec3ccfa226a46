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
from typing import Any

import numpy as np

from lasium.safe_io import replace_atomically
from lasium.tasks import hwc

CACHE_FORMAT = "lasium-decoded-v1"
SPLITS = ("train", "val", "test")


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
    machine, so a shard manifest can name the data its VAE anchors came from.
    """
    h = hashlib.sha256()
    header = {"shape": list(images.shape), "dtype": str(images.dtype), "labels": labels is not None}
    h.update(json.dumps(header, sort_keys=True).encode())
    h.update(np.ascontiguousarray(images).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype="<i8").tobytes())
    return h.hexdigest()


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
