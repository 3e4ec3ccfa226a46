"""Where datasets live and where their decoded caches go.

Raw data (the Omniglot zips, image folders) is read from the *data root*, which may be read-only
(a shared cluster folder); everything derived from it (decoded 28×28 arrays, fingerprints) goes to the
*cache folder*, never into the data root.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "LASIUM_DATA"
CACHE_ENV = "LASIUM_CACHE"
DEFAULT_DATA_ROOT = Path("~/.cache/lasium/data")
DEFAULT_CACHE_DIR = Path("~/.cache/lasium/cache")


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data root: ``explicit`` if given, else ``$LASIUM_DATA``, else ``~/.cache/lasium/data``.

    Omniglot is expected at ``<data root>/omniglot/images_{background,evaluation}.zip``.
    """
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DATA_ROOT.expanduser()


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``explicit`` if given, else ``$LASIUM_CACHE``, else ``~/.cache/lasium/cache``."""
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return DEFAULT_CACHE_DIR.expanduser()
