"""Exporting a user's PyTorch generator to a TorchScript file that ``lasium-gen --generator FILE`` takes.

The one documented step for pre-trained GANs (docs/NATURAL_GENERATORS.md)::

    from lasium.generate.models.export import export_generator
    g = load_my_progan(...)                        # any nn.Module: latents (n, D) → images (n, C, H, W)
    export_generator(g, "progan.pt", latent_dim=512, output_range="[-1,1]", prior="normal")

    lasium-gen --generator progan.pt --image-size 84 --strategy ro --n-tasks 1e5

The file holds the network wrapped in :class:`ExportedGenerator`, which declares ``latent_dim``, ``output_range``
and ``prior`` as attributes (``lasium-gen`` reads them; no option needed) and maps lasium's standard-normal latents
to the generator's own prior, so LASIUM's anchors and interpolations stay in the space the paper's are in. It is
written with ``torch.jit.script`` (``torch.jit.trace`` on probe latents when the network does not script, e.g.
data-dependent Python), then loaded back and checked exactly as ``lasium-gen`` will (probe shape, value range).
Nothing is pickled: ``lasium-gen`` reads the file with ``torch.jit.load``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lasium.errors import ConfigError

from .external import load_torchscript_generator
from .interface import normalize_output_range

PRIORS = {
    "normal": "z ~ N(0, I): lasium's latents are passed through",
    "uniform": "z ~ U(-1, 1)^D: lasium's normal latents mapped through erf(z / sqrt 2)",
}


class ExportedGenerator(nn.Module):
    """``network`` behind lasium's standard-normal prior, with its declarations as TorchScript attributes."""

    def __init__(self, network: nn.Module, latent_dim: int, output_range: str, prior: str) -> None:
        super().__init__()
        self.network = network
        # plain attributes (no class annotations: TorchScript infers int, str, bool from the values)
        self.latent_dim = int(latent_dim)
        self.output_range = output_range
        self.prior = prior
        self.uniform = prior == "uniform"

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.uniform:
            z = torch.erf(z * 0.7071067811865476)
        return self.network(z)


def _script_or_trace(network: nn.Module, latent_dim: int, output_range: str, prior: str) -> tuple[Any, str]:
    """The scripted wrapper; a network that does not script is traced on probe latents and the wrapper around it
    scripted (so the declarations stay TorchScript attributes either way)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch ≥ 2.9 deprecates torch.jit (still supported); tracer warnings
        try:
            return torch.jit.script(ExportedGenerator(network, latent_dim, output_range, prior)), "script"
        except Exception:  # noqa: BLE001 - any scripting failure: trace instead; the result is checked after
            z = torch.randn(2, latent_dim, generator=torch.Generator().manual_seed(0))
            if prior == "uniform":
                z = torch.erf(z * 0.7071067811865476)
            traced = torch.jit.trace(network, (z,), check_trace=False)
            return torch.jit.script(ExportedGenerator(traced, latent_dim, output_range, prior)), "trace"


def export_generator(
    network: nn.Module,
    path: str | Path,
    *,
    latent_dim: int,
    output_range: str = "[0,1]",
    prior: str = "normal",
) -> dict[str, Any]:
    """Write ``network`` (latents (n, ``latent_dim``) → images (n, C, H, W) in ``output_range``) as a TorchScript
    file for ``lasium-gen --generator PATH``; returns what lasium-gen will record (its ``describe()``) plus
    ``export``: script or trace. One-line ConfigError/CheckpointError when the network does not do what is declared.
    """
    if not isinstance(network, nn.Module):
        raise ConfigError(f"export_generator needs a torch.nn.Module, got {type(network).__name__}")
    if int(latent_dim) < 1:
        raise ConfigError(f"latent_dim must be positive, got {latent_dim}")
    if prior not in PRIORS:
        raise ConfigError(f"unknown prior {prior!r}; use one of: {', '.join(PRIORS)}")
    module, how = _script_or_trace(network.cpu().eval(), int(latent_dim), normalize_output_range(output_range), prior)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module.save(str(tmp))
    try:
        loaded = load_torchscript_generator(tmp, device=torch.device("cpu"))  # lasium-gen's own checks
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    record = loaded.describe()
    record["source"] = f"torchscript:{path.name}"
    return {**record, "prior": prior, "export": how}


__all__ = ["PRIORS", "ExportedGenerator", "export_generator"]
