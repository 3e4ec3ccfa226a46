"""Batched image transforms shared by the stages: background level, pixel erasing, integer shifts.

Each function works on a batch (B, C, H, W) on any device and in any dtype (uint8 stays uint8, exactly:
pixels are only copied or replaced by the background, never recomputed), draws every image's own
parameters from one ``torch.Generator`` and runs no Python loop over images. Same images, same
generator state and same kind of device → the same output bytes.

"Background" is the image's own: the median of its border pixels (0 for Omniglot's bright ink on dark,
and right for either polarity). UMTRA (Khodadadeh et al., NeurIPS 2019) makes its query images with
:func:`erase_pixels` then :func:`shift_integer`; LASIUM's reference code shifts query images the same way.
"""

from __future__ import annotations

import torch


def background_level(images: torch.Tensor) -> torch.Tensor:
    """Per image and channel (B, C, 1, 1), in the images' dtype: the median of the border pixels."""
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., 1:-1, 0], images[..., 1:-1, -1]], dim=-1)
    return border.median(dim=-1).values[..., None, None]


def erase_pixels(images: torch.Tensor, rng: torch.Generator, p: float) -> torch.Tensor:
    """Set each pixel (each channel alike) to the background with probability ``p``: ink only ever disappears."""
    b, _, h, w = images.shape
    drop = torch.rand((b, 1, h, w), generator=rng, device=images.device) < p
    return torch.where(drop, background_level(images), images)


def shift_integer(images: torch.Tensor, rng: torch.Generator, low: int, high: int) -> torch.Tensor:
    """Translate each image by integer (dx, dy), each uniform in [low, high), filling with its background.

    ``out[y, x] = in[y − dy, x − dx]``: two gathers with per-image index rows, then a mask for the pixels
    that came from outside the image. dx is drawn for all images first, then dy.
    """
    b, c, h, w = images.shape
    dev = images.device
    dx = torch.randint(low, high, (b,), generator=rng, device=dev)
    dy = torch.randint(low, high, (b,), generator=rng, device=dev)
    rows = torch.arange(h, device=dev)[None, :] - dy[:, None]  # (B, H) source row of each output row
    cols = torch.arange(w, device=dev)[None, :] - dx[:, None]
    inside = ((rows >= 0) & (rows < h))[:, None, :, None] & ((cols >= 0) & (cols < w))[:, None, None, :]
    out = images.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
    out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
    return torch.where(inside, out, background_level(images))


__all__ = ["background_level", "erase_pixels", "shift_integer"]
