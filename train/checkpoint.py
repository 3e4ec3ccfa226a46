"""Checkpoints without pickle: safetensors for tensors, JSON for everything else.

A checkpoint is a folder::

    model.safetensors      the learner's weights
    config.json            {"format": "lasium-learner", "learner": LearnerConfig, "train": TrainConfig}
    optimizer.safetensors  the optimizer's per-parameter tensors (Adam moments, step counts)
    state.json             step, tasks seen, best validation, optimizer hyper-parameters, RNG states

A run folder holds ``last/`` (end of training), ``best/`` (best validation accuracy) and ``step-NNNNNNN/``
(periodic). :func:`load_learner` accepts either a run folder or a checkpoint folder.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import safetensors
import torch
from safetensors.torch import load_file, save_file

from lasium.errors import CheckpointError, ConfigError
from lasium.train.config import TrainConfig
from lasium.train.learner import LearnerConfig, MetaLearner
from lasium.train.registry import build_learner

FORMAT = "lasium-learner"
FORMAT_VERSION = 1
MODEL_FILE, CONFIG_FILE, OPTIMIZER_FILE, STATE_FILE = "model.safetensors", "config.json", "optimizer.safetensors", "state.json"


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split ``optimizer.state_dict()`` into flat tensors (``state.<param index>.<name>``) and JSON groups."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, per_param in sd["state"].items():
        for name, value in per_param.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"state.{index}.{name}"] = tensor.detach().cpu().contiguous()
    groups = [{k: list(v) if isinstance(v, tuple) else v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, groups


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]]) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    groups = [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in groups]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_state() -> dict[str, Any]:
    """The torch CPU (and CUDA) generator states, base64-encoded for JSON."""
    state = {"torch_cpu": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
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


def save_checkpoint(folder: str | Path, learner: MetaLearner, config: TrainConfig,
                    optimizer: torch.optim.Optimizer | None = None, state: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically: into a hidden temporary folder, then renamed into place."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in learner.state_dict().items()}
        save_file(weights, str(tmp / MODEL_FILE), metadata={"format": FORMAT, "algo": learner.algo})
        _fsync(tmp / MODEL_FILE)
        _write_json(tmp / CONFIG_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                        "learner": learner.config.to_dict(), "train": config.to_dict()})
        full_state = dict(state or {})
        if optimizer is not None:
            tensors, groups = optimizer_tensors(optimizer)
            save_file(tensors, str(tmp / OPTIMIZER_FILE), metadata={"format": FORMAT})
            _fsync(tmp / OPTIMIZER_FILE)
            full_state["optimizer_param_groups"] = groups
        _write_json(tmp / STATE_FILE, full_state)
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder as given, or inside a run folder ``best/`` when present, else ``last/``."""
    path = Path(path)
    if (path / MODEL_FILE).is_file():
        return path
    for name in ("best", "last"):
        if (path / name / MODEL_FILE).is_file():
            return path / name
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; pass a run folder (runs/<name>) or a checkpoint folder")
    raise CheckpointError(f"{path} holds no checkpoint (no {MODEL_FILE}, best/ or last/); pass a run folder or checkpoint folder")


def read_config(folder: Path) -> tuple[LearnerConfig, TrainConfig]:
    try:
        data = json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder}: {CONFIG_FILE} is missing; the checkpoint is incomplete") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not a lasium learner config (format field missing or different)")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{folder} was written by a newer lasium (format {data['format_version']}); upgrade lasium")
    try:
        return LearnerConfig.from_dict(data["learner"]), TrainConfig.from_dict(data["train"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is malformed ({exc})") from None


def _load_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing; the checkpoint is incomplete")
    try:
        return load_file(str(path), device=str(device))
    except (safetensors.SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None


def load_learner(path: str | Path, device: str | torch.device = "cpu") -> tuple[MetaLearner, TrainConfig]:
    """The trained learner and its training config from a run folder (best, else last) or a checkpoint folder."""
    folder = find_checkpoint(path)
    learner_config, train_config = read_config(folder)
    learner = build_learner(learner_config)
    weights = _load_tensors(folder / MODEL_FILE)
    try:
        learner.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "mismatch"
        raise CheckpointError(f"{folder / MODEL_FILE} does not match its config.json ({first})") from None
    return learner.to(device), train_config


def load_training_state(folder: str | Path, learner: MetaLearner, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore weights, optimizer and RNG from a checkpoint folder into existing objects; return state.json."""
    folder = Path(folder)
    weights = _load_tensors(folder / MODEL_FILE)
    try:
        learner.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{folder} does not fit this learner ({str(exc).splitlines()[0]}); resume with the same options") from None
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder / STATE_FILE} is missing; this checkpoint cannot be resumed") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{folder / STATE_FILE} is not valid JSON ({exc})") from None
    restore_optimizer(optimizer, _load_tensors(folder / OPTIMIZER_FILE), state.get("optimizer_param_groups", []))
    restore_rng_state(state.get("rng", {}))
    return state
