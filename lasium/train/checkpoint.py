"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder::

    model.safetensors      the learner's weights
    config.json            {"format": "lasium-learner", "learner": LearnerConfig, "train": TrainConfig}
    optimizer.safetensors  the optimizer's per-parameter tensors (Adam moments, step counts)
    state.json             step, tasks seen, best validation, optimizer hyper-parameters, RNG states
    online.safetensors     with ``--ema-decay`` only: the weights the optimizer steps (model.safetensors then holds
                           their moving average, the learner to use; state.json its ``ema_updates``)

A run folder holds ``last/`` (end of training), ``best/`` (best validation accuracy) and ``step-NNNNNNN/``
(periodic). :func:`load_learner` accepts either a run folder or a checkpoint folder.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import torch

from lasium.checkpoint_folder import CONFIG_FILE, WEIGHTS_FILE, read_state_json
from lasium.errors import CheckpointError, ConfigError
from lasium.optimizer_state import optimizer_tensors, restore_optimizer
from lasium.safe_io import (
    read_json_document,
    read_safetensors,
    replace_folder_atomically,
    write_json_atomic,
    write_safetensors_atomic,
)
from lasium.train.config import TrainConfig
from lasium.train.learner import LearnerConfig, MetaLearner
from lasium.train.registry import build_learner
from lasium.train.weight_average import WeightAverage

FORMAT = "lasium-learner"
FORMAT_VERSION = 1
OPTIMIZER_FILE, STATE_FILE = "optimizer.safetensors", "state.json"  # the training state (--resume)
ONLINE_FILE = "online.safetensors"  # with a weight average: the weights the optimizer steps (--resume)


def rng_state() -> dict[str, Any]:
    """The torch CPU (and CUDA) generator states, base64-encoded for JSON."""
    state: dict[str, Any] = {"torch_cpu": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        state["torch_cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    def tensor(text: str) -> torch.Tensor:
        return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)

    if "torch_cpu" in state:
        torch.set_rng_state(tensor(state["torch_cpu"]))
    if "torch_cuda" in state and torch.cuda.is_available() and len(state["torch_cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([tensor(s) for s in state["torch_cuda"]])


def save_checkpoint(
    folder: str | Path,
    learner: MetaLearner,
    config: TrainConfig,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
    online: MetaLearner | None = None,
) -> Path:
    """Write a checkpoint folder atomically: into a hidden temporary folder, then renamed into place.

    ``learner``'s weights are the checkpoint's model; ``online``, when given, the weights the optimizer steps, whose
    moving average ``learner`` is (:mod:`lasium.train.weight_average`)."""

    def weights_of(module: MetaLearner) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}

    def fill(tmp: Path) -> None:
        metadata = {"format": FORMAT, "algo": learner.algo}
        write_safetensors_atomic(tmp / WEIGHTS_FILE, weights_of(learner), metadata=metadata)
        if online is not None:
            write_safetensors_atomic(tmp / ONLINE_FILE, weights_of(online), metadata=metadata)
        write_json_atomic(
            tmp / CONFIG_FILE,
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "learner": learner.config.to_dict(),
                "train": config.to_dict(),
            },
        )
        full_state = dict(state or {})
        if optimizer is not None:
            tensors, groups = optimizer_tensors(optimizer)
            write_safetensors_atomic(tmp / OPTIMIZER_FILE, tensors, metadata={"format": FORMAT})
            full_state["optimizer_param_groups"] = groups
        write_json_atomic(tmp / STATE_FILE, full_state)

    return replace_folder_atomically(folder, fill)


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder as given, or inside a run folder ``best/`` when present, else ``last/``."""
    path = Path(path)
    if (path / WEIGHTS_FILE).is_file():
        return path
    for name in ("best", "last"):
        if (path / name / WEIGHTS_FILE).is_file():
            return path / name
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; pass a run folder (runs/<name>) or a checkpoint folder")
    raise CheckpointError(
        f"{path} holds no checkpoint (no {WEIGHTS_FILE}, best/ or last/); pass a run folder or checkpoint folder"
    )


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder, checked; CheckpointError when missing, corrupt, foreign or too new."""
    return read_json_document(
        folder / CONFIG_FILE, format=FORMAT, max_version=FORMAT_VERSION, what="lasium learner config"
    )


def read_configs(folder: Path) -> tuple[LearnerConfig, TrainConfig]:
    """The learner and training configs of a checkpoint folder (from :func:`read_config`)."""
    data = read_config(folder)
    try:
        return LearnerConfig.from_dict(data["learner"]), TrainConfig.from_dict(data["train"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is malformed ({exc})") from None


def load_learner(path: str | Path, device: str | torch.device = "cpu") -> tuple[MetaLearner, TrainConfig]:
    """The trained learner and its training config from a run folder (best, else last) or a checkpoint folder."""
    folder = find_checkpoint(path)
    learner_config, train_config = read_configs(folder)
    learner = build_learner(learner_config)
    weights, _ = read_safetensors(folder / WEIGHTS_FILE)
    try:
        learner.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "mismatch"
        raise CheckpointError(f"{folder / WEIGHTS_FILE} does not match its config.json ({first})") from None
    return learner.to(device), train_config


def load_training_state(
    folder: str | Path, learner: MetaLearner, optimizer: torch.optim.Optimizer, average: WeightAverage | None = None
) -> dict[str, Any]:
    """Restore weights, optimizer and RNG from a checkpoint folder into existing objects; return state.json.

    With ``average`` (a run with ``--ema-decay``), ``learner`` gets the stepped weights (``online.safetensors``) and
    ``average`` the averaged ones (``model.safetensors``) and its count of updates."""
    folder = Path(folder)
    state = read_state_json(folder / STATE_FILE, missing="this checkpoint cannot be resumed")
    try:
        if average is None:
            learner.load_state_dict(read_safetensors(folder / WEIGHTS_FILE)[0], strict=True)
        else:
            if not (folder / ONLINE_FILE).is_file():
                raise CheckpointError(f"{folder / ONLINE_FILE} is missing; this checkpoint cannot be resumed")
            learner.load_state_dict(read_safetensors(folder / ONLINE_FILE)[0], strict=True)
            average.restore(read_safetensors(folder / WEIGHTS_FILE)[0], int(state.get("ema_updates", 0)))
    except RuntimeError as exc:
        raise CheckpointError(
            f"{folder} does not fit this learner ({str(exc).splitlines()[0]}); resume with the same options"
        ) from None
    optimizer_state, _ = read_safetensors(folder / OPTIMIZER_FILE)
    restore_optimizer(optimizer, optimizer_state, state.get("optimizer_param_groups", []))
    restore_rng_state(state.get("rng", {}))
    return state
