"""CelebA (Liu, Luo, Wang & Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015), read from the
official files a user already has; lasium never downloads it (its only distribution is the authors' site,
https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html).

The files (``img_align_celeba/``, ``list_eval_partition.txt``, ``identity_CelebA.txt``,
``list_attr_celeba.txt``) are found and checked by :mod:`lasium.data.celeba_files`. Two registry datasets read
them (``docs/datasets.md`` gives the protocol and its sources):

- ``celeba``: identity tasks; the classes of a split are the identities of that partition (an identity is a
  class of each split it appears in, as the authors' code copies images into ``<split>/<identity>/``);
- ``celeba-attributes``: the attribute tasks of Hsu et al. (ICLR 2019) that LASIUM follows
  (:mod:`lasium.data.attributes`): columns 0-19 / 20-29 / 30-39 for meta-train / val / test, on the images of
  the matching partition.

Images: the box (0.2, 0.2, 0.8, 0.8) of each aligned 178x218 image, bilinearly resized to 84x84x3 the way
``tf.image.crop_and_resize`` does (:func:`lasium.data.preprocess.crop_and_resize`), as the LASIUM authors'
ProtoNets code feeds CelebA attribute images and their VAE code its training images. (Their identity evaluation
resizes the whole aligned image instead: ``load_celeba(crop_box=(0, 0, 1, 1))``.) The pixels are decoded once
into a memory-mapped cache (202,599 x 84x84x3 uint8 = 4.3 GB on disk, never in memory whole), shared by both
datasets and ordered by partition, so each split is one contiguous memory-mapped run.

A copy that differs from the published release (counts, annotation md5s) is described by ``lasium-data info``
and warned about (:class:`lasium.data.registry.ReleaseWarning`), not refused: its scores are not comparable to
published ones.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lasium.data import paths
from lasium.data.attributes import AttributeTable
from lasium.data.cache import (
    SPLITS,
    DecodedDataset,
    cache_key,
    cached_image_array,
    entry_paths,
    labeled_fingerprint,
)
from lasium.data.celeba_files import (
    CELEBA_FOLDER,
    CELEBA_SITE,
    PARTITION_FILE,
    CelebAFiles,
    CelebAIndex,
    celeba_files,
    image_stats,
    read_celeba_index,
)
from lasium.data.preprocess import PREPROCESS_VERSION, decode_files_cropped, decode_into
from lasium.data.registry import ReleaseWarning
from lasium.errors import DataError

if TYPE_CHECKING:
    from lasium.data.registry import LoadRequest

# The crop of the LASIUM authors' CelebA parsers (models/lasiumprotonetsgan/database_parsers.py):
# (y1, x1, y2, x2) as fractions of the aligned image's height and width.
CROP_BOX = (0.2, 0.2, 0.8, 0.8)
# Attribute columns of the meta-train / val / test tasks (CACTUs utils.py; LASIUM face_recognition_benchmarks.py).
ATTRIBUTE_SPLIT = {"train": (0, 20), "val": (20, 30), "test": (30, 40)}
# A class of an attribute task needs more than this many images (LASIUM: min_samples_for_each_class = 10).
MIN_EXCLUSIVE = 10


# ----------------------------------------------------------------------------- decoding and the registry loaders


def load_celeba(
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: tuple[int, int] = (84, 84),
    *,
    channels: int | None = None,
    attributes: bool = False,
    crop_box: tuple[float, float, float, float] = CROP_BOX,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedDataset:
    """All of CelebA: identity classes per split and, with ``attributes``, the attribute table and
    ``task_kind="attributes"``. ``channels`` None or 3: RGB; 1: grayscale. ``crop_box`` (y1, x1, y2, x2)
    fractions of each aligned image, (0, 0, 1, 1) for the whole image.

    The pixels come from the memory-mapped cache when it matches the image files, else they are decoded now
    (on all cores, with a progress bar) straight into it.
    """
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1, 3 or auto, got {channels}")
    files = celeba_files(data_root)
    index = read_celeba_index(files, attributes=attributes)
    size = (int(image_size[0]), int(image_size[1]))
    channels = channels or 3
    stats = image_stats(files, index.names)
    listing = hashlib.sha256()
    for name, split, (nbytes, mtime) in zip(index.names, index.splits, stats):
        listing.update(f"{name}\0{split}\0{nbytes}\0{mtime}\n".encode())
    material = {
        "dataset": "celeba",
        "images": str(files.images.resolve()),
        "files": listing.hexdigest(),
        "image_size": list(size),
        "channels": channels,
        "crop_box": list(crop_box),
        "preprocess": [PREPROCESS_VERSION, "tf-crop-and-resize-bilinear"],
    }
    key = cache_key(material)
    folder = paths.cache_dir(cache_dir) / CELEBA_FOLDER
    stem = f"celeba-{size[0]}x{size[1]}x{channels}-{key}"
    ranges = index.ranges()
    mode = "L" if channels == 1 else "RGB"
    image_paths = [str(files.images / n) for n in index.names]

    def fill(out: np.ndarray) -> None:
        fix = f"replace it from the official zip ({CELEBA_SITE})"
        extra = (size, mode, tuple(crop_box), fix)
        decode_into(
            out, decode_files_cropped, image_paths, extra, workers=workers, desc="decoding CelebA", progress=progress
        )

    array = cached_image_array(
        folder,
        stem,
        key,
        material,
        index.names,
        (len(index.names), size[0], size[1], channels),
        fill,
        ranges,
    )
    data = _decoded(index, array.images, array.fingerprints, attributes, crop_box, size, channels, files)
    data.info.update(cache_file=str(entry_paths(folder, stem)[0]), cache=array.status)
    return data


def _decoded(
    index: CelebAIndex,
    images: np.ndarray,
    pixel_fingerprints: dict[str, str],
    attributes: bool,
    crop_box: tuple[float, float, float, float],
    size: tuple[int, int],
    channels: int,
    files: CelebAFiles,
) -> DecodedDataset:
    """The dataset around the pixels: identity classes per split, fingerprints, attributes, info."""
    # Classes: the (split, identity) pairs, in split order then identity number.
    keys = [(SPLITS.index(s), int(i)) for s, i in zip(index.splits, index.identities.tolist())]
    classes = sorted(set(keys))
    class_of = {k: c for c, k in enumerate(classes)}
    image_class = np.array([class_of[k] for k in keys], np.int64)
    data = DecodedDataset(
        name="celeba-attributes" if attributes else "celeba",
        images=images,
        image_class=image_class,
        image_ids=[f"celeba/{n}" for n in index.names],
        class_names=[str(identity) for _, identity in classes],
        class_splits=[SPLITS[s] for s, _ in classes],
        task_kind="attributes" if attributes else "classes",
        info={
            "data": str(files.folder),
            "split_seed": None,
            "split_source": f"{PARTITION_FILE} (0 train, 1 val, 2 test)",
            "preprocessing": f"{'RGB' if channels == 3 else 'grayscale'}, crop box (y1, x1, y2, x2) = "
            f"{tuple(crop_box)} of each aligned image, bilinear resize to {size[0]}x{size[1]} as "
            f"tf.image.crop_and_resize, uint8; preprocess v{PREPROCESS_VERSION}",
            "release": index.notes or ["matches the published release (counts and annotation md5s)"],
        },
    )
    attr_digest = ""
    if attributes:
        assert index.attributes is not None
        data.attributes = AttributeTable(index.attributes, index.attribute_names, dict(ATTRIBUTE_SPLIT), MIN_EXCLUSIVE)
        attr_digest = hashlib.sha256(np.packbits(index.attributes).tobytes()).hexdigest()
    for split in SPLITS:
        where, labels, split_classes = data.split_indices(split)
        if split_classes and split in pixel_fingerprints:
            base = pixel_fingerprints[split] + (f":attributes:{attr_digest}" if attributes else "")
            data.fingerprints[split] = labeled_fingerprint(base, labels)
    if "train" in pixel_fingerprints:
        data.fingerprints["unlabeled"] = pixel_fingerprints["train"]
    if index.notes:
        warnings.warn(
            f"this CelebA copy ({files.folder}) is not the published release: {'; '.join(index.notes)}; scores "
            "on it are not comparable to published ones",
            ReleaseWarning,
            stacklevel=4,
        )
    return data


def load_celeba_identities(request: LoadRequest) -> DecodedDataset:
    """The registry's ``celeba``: identity tasks (classes = the identities of each partition)."""
    return load_celeba(
        request.data_root,
        request.cache_dir,
        request.image_size,
        channels=request.channels,
        workers=request.workers,
        progress=request.progress,
    )


def load_celeba_attributes(request: LoadRequest) -> DecodedDataset:
    """The registry's ``celeba-attributes``: the same images, with the attribute table for attribute tasks."""
    return load_celeba(
        request.data_root,
        request.cache_dir,
        request.image_size,
        channels=request.channels,
        attributes=True,
        workers=request.workers,
        progress=request.progress,
    )
