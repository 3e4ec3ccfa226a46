"""What the GAN and VAE architecture records share: a versioned name and a JSON form (ints, tuples of ints).

A checkpoint's ``config.json`` stores the record under ``architecture``; :meth:`ArchitectureRecord.from_json`
rebuilds it, refusing a record of another name (another kind or version of network).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from lasium.errors import ConfigError


@dataclass(frozen=True)
class ArchitectureRecord:
    """Base of the frozen architecture dataclasses: every field but ``name`` is an int or a tuple of ints."""

    KIND: ClassVar[str] = ""  # "GAN", "VAE": for messages
    NAME: ClassVar[str] = ""  # the versioned name a stored record must carry

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Any:
        if data.get("name") != cls.NAME:
            raise ConfigError(f"unknown {cls.KIND} architecture {data.get('name')!r}; expected {cls.NAME!r}")
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "name"}
        return cls(**{k: tuple(int(x) for x in v) if isinstance(v, list) else int(v) for k, v in values.items()})


def checked_image_shape(image_shape: tuple[int, int, int], latent_dim: int) -> tuple[int, int, int]:
    """(H, W, C) as ints, refusing what neither network supports: other than 1 or 3 channels, a latent size < 1."""
    height, width, channels = (int(v) for v in image_shape)
    if channels not in (1, 3):
        raise ConfigError(f"images must have 1 or 3 channels, got {channels}")
    if latent_dim < 1:
        raise ConfigError(f"latent size must be positive, got {latent_dim}")
    return height, width, channels
