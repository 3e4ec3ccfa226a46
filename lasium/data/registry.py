"""The dataset registry: every name ``--dataset`` accepts, one line each, and how it is loaded.

Each dataset lives in its own module with a ``load_*(request: LoadRequest) -> DecodedDataset`` function;
adding one is a module plus a line in :data:`DATASETS`. Modules are imported on first use, so
``lasium-data info omniglot`` never imports the CelebA reader.

Example::

    from lasium.data.registry import dataset_names, resolve_dataset
    spec, argument = resolve_dataset("imagefolder:~/pics")   # (the imagefolder spec, "~/pics")
    dataset_names()                                            # ["celeba", "celeba-attributes", ...]
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lasium.errors import ConfigError

if TYPE_CHECKING:
    from lasium.data.cache import DecodedDataset


class ReleaseWarning(UserWarning):
    """The data loaded is usable but is not the published release (other counts, classes or annotation files):
    scores on it are not comparable to published ones. ``lasium-data info`` shows the same as its release lines."""


@dataclass(frozen=True)
class LoadRequest:
    """What a dataset loader is asked for. ``argument`` is the part after ``name:`` (imagefolder's PATH), else
    None; ``image_size`` (H, W) is already resolved (the dataset's default when the caller gave none);
    ``channels`` None = the dataset's own, else 1 or 3."""

    argument: str | None
    data_root: str | Path | None
    cache_dir: str | Path | None
    image_size: tuple[int, int]
    channels: int | None
    workers: int | None
    progress: bool


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset: ``module.loader(LoadRequest)`` builds it; ``default_image_size`` is the side its
    images get when no ``--image-size`` is given; ``takes_path``: named ``name:PATH``; ``summary`` for help."""

    name: str
    module: str
    loader: str
    default_image_size: int
    summary: str
    takes_path: bool = False

    def load_function(self) -> Callable[[LoadRequest], DecodedDataset]:
        return getattr(importlib.import_module(self.module), self.loader)

    @property
    def usage(self) -> str:
        return f"{self.name}:PATH" if self.takes_path else self.name


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("omniglot", "lasium.data.omniglot", "load_omniglot_dataset", 28, "Omniglot (official zips)"),
        DatasetSpec("celeba", "lasium.data.celeba", "load_celeba_identities", 84, "CelebA identities (official files)"),
        DatasetSpec(
            "celeba-attributes",
            "lasium.data.celeba",
            "load_celeba_attributes",
            84,
            "CelebA attribute tasks (Hsu et al., ICLR 2019)",
        ),
        DatasetSpec(
            "mini-imagenet",
            "lasium.data.mini_imagenet",
            "load_mini_imagenet",
            84,
            "mini-ImageNet, Ravi & Larochelle split (folders or split CSVs)",
        ),
        DatasetSpec(
            "imagefolder",
            "lasium.data.imagefolder",
            "load_imagefolder_dataset",
            28,
            "any image folder: PATH/<class>/<image>",
            takes_path=True,
        ),
    )
}


def dataset_names() -> list[str]:
    """How each registered dataset is named on the command line (``imagefolder:PATH`` for folders)."""
    return [spec.usage for spec in DATASETS.values()]


def dataset_choices_text() -> str:
    """``"omniglot, celeba, celeba-attributes, mini-imagenet or imagefolder:PATH"`` for help and errors."""
    names = dataset_names()
    return f"{', '.join(names[:-1])} or {names[-1]}"


def resolve_dataset(dataset: str) -> tuple[DatasetSpec, str | None]:
    """The spec of ``dataset`` and its argument (``imagefolder:PATH`` → PATH); :class:`ConfigError` when unknown."""
    name, sep, argument = str(dataset).partition(":")
    spec = DATASETS.get(name)
    if spec is not None and spec.takes_path == bool(sep):
        if spec.takes_path and not argument:
            raise ConfigError(f"{name} needs a path: {name}:PATH")
        return spec, (argument if sep else None)
    if spec is not None and spec.takes_path:
        raise ConfigError(f"{name} needs a path: {name}:PATH, with PATH/<class>/<image>")
    close = difflib.get_close_matches(dataset.lower().replace("_", "-"), list(DATASETS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close and not DATASETS[close[0]].takes_path else ""
    raise ConfigError(f"unknown dataset {dataset!r}{hint}; use {dataset_choices_text()}")
