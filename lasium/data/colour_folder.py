"""A small colour image folder drawn on the spot (no download), for tests, benchmarks and demos at 84×84×3: each
class is a shape in a colour of its own on a textured background, so the classes differ in ways a learner can see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("ellipse", "rectangle", "triangle", "cross")


def draw_class_image(cls: int, index: int, side: int, rng: np.random.Generator) -> Image.Image:
    """One image of class ``cls``: its shape and colour, at a random place and size, on random texture."""
    base = rng.integers(0, 96, (side // 4, side // 4, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((side, side), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(image)
    hue = np.array([(cls * 67) % 256, (cls * 151 + 80) % 256, (cls * 29 + 160) % 256])
    colour = tuple(int(v) for v in np.clip(hue + rng.integers(-20, 21, 3), 0, 255))
    size = int(rng.integers(side // 3, side // 2))
    x, y = (int(v) for v in rng.integers(2, side - size - 2, 2))
    box = (x, y, x + size, y + size)
    shape = SHAPES[cls % len(SHAPES)]
    if shape == "ellipse":
        draw.ellipse(box, fill=colour)
    elif shape == "rectangle":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=colour)
    else:
        w = max(2, size // 4)
        draw.rectangle((x + size // 2 - w, y, x + size // 2 + w, y + size), fill=colour)
        draw.rectangle((x, y + size // 2 - w, x + size, y + size // 2 + w), fill=colour)
    return image


def draw_colour_folder(root: Path, splits: dict[str, tuple[int, int]], *, side: int = 84, seed: int = 0) -> Path:
    """``root/{split}/class-NN/img-NN.png`` for each split: (classes, images per class); class numbers run on
    across splits so no class is in two splits. Returns ``root``."""
    rng = np.random.default_rng(seed)
    first = 0
    for split, (classes, per_class) in splits.items():
        for c in range(first, first + classes):
            folder = root / split / f"class-{c:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                draw_class_image(c, i, side, rng).save(folder / f"img-{i:02d}.png")
        first += classes
    return root
