"""Pluggable external generators: a TorchScript file or a ``package.module:callable`` factory.

This is how a pre-trained ProGAN / StyleGAN2 / BigBiGAN-style generator joins LASIUM without lasium
knowing its code. The module must map latents (n, D) to images (n, C, H, W); say how big D is with
``--latent-dim`` (or a ``latent_dim`` attribute on the module), and, when its outputs are in [-1, 1]
(tanh, as most GANs), with ``--output-range "[-1,1]"`` (or an ``output_range`` attribute), e.g.::

    # mygan.py
    class Wrapped(torch.nn.Module):
        latent_dim = 512
        output_range = "[-1,1]"
        def __init__(self):
            super().__init__()
            self.g = load_pretrained_stylegan2(...)   # any code you trust
        def forward(self, z):
            return self.g(z, truncation=0.7)          # (n, 3, H, W)

    def build():
        return Wrapped()

    lasium-gen --generator mygan:build ...            # or: torch.jit.script(Wrapped()).save("g.pt")

Both kinds are probed at load time with two latents of the declared size; an exception or an output
that is not (2, C, H, W) (matching ``image_shape`` when given), or whose values lie outside the declared
output range (e.g. tanh outputs without ``--output-range "[-1,1]"``: they would be clipped), is refused
with one line. TorchScript files are read with ``torch.jit.load`` (its own restricted format, no Python
unpickling); plain ``torch.save`` pickles are never loaded. A factory runs arbitrary code by design:
only name modules you trust, exactly as with ``import``.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lasium.errors import CheckpointError, ConfigError

from .interface import ModuleGenerator, normalize_output_range, state_dict_sha256

_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def looks_like_factory(spec: str) -> bool:
    """True for ``package.module:callable`` (dotted names on both sides of one colon)."""
    return bool(_FACTORY.match(spec))


def _module_attr(module: nn.Module, name: str) -> Any:
    try:
        return getattr(module, name)
    except (AttributeError, RuntimeError):
        return None


def _declared_latent_dim(module: nn.Module, latent_dim: int | None, where: str) -> int:
    attr = _module_attr(module, "latent_dim")
    if latent_dim is None:
        if attr is None:
            raise ConfigError(f"{where} does not declare its latent size; pass --latent-dim D")
        latent_dim = int(attr)
    latent_dim = int(latent_dim)
    if latent_dim < 1:
        raise ConfigError(f"--latent-dim must be positive, got {latent_dim}")
    if attr is not None and isinstance(attr, int) and int(attr) != latent_dim:
        raise CheckpointError(
            f"{where} declares latent_dim {attr} but --latent-dim is {latent_dim}; drop or fix --latent-dim"
        )
    return latent_dim


RANGE_TOLERANCE = 1e-3
"""How far a probe output may lie outside the declared range (rounding) before the range is called wrong."""


def probe_output_shape(module: nn.Module, latent_dim: int, device: torch.device, where: str) -> tuple[int, int, int]:
    """Run two latents through ``module``; return (H, W, C) or refuse with one line."""
    return _probe(module, latent_dim, device, where)[0]


def check_output_range(lo: float, hi: float, output_range: str, where: str) -> None:
    """Refuse a generator whose probe outputs lie outside its declared range: decoding would clip them silently."""
    low, high = (-1.0, 1.0) if output_range == "[-1,1]" else (0.0, 1.0)
    if lo >= low - RANGE_TOLERANCE and hi <= high + RANGE_TOLERANCE and math.isfinite(lo) and math.isfinite(hi):
        return
    hint = (
        'pass --output-range "[-1,1]" (tanh outputs)'
        if output_range == "[0,1]" and lo >= -1 - RANGE_TOLERANCE and hi <= 1 + RANGE_TOLERANCE
        else "make it return images in [0, 1] or [-1, 1] and pass --output-range to match"
    )
    raise CheckpointError(
        f"{where} returned values in [{lo:.3g}, {hi:.3g}] for probe latents, outside its output range "
        f"{output_range} (decoding would clip them); {hint}"
    )


def _probe(
    module: nn.Module, latent_dim: int, device: torch.device, where: str
) -> tuple[tuple[int, int, int], float, float]:
    """(H, W, C) and the smallest and largest value ``module`` returns for two latents, or one line refusing it."""
    z = torch.randn(2, latent_dim, device=device, generator=torch.Generator(device=device).manual_seed(0))
    try:
        with torch.no_grad():
            out = module(z)
    except Exception as exc:  # any failure here means the module does not take (n, latent_dim) inputs
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise CheckpointError(
            f"{where} failed on latents of size {latent_dim} ({first.strip()[:160]}); check --latent-dim"
        ) from None
    if not torch.is_tensor(out) or out.dim() != 4 or out.shape[0] != 2:
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise CheckpointError(
            f"{where} must return images (n, C, H, W) for latents (n, {latent_dim}); for n=2 it returned {shape}"
        )
    c, h, w = (int(v) for v in out.shape[1:])
    if c not in (1, 3):
        raise CheckpointError(
            f"{where} returned {c} channels (shape {tuple(out.shape)}); lasium needs (n, C, H, W) with C = 1 or 3"
        )
    if not out.is_floating_point():
        raise CheckpointError(f"{where} returned {out.dtype} images; return floats in [0, 1] or [-1, 1]")
    return (h, w, c), float(out.min()), float(out.max())


def wrap_external(
    module: nn.Module,
    *,
    name: str,
    device: torch.device,
    latent_dim: int | None,
    image_shape: tuple[int, int, int] | None,
    output_range: str | None,
    source: str,
) -> ModuleGenerator:
    """Check ``module`` against its declarations and wrap it as an ``external`` :class:`ModuleGenerator`."""
    if not isinstance(module, nn.Module):
        raise CheckpointError(f"{name} must give a torch.nn.Module, got {type(module).__name__}")
    module = module.to(device).eval()
    dim = _declared_latent_dim(module, latent_dim, name)
    shape, lo, hi = _probe(module, dim, device, name)
    if image_shape is not None and tuple(int(v) for v in image_shape) != shape:
        raise CheckpointError(f"{name} makes images of shape {shape} (H, W, C) but {tuple(image_shape)} was declared")
    attr_range = _module_attr(module, "output_range")
    chosen = output_range if output_range is not None else (attr_range if isinstance(attr_range, str) else None)
    check_output_range(lo, hi, normalize_output_range(chosen), name)
    return ModuleGenerator(
        module,
        kind="external",
        name=name,
        latent_dim=dim,
        image_shape=shape,
        weights_sha256=state_dict_sha256(module),
        device=device,
        output_range=normalize_output_range(chosen),
        extra={
            "source": source,
            **({"prior": prior} if isinstance(prior := _module_attr(module, "prior"), str) else {}),
        },
    )


def load_torchscript_generator(
    path: str | Path,
    *,
    device: torch.device,
    latent_dim: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    output_range: str | None = None,
) -> ModuleGenerator:
    """A TorchScript archive (``torch.jit.save``) as an external generator."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch ≥ 2.9 deprecates torch.jit, still supported
            module = torch.jit.load(str(path), map_location=device)
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(
            f"{path} is not a TorchScript archive ({first}); lasium never unpickles torch.save files: export the "
            "generator with torch.jit.script(model).save(path), or give a module:factory"
        ) from None
    return wrap_external(
        module,
        name=path.name,
        device=device,
        latent_dim=latent_dim,
        image_shape=image_shape,
        output_range=output_range,
        source=f"torchscript:{path.name}",
    )


def load_factory_generator(
    spec: str,
    *,
    device: torch.device,
    latent_dim: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    output_range: str | None = None,
) -> ModuleGenerator:
    """``package.module:callable``: import the module, call the factory with no arguments, wrap the result."""
    module_name, attr_path = spec.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CheckpointError(
            f"cannot import {module_name!r} for generator {spec!r} ({exc}); is it on PYTHONPATH?"
        ) from None
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise CheckpointError(f"{module_name!r} has no attribute {attr_path!r} (generator {spec!r})")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CheckpointError(f"{spec} is not callable; it must be a factory returning an nn.Module")
    module = obj()
    return wrap_external(
        module,
        name=spec,
        device=device,
        latent_dim=latent_dim,
        image_shape=image_shape,
        output_range=output_range,
        source=f"factory:{spec}",
    )
