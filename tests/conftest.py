"""Shared fixtures. Omniglot-dependent tests use ``omniglot_root`` and skip when the zips are absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Test helper modules (shards_helpers, gen_tiny, repro_helpers, ...) import by name: pyproject.toml puts tests/ on
# the path (pytest's ``pythonpath`` option); the package itself is the installed one.

# Remote reads retry transient faults with exponential backoff (lasium.shards.remote.RetryPolicy); the tests keep
# the tries but not the waits (set before any test runs, so the commands the tests start inherit it too).
os.environ.setdefault("LASIUM_REMOTE_BACKOFF", "0.01")
os.environ.setdefault("LASIUM_REMOTE_MAX_BACKOFF", "0.05")
# Nothing downloads at test time: Hugging Face ``datasets`` / ``huggingface_hub`` (the set-card tests load sets with
# them) run offline; set before either is imported, since both read these variables at import.
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

OMNIGLOT_ZIPS = ("images_background.zip", "images_evaluation.zip")


def _omniglot_data_root() -> Path | None:
    root = os.environ.get("LASIUM_DATA")
    if not root:
        return None
    path = Path(root).expanduser()
    if all((path / "omniglot" / z).is_file() for z in OMNIGLOT_ZIPS):
        return path
    return None


@pytest.fixture(scope="session")
def omniglot_root() -> Path:
    """The data root holding ``omniglot/images_{background,evaluation}.zip`` (from LASIUM_DATA)."""
    root = _omniglot_data_root()
    if root is None:
        pytest.skip(
            "Omniglot not found: set LASIUM_DATA to a folder holding omniglot/images_background.zip "
            "and omniglot/images_evaluation.zip (e.g. LASIUM_DATA=../shared/data)"
        )
    return root


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def omniglot_cache(omniglot_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding decoded Omniglot (decoded once per test session, never in ~/.cache)."""
    cache = os.environ.get("LASIUM_CACHE")
    if cache:
        path = Path(cache)
    else:
        path = tmp_path_factory.mktemp("lasium-cache")
    from lasium.data import load_decoded

    load_decoded("omniglot", data_root=omniglot_root, cache_dir=path, progress=False)
    return path


@pytest.fixture
def one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waiting on a busy shared CPU (10-100x faster here).
    Opt in per module with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch  # here, not at the top: most tests' collection should not pay for importing torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
