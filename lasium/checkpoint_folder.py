"""What every checkpoint folder shares, generator (``lasium-fit``) or learner (``lasium-train``).

A checkpoint is a folder, never a pickle::

    model.safetensors    the weights (what is needed to use the model; its file_sha256 names them in manifests)
    config.json          {"format": <kind of checkpoint>, "format_version": N, ...}: how to rebuild the model
    <training state>     what ``--resume`` needs besides the weights: tensors as safetensors, the rest as
                         JSON (each stage names its own pair, e.g. ``lasium.train.checkpoint.STATE_FILE``)

Each stage's ``read_config(folder)`` returns the checked ``config.json`` as a dict
(:func:`lasium.safe_io.read_json_document`); stages turn that dict into their own config objects.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lasium.errors import CheckpointError

if TYPE_CHECKING:
    from torch import nn

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 of a module's state dict in canonical form: keys sorted, each as name, dtype, shape, raw bytes."""
    import torch

    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def read_state_json(path: Path, *, missing: str) -> dict[str, Any]:
    """A training-state JSON file; ``missing`` completes the one-line error when it is absent."""
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing; {missing}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is unreadable ({exc}); the checkpoint is corrupt") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} does not hold a JSON object; the checkpoint is corrupt")
    return state
