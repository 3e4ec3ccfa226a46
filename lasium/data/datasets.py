"""The datasets every stage loads: labeled splits (evaluation, validation) and unlabeled train images.

``dataset`` is a name of the registry (:mod:`lasium.data.registry`): ``"omniglot"``, ``"celeba"``,
``"celeba-attributes"``, ``"mini-imagenet"`` or ``"imagefolder:PATH"``. Example::

    from lasium.data import load_split, load_unlabeled
    test = load_split("omniglot", "test")          # LabeledImages: 323 classes × 20 images, 28×28×1 uint8
    pool = load_unlabeled("omniglot")              # UnlabeledImages: 24000 train images, no labels
    x = pool.images.astype("float32") / 255.0      # float view in [0, 1], ink bright

Unsupervised stages (generative models, VAE anchors) must use :func:`load_unlabeled` only: it returns
the train split's images and nothing about their classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lasium.data.attributes import AttributeTable
from lasium.data.cache import SPLITS, DecodedDataset, fingerprint, take_rows
from lasium.data.registry import LoadRequest, resolve_dataset
from lasium.errors import ConfigError, DataError
from lasium.tasks import hwc

DEFAULT_IMAGE_SIZE = 28


@dataclass
class LabeledImages:
    """One split of a labeled dataset.

    ``images`` uint8 (n, H, W, C); ``labels`` int64 (n,) in 0..C-1, dense within the split, classes in
    dataset order; ``class_names[label]``; ``image_ids`` stable ids (``omniglot/0709_01``);
    ``fingerprint`` sha256 of the split's images, labels and shape; ``name`` the dataset, ``split``.
    ``task_kind`` says how real tasks are built from it (:func:`lasium.data.episode_sampler`): ``"classes"``
    (N of its classes) or ``"attributes"`` (CelebA attribute conjunctions, from ``attributes``). ``images`` may
    be a read-only memory map (CelebA, mini-ImageNet): index it, do not write into it.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    image_ids: list[str]
    fingerprint: str
    name: str
    split: str
    task_kind: str = "classes"
    attributes: AttributeTable | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C)."""
        return hwc(self.images.shape[1:])

    def class_counts(self) -> np.ndarray:
        """Images per class, (num_classes,) int64."""
        return np.bincount(self.labels, minlength=self.num_classes).astype(np.int64)


@dataclass
class UnlabeledImages:
    """The train split's images without labels: all that generative models and VAE anchors may see.

    ``images`` uint8 (n, H, W, C), ``image_ids``, ``fingerprint`` (sha256 of images and shape), ``name``.
    """

    images: np.ndarray
    image_ids: list[str]
    fingerprint: str
    name: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return hwc(self.images.shape[1:])


def normalize_image_size(
    image_size: int | tuple[int, int] | list[int] | None, default: int = DEFAULT_IMAGE_SIZE
) -> tuple[int, int]:
    """``None`` → (default, default); ``n`` → (n, n); ``(h, w)`` as is."""
    if image_size is None:
        return (int(default), int(default))
    sides = [int(image_size)] * 2 if isinstance(image_size, (int, np.integer)) else [int(s) for s in image_size]
    if len(sides) != 2 or min(sides) < 1 or max(sides) > 4096:
        raise ConfigError(f"image size {image_size!r} is not valid; give one side (28) or height and width (28, 28)")
    return sides[0], sides[1]


def default_image_size(dataset: str) -> int:
    """The side a dataset's images get without ``--image-size``: 28 for Omniglot and image folders, 84 for the
    colour benchmarks (CelebA, mini-ImageNet), as the LASIUM paper feeds them."""
    return resolve_dataset(dataset)[0].default_image_size


def load_decoded(
    dataset: str,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> DecodedDataset:
    """The whole dataset, all splits, decoded (cached after the first call); ``dataset`` a registry name."""
    spec, argument = resolve_dataset(dataset)
    size = normalize_image_size(image_size, spec.default_image_size)
    if channels not in (None, 1, 3):
        raise ConfigError(f"channels must be 1 or 3 (or None for automatic), got {channels!r}")
    request = LoadRequest(argument, data_root, cache_dir, size, channels, workers, progress)
    return spec.load_function()(request)


def labeled_split(data: DecodedDataset, split: str) -> LabeledImages:
    """One split of a decoded dataset as :class:`LabeledImages`."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if data.info.get("labeled") is False:
        raise DataError(
            f"{data.name} is a flat folder of unlabeled images: it has no classes, so no labeled {split} split; "
            "labeled tasks need PATH/<class>/<image>"
        )
    index, labels, classes = data.split_indices(split)
    if not classes:
        raise DataError(
            f"{data.name} has no {split} classes; give it a {split}/ folder or let lasium split the classes"
        )
    ids = [data.image_ids[i] for i in index.tolist()]
    known = data.fingerprints.get(split)
    images = take_rows(data.images, index)
    attributes = None
    if data.attributes is not None:
        attributes = data.attributes.for_split(split, index)
    return LabeledImages(
        images=images,
        labels=labels,
        class_names=[data.class_names[c] for c in classes],
        image_ids=ids,
        fingerprint=known if known is not None else fingerprint(images, labels),
        name=data.name,
        split=split,
        task_kind=data.task_kind,
        attributes=attributes,
    )


def unlabeled_train(data: DecodedDataset) -> UnlabeledImages:
    """The train split's images of a decoded dataset, without labels."""
    index, _, classes = data.split_indices("train")
    if not classes:
        raise DataError(f"{data.name} has no train classes; give it a train/ folder or let lasium split the classes")
    images = take_rows(data.images, index)
    known = data.fingerprints.get("unlabeled")
    return UnlabeledImages(
        images=images,
        image_ids=[data.image_ids[i] for i in index.tolist()],
        fingerprint=known if known is not None else fingerprint(images),
        name=data.name,
    )


def load_split(
    dataset: str,
    split: str,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> LabeledImages:
    """Labeled images of ``split`` ("train" | "val" | "test") of ``dataset`` (a registry name: "omniglot",
    "celeba", "celeba-attributes", "mini-imagenet" or "imagefolder:PATH").

    ``data_root`` defaults to ``$LASIUM_DATA`` then ``~/.cache/lasium/data``; ``cache_dir`` to
    ``$LASIUM_CACHE`` then ``~/.cache/lasium/cache``; ``image_size`` to the dataset's (28 for Omniglot and
    image folders, 84 for CelebA and mini-ImageNet; one side or (H, W)); ``channels`` to automatic
    (Omniglot: 1, 3 replicates it; the colour benchmarks: 3, 1 converts to grayscale). The first call decodes
    every image (on all cores, with a progress bar); later calls read the cache.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    data = load_decoded(
        dataset,
        data_root=data_root,
        cache_dir=cache_dir,
        image_size=image_size,
        channels=channels,
        workers=workers,
        progress=progress,
    )
    return labeled_split(data, split)


def load_unlabeled(
    dataset: str,
    *,
    data_root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> UnlabeledImages:
    """The train split's images of ``dataset``, without labels (for generative models and VAE anchors)."""
    data = load_decoded(
        dataset,
        data_root=data_root,
        cache_dir=cache_dir,
        image_size=image_size,
        channels=channels,
        workers=workers,
        progress=progress,
    )
    return unlabeled_train(data)
