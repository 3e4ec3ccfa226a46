"""The registry of generator architectures, and what their records share: a versioned name and a JSON form.

Each network family is one :class:`ArchitectureRecord` subclass (a frozen dataclass of ints and tuples of ints)
registered here under its versioned ``NAME``. ``lasium-fit`` picks the record for a model and an image shape with
:func:`choose_architecture` (the most specific family whose ``fits`` accepts the shape: the DCGAN family for
64-128 px colour images, the paper's 84×84×3 VAE, else the LASIUM reference nets); a checkpoint's ``config.json``
stores the record under ``architecture`` and :func:`architecture_from_json` rebuilds it by that name, so a
checkpoint written before a family was added loads unchanged.

============================  =====  =============================================  ======================
name                          model  chosen for                                     module
============================  =====  =============================================  ======================
``lasium-gan-v1``             gan    every other size (28×28×1: the reference)      :mod:`.gan`
``lasium-dcgan-v1``           gan    3 channels, both sides 64-128 px               :mod:`.dcgan`
``lasium-vae-v1``             vae    every other size (28×28×1: the reference)      :mod:`.vae`
``lasium-vae84-v1``           vae    84×84×3 (the paper's CelebA/mini-ImageNet)     :mod:`.vae84`
============================  =====  =============================================  ======================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from torch import nn

from lasium.errors import ConfigError


@dataclass(frozen=True)
class ArchitectureRecord:
    """Base of the frozen architecture dataclasses: every field but ``name`` is an int or a tuple of ints.

    A family sets ``KIND`` ("GAN", "VAE"), ``NAME`` (the versioned name), ``MODEL`` (``lasium-fit --model``),
    ``PRIORITY`` (higher is tried first), ``DEFAULT_LATENT`` and implements :meth:`fits`, :meth:`for_shape` and
    :meth:`build`; GAN families also :meth:`build_discriminator`.
    """

    KIND: ClassVar[str] = ""  # "GAN", "VAE": for messages
    NAME: ClassVar[str] = ""  # the versioned name a stored record must carry
    MODEL: ClassVar[str] = ""  # "gan" | "vae"
    PRIORITY: ClassVar[int] = 0  # families with a higher priority are asked first by choose_architecture
    DEFAULT_LATENT: ClassVar[int] = 0

    latent_dim: int
    image_shape: tuple[int, int, int]  # (H, W, C)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        if data.get("name") != cls.NAME:
            raise ConfigError(f"unknown {cls.KIND} architecture {data.get('name')!r}; expected {cls.NAME!r}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "name"}
        args: dict[str, Any] = {
            k: tuple(int(x) for x in v) if isinstance(v, list) else int(v) for k, v in values.items()
        }
        return cls(**args)

    @classmethod
    def fits(cls, image_shape: tuple[int, int, int]) -> bool:
        """True when this family is meant for images of ``image_shape`` (H, W, C)."""
        raise NotImplementedError

    @classmethod
    def for_shape(cls, image_shape: tuple[int, int, int], latent_dim: int) -> ArchitectureRecord:
        """The record for ``image_shape`` and ``latent_dim`` (ConfigError when the family cannot build it)."""
        raise NotImplementedError

    def build(self) -> nn.Module:
        """The untrained model a checkpoint's ``model.safetensors`` holds (GAN: generator; VAE: encoder + decoder)."""
        raise NotImplementedError

    def build_discriminator(self) -> nn.Module:
        """GAN families: the untrained discriminator (training state only)."""
        raise NotImplementedError(f"{self.NAME} has no discriminator")


ARCHITECTURES: dict[str, type[ArchitectureRecord]] = {}
"""Every registered family by its versioned name (filled by :func:`architectures`)."""


def register_architecture(record: type[ArchitectureRecord]) -> type[ArchitectureRecord]:
    """Add a family (class decorator); its ``NAME`` must be new."""
    if record.NAME in ARCHITECTURES and ARCHITECTURES[record.NAME] is not record:
        raise ValueError(f"an architecture named {record.NAME!r} is already registered")
    ARCHITECTURES[record.NAME] = record
    return record


def architectures() -> dict[str, type[ArchitectureRecord]]:
    """The registry, with every family module imported (each registers itself)."""
    from . import dcgan, gan, vae, vae84  # noqa: F401  (imported for their registration)

    return ARCHITECTURES


def choose_architecture(model: str, image_shape: tuple[int, int, int], latent_dim: int | None) -> ArchitectureRecord:
    """The record ``lasium-fit --model model`` trains on images of ``image_shape``: the registered family of that
    model with the highest priority whose ``fits`` accepts the shape; ``latent_dim`` None: the family's default."""
    shape = tuple(int(v) for v in image_shape)
    candidates = sorted((r for r in architectures().values() if r.MODEL == model), key=lambda r: (-r.PRIORITY, r.NAME))
    if not candidates:
        raise ConfigError(f"no architecture is registered for --model {model!r}")
    for record in candidates:
        if record.fits(shape):  # type: ignore[arg-type]
            return record.for_shape(shape, record.DEFAULT_LATENT if latent_dim is None else int(latent_dim))  # type: ignore[arg-type]
    raise ConfigError(f"no {model} architecture fits images of shape {shape} (H, W, C)")


def architecture_from_json(model: str, data: dict[str, Any]) -> ArchitectureRecord:
    """Rebuild the record a checkpoint stored (``data["name"]`` picks the family); ConfigError for an unknown
    name or one of another model kind."""
    name = data.get("name") if isinstance(data, dict) else None
    record = architectures().get(str(name))
    if record is None or record.MODEL != model:
        known = ", ".join(n for n, r in architectures().items() if r.MODEL == model)
        raise ConfigError(f"unknown {model.upper()} architecture {name!r}; expected one of {known}")
    return record.from_json(data)


def checked_image_shape(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[int, int, int]:
    """(H, W, C) as ints, refusing what neither network supports: other than 1 or 3 channels, a latent size < 1."""
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise ConfigError(f"images must have 1 or 3 channels, got {channels}")
    if latent_dim < 1:
        raise ConfigError(f"latent size must be positive, got {latent_dim}")
    return height, width, channels
