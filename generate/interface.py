"""The generator interface that ``lasium-gen`` (LASIUM task synthesis) talks to, and :func:`load_generator`.

Any generator, ours or a pre-trained one plugged in from outside, is used through the small
:class:`Generator` protocol::

    g = load_generator("omniglot-gan", device="cuda")          # or a checkpoint folder, a TorchScript file,
    z = g.sample_prior(4096, torch_generator(0, "x", device=g.device))   # or "package.module:factory"
    with torch.autocast("cuda", dtype=torch.bfloat16):
        images = g.decode(z)                                    # (4096, C, H, W) in [0, 1]
    g.decoder = torch.compile(g.decoder)                        # decode() then runs the compiled module

Contract:

* ``kind`` ("gan" | "vae" | "external"), ``name``, ``latent_dim`` D, ``image_shape`` (H, W, C), ``device``;
* ``sample_prior(n, generator)`` → (n, D) standard normal on ``device``, drawn from the given
  ``torch.Generator`` (which must live on ``device``) so callers control every random stream;
* ``decode(z)`` → (n, C, H, W) in [0, 1], computed without gradients; the dtype is whatever the module
  computes in (float32, or bfloat16 when the caller wraps the call in autocast);
* ``decoder``: the underlying ``nn.Module`` mapping z to images (in the generator's ``output_range``);
  assignable, e.g. to its ``torch.compile``'d version (or ``.to(memory_format=torch.channels_last)``);
* ``max_decode_batch``: ``decode`` splits larger batches into chunks of this size (lasium checkpoints:
  the largest power of two keeping every activation under 2^31 values, 16384 for the 28×28 GAN;
  external generators: None, no splitting), since cuDNN kernels fail beyond that;
* VAEs (``kind == "vae"``) add ``encode(x)`` → posterior mean (n, D) for x (n, C, H, W) in [0, 1], and
  ``encoder``;
* ``describe()`` → {kind, name, latent_dim, image_shape, weights_sha256, output_range} for shard manifests.
  ``weights_sha256`` is the sha256 of ``model.safetensors`` for lasium checkpoints and bundled models, and
  of the canonical serialised state dict (:func:`state_dict_sha256`) for external generators.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from lasium.errors import CheckpointError, ConfigError

OUTPUT_RANGES = ("[0,1]", "[-1,1]")


@runtime_checkable
class Generator(Protocol):
    """What ``lasium-gen`` needs from a generative model (see the module docstring)."""

    kind: str
    name: str
    latent_dim: int
    image_shape: tuple[int, int, int]
    device: torch.device
    decoder: nn.Module

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...

    def describe(self) -> dict[str, Any]: ...


def normalize_output_range(value: str | None) -> str:
    """``"[-1,1]"``, ``"-1,1"``, ``"tanh"`` → ``"[-1,1]"``; ``None``, ``"[0,1]"``, ``"sigmoid"`` → ``"[0,1]"``."""
    if value is None:
        return "[0,1]"
    text = str(value).replace(" ", "").lower()
    if text in ("[-1,1]", "-1,1", "tanh", "(-1,1)"):
        return "[-1,1]"
    if text in ("[0,1]", "0,1", "sigmoid", "(0,1)"):
        return "[0,1]"
    raise ConfigError(f"output range {value!r} is not supported; use '[0,1]' or '[-1,1]'")


class ModuleGenerator:
    """A :class:`Generator` around a decoder ``nn.Module`` (used for GANs and external generators)."""

    def __init__(
        self,
        decoder: nn.Module,
        *,
        kind: str,
        name: str,
        latent_dim: int,
        image_shape: tuple[int, int, int],
        weights_sha256: str,
        device: str | torch.device = "cpu",
        output_range: str = "[0,1]",
        extra: dict[str, Any] | None = None,
        max_decode_batch: int | None = None,
    ):
        self.kind = kind
        self.name = name
        self.latent_dim = int(latent_dim)
        self.image_shape = tuple(int(v) for v in image_shape)  # type: ignore[assignment]
        self.device = torch.device(device)
        self.output_range = normalize_output_range(output_range)
        self.weights_sha256 = weights_sha256
        self.decoder = decoder.to(self.device).eval()
        self.extra = dict(extra or {})
        # Larger batches are decoded in chunks: cuDNN kernels index activations with 32-bit integers, and
        # e.g. 65536 Omniglot GAN images hold 6.6e9 activation values in the last layer (illegal memory
        # access seen on an H200 with channels_last). None: decode any batch in one call.
        self.max_decode_batch = max_decode_batch

    def sample_prior(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """(n, D) standard normal latents on ``self.device`` from ``generator`` (must be on that device)."""
        return torch.randn(int(n), self.latent_dim, device=self.device, generator=generator)

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents (n, D) → images (n, C, H, W) in [0, 1] (outputs in [-1, 1] are mapped and clamped)."""
        z = z.to(self.device)
        step = self.max_decode_batch
        out = self.decoder(z) if step is None or z.shape[0] <= step else torch.cat([self.decoder(c) for c in z.split(step)])
        if self.output_range == "[-1,1]":
            out = out * 0.5 + 0.5
        return out.clamp(0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        """What a shard manifest records about the generator."""
        return {
            "kind": self.kind,
            "name": self.name,
            "latent_dim": self.latent_dim,
            "image_shape": list(self.image_shape),
            "weights_sha256": self.weights_sha256,
            "output_range": self.output_range,
            **self.extra,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, name={self.name!r}, latent_dim={self.latent_dim}, image_shape={self.image_shape}, device={self.device})"


class VAEGenerator(ModuleGenerator):
    """A VAE: the decoder is the generator; ``encode`` gives posterior means (for LASIUM VAE anchors)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, **kwargs: Any):
        super().__init__(decoder, kind="vae", **kwargs)
        self.encoder = encoder.to(self.device).eval()

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (n, C, H, W) in [0, 1] → posterior means (n, D)."""
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        mean, _ = self.encoder(x.to(self.device))
        return mean


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 of a module's state dict in canonical form: keys sorted, each as name, dtype, shape, raw bytes."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def generator_from_checkpoint(folder: str | Path, *, device: str | torch.device = "cpu", name: str | None = None) -> ModuleGenerator:
    """A :class:`Generator` from a lasium-fit checkpoint folder or a bundled model folder."""
    from .checkpoint import file_sha256, load_checkpoint

    ckpt = load_checkpoint(folder, device=device)
    config = ckpt.config
    common = dict(
        name=name or config.get("name") or Path(folder).resolve().name,
        latent_dim=int(config["latent_dim"]),
        image_shape=tuple(config["image_shape"]),
        weights_sha256=file_sha256(ckpt.weights_path),
        device=device,
    )
    fingerprint = (config.get("data") or {}).get("fingerprint")
    common["max_decode_batch"] = safe_batch(ckpt.model, int(config["latent_dim"]), torch.device(device))
    extra = {"training_data_fingerprint": fingerprint} if fingerprint else {}
    if config["kind"] == "vae":
        return VAEGenerator(ckpt.model.encoder, ckpt.model.decoder, extra=extra, **common)  # type: ignore[arg-type]
    return ModuleGenerator(ckpt.model, kind="gan", extra=extra, **common)  # type: ignore[arg-type]


def safe_batch(model: nn.Module, latent_dim: int, device: torch.device, limit: int = 2**31) -> int:
    """Largest power-of-two batch whose biggest decoder activation stays under ``limit`` elements."""
    decoder = model.decoder if hasattr(model, "decoder") else model
    largest = [int(latent_dim)]

    def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if torch.is_tensor(output):
            largest[0] = max(largest[0], output[0].numel())

    hooks = [m.register_forward_hook(record) for m in decoder.modules()]
    try:
        with torch.no_grad():
            decoder(torch.zeros(1, latent_dim, device=device))
    finally:
        for h in hooks:
            h.remove()
    return 1 << max(0, (limit // largest[0]).bit_length() - 1)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → cuda when available, else cpu; ``"cuda"`` without a GPU is a one-line ConfigError."""
    text = str(device)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    try:
        return torch.device(text)
    except RuntimeError:
        raise ConfigError(f"unknown device {text!r}; use auto, cpu or cuda") from None


def load_generator(
    spec: str | Path,
    *,
    device: str | torch.device = "cpu",
    latent_dim: int | None = None,
    image_shape: tuple[int, int, int] | None = None,
    output_range: str | None = None,
) -> ModuleGenerator:
    """Resolve ``spec`` to a :class:`Generator` on ``device``.

    ``spec`` is tried as, in order:

    1. a bundled model name (``omniglot-gan``, ``omniglot-vae``: folders in ``lasium/generate/bundled/``);
    2. a lasium checkpoint folder (``lasium-fit --out DIR``);
    3. a TorchScript file (``.pt``/``.ts``/``.jit``, read with ``torch.jit.load``; never a pickle), which
       needs ``latent_dim`` unless the module has a ``latent_dim`` attribute;
    4. ``package.module:callable``, a factory called without arguments that returns an ``nn.Module``
       mapping (n, D) latents to (n, C, H, W) images (e.g. a wrapper around a pre-trained
       ProGAN/StyleGAN2/BigBiGAN generator); ``latent_dim`` as for TorchScript.

    External generators are probed with a batch of 2 latents at load time; a module that fails on
    latents of the declared size, or whose output is not (2, C, H, W) matching ``image_shape``, is refused.
    ``output_range`` ("[0,1]" or "[-1,1]", default: the module's ``output_range`` attribute, else [0,1])
    says how to map external outputs into [0, 1].
    """
    from .checkpoint import BUNDLED_NAMES, bundled_folder, is_bundled_name
    from .external import load_factory_generator, load_torchscript_generator, looks_like_factory

    dev = resolve_device(device)
    text = str(spec)
    path = Path(text).expanduser()
    if text in BUNDLED_NAMES or (not path.exists() and is_bundled_name(text)):
        gen: ModuleGenerator = generator_from_checkpoint(bundled_folder(text), device=dev, name=text)
    elif path.is_dir():
        gen = generator_from_checkpoint(path, device=dev)
    elif path.is_file():
        gen = load_torchscript_generator(path, device=dev, latent_dim=latent_dim, image_shape=image_shape, output_range=output_range)
    elif looks_like_factory(text):
        gen = load_factory_generator(text, device=dev, latent_dim=latent_dim, image_shape=image_shape, output_range=output_range)
    else:
        raise CheckpointError(
            f"generator {text!r} not found: give a bundled name ({', '.join(BUNDLED_NAMES)}), "
            "a lasium-fit checkpoint folder, a TorchScript file or package.module:factory"
        )
    if gen.kind != "external":
        if latent_dim is not None and int(latent_dim) != gen.latent_dim:
            raise ConfigError(f"--latent-dim {latent_dim} disagrees with {text} (latent size {gen.latent_dim}); drop the option")
        if image_shape is not None and tuple(image_shape) != gen.image_shape:
            raise ConfigError(f"image shape {tuple(image_shape)} disagrees with {text} ({gen.image_shape})")
    return gen
