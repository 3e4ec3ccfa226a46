"""Decoding and resizing source images into uint8 arrays, on all cores, with a progress bar.

The decoding functions run in forked worker processes (see :func:`run_jobs`) and use only numpy,
Pillow and the standard library.

Preprocessing (``PREPROCESS_VERSION`` names it in every cache key, so changing it invalidates caches):
- Omniglot PNGs are 1-bit, black ink on white. They are converted to grayscale and **inverted**, so ink
  is bright (255) on a dark (0) background: the informative pixels are the non-zero ones, and a
  generator spends its output on strokes rather than on the white page.
- Resizing uses Pillow's ``BOX`` filter when shrinking (exact area averaging: each 28×28 pixel is the
  ink coverage of its 3.75×3.75 source area, antialiased with no ringing) and ``BICUBIC`` when
  enlarging (a generic image folder may hold small images).
- Arrays are uint8 (H, W, C); consumers view them as float in [0, 1] by dividing by 255.
"""

from __future__ import annotations

import functools
import io
import os
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lasium.errors import DataError

PREPROCESS_VERSION = 1
SHRINK_FILTER = "box"
ENLARGE_FILTER = "bicubic"
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
# A pool pays off only for thousands of images; small jobs (tests, tiny folders) stay in this process.
PARALLEL_MIN_IMAGES = 4000
CHUNK_IMAGES = 2000

_OPEN_ZIPS: dict[str, zipfile.ZipFile] = {}


def resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to ``size`` = (H, W): area averaging when shrinking, bicubic when enlarging."""
    height, width = size
    if img.size == (width, height):
        return img
    shrinking = img.width >= width and img.height >= height
    return img.resize((width, height), Image.Resampling.BOX if shrinking else Image.Resampling.BICUBIC)


def to_array(img: Image.Image, size: tuple[int, int], mode: str, invert: bool = False) -> np.ndarray:
    """Convert to ``mode`` ("L" or "RGB"), optionally invert, resize; returns uint8 (H, W, C)."""
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels are shown over white, as an image viewer would.
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grayscale: Pillow's convert("L") would clip at 255; scale 0..65535 to 0..255 instead.
        img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0 + 0.5).clip(0, 255).astype(np.uint8))
    img = img.convert(mode)
    if invert:
        img = ImageOps.invert(img)
    arr = np.asarray(resize(img, size), dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _open_zip(path: str) -> zipfile.ZipFile:
    zf = _OPEN_ZIPS.get(path)
    if zf is None:
        zf = _OPEN_ZIPS[path] = zipfile.ZipFile(path)
    return zf


def close_open_zips() -> None:
    """Close the zip files kept open by :func:`decode_zip_members` in this process."""
    while _OPEN_ZIPS:
        _OPEN_ZIPS.popitem()[1].close()


def decode_zip_members(
    zip_path: str,
    members: Sequence[str],
    size: tuple[int, int],
    invert: bool,
    source_size: tuple[int, int] | None,
    fix: str,
) -> np.ndarray:
    """Decode PNG ``members`` of ``zip_path`` to uint8 (n, H, W, 1), grayscale, optionally inverted.

    ``source_size`` (W, H), when given, is what every image must measure (Omniglot: 105×105).
    Any unreadable member raises :class:`DataError` naming it, ending with ``fix``.
    """
    out = np.empty((len(members), size[0], size[1], 1), np.uint8)
    zip_name = Path(zip_path).name
    try:
        zf = _open_zip(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot read {zip_path} ({exc}); {fix}") from None
    for i, member in enumerate(members):
        try:
            data = zf.read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError) as exc:
            raise DataError(f"{member} in {zip_name} is damaged ({exc}); {fix}") from None
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                if source_size is not None and img.size != source_size:
                    raise DataError(
                        f"{member} in {zip_name} is {img.size[0]}x{img.size[1]} pixels, expected "
                        f"{source_size[0]}x{source_size[1]}; {fix}"
                    )
                out[i] = to_array(img, size, "L", invert)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{member} in {zip_name} is not a readable image ({exc}); {fix}") from None
    return out


def decode_files(paths: Sequence[str], size: tuple[int, int], mode: str, fix: str) -> np.ndarray:
    """Decode image files to uint8 (n, H, W, C) in ``mode`` ("L" → C=1, "RGB" → C=3), EXIF-rotated."""
    channels = 1 if mode == "L" else 3
    out = np.empty((len(paths), size[0], size[1], channels), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                # JPEG can decode at 1/2, 1/4, 1/8 scale directly: much faster for large photos.
                img.draft(mode, (size[1], size[0]))
                img.load()
                out[i] = to_array(ImageOps.exif_transpose(img), size, mode)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{path} is not a readable image ({exc}); {fix}") from None
    return out


@functools.lru_cache(maxsize=32)
def _crop_grid(
    height: int, width: int, box: tuple[float, float, float, float], size: tuple[int, int]
) -> tuple[np.ndarray, ...]:
    """Source rows/columns and interpolation weights of :func:`crop_and_resize`, float32 as TensorFlow computes
    them: (top, bottom, y_lerp, left, right, x_lerp)."""

    def axis(lo: float, hi: float, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = np.float32
        if n_out > 1:
            scale = f(f(hi) - f(lo)) * f(n_in - 1) / f(n_out - 1)
            pos = f(lo) * f(n_in - 1) + np.arange(n_out, dtype=np.float32) * scale
        else:
            pos = np.array([f(0.5) * (f(lo) + f(hi)) * f(n_in - 1)], np.float32)
        low = np.floor(pos)
        return low.astype(np.int64), np.ceil(pos).astype(np.int64), (pos - low).astype(np.float32)

    top, bottom, y_lerp = axis(box[0], box[2], height, size[0])
    left, right, x_lerp = axis(box[1], box[3], width, size[1])
    return top, bottom, y_lerp, left, right, x_lerp


def crop_and_resize(image: np.ndarray, box: tuple[float, float, float, float], size: tuple[int, int]) -> np.ndarray:
    """Crop ``box`` = (y1, x1, y2, x2), fractions of the height and width, out of ``image`` uint8 (H, W, C) and
    resize it to ``size`` = (h, w) by bilinear sampling, as ``tf.image.crop_and_resize`` does (the LASIUM
    authors' code prepares CelebA this way): output pixel (i, j) samples the source at
    ``y1·(H-1) + i·(y2-y1)·(H-1)/(h-1)``, ``x1·(W-1) + j·(x2-x1)·(W-1)/(w-1)`` with float32 arithmetic and no
    antialiasing. The float result is rounded to the nearest integer for uint8 storage (at most 0.5/255 off).
    """
    y1, x1, y2, x2 = (float(v) for v in box)
    if not (0.0 <= y1 < y2 <= 1.0 and 0.0 <= x1 < x2 <= 1.0):
        raise ValueError(f"crop box {box} must satisfy 0 <= y1 < y2 <= 1 and 0 <= x1 < x2 <= 1")
    height, width = image.shape[:2]
    top, bottom, y_lerp, left, right, x_lerp = _crop_grid(height, width, (y1, x1, y2, x2), tuple(size))
    pixels = image.astype(np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    upper, lower = pixels[top], pixels[bottom]
    xl = x_lerp[None, :, None]
    upper = upper[:, left] + (upper[:, right] - upper[:, left]) * xl
    lower = lower[:, left] + (lower[:, right] - lower[:, left]) * xl
    out = upper + (lower - upper) * y_lerp[:, None, None]
    return np.clip(np.floor(out + np.float32(0.5)), 0, 255).astype(np.uint8)


def decode_files_cropped(
    paths: Sequence[str], size: tuple[int, int], mode: str, box: tuple[float, float, float, float], fix: str
) -> np.ndarray:
    """Decode image files in ``mode`` ("L" → C=1, "RGB" → C=3) at full resolution, then :func:`crop_and_resize`
    ``box`` to ``size``: uint8 (n, H, W, C). No EXIF rotation (TensorFlow's decoders apply none either)."""
    channels = 1 if mode == "L" else 3
    out = np.empty((len(paths), size[0], size[1], channels), np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as img:
                img.load()
                out[i] = crop_and_resize(np.asarray(img.convert(mode)), box, size)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise DataError(f"{path} is not a readable image ({exc}); {fix}") from None
    return out


def image_is_grayscale(path: str, fix: str) -> bool:
    """Whether the file is stored in a grayscale mode (reads the header only)."""
    try:
        with Image.open(path) as img:
            return img.mode in GRAY_MODES
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path} is not a readable image ({exc}); {fix}") from None


def default_workers(num_images: int) -> int:
    """Worker processes for ``num_images``: every usable core (at most 8) for big jobs, else 1.

    Parallel decoding forks (see :func:`run_jobs`), so it is used only where fork is the platform's
    usual start method (Linux); elsewhere decoding runs in this process.
    """
    if num_images < PARALLEL_MIN_IMAGES or sys.platform != "linux":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def run_jobs(
    func: Callable[..., np.ndarray],
    jobs: Sequence[tuple[Any, ...]],
    sizes: Sequence[int],
    *,
    workers: int | None,
    desc: str,
    progress: bool = True,
    sink: Callable[[int, np.ndarray], None] | None = None,
) -> list[np.ndarray]:
    """``[func(*job) for job in jobs]``, in order, on ``workers`` processes, with a tqdm bar counting images.

    With ``sink``, each result is handed to ``sink(job index, result)`` as it arrives (in any order) and not
    kept, so a dataset larger than memory can be written into a memory map chunk by chunk; the list
    returned is then empty. The first failing job cancels the rest and its exception (a :class:`DataError`)
    is raised as is.
    """

    def deliver(i: int, result: np.ndarray) -> None:
        if sink is None:
            results[i] = result
        else:
            sink(i, result)

    from tqdm.auto import tqdm

    total = int(sum(sizes))
    workers = default_workers(total) if workers is None else max(1, int(workers))
    if workers > 1 and "fork" not in get_all_start_methods():
        workers = 1
    results: list[np.ndarray | None] = [None] * len(jobs)
    with tqdm(total=total, desc=desc, unit="img", disable=not progress, leave=False) as bar:
        if workers == 1 or len(jobs) <= 1:
            try:
                for i, job in enumerate(jobs):
                    deliver(i, func(*job))
                    bar.update(sizes[i])
            finally:
                close_open_zips()
            return [] if sink is not None else _all_done(results)
        # fork, as torch's DataLoader does on Linux: unlike spawn it never re-runs the caller's
        # script (a script without `if __name__ == "__main__"` would start its work again in each
        # worker) and costs no imports. The children only run Pillow, zlib and numpy code, never
        # the parent's threads (torch, tqdm), so Python's warning about forking threads is moot.
        close_open_zips()  # a zip open here would share its file offset with every child
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("fork"))
            futures: dict[Future[np.ndarray], int] = {pool.submit(func, *job): i for i, job in enumerate(jobs)}
        with pool:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for fut in done:
                    error = fut.exception()
                    if error is not None:
                        pool.shutdown(wait=False, cancel_futures=True)
                        raise error
                    i = futures[fut]
                    deliver(i, fut.result())
                    bar.update(sizes[i])
    return [] if sink is not None else _all_done(results)


def decode_into(
    out: np.ndarray,
    func: Callable[..., np.ndarray],
    files: Sequence[str],
    extra: tuple[Any, ...],
    *,
    workers: int | None,
    desc: str,
    progress: bool = True,
) -> None:
    """Decode ``files`` with ``func(chunk, *extra)`` (chunks of ``CHUNK_IMAGES``, on :func:`run_jobs`' workers) and
    write the results into rows ``0 .. len(files) - 1`` of ``out`` (a memory map) as they arrive."""
    starts = list(range(0, len(files), CHUNK_IMAGES))
    jobs = [(list(files[a : a + CHUNK_IMAGES]), *extra) for a in starts]
    sizes = [len(job[0]) for job in jobs]

    def sink(i: int, block: np.ndarray) -> None:
        out[starts[i] : starts[i] + len(block)] = block

    run_jobs(func, jobs, sizes, workers=workers, desc=desc, progress=progress, sink=sink)


def _all_done(results: list[np.ndarray | None]) -> list[np.ndarray]:
    """The results once every job has filled its slot."""
    done = [r for r in results if r is not None]
    assert len(done) == len(results), "a decoding job left no result"
    return done
