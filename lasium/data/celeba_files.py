"""The official CelebA files (Liu, Luo, Wang & Tang, ICCV 2015): where they are, and their strict parsing.

A copy is found under ``<data root>/celeba/`` or the data root itself, flat (as the LASIUM authors' README
asks) or in the folders of the official Google Drive (``Anno/``, ``Eval/``, ``Img/``):

- ``img_align_celeba/`` the aligned and cropped 178x218 JPEGs (``000001.jpg`` ...), unzipped;
- ``list_eval_partition.txt`` ``<image> <0|1|2>`` per line: 0 train, 1 val, 2 test;
- ``identity_CelebA.txt`` ``<image> <identity>`` per line;
- ``list_attr_celeba.txt`` a count line, a header line of the 40 attribute names, then ``<image>`` and 40 values
  of ``1`` or ``-1`` per line.

Every line is checked (a malformed one is a :class:`DataError` naming the file, the line and the fix), the lists
must name the same images and every listed image must exist. What differs from the published release (counts,
annotation md5s) is returned as notes, not refused. :mod:`lasium.data.celeba` builds the datasets from it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lasium.data import paths
from lasium.data.cache import SPLITS
from lasium.data.download import file_md5
from lasium.errors import DataError

CELEBA_FOLDER = "celeba"
CELEBA_SITE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
IMAGES_FOLDER = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
IDENTITY_FILE = "identity_CelebA.txt"
ATTRIBUTES_FILE = "list_attr_celeba.txt"
PARTITION_SPLITS = {b"0": "train", b"1": "val", b"2": "test"}
NUM_ATTRIBUTES = 40
# md5 of the annotation files of the official release (as torchvision's CelebA class pins them).
PUBLISHED_MD5 = {
    PARTITION_FILE: "d32c9cbf5e040fd4025c592c306e6668",
    IDENTITY_FILE: "32bd1bd63d3c78cd57e08160ec5ed1e2",
    ATTRIBUTES_FILE: "75e246fa4810816ffd6ee81facbd244c",
}
NAME_PATTERN = re.compile(rb"^[^/\\\s]+\.(jpg|jpeg|png)$", re.IGNORECASE)
FIX = f"get it again from the official CelebA site ({CELEBA_SITE})"


@dataclass(frozen=True)
class CelebACounts:
    """What the published release holds (Liu et al., ICCV 2015; the CelebA site)."""

    images: int = 202_599
    identities: int = 10_177
    partition: tuple[int, int, int] = (162_770, 19_867, 19_962)


PUBLISHED_COUNTS = CelebACounts()


@dataclass
class CelebAFiles:
    """Where the four parts of a CelebA copy are."""

    folder: Path
    images: Path
    partition: Path
    identity: Path
    attributes: Path


@dataclass
class CelebAIndex:
    """The parsed annotations, images in cache order (partition, then file name).

    ``names`` file names; ``splits`` their split; ``identities`` int64; ``attributes`` bool (n, 40) or None;
    ``attribute_names``; ``notes`` what differs from the published release (empty when nothing does).
    """

    names: list[str]
    splits: list[str]
    identities: np.ndarray
    attributes: np.ndarray | None = None
    attribute_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ranges(self) -> dict[str, tuple[int, int]]:
        """Row range of each split present (rows are ordered by split)."""
        out, start = {}, 0
        for split in SPLITS:
            n = self.splits.count(split)
            if n:
                out[split] = (start, start + n)
            start += n
        return out


# ----------------------------------------------------------------------------- locating the files


def _first_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / "Anno" / name, folder / "Eval" / name):
        if candidate.is_file():
            return candidate
    return None


def _looks_like_celeba(folder: Path) -> bool:
    return folder.is_dir() and (
        _first_file(folder, PARTITION_FILE) is not None
        or (folder / IMAGES_FOLDER).is_dir()
        or (folder / "Img" / IMAGES_FOLDER).is_dir()
        or (folder / f"{IMAGES_FOLDER}.zip").is_file()
    )


def celeba_files(data_root: str | Path | None = None) -> CelebAFiles:
    """The four parts under ``<data root>/celeba`` (or the data root itself); :class:`DataError` naming what is
    missing and where to get it."""
    root = paths.data_root(data_root)
    expected = (
        f"{IMAGES_FOLDER}/ (unzipped), {PARTITION_FILE}, {IDENTITY_FILE} and {ATTRIBUTES_FILE} from the official "
        f"CelebA site ({CELEBA_SITE})"
    )
    folder = next((f for f in (root / CELEBA_FOLDER, root) if _looks_like_celeba(f)), None)
    if folder is None:
        raise DataError(
            f"CelebA not found: neither {root / CELEBA_FOLDER} nor {root} holds it; put {expected} in "
            f"{root / CELEBA_FOLDER} (or pass --data-root / set LASIUM_DATA to the folder that holds celeba/)"
        )
    images = next((p for p in (folder / IMAGES_FOLDER, folder / "Img" / IMAGES_FOLDER) if p.is_dir()), None)
    if images is None:
        zipped = next((p for p in (folder, folder / "Img") if (p / f"{IMAGES_FOLDER}.zip").is_file()), None)
        if zipped is not None:
            raise DataError(
                f"CelebA's images are still zipped: unzip {zipped / (IMAGES_FOLDER + '.zip')} in {zipped} "
                f"(it holds {IMAGES_FOLDER}/ with 202,599 JPEGs)"
            )
        raise DataError(f"CelebA is incomplete: {folder / IMAGES_FOLDER}/ is missing; put {expected} in {folder}")
    found = {name: _first_file(folder, name) for name in (PARTITION_FILE, IDENTITY_FILE, ATTRIBUTES_FILE)}
    for name, path in found.items():
        if path is None:
            raise DataError(f"CelebA is incomplete: {folder / name} is missing; put {expected} in {folder}")
    partition, identity, attributes = found[PARTITION_FILE], found[IDENTITY_FILE], found[ATTRIBUTES_FILE]
    assert partition is not None and identity is not None and attributes is not None  # each checked above
    return CelebAFiles(folder, images, partition, identity, attributes)


# ----------------------------------------------------------------------------- parsing the annotation files


def _read_lines(path: Path) -> list[bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc}); {FIX}") from None
    return data.splitlines()


def _bad_line(path: Path, number: int, expected: str, line: bytes) -> DataError:
    shown = line.decode("utf-8", "replace").strip()
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return DataError(f"{path.name} line {number}: expected {expected}, got {shown!r}; the file is damaged: {FIX}")


def _pairs(path: Path, expected: str, valid: re.Pattern[bytes]) -> tuple[list[bytes], list[bytes]]:
    """The ``<image> <value>`` lines of ``path`` (blank lines skipped), each checked against ``valid``."""
    names, values = [], []
    seen: set[bytes] = set()
    for number, line in enumerate(_read_lines(path), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or NAME_PATTERN.match(parts[0]) is None or valid.fullmatch(parts[1]) is None:
            raise _bad_line(path, number, expected, line)
        if parts[0] in seen:
            raise DataError(f"{path.name} line {number}: {parts[0].decode()} is listed twice; {FIX}")
        seen.add(parts[0])
        names.append(parts[0])
        values.append(parts[1])
    if not names:
        raise DataError(f"{path} lists no images; {FIX}")
    return names, values


def parse_partition(path: Path) -> dict[bytes, str]:
    """``list_eval_partition.txt``: image → "train" | "val" | "test"."""
    names, values = _pairs(path, "'<image> <0|1|2>'", re.compile(rb"[012]"))
    return {n: PARTITION_SPLITS[v] for n, v in zip(names, values)}


def parse_identities(path: Path) -> dict[bytes, int]:
    """``identity_CelebA.txt``: image → identity (a positive integer)."""
    names, values = _pairs(path, "'<image> <identity number>'", re.compile(rb"[0-9]+"))
    return {n: int(v) for n, v in zip(names, values)}


def parse_attributes(path: Path) -> tuple[list[str], list[bytes], np.ndarray]:
    """``list_attr_celeba.txt``: (40 attribute names, image names, bool (n, 40) values: 1 → True, -1 → False).

    Line 1 is the number of images, line 2 the attribute names, then one line per image."""
    lines = _read_lines(path)
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < 2:
        raise DataError(f"{path.name} has {len(lines)} line(s): expected a count line and a header line; {FIX}")
    count = lines[0].strip()
    if not count.isdigit():
        raise _bad_line(path, 1, "the number of images", lines[0])
    header = [h.decode("utf-8", "replace") for h in lines[1].split()]
    if len(header) != NUM_ATTRIBUTES:
        raise _bad_line(path, 2, f"the {NUM_ATTRIBUTES} attribute names", lines[1])
    body = lines[2:]
    tokens = b" ".join(body).split()
    width = NUM_ATTRIBUTES + 1
    values = None
    if len(tokens) == len(body) * width:
        names = tokens[0::width]
        del tokens[0::width]
        raw = np.array(tokens, dtype="S3").reshape(len(body), NUM_ATTRIBUTES)
        values = raw == b"1"
        if not bool(np.all(values | (raw == b"-1"))) or not all(NAME_PATTERN.match(n) for n in names):
            values = None
    if values is None:  # find the first bad line for the message (slow path, errors only)
        for number, line in enumerate(body, start=3):
            parts = line.split()
            if (
                len(parts) != width
                or NAME_PATTERN.match(parts[0]) is None
                or any(v not in (b"1", b"-1") for v in parts[1:])
            ):
                raise _bad_line(path, number, f"an image name and {NUM_ATTRIBUTES} values of 1 or -1", line)
        raise DataError(f"{path.name} could not be parsed; {FIX}")  # pragma: no cover - every cause is found above
    if int(count) != len(names):
        raise DataError(
            f"{path.name} says it lists {int(count)} images (line 1) but lists {len(names)}: the file is truncated "
            f"or damaged; {FIX}"
        )
    if len(set(names)) != len(names):
        raise DataError(f"{path.name} lists an image twice; {FIX}")
    return header, names, values


def read_celeba_index(files: CelebAFiles, *, attributes: bool) -> CelebAIndex:
    """Parse and cross-check the annotation files; images ordered by partition, then file name.

    ``attributes``: also parse ``list_attr_celeba.txt`` (the attribute tasks); the identities are always read.
    """
    partition = parse_partition(files.partition)
    identities = parse_identities(files.identity)
    missing = next((n for n in partition if n not in identities), None)
    if missing is not None:
        raise DataError(
            f"{missing.decode()} is in {PARTITION_FILE} but not in {IDENTITY_FILE}: the files are from different "
            f"releases or damaged; {FIX}"
        )
    order = {split: i for i, split in enumerate(SPLITS)}
    names = sorted(partition, key=lambda n: (order[partition[n]], n))
    index = CelebAIndex(
        names=[n.decode() for n in names],
        splits=[partition[n] for n in names],
        identities=np.array([identities[n] for n in names], np.int64),
    )
    if attributes:
        header, attr_names, values = parse_attributes(files.attributes)
        row = {n: i for i, n in enumerate(attr_names)}
        absent = next((n for n in names if n not in row), None)
        if absent is not None:
            raise DataError(
                f"{absent.decode()} is in {PARTITION_FILE} but not in {ATTRIBUTES_FILE}: the files are from "
                f"different releases or damaged; {FIX}"
            )
        index.attributes = values[[row[n] for n in names]]
        index.attribute_names = header
    index.notes = _compare_with_release(index, files)
    return index


def _compare_with_release(index: CelebAIndex, files: CelebAFiles) -> list[str]:
    """What differs from the published release (counts, annotation md5s): empty for an official copy."""
    notes = []
    sizes = tuple(index.splits.count(s) for s in SPLITS)
    expected = PUBLISHED_COUNTS
    if len(index.names) != expected.images or sizes != expected.partition:
        notes.append(
            f"{len(index.names):,} images (partition {sizes[0]:,} / {sizes[1]:,} / {sizes[2]:,}), the published "
            f"release has {expected.images:,} ({' / '.join(f'{n:,}' for n in expected.partition)})"
        )
    n_ids = len(np.unique(index.identities))
    if n_ids != expected.identities:
        notes.append(f"{n_ids:,} identities, the published release has {expected.identities:,}")
    for path in (files.partition, files.identity) + ((files.attributes,) if index.attributes is not None else ()):
        if file_md5(path) != PUBLISHED_MD5[path.name]:
            notes.append(f"{path.name} differs from the official file (md5 {PUBLISHED_MD5[path.name]})")
    return notes


def image_stats(files: CelebAFiles, names: list[str]) -> list[tuple[int, int]]:
    """(size, mtime_ns) of each listed image; :class:`DataError` naming the first one missing."""
    stats: dict[str, tuple[int, int]] = {}
    with os.scandir(files.images) as entries:
        for entry in entries:
            if entry.is_file():
                st = entry.stat()
                stats[entry.name] = (st.st_size, st.st_mtime_ns)
    out = []
    for name in names:
        size_mtime = stats.get(name)
        if size_mtime is None:
            raise DataError(
                f"{files.images / name} is missing (listed in {PARTITION_FILE}): the image folder is incomplete; "
                f"unzip {IMAGES_FOLDER}.zip from the official CelebA site ({CELEBA_SITE}) again"
            )
        out.append(size_mtime)
    return out
