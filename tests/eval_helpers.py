"""Small labeled datasets for the evaluation tests (no Omniglot needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from lasium.data import LabeledImages


def pattern_images(num_classes: int, per_class: int, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (n, size, size, 1) images: class c is a bright block at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    cells = size // 4
    for c in range(num_classes):
        r, col = divmod(c % 16, 4)
        for _ in range(per_class):
            img = rng.integers(0, 60, (size, size)).astype(np.uint8)
            img[r * cells : (r + 1) * cells, col * cells : (col + 1) * cells] = 255
            images.append(img)
            labels.append(c)
    return np.stack(images)[..., None], np.asarray(labels, np.int64)


def labeled_images(
    num_classes: int = 8, per_class: int = 12, size: int = 16, seed: int = 0, split: str = "test"
) -> LabeledImages:
    images, labels = pattern_images(num_classes, per_class, size, seed)
    return LabeledImages(
        images=images,
        labels=labels,
        class_names=[f"class{c}" for c in range(num_classes)],
        image_ids=[f"toy/{i:04d}" for i in range(len(labels))],
        fingerprint=f"toy-{seed}",
        name="toy",
        split=split,
    )


def image_folder(root: Path, classes: dict[str, int], per_class: int = 12, size: int = 16) -> Path:
    """``root/{train,val,test}/<class>/<i>.png`` with ``classes`` = images' class count per split."""
    offset = 0
    for split, count in classes.items():
        images, labels = pattern_images(count, per_class, size, seed=offset)
        for i, (img, label) in enumerate(zip(images, labels)):
            folder = root / split / f"{split}{label + offset:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img[..., 0]).save(folder / f"{i:03d}.png")
        offset += count
    return root
