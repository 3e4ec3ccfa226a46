"""mini-ImageNet (Vinyals et al., NeurIPS 2016) with the split of Ravi & Larochelle (ICLR 2017): 64 / 16 / 20
classes for meta-train / val / test, 600 images each, 84x84; read from the files a user already has.

There is no official download (the images are ImageNet's, under ImageNet's terms), so lasium never fetches
it. Expected under ``<data root>/mini-imagenet/`` (or the data root itself), in either layout people have:

- **folders** ``{train,val,test}/<wnid>/<image>.jpg``: what the split tools write (e.g. yaoyao-liu's
  ``mini-imagenet-tools``, whose tar files the LASIUM authors' README points to);
- **split CSVs** ``train.csv``, ``val.csv``, ``test.csv`` (header ``filename,label``, then
  ``n0153282900000005.jpg,n01532829`` rows: Ravi & Larochelle's files) beside an ``images/`` folder that holds
  every listed file.

Pickled caches (``.pkl``, ``.pickle``) are refused with one line saying how to convert them: unpickling a
downloaded file can run any code, and lasium never does it.

Images are decoded once (RGB, resized to 84x84 when a source image has another size: area averaging when
shrinking) into a memory-mapped cache (60,000 x 84x84x3 uint8 = 1.27 GB), ordered by split, class and file
name, so both layouts of the same images give the same arrays and each split is one contiguous memory-mapped
run. A copy whose classes or counts differ from the Ravi & Larochelle split is described and warned about, not
refused: its scores are not comparable to published ones.
"""

from __future__ import annotations

import csv
import hashlib
import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lasium.data import paths
from lasium.data.cache import SPLITS, DecodedDataset, cache_key, cached_image_array, entry_paths, labeled_fingerprint
from lasium.data.imagefolder import IMAGE_EXTENSIONS, list_split_classes
from lasium.data.preprocess import (
    ENLARGE_FILTER,
    PREPROCESS_VERSION,
    SHRINK_FILTER,
    decode_files,
    decode_into,
)
from lasium.data.registry import ReleaseWarning
from lasium.errors import DataError

if TYPE_CHECKING:
    from lasium.data.registry import LoadRequest

MINI_IMAGENET_FOLDER = "mini-imagenet"
CSV_HEADER = ["filename", "label"]
PICKLE_SUFFIXES = (".pkl", ".pickle")
IMAGES_PER_CLASS = 600
TOOLS = "https://github.com/yaoyao-liu/mini-imagenet-tools"
# The classes (ImageNet wnids) of Ravi & Larochelle's split CSVs (twitter/meta-learning-lstm, data/miniImagenet).
RAVI_LAROCHELLE_CLASSES: dict[str, tuple[str, ...]] = {
    "train": tuple(
        "n01532829 n01558993 n01704323 n01749939 n01770081 n01843383 n01910747 n02074367 n02089867 n02091831 "
        "n02101006 n02105505 n02108089 n02108551 n02108915 n02111277 n02113712 n02120079 n02165456 n02457408 "
        "n02606052 n02687172 n02747177 n02795169 n02823428 n02966193 n03017168 n03047690 n03062245 n03207743 "
        "n03220513 n03337140 n03347037 n03400231 n03476684 n03527444 n03676483 n03838899 n03854065 n03888605 "
        "n03908618 n03924679 n03998194 n04067472 n04243546 n04251144 n04258138 n04275548 n04296562 n04389033 "
        "n04435653 n04443257 n04509417 n04515003 n04596742 n04604644 n04612504 n06794110 n07584110 n07697537 "
        "n07747607 n09246464 n13054560 n13133613".split()
    ),
    "val": tuple(
        "n01855672 n02091244 n02114548 n02138441 n02174001 n02950826 n02971356 n02981792 n03075370 n03417042 "
        "n03535780 n03584254 n03770439 n03773504 n03980874 n09256479".split()
    ),
    "test": tuple(
        "n01930112 n01981276 n02099601 n02110063 n02110341 n02116738 n02129165 n02219486 n02443484 n02871525 "
        "n03127925 n03146219 n03272010 n03544143 n03775546 n04146614 n04149813 n04418357 n04522168 "
        "n07613480".split()
    ),
}
LAYOUT_HINT = (
    "expected {train,val,test}/<wnid>/<image>.jpg, or train.csv, val.csv and test.csv (filename,label) beside an "
    "images/ folder"
)


@dataclass
class MiniImageNetListing:
    """The images of a copy in cache order: ``files`` paths, ``splits`` and ``labels`` (wnids) per image,
    ``layout`` "folders" or "csv", ``folder`` the copy's root, ``notes`` what differs from the Ravi split."""

    folder: Path
    layout: str
    files: list[Path]
    splits: list[str]
    labels: list[str]
    notes: list[str] = field(default_factory=list)

    def ranges(self) -> dict[str, tuple[int, int]]:
        out, start = {}, 0
        for split in SPLITS:
            n = self.splits.count(split)
            if n:
                out[split] = (start, start + n)
            start += n
        return out


def _has_folders(folder: Path) -> bool:
    return all((folder / split).is_dir() for split in SPLITS)


def _has_csvs(folder: Path) -> bool:
    return all((folder / f"{split}.csv").is_file() for split in SPLITS)


def _pickles(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())


def refuse_pickles(found: list[Path]) -> DataError:
    """The one line for a pickled mini-ImageNet cache: why it is refused and how to convert it."""
    return DataError(
        f"{found[0]} is a pickled cache, and lasium never unpickles a downloaded file (unpickling can run any code): "
        "convert it once, in an environment you trust, to image files {train,val,test}/<wnid>/<image>.png (one per "
        f"row of its image array, its labels as folders) beside it, or build the images with {TOOLS}; then run "
        "this again"
    )


def find_mini_imagenet(data_root: str | Path | None = None) -> tuple[Path, str]:
    """(folder, "folders" | "csv") of the copy under ``<data root>/mini-imagenet`` or the data root itself."""
    root = paths.data_root(data_root)
    candidates = [root / MINI_IMAGENET_FOLDER, root]
    for folder in candidates:
        if _has_folders(folder):
            return folder, "folders"
        if _has_csvs(folder):
            return folder, "csv"
    pickles = [p for folder in candidates for p in _pickles(folder)]
    if pickles:
        raise refuse_pickles(pickles)
    partial = next((f for f in candidates if f.is_dir() and (any((f / s).is_dir() for s in SPLITS))), None)
    if partial is not None:
        absent = [s for s in SPLITS if not (partial / s).is_dir()]
        raise DataError(f"mini-ImageNet is incomplete: {partial} has no {', '.join(absent)} folder; {LAYOUT_HINT}")
    partial = next((f for f in candidates if f.is_dir() and any((f / f"{s}.csv").is_file() for s in SPLITS)), None)
    if partial is not None:
        absent = [f"{s}.csv" for s in SPLITS if not (partial / f"{s}.csv").is_file()]
        raise DataError(f"mini-ImageNet is incomplete: {partial} has no {', '.join(absent)}; {LAYOUT_HINT}")
    raise DataError(
        f"mini-ImageNet not found: neither {root / MINI_IMAGENET_FOLDER} nor {root} holds it ({LAYOUT_HINT}); put "
        f"your copy in {root / MINI_IMAGENET_FOLDER} or pass --data-root (lasium does not download it: build it "
        f"with {TOOLS})"
    )


def _read_csv(path: Path) -> list[tuple[str, str]]:
    """The ``filename,label`` rows of a split CSV, checked."""
    fix = "use the split CSVs of Ravi & Larochelle (as in mini-imagenet-tools' csv_files/)"
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path} ({getattr(exc, 'strerror', None) or exc}); {fix}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip() for c in rows[0]] != CSV_HEADER:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise DataError(f"{path.name} line 1: expected the header 'filename,label', got {got!r}; {fix}")
    out = []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        name, label = (row[0].strip(), row[1].strip()) if len(row) == 2 else ("", "")
        if not name or not label or "/" in name or "\\" in name or "/" in label:
            raise DataError(f"{path.name} line {number}: expected '<file name>,<class>', got {','.join(row)!r}; {fix}")
        if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{path.name} line {number}: {name} is not an image file name; {fix}")
        out.append((name, label))
    if not out:
        raise DataError(f"{path} lists no images; {fix}")
    return out


def list_mini_imagenet(data_root: str | Path | None = None) -> MiniImageNetListing:
    """Find, list and check a copy; images ordered by split, class, file name."""
    folder, layout = find_mini_imagenet(data_root)
    entries: list[tuple[int, str, str, Path]] = []  # (split index, wnid, file name, path)
    if layout == "folders":
        for split in SPLITS:
            for cls in list_split_classes(folder / split, split):
                entries += [(SPLITS.index(split), cls.name, f.name, f) for f in cls.files]
    else:
        images = folder / "images"
        if not images.is_dir():
            raise DataError(f"mini-ImageNet is incomplete: {images}/ is missing (the split CSVs list files in it)")
        present = {p.name for p in images.iterdir()}
        seen: dict[str, str] = {}
        for s, split in enumerate(SPLITS):
            for name, label in _read_csv(folder / f"{split}.csv"):
                if name in seen:
                    raise DataError(f"{name} is listed in both {seen[name]}.csv and {split}.csv; {LAYOUT_HINT}")
                if name not in present:
                    raise DataError(
                        f"{images / name} is missing (listed in {split}.csv): the images/ folder is incomplete"
                    )
                seen[name] = split
                entries.append((s, label, name, images / name))
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    result = MiniImageNetListing(
        folder=folder,
        layout=layout,
        files=[e[3] for e in entries],
        splits=[SPLITS[e[0]] for e in entries],
        labels=[e[1] for e in entries],
    )
    result.notes = _compare_with_split(result)
    return result


def _compare_with_split(listing: MiniImageNetListing) -> list[str]:
    """What differs from the Ravi & Larochelle split (classes, 600 images per class): empty when nothing."""
    notes = []
    split_classes: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for split, label in zip(listing.splits, listing.labels):
        split_classes[split][label] = split_classes[split].get(label, 0) + 1
    for split in SPLITS:
        have, want = set(split_classes[split]), set(RAVI_LAROCHELLE_CLASSES[split])
        if have != want:
            notes.append(
                f"{split} has {len(have)} classes ({len(have - want)} not in the Ravi & Larochelle {split} split, "
                f"{len(want - have)} of its {len(want)} missing)"
            )
        short = sorted(c for c, n in split_classes[split].items() if n != IMAGES_PER_CLASS)
        if short:
            notes.append(f"{len(short)} {split} classes do not hold {IMAGES_PER_CLASS} images (e.g. {short[0]})")
    shared = set(split_classes["train"]) & (set(split_classes["val"]) | set(split_classes["test"]))
    shared |= set(split_classes["val"]) & set(split_classes["test"])
    if shared:
        notes.append(f"{len(shared)} classes appear in two splits (e.g. {sorted(shared)[0]})")
    return notes


def load_mini_imagenet_data(
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: tuple[int, int] = (84, 84),
    *,
    channels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedDataset:
    """All of mini-ImageNet, decoded into (or memory-mapped from) the cache; classes = wnids of each split."""
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1, 3 or auto, got {channels}")
    listing = list_mini_imagenet(data_root)
    size = (int(image_size[0]), int(image_size[1]))
    channels = channels or 3
    digest = hashlib.sha256()
    for path, split, label in zip(listing.files, listing.splits, listing.labels):
        st = path.stat()
        digest.update(f"{path.name}\0{split}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    material = {
        "dataset": "mini-imagenet",
        "files": digest.hexdigest(),
        "image_size": list(size),
        "channels": channels,
        "preprocess": [PREPROCESS_VERSION, SHRINK_FILTER, ENLARGE_FILTER],
    }
    key = cache_key(material)
    folder = paths.cache_dir(cache_dir) / MINI_IMAGENET_FOLDER
    stem = f"mini-imagenet-{size[0]}x{size[1]}x{channels}-{key}"
    mode = "L" if channels == 1 else "RGB"
    image_paths = [str(p) for p in listing.files]

    def fill(out: np.ndarray) -> None:
        extra = (size, mode, "remove or replace that file")
        decode_into(
            out, decode_files, image_paths, extra, workers=workers, desc="decoding mini-ImageNet", progress=progress
        )

    ids = [f"mini-imagenet/{p.name}" for p in listing.files]
    array = cached_image_array(
        folder, stem, key, material, ids, (len(ids), size[0], size[1], channels), fill, listing.ranges()
    )
    keys = [(SPLITS.index(s), label) for s, label in zip(listing.splits, listing.labels)]
    classes = sorted(set(keys))
    class_of = {k: c for c, k in enumerate(classes)}
    data = DecodedDataset(
        name="mini-imagenet",
        images=array.images,
        image_class=np.array([class_of[k] for k in keys], np.int64),
        image_ids=ids,
        class_names=[label for _, label in classes],
        class_splits=[SPLITS[s] for s, _ in classes],
        info={
            "data": str(listing.folder),
            "layout": "split folders {train,val,test}/<wnid>/"
            if listing.layout == "folders"
            else "split CSVs (filename,label) + images/",
            "split_seed": None,
            "split_source": "the train/val/test folders"
            if listing.layout == "folders"
            else "train.csv, val.csv, test.csv",
            "preprocessing": f"{'RGB' if channels == 3 else 'grayscale'}, resized to {size[0]}x{size[1]} when a "
            f"source differs ({SHRINK_FILTER} when shrinking, {ENLARGE_FILTER} when enlarging), uint8; "
            f"preprocess v{PREPROCESS_VERSION}",
            "release": listing.notes or ["matches the Ravi & Larochelle split (64 / 16 / 20 classes x 600 images)"],
            "cache_file": str(entry_paths(folder, stem)[0]),
            "cache": array.status,
        },
    )
    for split in SPLITS:
        _, labels, split_classes = data.split_indices(split)
        if split_classes and split in array.fingerprints:
            data.fingerprints[split] = labeled_fingerprint(array.fingerprints[split], labels)
    if "train" in array.fingerprints:
        data.fingerprints["unlabeled"] = array.fingerprints["train"]
    if listing.notes:
        warnings.warn(
            f"this mini-ImageNet copy ({listing.folder}) is not the Ravi & Larochelle split: "
            f"{'; '.join(listing.notes)}; scores on it are not comparable to published ones",
            ReleaseWarning,
            stacklevel=3,
        )
    return data


def load_mini_imagenet(request: LoadRequest) -> DecodedDataset:
    """The registry's ``mini-imagenet``."""
    return load_mini_imagenet_data(
        request.data_root,
        request.cache_dir,
        request.image_size,
        channels=request.channels,
        workers=request.workers,
        progress=request.progress,
    )
