"""Optimizer state as safetensors tensors plus JSON parameter groups: how ``lasium-train`` and ``lasium-fit`` checkpoint
their Adam moments without pickle (``torch.optim.Optimizer.state_dict()`` mixes tensors and Python values).

A core module (both stages checkpoint optimizers); torch is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lasium.errors import CheckpointError
from lasium.safe_io import first_line

if TYPE_CHECKING:
    import torch

_JSON_SCALARS = (int, float, str, bool, list, tuple)  # parameter-group values kept in the JSON record
# Optimizer flags that describe how the *current* process runs the update (device, kernels), not what was
# learned: a resumed run keeps its own, so a state saved on CUDA (fused) resumes on CPU and vice versa.
OPTIMIZER_RUNTIME_FLAGS = ("foreach", "fused", "capturable", "differentiable")
# Per-parameter state that has the parameter's shape (Adam moments, SGD momentum): checked before loading,
# because torch would accept a moment of another layer that happens to share its index.
PARAMETER_SHAPED_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer")


def _state_head(prefix: str) -> str:
    return f"{prefix}.state." if prefix else "state."


def optimizer_tensors(
    optimizer: torch.optim.Optimizer, prefix: str = ""
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Split ``optimizer.state_dict()`` into flat CPU tensors and JSON-ready parameter groups.

    Tensor keys are ``<prefix>.state.<param index>.<name>`` (``state.<param index>.<name>`` without a prefix);
    group values that JSON cannot hold (e.g. a tensor learning rate) are left out, tuples become lists.
    """
    import torch

    sd = optimizer.state_dict()
    head = _state_head(prefix)
    tensors: dict[str, torch.Tensor] = {}
    for index, slots in sd["state"].items():
        for name, value in slots.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"{head}{index}.{name}"] = tensor.detach().cpu().contiguous()
    groups = [
        {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in group.items()
            if v is None or isinstance(v, _JSON_SCALARS)
        }
        for group in sd["param_groups"]
    ]
    return tensors, groups


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict[str, Any]], prefix: str = ""
) -> None:
    """Inverse of :func:`optimizer_tensors`: load the saved moments and hyper-parameters into ``optimizer``.

    Keys outside ``prefix`` are ignored (a file may hold other modules too). The current runtime flags
    (:data:`OPTIMIZER_RUNTIME_FLAGS`) are kept. A state that does not fit (other group or parameter counts,
    moments of other shapes) is one CheckpointError line.
    """
    label = f"saved optimizer state {prefix!r}" if prefix else "saved optimizer state"
    head = _state_head(prefix)
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if not key.startswith(head):
            continue
        try:
            number, name = key[len(head) :].split(".", 1)
            state.setdefault(int(number), {})[name] = value
        except ValueError:
            raise CheckpointError(f"{label} has a malformed key {key!r}; the checkpoint is corrupt") from None
    current_groups = optimizer.state_dict()["param_groups"]
    if len(groups) != len(current_groups):
        raise CheckpointError(
            f"{label} has {len(groups)} parameter groups, expected {len(current_groups)}; resume with the same options"
        )
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, slots in sorted(state.items()):
        for name, value in slots.items():
            if index >= len(params) or (
                name in PARAMETER_SHAPED_STATE and tuple(value.shape) != tuple(params[index].shape)
            ):
                where = (
                    f"parameter {index} of {len(params)}"
                    if index < len(params)
                    else f"parameter {index}, but there are {len(params)}"
                )
                raise CheckpointError(
                    f"{label} does not fit the optimizer ({name} of {where}); resume with the same options"
                )
    param_groups = []
    for current, saved in zip(current_groups, groups):
        merged = dict(current)  # saved "params" (indices) replace the current ones: torch checks their counts
        for key, value in saved.items():
            if key not in OPTIMIZER_RUNTIME_FLAGS:
                # JSON turned tuples (Adam's betas) into lists: give back the type the optimizer uses.
                merged[key] = tuple(value) if isinstance(current.get(key), tuple) and isinstance(value, list) else value
        param_groups.append(merged)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": param_groups})
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(
            f"{label} does not fit the optimizer ({first_line(exc)}); resume with the same options"
        ) from None
