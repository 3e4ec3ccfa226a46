"""Pictures people look at instead of numbers: image grids and task previews (PNG via Pillow)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lasium.safe_io import replace_atomically
from lasium.tasks import Task

SEPARATOR = (220, 60, 60)  # red bar between support and query columns
BACKGROUND = (255, 255, 255)


def to_rgb_uint8(images: np.ndarray) -> np.ndarray:
    """(n, H, W, C) uint8 or float in [0, 1] → (n, H, W, 3) uint8."""
    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def image_grid(images: np.ndarray, columns: int, pad: int = 2, scale: int = 1) -> Image.Image:
    """Tile (n, H, W, C) images row by row into one picture, ``columns`` per row."""
    arr = to_rgb_uint8(images)
    n, h, w, _ = arr.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y : y + h, x : x + w] = arr[i]
    img = Image.fromarray(canvas)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    return img


def preview_scale(height: int, width: int) -> int:
    """How much a preview enlarges images: 2× below 64 px (28-px glyphs), else 1×. A set card's four 5-way 1+5 tasks
    at 84×84×3 drawn 2× were a 1040×3500 PNG whose encode cost seconds, a sizeable share of a small lasium-gen run
    (bench_natural.py)."""
    return 2 if min(height, width) < 64 else 1


def task_grid(
    task: Task, pad: int = 2, gap: int = 8, scale: int | None = None, title: str | None = None
) -> Image.Image:
    """One task as a picture: a row per class, support images, a red separator, then query images
    (``scale`` None: :func:`preview_scale`)."""
    support, query = to_rgb_uint8_task(task.support), to_rgb_uint8_task(task.query)
    n, k_tr, h, w, _ = support.shape
    scale = preview_scale(h, w) if scale is None else scale
    k_val = query.shape[1]
    top = 14 if title else 0
    width = pad + k_tr * (w + pad) + gap + k_val * (w + pad)
    height = top + pad + n * (h + pad)
    canvas = np.full((height, width, 3), 255, np.uint8)
    sep_x = pad + k_tr * (w + pad) + gap // 2 - 1
    canvas[top:, sep_x : sep_x + 2] = SEPARATOR
    for i in range(n):
        y = top + pad + i * (h + pad)
        for j in range(k_tr):
            x = pad + j * (w + pad)
            canvas[y : y + h, x : x + w] = support[i, j]
        for j in range(k_val):
            x = pad + k_tr * (w + pad) + gap + j * (w + pad)
            canvas[y : y + h, x : x + w] = query[i, j]
    img = Image.fromarray(canvas)
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    if title:
        ImageDraw.Draw(img).text((4, 2), title, fill=(0, 0, 0))
    return img


def to_rgb_uint8_task(images: np.ndarray) -> np.ndarray:
    """(N, K, H, W, C) → (N, K, H, W, 3) uint8."""
    n, k = images.shape[:2]
    return to_rgb_uint8(images.reshape((n * k,) + images.shape[2:])).reshape((n, k) + images.shape[2:4] + (3,))


def stack_vertically(pictures: Sequence[Image.Image], gap: int = 10) -> Image.Image:
    """Stack pictures top to bottom on a white background, ``gap`` pixels apart."""
    width = max(p.width for p in pictures)
    height = sum(p.height for p in pictures) + gap * (len(pictures) - 1)
    out = Image.new("RGB", (width, height), BACKGROUND)
    y = 0
    for p in pictures:
        out.paste(p, (0, y))
        y += p.height + gap
    return out


def save_png(picture: Image.Image, path: str | Path) -> Path:
    """Save atomically (temporary name, then rename) so a killed run leaves no half-written PNG."""
    return replace_atomically(path, lambda tmp: picture.save(tmp, format="PNG"))


def save_task_previews(tasks: Sequence[Task], path: str | Path, titles: Sequence[str] | None = None) -> Path:
    """Write one PNG holding a grid per task (support | query), stacked vertically."""
    if not tasks:
        raise ValueError("no tasks to preview")
    grids = [task_grid(t, title=(titles[i] if titles else None)) for i, t in enumerate(tasks)]
    return save_png(stack_vertically(grids), path)
