"""Image datasets and real few-shot episodes.

- :func:`load_split` (labeled split: train | val | test) and :func:`load_unlabeled` (train images,
  no labels) for every name of the registry (:mod:`lasium.data.registry`): ``"omniglot"``, ``"celeba"``,
  ``"celeba-attributes"``, ``"mini-imagenet"``, ``"imagefolder:PATH"``; decoded once, then cached as uint8.
- :func:`episode_sampler`: the one source of real tasks (:class:`EpisodeSampler` for N-way K-shot tasks over
  classes, :class:`AttributeEpisodeSampler` for CelebA attribute tasks).
- :func:`download_omniglot`: the official zips, md5-checked. CLI: ``lasium-data``.

Names are imported on first use (PEP 562) rather than here, so ``import lasium.data`` stays light:
the sampler needs torch (through :mod:`lasium.seeding`), which ``lasium-data info`` and the
loaders do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lasium.lazy import lazy_exports

_EXPORTS = {
    "LabeledImages": "lasium.data.datasets",
    "UnlabeledImages": "lasium.data.datasets",
    "load_split": "lasium.data.datasets",
    "load_unlabeled": "lasium.data.datasets",
    "load_decoded": "lasium.data.datasets",
    "EpisodeSampler": "lasium.data.episodes",
    "AttributeEpisodeSampler": "lasium.data.episodes",
    "episode_sampler": "lasium.data.episodes",
    "AttributeTable": "lasium.data.attributes",
    "attribute_pools": "lasium.data.attributes",
    "DATASETS": "lasium.data.registry",
    "DatasetSpec": "lasium.data.registry",
    "resolve_dataset": "lasium.data.registry",
    "default_image_size": "lasium.data.datasets",
    "load_celeba": "lasium.data.celeba",
    "load_mini_imagenet_data": "lasium.data.mini_imagenet",
    "DecodedDataset": "lasium.data.cache",
    "fingerprint": "lasium.data.cache",
    "data_root": "lasium.data.paths",
    "cache_dir": "lasium.data.paths",
    "OMNIGLOT_SPLIT_SEED": "lasium.data.omniglot",
    "OmniglotLayout": "lasium.data.omniglot",
    "load_omniglot": "lasium.data.omniglot",
    "omniglot_class_split": "lasium.data.omniglot",
    "load_imagefolder": "lasium.data.imagefolder",
    "IMAGEFOLDER_SPLIT_SEED": "lasium.data.imagefolder",
    "download_omniglot": "lasium.data.download",
    # a drawn colour image folder (tests, benchmarks and demos of the 84×84×3 path; not a real dataset)
    "draw_colour_folder": "lasium.data.colour_folder",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:
    from lasium.data.attributes import AttributeTable, attribute_pools
    from lasium.data.cache import DecodedDataset, fingerprint
    from lasium.data.celeba import load_celeba
    from lasium.data.colour_folder import draw_colour_folder
    from lasium.data.datasets import (
        LabeledImages,
        UnlabeledImages,
        default_image_size,
        load_decoded,
        load_split,
        load_unlabeled,
    )
    from lasium.data.download import download_omniglot
    from lasium.data.episodes import AttributeEpisodeSampler, EpisodeSampler, episode_sampler
    from lasium.data.imagefolder import IMAGEFOLDER_SPLIT_SEED, load_imagefolder
    from lasium.data.mini_imagenet import load_mini_imagenet_data
    from lasium.data.omniglot import OMNIGLOT_SPLIT_SEED, OmniglotLayout, load_omniglot, omniglot_class_split
    from lasium.data.paths import cache_dir, data_root
    from lasium.data.registry import DATASETS, DatasetSpec, resolve_dataset
