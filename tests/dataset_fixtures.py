"""Small CelebA and mini-ImageNet trees in the exact on-disk formats of the real releases, drawn here.

CelebA: ``img_align_celeba/000001.jpg`` ... (178x218 JPEGs), ``list_eval_partition.txt`` (``<file> <0|1|2>``),
``identity_CelebA.txt`` (``<file> <id>``) and ``list_attr_celeba.txt`` (a count line, a header of 40 attribute
names, then ``<file>`` and 40 values of 1 / -1, columns padded with two spaces as in the official file).
mini-ImageNet: ``{train,val,test}/<wnid>/<wnid><8 digits>.jpg`` or ``{train,val,test}.csv`` (``filename,label``)
beside ``images/``. Every image is drawn from its class (a colour and a bar position), so classes differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# The 40 attribute names of list_attr_celeba.txt, in file column order.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair Blond_Hair "
    "Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones "
    "Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
    "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick "
    "Wearing_Necklace Wearing_Necktie Young"
).split()
# Real wnids of the Ravi & Larochelle split, so the fixture's classes are a subset of the published ones.
MINI_CLASSES = {
    "train": ["n01532829", "n01558993", "n01704323"],
    "val": ["n01855672", "n02091244"],
    "test": ["n01930112", "n01981276", "n02099601", "n02110063", "n02110341", "n02116738"],
}


@dataclass
class CelebATree:
    """What a fixture holds: ``folder``, per image its file name, split, identity and 40 attribute bits."""

    folder: Path
    names: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    identities: list[int] = field(default_factory=list)
    attributes: list[list[bool]] = field(default_factory=list)


def class_image(seed: int, size: tuple[int, int], variant: int) -> Image.Image:
    """An RGB image of class ``seed``: a class colour, a bar at a class position, jittered by ``variant``."""
    rng = np.random.default_rng(seed)
    width, height = size
    colour = rng.integers(30, 226, 3)
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[:] = colour
    top = int(rng.integers(0, height // 2))
    pixels[top : top + height // 4, :, :] = 255 - colour
    noise = np.random.default_rng((seed, variant)).integers(-12, 13, pixels.shape)
    return Image.fromarray(np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8))


def fixture_attributes(index: int, split: str) -> list[bool]:
    """40 attribute bits for image ``index``: alternating blocks (so some three-attribute pools have more than
    ten images on each side) with deterministic flips."""
    base = index % 2 == 0
    return [base != ((index * 7 + c + len(split)) % 11 == 0) for c in range(40)]


def write_celeba(
    root: Path,
    *,
    identities: dict[str, int] | None = None,
    images_per_identity: int = 6,
    drive_layout: bool = False,
) -> CelebATree:
    """Write a CelebA copy under ``root/celeba`` (flat; ``drive_layout``: the Drive's Anno/ Eval/ Img/ folders).

    ``identities`` = identities per split (default train 6, val 5, test 5); identity numbers run on across
    splits. Images are numbered in partition order (000001.jpg ...), as in the real release.
    """
    identities = identities or {"train": 6, "val": 5, "test": 5}
    folder = root / "celeba"
    images = folder / "Img" / "img_align_celeba" if drive_layout else folder / "img_align_celeba"
    anno = folder / "Anno" if drive_layout else folder
    evaluation = folder / "Eval" if drive_layout else folder
    for d in (images, anno, evaluation):
        d.mkdir(parents=True, exist_ok=True)
    tree = CelebATree(folder)
    next_id = 1
    for split, count in identities.items():
        for _ in range(count):
            for j in range(images_per_identity):
                name = f"{len(tree.names) + 1:06d}.jpg"
                class_image(next_id, (178, 218), j).save(images / name, quality=95)
                tree.names.append(name)
                tree.splits.append(split)
                tree.identities.append(next_id)
                tree.attributes.append(fixture_attributes(len(tree.names), split))
            next_id += 1
    code = {"train": 0, "val": 1, "test": 2}
    (evaluation / "list_eval_partition.txt").write_text(
        "".join(f"{n} {code[s]}\n" for n, s in zip(tree.names, tree.splits))
    )
    (anno / "identity_CelebA.txt").write_text("".join(f"{n} {i}\n" for n, i in zip(tree.names, tree.identities)))
    lines = [f"{len(tree.names)}", " ".join(CELEBA_ATTRIBUTES) + " "]
    for name, bits in zip(tree.names, tree.attributes):
        lines.append(name + "".join(" 1" if b else " -1" for b in bits).replace(" 1", "  1"))
    (anno / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return tree


def write_mini_imagenet(
    root: Path,
    *,
    layout: str = "folders",
    classes: dict[str, list[str]] | None = None,
    images_per_class: int = 8,
    size: tuple[int, int] = (84, 84),
    ext: str = "jpg",
) -> Path:
    """Write a mini-ImageNet copy under ``root/mini-imagenet`` in ``layout`` "folders" or "csv"; returns it."""
    classes = classes or MINI_CLASSES
    folder = root / "mini-imagenet"
    for split, wnids in classes.items():
        rows = ["filename,label"]
        for wnid in wnids:
            seed = int(wnid[1:])
            for j in range(images_per_class):
                name = f"{wnid}{j + 1:08d}.{ext}"
                where = folder / split / wnid if layout == "folders" else folder / "images"
                where.mkdir(parents=True, exist_ok=True)
                class_image(seed, size, j).save(where / name, **({"quality": 95} if ext == "jpg" else {}))
                rows.append(f"{name},{wnid}")
        if layout == "csv":
            (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder
