"""How a WebDataset task stores its images: the image codecs of the task-shard format (docs/shard-format.md 3.2).

A task's ``support`` (N, K, H, W, C) and ``query`` (N, Q, H, W, C) are each one tar member. With the ``npy``
codec (the format's original one, the default at 28×28×1) the member is the raw array (``support.npy``); with an
image codec it is one image, a mosaic with a row per class and a column per example (``support.webp``: N·H pixels
high, K·W wide; C = 1 grey, C = 3 RGB), which a stock ``webdataset`` decoder or any image viewer opens. The
reader cuts the mosaic back into (N, K, H, W, C) with the set's layout (its manifest or a shard's sidecar).

Lossless codecs (``png``, ``webp`` lossless) give back the exact bytes; ``jpeg`` is lossy and is written only
when asked for by name: the set's config, manifest and card then say so. The set's config records the codec
(``image_codec``) when it is not ``npy``, and every manifest states it; an unknown name is refused in one line.

The choice of default (lossless WebP for colour images of 64 px and more, ``npy`` below) comes from
``benchmarks/bench_codecs.py``; the table is in docs/shard-format.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from lasium.errors import ShardError
from lasium.shards.format import DEFAULT_IMAGE_CODEC, IMAGE_CODEC_SUFFIXES


def to_mosaic(images: np.ndarray) -> np.ndarray:
    """(N, K, H, W, C) → (N·H, K·W, C): class i is pixel rows i·H … (i+1)·H − 1, example k columns k·W …"""
    n, k, h, w, c = images.shape
    return np.ascontiguousarray(images.transpose(0, 2, 1, 3, 4)).reshape(n * h, k * w, c)


def from_mosaic(mosaic: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`to_mosaic` for a (N, K, H, W, C) ``shape``."""
    n, k, h, w, c = shape
    return np.ascontiguousarray(mosaic.reshape(n, h, k, w, c).transpose(0, 2, 1, 3, 4))


@dataclass(frozen=True)
class ImageCodec:
    """An image codec of the format: ``name`` (recorded in the config), the member ``suffix``, the Pillow format."""

    name: ClassVar[str] = ""
    suffix: ClassVar[str] = ""
    pillow_format: ClassVar[str] = ""
    lossless: ClassVar[bool] = True
    description: ClassVar[str] = ""

    def save_options(self) -> dict[str, Any]:
        return {}

    def encode(self, images: np.ndarray) -> bytes:
        """The member bytes of ``images`` (N, K, H, W, C) uint8, C = 1 or 3."""
        from PIL import Image

        mosaic = to_mosaic(images)
        img = Image.fromarray(mosaic[..., 0] if mosaic.shape[2] == 1 else mosaic)
        buf = io.BytesIO()
        img.save(buf, format=self.pillow_format, **self.save_options())
        return buf.getvalue()

    def decode(self, data: bytes, shape: tuple[int, ...], member: str, shard: str) -> np.ndarray:
        """The (N, K, H, W, C) uint8 array of a member, checked: its format and size must be the layout's."""
        from PIL import Image

        n, k, h, w, c = shape
        try:
            img = Image.open(io.BytesIO(data), formats=[self.pillow_format])
            size = img.size  # read from the header: a wrong size is refused before any pixel is decoded
            if size != (k * w, n * h):
                raise ShardError(
                    f"{shard}: member {member} is a {size[0]}x{size[1]} image, the layout needs {k * w}x{n * h} "
                    f"({n} rows of {k} {w}x{h} images); the shard is damaged or not of this set"
                )
            arr = np.asarray(img.convert("L" if c == 1 and img.mode not in ("L", "RGB") else img.mode))
        except ShardError:
            raise
        except Exception as exc:  # Pillow raises many kinds (UnidentifiedImageError, OSError, ValueError, ...)
            raise ShardError(
                f"{shard}: member {member} is not a readable {self.pillow_format} image ({type(exc).__name__}: {exc}); "
                "the shard is damaged, regenerate or re-copy it"
            ) from None
        if arr.ndim == 3 and c == 1:  # lossless WebP stores grey as RGB with R = G = B
            arr = arr[..., 0]
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape != (n * h, k * w, c) or arr.dtype != np.uint8:
            raise ShardError(
                f"{shard}: member {member} decodes to {arr.dtype}{arr.shape}, the layout needs uint8{(n * h, k * w, c)}"
            )
        return from_mosaic(arr, shape)


class PngCodec(ImageCodec):
    name = "png"
    suffix = "png"
    pillow_format = "PNG"
    description = "PNG (lossless, zlib level 6)"

    def save_options(self) -> dict[str, Any]:
        return {"compress_level": 6}


@dataclass(frozen=True)
class WebpCodec(ImageCodec):
    """Lossless WebP. ``quality`` and ``method`` (libwebp's effort, 0-100 and 0-6) change only how hard the encoder
    works: every setting decodes to the same pixels and the reader needs none of them.

    The default is the least effort. On 84×84 views of photographs (``benchmarks/bench_codecs.py``, one thread of a
    2-core AMD EPYC, one run; docs/shard-format.md section 14) it writes 12% more bytes than quality 100, method 3
    (301 against 268 KB per 5-way 1+5-shot task) and encodes 28× faster (64.6 against 2.3 tasks/s), so that
    ``lasium-gen``'s writer keeps up with its generator: at 2.3 tasks/s per core a million-task set is 5 CPU-days of
    encoding. Decoding is 20% slower (105 against 131 tasks/s, still over 100× the ProtoNets training rate there).
    For the smallest files, ``WebpCodec(quality=100, method=6).encode(images)`` (262 KB, 0.1 tasks/s).
    """

    name = "webp"
    suffix = "webp"
    pillow_format = "WEBP"
    description = "lossless WebP"
    quality: int = 0
    method: int = 0

    def save_options(self) -> dict[str, Any]:
        return {"lossless": True, "quality": self.quality, "method": self.method, "exact": True}


class JpegCodec(ImageCodec):
    name = "jpeg"
    suffix = "jpg"
    pillow_format = "JPEG"
    lossless = False
    quality: ClassVar[int] = 90
    description = "JPEG quality 90, 4:4:4 (LOSSY: pixels differ from the generator's)"

    def save_options(self) -> dict[str, Any]:
        return {"quality": self.quality, "subsampling": 0, "optimize": False}


IMAGE_CODECS: dict[str, ImageCodec | None] = {
    "npy": None,  # the raw array (lasium.shards.reader.decode_npy)
    "png": PngCodec(),
    "webp": WebpCodec(),
    "jpeg": JpegCodec(),
}
"""The image codecs by the name a set's config records; ``npy`` (None here) is the raw-array member."""

assert set(IMAGE_CODECS) == set(IMAGE_CODEC_SUFFIXES), "format.IMAGE_CODEC_SUFFIXES and the registry disagree"


def get_image_codec(name: str) -> ImageCodec | None:
    """The codec named ``name`` (None for ``npy``); an unknown name is a one-line :class:`ShardError`."""
    if name not in IMAGE_CODECS:
        raise ShardError(f"unknown image codec {name!r}: use one of {', '.join(IMAGE_CODECS)}")
    return IMAGE_CODECS[name]


def default_image_codec(image_shape: tuple[int, ...] | list[int]) -> str:
    """The codec ``lasium-gen`` picks when none is asked for: lossless WebP for colour images of 64 px or more
    (84×84×3: about half the bytes of ``npy``, decoding far faster than ProtoNets trains; docs/shard-format.md), else
    the raw ``npy`` member (28×28×1: gzip of the whole tar does better than image members there)."""
    h, w, c = (int(s) for s in image_shape)
    return "webp" if c == 3 and min(h, w) >= 64 else DEFAULT_IMAGE_CODEC


def image_codec_note(name: str) -> str:
    """One line for a set card: how the set's images are stored, and a warning when lossy."""
    codec = get_image_codec(name)
    if codec is None:
        return "raw uint8 arrays (`.npy` members)"
    return f"{codec.description}, members `support.{codec.suffix}` / `query.{codec.suffix}`"
