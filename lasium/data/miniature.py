"""A miniature Omniglot: a zip pair with the official layout and a handful of characters.

For tests and demos that need the loader's real code path (zip reading, layout checks, decoding,
caching, the class split) in milliseconds and without the real data. Each character is a few random
strokes; its 20 "drawers" jitter them slightly, so classes are visibly distinct. The result is *not*
accepted as real Omniglot: pass the returned :class:`OmniglotLayout` to the loader.

    layout = write_miniature_omniglot(tmp_path)
    data = load_omniglot(tmp_path, cache, layout=layout)
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lasium.data.omniglot import OMNIGLOT_FOLDER, OMNIGLOT_ZIPS, OmniglotLayout


def miniature_layout(characters: tuple[int, int] = (6, 4), drawers: int = 20) -> OmniglotLayout:
    """Layout of a miniature with ``characters`` per zip, split in Omniglot's proportions (≥ 1 val, ≥ 1 test)."""
    total = sum(characters)
    n_val = max(1, round(total * 100 / 1623))
    n_test = max(1, round(total * 323 / 1623))
    return OmniglotLayout(characters=characters, drawers=drawers, split_sizes=(total - n_val - n_test, n_val, n_test))


def character_png(char_id: int, drawer: int, size: int = 105) -> bytes:
    """A 1-bit PNG (black ink on white, like Omniglot) of character ``char_id`` as drawn by ``drawer``."""
    shape = np.random.default_rng(char_id).uniform(0.15, 0.85, (4, 2)) * size
    jitter = np.random.default_rng((char_id, drawer)).normal(0.0, 1.5, (4, 2))
    img = Image.new("1", (size, size), 1)
    points = [tuple(p) for p in (shape + jitter).tolist()]
    ImageDraw.Draw(img).line(points, fill=0, width=4)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def miniature_entries(layout: OmniglotLayout, alphabets_per_zip: int = 2) -> list[dict[str, bytes]]:
    """Per zip (background, evaluation): ``{member name: bytes}`` in the official layout, directories included."""
    zips = []
    next_id = 1
    for which, count in enumerate(layout.characters):
        top = Path(OMNIGLOT_ZIPS[which]).stem
        entries: dict[str, bytes] = {f"{top}/": b""}
        for k in range(count):
            alphabet = f"Alphabet_{which}{k % alphabets_per_zip}"
            folder = f"{top}/{alphabet}/character{k // alphabets_per_zip + 1:02d}/"
            entries.setdefault(f"{top}/{alphabet}/", b"")
            entries[folder] = b""
            for drawer in range(1, layout.drawers + 1):
                entries[f"{folder}{next_id:04d}_{drawer:02d}.png"] = character_png(next_id, drawer, layout.source_size)
            next_id += 1
        zips.append(entries)
    return zips


def write_zip(path: str | Path, entries: dict[str, bytes]) -> Path:
    """Write ``entries`` (name → bytes; names ending in "/" are directories) as a deflated zip."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            zf.writestr(name, entries[name])
    return path


def write_miniature_omniglot(
    data_root: str | Path, characters: tuple[int, int] = (6, 4), drawers: int = 20
) -> OmniglotLayout:
    """Write ``<data_root>/omniglot/images_{background,evaluation}.zip`` in miniature; returns its layout."""
    layout = miniature_layout(characters, drawers)
    for name, entries in zip(OMNIGLOT_ZIPS, miniature_entries(layout)):
        write_zip(Path(data_root) / OMNIGLOT_FOLDER / name, entries)
    return layout
