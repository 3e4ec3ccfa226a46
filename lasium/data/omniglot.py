"""Omniglot (Lake, Salakhutdinov & Tenenbaum, Science 2015), read straight from the official zips.

Expected at ``<data root>/omniglot/images_background.zip`` and ``images_evaluation.zip``, laid out as
``images_background/<Alphabet>/characterNN/NNNN_MM.png`` (NNNN = global character id 0001-1623,
MM = drawer 01-20; 105×105 1-bit PNGs). Nothing is extracted: members are decoded from the zips, once,
into a cache of 28×28 uint8 arrays (see :mod:`lasium.data.cache` and :mod:`lasium.data.preprocess`:
ink is inverted to bright-on-dark).

Class split: the 1623 characters, sorted by global id, are permuted with
``numpy.random.default_rng(OMNIGLOT_SPLIT_SEED).permutation`` and cut into 1200 train / 100 val /
323 test characters; the same split on every machine. This is a random character split like the one
of the LASIUM reference code, not the background/evaluation alphabet split of Lake et al.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lasium.data import paths
from lasium.data.cache import DecodedDataset, cache_key, entry_paths, load_entry, save_entry
from lasium.data.preprocess import (
    CHUNK_IMAGES,
    ENLARGE_FILTER,
    PREPROCESS_VERSION,
    SHRINK_FILTER,
    decode_zip_members,
    run_jobs,
)
from lasium.errors import DataError
from lasium.safe_io import file_sha256

if TYPE_CHECKING:
    from lasium.data.registry import LoadRequest

OMNIGLOT_SPLIT_SEED = 2021
OMNIGLOT_FOLDER = "omniglot"
OMNIGLOT_ZIPS = ("images_background.zip", "images_evaluation.zip")
DOWNLOAD_FIX = "run `lasium-data download omniglot` to replace it with the official zip (md5-checked)"
MEMBER_PATTERN = re.compile(
    r"^(?P<top>[^/]+)/(?P<alphabet>[^/]+)/(?P<folder>character\d\d)/(?P<id>\d{4})_(?P<drawer>\d\d)\.png$"
)
# Operating-system litter that some zip tools add; harmless, so it is skipped rather than refused.
IGNORED_ENTRY = re.compile(r"(^|/)(__MACOSX/|\._|\.DS_Store$|Thumbs\.db$)")


@dataclass(frozen=True)
class OmniglotLayout:
    """What a valid copy holds. The defaults are the real dataset; tests pass a miniature.

    ``characters`` = characters per zip (background, evaluation); global ids run 1..sum, background
    first; ``split_sizes`` = (train, val, test) characters; ``source_size`` = side of every PNG.
    """

    characters: tuple[int, int] = (964, 659)
    drawers: int = 20
    split_sizes: tuple[int, int, int] = (1200, 100, 323)
    source_size: int = 105

    def __post_init__(self) -> None:
        if sum(self.split_sizes) != sum(self.characters):
            raise ValueError(f"split sizes {self.split_sizes} do not add up to {sum(self.characters)} characters")

    @property
    def num_characters(self) -> int:
        return sum(self.characters)


OMNIGLOT_LAYOUT = OmniglotLayout()


@dataclass
class Character:
    """One character folder of a zip: its global id, name and the PNG members, by drawer."""

    id: int
    name: str  # "<Alphabet>/characterNN"
    members: list[str] = field(default_factory=list)


def omniglot_class_split(
    num_classes: int = 1623, sizes: tuple[int, int, int] = (1200, 100, 323), seed: int = OMNIGLOT_SPLIT_SEED
) -> list[str]:
    """The split ("train" | "val" | "test") of each class, classes given in global-id order.

    ``default_rng(seed).permutation`` orders the classes; the first ``sizes[0]`` go to train, the next
    ``sizes[1]`` to val, the rest to test.
    """
    if sum(sizes) != num_classes:
        raise ValueError(f"split sizes {sizes} do not add up to {num_classes} classes")
    order = np.random.default_rng(seed).permutation(num_classes)
    splits = [""] * num_classes
    for rank, c in enumerate(order.tolist()):
        splits[c] = "train" if rank < sizes[0] else "val" if rank < sizes[0] + sizes[1] else "test"
    return splits


def omniglot_zip_paths(data_root: str | Path | None = None) -> list[Path]:
    """The two zips under the data root; :class:`DataError` naming the fix when a folder or zip is missing."""
    root = paths.data_root(data_root)
    folder = root / OMNIGLOT_FOLDER
    where = (
        "pass --data-root or set LASIUM_DATA to the folder that holds omniglot/, or run "
        f"`lasium-data download omniglot --data-root {root}`"
    )
    if not folder.is_dir():
        if (root / OMNIGLOT_ZIPS[0]).is_file():
            raise DataError(
                f"{root} holds the zips itself; the data root is the folder above it: --data-root {root.parent}"
            )
        raise DataError(f"Omniglot not found: {folder} does not exist; {where}")
    zips = [folder / name for name in OMNIGLOT_ZIPS]
    for z in zips:
        if not z.is_file():
            raise DataError(f"Omniglot is incomplete: {z} is missing; {where}")
    return zips


def scan_omniglot_zip(path: Path, which: int, layout: OmniglotLayout = OMNIGLOT_LAYOUT) -> list[Character]:
    """Check the layout of zip number ``which`` (0 = background, 1 = evaluation) from its directory alone.

    Every entry must be ``<top>/<Alphabet>/characterNN/NNNN_MM.png`` with ``<top>`` = ``images_background``
    or ``images_evaluation`` (the zip's official name, whatever ``path`` is called); each
    character folder holds drawers 01..``layout.drawers`` of one id; ids are exactly the zip's range.
    Returns the characters sorted by id. Raises :class:`DataError` naming the first problem.
    """
    top = Path(OMNIGLOT_ZIPS[which]).stem
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise DataError(f"{path} is not a readable zip ({exc}): it is truncated or corrupt; {DOWNLOAD_FIX}") from None
    by_folder: dict[str, Character] = {}
    for name in names:
        if name.endswith("/") or IGNORED_ENTRY.search(name):
            continue
        m = MEMBER_PATTERN.match(name)
        if m is None or m["top"] != top:
            raise DataError(
                f"unexpected entry {name!r} in {path}: expected only "
                f"{top}/<Alphabet>/characterNN/NNNN_MM.png; {DOWNLOAD_FIX}"
            )
        folder = f"{m['alphabet']}/{m['folder']}"
        char = by_folder.setdefault(folder, Character(int(m["id"]), folder))
        if int(m["id"]) != char.id:
            raise DataError(
                f"{name} in {path} has id {m['id']} but its folder holds character {char.id:04d}; {DOWNLOAD_FIX}"
            )
        char.members.append(name)
    expected_drawers = [f"{d:02d}" for d in range(1, layout.drawers + 1)]
    for char in by_folder.values():
        char.members.sort()
        drawers = [Path(m).stem.split("_")[1] for m in char.members]
        if drawers != expected_drawers:
            raise DataError(
                f"{top}/{char.name} in {path} holds {len(drawers)} drawings, expected drawers "
                f"01-{layout.drawers:02d} once each: the copy is incomplete; {DOWNLOAD_FIX}"
            )
    chars = sorted(by_folder.values(), key=lambda c: c.id)
    want = layout.characters[which]
    first = 1 + sum(layout.characters[:which])
    if len(chars) != want:
        raise DataError(
            f"{path} holds {len(chars)} characters, expected {want}: the copy is incomplete; {DOWNLOAD_FIX}"
        )
    ids = [c.id for c in chars]
    if ids != list(range(first, first + want)):
        bad = next(i for i, c in zip(range(first, first + want), ids) if i != c)
        raise DataError(
            f"{path} has character ids {ids[0]:04d}..{ids[-1]:04d} with a gap or duplicate near {bad:04d}, "
            f"expected {first:04d}..{first + want - 1:04d}; {DOWNLOAD_FIX}"
        )
    return chars


def load_omniglot(
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: tuple[int, int] = (28, 28),
    *,
    layout: OmniglotLayout = OMNIGLOT_LAYOUT,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedDataset:
    """All of Omniglot, decoded: from the cache when it matches the zips, else decoded now and cached.

    Images are ordered by global character id, then drawer; ``image_ids`` are ``omniglot/NNNN_MM``,
    class names ``<Alphabet>/characterNN``.
    """
    zips = omniglot_zip_paths(data_root)
    size = (int(image_size[0]), int(image_size[1]))
    material = {
        "dataset": "omniglot",
        "layout": asdict(layout),
        # content, not mtime: a copy or a remount of the same zips (a CI cache, a shared data folder) still hits
        "zips": [{"name": z.name, "size": z.stat().st_size, "sha256": file_sha256(z)} for z in zips],
        "image_size": list(size),
        "preprocess": [PREPROCESS_VERSION, SHRINK_FILTER, ENLARGE_FILTER, "invert"],
        "split_seed": OMNIGLOT_SPLIT_SEED,
    }
    key = cache_key(material)
    folder = paths.cache_dir(cache_dir) / OMNIGLOT_FOLDER
    stem = f"omniglot-{size[0]}x{size[1]}-{key}"
    data = load_entry(folder, stem, key)
    status = "hit"
    if data is None:
        data = _decode_omniglot(zips, size, layout, workers, progress)
        status = "written" if save_entry(folder, stem, key, material, data) else "not writable"
    data.info.update(data=str(zips[0].parent), cache_file=str(entry_paths(folder, stem)[0]), cache=status)
    return data


def load_omniglot_dataset(request: LoadRequest) -> DecodedDataset:
    """The registry's ``omniglot``: :func:`load_omniglot`; ``channels=3`` replicates the gray channel (for
    models built for RGB)."""
    data = load_omniglot(
        request.data_root, request.cache_dir, request.image_size, workers=request.workers, progress=request.progress
    )
    if request.channels == 3:
        data.images = np.repeat(data.images, 3, axis=-1)
        data.compute_fingerprints()
    return data


def _decode_omniglot(
    zips: list[Path], size: tuple[int, int], layout: OmniglotLayout, workers: int | None, progress: bool
) -> DecodedDataset:
    characters: list[Character] = []
    jobs, sizes = [], []
    source = (layout.source_size, layout.source_size)
    for which, z in enumerate(zips):
        chars = scan_omniglot_zip(z, which, layout)  # the whole layout is checked before any decoding
        characters.extend(chars)
        members = [m for c in chars for m in c.members]
        for start in range(0, len(members), CHUNK_IMAGES):
            chunk = members[start : start + CHUNK_IMAGES]
            jobs.append((str(z), chunk, size, True, source, DOWNLOAD_FIX))
            sizes.append(len(chunk))
    images = np.concatenate(
        run_jobs(decode_zip_members, jobs, sizes, workers=workers, desc="decoding Omniglot", progress=progress)
    )
    image_class = np.repeat(np.arange(len(characters), dtype=np.int64), layout.drawers)
    data = DecodedDataset(
        name="omniglot",
        images=images,
        image_class=image_class,
        image_ids=[f"omniglot/{Path(m).stem}" for c in characters for m in c.members],
        class_names=[c.name for c in characters],
        class_splits=omniglot_class_split(layout.num_characters, layout.split_sizes),
        info={
            "split_seed": OMNIGLOT_SPLIT_SEED,
            "preprocessing": f"grayscale, inverted (ink 255 on 0), resized to {size[0]}x{size[1]} "
            f"({SHRINK_FILTER} filter), uint8; preprocess v{PREPROCESS_VERSION}",
        },
    )
    data.compute_fingerprints()
    return data
