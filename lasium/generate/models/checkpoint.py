"""Generator checkpoints: a folder of safetensors + JSON, never pickle.

Layout written by ``lasium-fit`` (see :mod:`lasium.generate.models.fit`)::

    config.json               kind, architecture, latent size, image shape, data fingerprint, fit options,
                              epochs, command lines, final losses, training time, device
    model.safetensors         the model (GAN: generator; VAE: encoder + decoder), float32 (bundled: float16)
    train_state.safetensors   for --resume: discriminator, optimizer moments and steps
    train_state.json          for --resume: epoch, step, seed, RNG scheme, optimizer hyper-parameters
    losses.jsonl              one line per epoch
    samples/epoch-NNNN.png    sample grids from fixed latents (VAE also reconstructions/epoch-NNNN.png)

Loading reads JSON and safetensors only; a folder that holds only pickle-based files (``.pt``, ``.pkl``,
...) is refused without opening them. Every mismatch between config and weights is one
:class:`~lasium.errors.CheckpointError` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lasium.checkpoint_folder import CONFIG_FILE, WEIGHTS_FILE, read_state_json
from lasium.errors import CheckpointError, ConfigError
from lasium.optimizer_state import optimizer_tensors, restore_optimizer
from lasium.safe_io import (
    read_json_document,
    read_safetensors,
    write_json_atomic,
    write_safetensors_atomic,
)

from .architecture import ArchitectureRecord, architecture_from_json

CHECKPOINT_FORMAT = "lasium-generator-checkpoint"
FORMAT_VERSION = 1
STATE_FILE = "train_state.safetensors"
STATE_JSON = "train_state.json"
LOSS_LOG = "losses.jsonl"
# Extensions of files that torch.load / pickle would read: reported, never opened.
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin", ".tar", ".joblib")


@dataclass
class LoadedCheckpoint:
    """A model rebuilt from a checkpoint folder, in eval mode, with the config it was built from."""

    model: nn.Module
    config: dict[str, Any]
    folder: Path
    weights_path: Path


def architecture_from_config(config: dict[str, Any]) -> ArchitectureRecord:
    """The architecture described by a checkpoint config (its record's ``name`` picks the registered family, see
    :mod:`lasium.generate.models.architecture`); CheckpointError when it is incomplete or unknown."""
    kind = config.get("kind")
    if kind not in ("gan", "vae"):
        raise CheckpointError(f"{CONFIG_FILE} has kind {kind!r}; expected 'gan' or 'vae'")
    try:
        return architecture_from_json(str(kind), config["architecture"])
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise CheckpointError(f"{CONFIG_FILE} has an invalid architecture ({type(exc).__name__}: {exc})") from None


def build_model(arch: ArchitectureRecord) -> nn.Module:
    """An untrained model for ``arch`` (GAN → generator; VAE → encoder + decoder)."""
    return arch.build()


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder; CheckpointError when missing, corrupt, foreign or too new."""
    return read_json_document(
        folder / CONFIG_FILE,
        format=CHECKPOINT_FORMAT,
        max_version=FORMAT_VERSION,
        what="lasium generator config",
        missing_hint="is it a lasium-fit checkpoint folder?",
    )


def check_state_matches(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Refuse weights whose keys or shapes differ from what ``module`` expects (one line, first few keys)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    extra = sorted(set(state) - set(expected))
    wrong = [
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s) e.g. {', '.join(missing[:3])}")
    if extra:
        problems.append(f"unexpected {len(extra)} key(s) e.g. {', '.join(extra[:3])}")
    if wrong:
        problems.append(f"wrong shape for {len(wrong)} key(s) e.g. {'; '.join(wrong[:2])}")
    if problems:
        raise CheckpointError(f"{where} does not match its {CONFIG_FILE}: {'; '.join(problems)}")


def load_into(module: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Check, then copy (casting float16 → the module's dtype) into ``module``."""
    check_state_matches(module, state, where)
    module.load_state_dict(state, strict=True)


def _refuse_without_safetensors(folder: Path) -> None:
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(
            f"{folder} has no {WEIGHTS_FILE}, only pickle-based file(s) {', '.join(pickles[:3])} that lasium never "
            "loads (unpickling runs code); convert the weights to safetensors or use a TorchScript/module:callable spec"
        )
    raise CheckpointError(f"{folder} has no {WEIGHTS_FILE}; is it a lasium-fit checkpoint folder?")


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model of a checkpoint folder (or bundled model folder) in eval mode on ``device``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        _refuse_without_safetensors(folder)
    config = read_config(folder)
    arch = architecture_from_config(config)
    if int(config.get("latent_dim", arch.latent_dim)) != arch.latent_dim or list(
        config.get("image_shape", arch.image_shape)
    ) != list(arch.image_shape):
        raise CheckpointError(
            f"{folder / CONFIG_FILE} disagrees with itself: latent_dim/image_shape differ from its architecture"
        )
    state, _ = read_safetensors(weights)
    model = build_model(arch)
    load_into(model, state, str(weights))
    model.to(device).eval()
    return LoadedCheckpoint(model=model, config=config, folder=folder, weights_path=weights)


# -- writing (atomic) ------------------------------------------------------------------------------


def save_model_weights(
    folder: Path, model: nn.Module, metadata: dict[str, str], dtype: torch.dtype | None = None
) -> Path:
    state = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v) for k, v in model.state_dict().items()
    }
    path = folder / WEIGHTS_FILE
    write_safetensors_atomic(path, state, metadata)
    return path


def save_training_checkpoint(out: Path, trainer: Any, config_json: dict[str, Any], state_json: dict[str, Any]) -> None:
    """Weights + training state + config, each written atomically; ``config.json`` last."""
    epoch = str(state_json["epoch"])
    tensors: dict[str, torch.Tensor] = {}
    groups: dict[str, Any] = {}
    for name, module in trainer.extra_modules.items():
        tensors.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    for name, opt in trainer.optimizers.items():
        t, g = optimizer_tensors(opt, f"optimizer.{name}")
        tensors.update(t)
        groups[name] = g
    write_safetensors_atomic(out / STATE_FILE, tensors, {"epoch": epoch})
    save_model_weights(out, trainer.model, {"format": CHECKPOINT_FORMAT, "epoch": epoch})
    write_json_atomic(out / STATE_JSON, {**state_json, "optimizers": groups})
    write_json_atomic(out / CONFIG_FILE, config_json)


def restore_training_state(out: Path, trainer: Any) -> dict[str, Any]:
    """Load weights, discriminator and optimizers into ``trainer``; returns train_state.json."""
    config = read_config(out)
    arch = architecture_from_config(config)
    if arch != trainer.arch:
        raise CheckpointError(f"{out / CONFIG_FILE} describes another architecture than this run; start a new --out")
    state_json = read_state_json(out / STATE_JSON, missing="this checkpoint cannot be resumed; start a new --out")
    weights, wmeta = read_safetensors(out / WEIGHTS_FILE)
    extra, smeta = read_safetensors(out / STATE_FILE)
    epoch = str(state_json.get("epoch"))
    if wmeta.get("epoch") != epoch or smeta.get("epoch") != epoch:
        raise CheckpointError(
            f"{out} was interrupted while saving (weights epoch "
            f"{wmeta.get('epoch')}, state epoch {epoch}); start a new --out"
        )
    load_into(trainer.model, weights, str(out / WEIGHTS_FILE))
    for name, module in trainer.extra_modules.items():
        prefix = f"{name}."
        load_into(
            module,
            {k[len(prefix) :]: v for k, v in extra.items() if k.startswith(prefix)},
            f"{out / STATE_FILE} ({name})",
        )
    for name, opt in trainer.optimizers.items():
        restore_optimizer(opt, extra, state_json.get("optimizers", {}).get(name, []), f"optimizer.{name}")
    return state_json
