"""A generic image folder: ``PATH/<class>/<image>``, ``PATH/{train,val,test}/<class>/<image>``, or a flat,
unlabeled ``PATH/<image>``.

Images may have any size and format Pillow reads (png, jpg, bmp, gif, webp, tiff, pnm); they are
resized to one shape (default 28×28, no inversion). Channels: 1 when every image is stored in a
grayscale mode, else 3 (RGB); ``channels=1`` or ``3`` forces it. Transparent pixels are shown over
white.

Without ``train/ val/ test/`` subfolders, classes (sorted by folder name) are split by
``default_rng(IMAGEFOLDER_SPLIT_SEED).permutation`` in the Omniglot proportions 1200 : 100 : 323 of
1623, with at least one val and one test class.
Hidden files are skipped and files directly inside PATH (a README, a licence) are ignored; any
other non-image file among the images is an error, so nothing is silently dropped.

A **flat folder** (images directly inside PATH, no subfolders) is an unlabeled collection: all of its
images form the train split, with no classes (``info["labeled"]`` is False). Unsupervised stages
(:func:`lasium.data.load_unlabeled`: generative models, VAE anchors, UMTRA and CACTUs tasks) read it;
a labeled split of it is refused.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lasium.data import paths
from lasium.data.cache import SPLITS, DecodedDataset, cache_key, entry_paths, load_entry, save_entry
from lasium.data.preprocess import (
    CHUNK_IMAGES,
    ENLARGE_FILTER,
    PREPROCESS_VERSION,
    SHRINK_FILTER,
    decode_files,
    image_is_grayscale,
    run_jobs,
)
from lasium.errors import DataError

if TYPE_CHECKING:
    from lasium.data.registry import LoadRequest

IMAGEFOLDER_SPLIT_SEED = 2021
OMNIGLOT_PROPORTIONS = (1200, 100, 323)
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm", ".pnm"}
)
LAYOUT_HINT = "expected PATH/<class>/<image>, PATH/{train,val,test}/<class>/<image> or, unlabeled, PATH/<image>"
FIX = "remove or replace that file"


@dataclass
class FolderClass:
    """One class folder: its split ("" when the folder has no split subfolders), name and image files."""

    split: str
    name: str
    files: list[Path] = field(default_factory=list)
    stats: list[tuple[int, int]] = field(default_factory=list)  # (size, mtime_ns) per file


@dataclass
class FolderListing:
    root: Path
    explicit_splits: bool
    classes: list[FolderClass]
    flat: bool = False  # images directly in root, no classes (unlabeled)

    @property
    def num_images(self) -> int:
        return sum(len(c.files) for c in self.classes)

    def digest(self) -> str:
        """sha256 of every file's relative path, size and mtime: changes whenever the folder does."""
        h = hashlib.sha256()
        for c in self.classes:
            for f, (size, mtime) in zip(c.files, c.stats):
                h.update(f"{f.relative_to(self.root).as_posix()}\0{size}\0{mtime}\n".encode())
        return h.hexdigest()


def _visible_dirs(folder: Path) -> list[os.DirEntry[str]]:
    return sorted((e for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")), key=lambda e: e.name)


def _add_file(cls: FolderClass, entry: os.DirEntry[str]) -> None:
    st = entry.stat()
    cls.files.append(Path(entry.path))
    cls.stats.append((st.st_size, st.st_mtime_ns))


def list_split_classes(folder: Path, split: str) -> list[FolderClass]:
    """The class folders of ``folder`` (sorted by name), each with its sorted image files; :class:`DataError` on a
    nested folder, a non-image file or an empty class."""
    classes = []
    for d in _visible_dirs(folder):
        cls = FolderClass(split, d.name)
        for entry in sorted(os.scandir(d.path), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir():
                raise DataError(f"unexpected folder {path}: class folders hold images only ({LAYOUT_HINT})")
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                raise DataError(
                    f"{path} is not an image file (expected {', '.join(sorted(IMAGE_EXTENSIONS))}); "
                    "remove it or move it out of the class folders"
                )
            _add_file(cls, entry)
        if not cls.files:
            raise DataError(f"class folder {d.path} holds no images; remove it or add images")
        classes.append(cls)
    return classes


def list_imagefolder(root: str | Path) -> FolderListing:
    """List (and check) the class folders and image files under ``root``; :class:`DataError` on a bad layout."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder; {LAYOUT_HINT}")
    dirs = _visible_dirs(root)
    split_dirs = [d for d in dirs if d.name in SPLITS]
    if split_dirs:
        others = [d.name for d in dirs if d.name not in SPLITS]
        if others:
            raise DataError(
                f"{root} has split folders ({', '.join(d.name for d in split_dirs)}) and also {others[0]}/; "
                "move class folders inside train/, val/ or test/"
            )
        classes = [c for split in SPLITS if (root / split).is_dir() for c in list_split_classes(root / split, split)]
    elif not dirs:
        return _flat_listing(root)
    else:
        classes = list_split_classes(root, "")
    return FolderListing(root, bool(split_dirs), classes)


def _flat_listing(root: Path) -> FolderListing:
    """A folder without subfolders: its image files (sorted by name) are one unlabeled train collection."""
    flat = FolderClass("train", "")
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_file() and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
            _add_file(flat, entry)
    if not flat.files:
        raise DataError(f"no class folders in {root} and no images directly in it; {LAYOUT_HINT}")
    return FolderListing(root, False, [flat], flat=True)


def imagefolder_class_split(num_classes: int, seed: int = IMAGEFOLDER_SPLIT_SEED) -> list[str]:
    """The split of each class (in sorted-name order) for a folder without split subfolders.

    Sizes follow Omniglot's 1200 / 100 / 323 of 1623 (rounded), keeping at least one val and one test class.
    """
    if num_classes < 3:
        raise DataError(
            f"only {num_classes} class folder(s): need at least 3 to split into train/val/test, "
            "or give PATH/train, PATH/val and PATH/test subfolders"
        )
    total = sum(OMNIGLOT_PROPORTIONS)
    n_val = max(1, round(num_classes * OMNIGLOT_PROPORTIONS[1] / total))
    n_train = min(round(num_classes * OMNIGLOT_PROPORTIONS[0] / total), num_classes - n_val - 1)
    order = np.random.default_rng(seed).permutation(num_classes)
    splits = [""] * num_classes
    for rank, c in enumerate(order.tolist()):
        splits[c] = "train" if rank < n_train else "val" if rank < n_train + n_val else "test"
    return splits


def load_imagefolder(
    root: str | Path,
    cache_dir: str | Path | None = None,
    image_size: tuple[int, int] = (28, 28),
    *,
    channels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedDataset:
    """The whole folder, decoded to uint8 (n, H, W, C): from the cache when the folder is unchanged."""
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1, 3 or auto, got {channels}")
    listing = list_imagefolder(root)
    resolved = listing.root.resolve()
    size = (int(image_size[0]), int(image_size[1]))
    material = {
        "dataset": "imagefolder",
        "root": str(resolved),
        "files": listing.digest(),
        "image_size": list(size),
        "channels": channels,
        "preprocess": [PREPROCESS_VERSION, SHRINK_FILTER, ENLARGE_FILTER],
        "split_seed": None if listing.explicit_splits or listing.flat else IMAGEFOLDER_SPLIT_SEED,
    }
    if listing.flat:
        material["layout"] = "flat-unlabeled"
    key = cache_key(material)
    folder = paths.cache_dir(cache_dir) / "imagefolder"
    stem = f"{re.sub(r'[^A-Za-z0-9_.-]', '_', resolved.name) or 'root'}-{size[0]}x{size[1]}-{key}"
    data = load_entry(folder, stem, key)
    status = "hit"
    if data is None:
        data = _decode_folder(listing, resolved, size, channels, workers, progress)
        status = "written" if save_entry(folder, stem, key, material, data) else "not writable"
    data.info.update(data=str(resolved), cache_file=str(entry_paths(folder, stem)[0]), cache=status)
    return data


def load_imagefolder_dataset(request: LoadRequest) -> DecodedDataset:
    """The registry's ``imagefolder:PATH``: :func:`load_imagefolder` of PATH."""
    return load_imagefolder(
        str(request.argument),
        request.cache_dir,
        request.image_size,
        channels=request.channels,
        workers=request.workers,
        progress=request.progress,
    )


def _decode_folder(
    listing: FolderListing,
    resolved: Path,
    size: tuple[int, int],
    channels: int | None,
    workers: int | None,
    progress: bool,
) -> DecodedDataset:
    files = [str(f) for c in listing.classes for f in c.files]
    if channels is None:
        from tqdm.auto import tqdm

        scan = tqdm(files, desc="checking image modes", unit="img", disable=not progress, leave=False)
        channels = 1 if all(image_is_grayscale(f, FIX) for f in scan) else 3
    mode = "L" if channels == 1 else "RGB"
    jobs, sizes = [], []
    for start in range(0, len(files), CHUNK_IMAGES):
        chunk = files[start : start + CHUNK_IMAGES]
        jobs.append((chunk, size, mode, FIX))
        sizes.append(len(chunk))
    images = np.concatenate(
        run_jobs(decode_files, jobs, sizes, workers=workers, desc=f"decoding {resolved.name}", progress=progress)
    )
    if listing.explicit_splits or listing.flat:
        class_splits = [c.split for c in listing.classes]
    else:
        class_splits = imagefolder_class_split(len(listing.classes))
    data = DecodedDataset(
        name=f"imagefolder:{resolved}",
        images=images,
        image_class=np.repeat(np.arange(len(listing.classes), dtype=np.int64), [len(c.files) for c in listing.classes]),
        image_ids=[
            f"{resolved.name}/{f.relative_to(listing.root).as_posix()}" for c in listing.classes for f in c.files
        ],
        class_names=[c.name for c in listing.classes],
        class_splits=class_splits,
        info={
            "labeled": not listing.flat,
            "split_seed": None if listing.explicit_splits or listing.flat else IMAGEFOLDER_SPLIT_SEED,
            "preprocessing": f"{'grayscale' if channels == 1 else 'RGB'}, resized to {size[0]}x{size[1]} "
            f"({SHRINK_FILTER} when shrinking, {ENLARGE_FILTER} when "
            f"enlarging), uint8; preprocess v{PREPROCESS_VERSION}",
        },
    )
    data.compute_fingerprints()
    return data
