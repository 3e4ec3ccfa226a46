"""VAE anchors: real unlabeled training images and their posterior means, on the device.

With a VAE, LASIUM (Khodadadeh et al., ICLR 2021) starts each class from a real image: its anchor is the
image's posterior mean, and the image itself is member 0 of the class. :func:`vae_anchor_pool` loads the
unlabeled train split with :func:`lasium.data.load_unlabeled` and encodes it in fixed-size batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lasium.errors import ConfigError
from lasium.generate.models.interface import Generator

ENCODE_BATCH = 1024


@dataclass
class AnchorPool:
    """Real images that VAE anchors are drawn from: uint8 (M, H, W, C) and posterior means (M, D), on
    the device, plus each image's stable id (for the tasks' meta)."""

    images: torch.Tensor
    codes: torch.Tensor
    image_ids: list[str]
    fingerprint: str = ""


def encode_pool(
    model: Generator, images: np.ndarray, image_ids: list[str], *, device: torch.device, fingerprint: str = ""
) -> AnchorPool:
    """Encode real images (n, H, W, C) uint8 with a VAE to posterior means, in fixed-size batches (fp32)."""
    if not hasattr(model, "encode"):
        raise ConfigError(f"generator kind {model.kind!r} has no encoder; VAE anchors need a VAE")
    pixels = torch.as_tensor(np.ascontiguousarray(images)).to(device)
    codes = []
    with torch.inference_mode():
        for a in range(0, len(pixels), ENCODE_BATCH):
            part = pixels[a : a + ENCODE_BATCH]
            n = len(part)
            x = part.permute(0, 3, 1, 2).float() / 255.0
            if n < ENCODE_BATCH:  # fixed shape: pad the tail
                x = torch.cat([x, x.new_zeros((ENCODE_BATCH - n, *x.shape[1:]))])
            codes.append(model.encode(x)[:n].float())
    return AnchorPool(pixels, torch.cat(codes), list(image_ids), fingerprint)


def vae_anchor_pool(model: Generator, dataset: str, *, data_root: str | None, device: torch.device) -> AnchorPool:
    """Encode the unlabeled train split of ``dataset`` with the VAE ``model`` (posterior means)."""
    from lasium.data import load_unlabeled

    h, w, c = (int(v) for v in model.image_shape)
    data = load_unlabeled(dataset, data_root=data_root, image_size=(h, w), channels=c)
    images = np.asarray(data.images)
    if images.ndim == 3:
        images = images[..., None]
    if tuple(images.shape[1:]) != tuple(model.image_shape):
        raise ConfigError(
            f"{dataset} images are {tuple(images.shape[1:])} (H, W, C) but the VAE makes {tuple(model.image_shape)}; "
            "use a VAE fitted on this dataset"
        )
    return encode_pool(model, images, list(data.image_ids), device=device, fingerprint=str(data.fingerprint))


def vae_source_record(pool: AnchorPool, dataset: str) -> dict[str, Any]:
    """The manifest's ``source`` record for VAE anchors."""
    return {
        "kind": "unlabeled-train",
        "dataset": dataset,
        "split": "train",
        "fingerprint": pool.fingerprint,
        "num_images": int(len(pool.image_ids)),
        "use": "VAE anchors (member 0 of each class)",
    }
