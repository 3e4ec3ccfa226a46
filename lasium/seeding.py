"""Deterministic seeding: every random stream is derived from (seed, named keys), never from order of use.

``derive_seed(seed, "shard", 17)`` always gives the same 63-bit integer on every machine, so a shard's
randomness depends on the run seed and the shard index only, not on workers, batch size or GPU count.
"""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a torch stream is made, so numpy-only users stay light
    import torch


def derive_seed(seed: int, *keys: object) -> int:
    """A 63-bit seed from ``seed`` and any keys (ints, strings), stable across machines and versions."""
    text = repr((int(seed),) + tuple(str(k) for k in keys)).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def numpy_rng(seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator for the stream named by ``keys``."""
    return np.random.default_rng(derive_seed(seed, *keys))


def torch_generator(seed: int, *keys: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch Generator on ``device`` for the stream named by ``keys``."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *keys))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch global generators (for code that uses the global streams)."""
    import torch

    random.seed(seed)
    np.random.seed(derive_seed(seed, "numpy-global") % (2**32))
    torch.manual_seed(derive_seed(seed, "torch-global"))
