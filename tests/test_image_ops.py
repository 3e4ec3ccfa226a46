"""lasium.image_ops: batched erase and integer shift, exact on uint8, background = border median."""

from __future__ import annotations

import torch

from lasium.image_ops import background_level, erase_pixels, shift_integer


def test_shift_moves_pixels_and_fills_with_each_images_background():
    images = torch.zeros((2, 3, 6, 6), dtype=torch.uint8)
    images[1] = 200  # a bright background: dark ink on light
    images[0, :, 2, 3] = 255
    images[1, :, 2, 3] = 10
    assert background_level(images).flatten().tolist() == [0, 0, 0, 200, 200, 200]
    out = shift_integer(images, torch.Generator().manual_seed(0), 2, 3)  # dx = dy = 2 for every image
    assert out.dtype == torch.uint8 and out[0, 0, 4, 5] == 255 and out[1, 2, 4, 5] == 10
    assert (
        int((out[0] != 0).sum()) == 3 and int((out[1] != 200).sum()) == 3
    )  # one pixel, three channels; fill = background


def test_erase_only_removes_ink_all_channels_of_a_pixel_alike_and_is_seeded():
    images = torch.full((4, 3, 16, 16), 255, dtype=torch.uint8)
    images[..., 0, :] = images[..., -1, :] = images[..., :, 0] = images[..., :, -1] = 0
    out = erase_pixels(images, torch.Generator().manual_seed(1), 0.5)
    assert set(out.unique().tolist()) <= {0, 255} and bool((out <= images).all())
    assert bool((out[:, 0] == out[:, 1]).all() and (out[:, 1] == out[:, 2]).all())
    kept = float((out[:, :, 1:-1, 1:-1] == 255).float().mean())
    assert 0.4 < kept < 0.6
    assert torch.equal(out, erase_pixels(images, torch.Generator().manual_seed(1), 0.5))
