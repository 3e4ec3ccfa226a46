"""What each epoch of ``lasium-fit`` leaves in its folder besides the weights.

``config.json`` (:func:`checkpoint_config`: architecture, data fingerprint, options, losses, speed),
``train_state.json`` (:func:`training_state`: where a resume continues), a ``losses.jsonl`` line
(:func:`loss_record`) and the sample grids (:func:`epoch_pictures`). Writing them atomically is
:func:`lasium.generate.models.checkpoint.save_training_checkpoint`'s job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

import lasium
from lasium.runtime import device_label

from .checkpoint import CHECKPOINT_FORMAT, FORMAT_VERSION
from .fit_config import FitConfig, ImageSet
from .gan import GANTrainer
from .vae import VAETrainer


def checkpoint_config(
    config: FitConfig,
    trainer: GANTrainer | VAETrainer,
    data: ImageSet,
    num_images: int,
    device: torch.device,
    *,
    epochs_done: int,
    steps_done: int,
    commands: list[str],
    final_losses: dict[str, float],
    train_seconds: float,
    images_per_second: float,
    stopped: bool,
    init: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint's ``config.json`` after ``epochs_done`` epochs (``init``: the generator ``--init-from`` started
    it from: spec, weights sha256, epochs it had)."""
    record = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "lasium_version": lasium.__version__,
        "kind": config.model,
        "architecture": trainer.arch.to_json(),
        "latent_dim": trainer.arch.latent_dim,
        "image_shape": list(trainer.arch.image_shape),
        "data": {
            "dataset": config.dataset,
            "fingerprint": data.fingerprint,
            "num_images": num_images,
            "limit": config.limit,
            "split": "train (unlabeled)",
        },
        "fit": config.to_json(),
        "epochs_done": epochs_done,
        "steps_done": steps_done,
        "commands": commands,
        "final_losses": final_losses,
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(images_per_second, 1),
        "device": device_label(device),
        "torch_version": torch.__version__,
        "stopped_by_time_budget": stopped,
    }
    if init is not None:
        record["init_from"] = init
    return record


def training_state(config: FitConfig, *, epochs_done: int, steps_done: int, train_seconds: float) -> dict[str, Any]:
    """``train_state.json`` (without the optimizer groups): what a resume continues from."""
    return {
        "epoch": epochs_done,
        "step": steps_done,
        "seed": config.seed,
        "train_seconds": train_seconds,
        "rng": {"scheme": "derive_seed(seed, 'fit', 'permutation'|'noise', epoch)", "next_epoch": epochs_done},
    }


def loss_record(
    epochs_done: int, steps_done: int, final_losses: dict[str, float], images_per_second: float, epoch_seconds: float
) -> dict[str, Any]:
    """One ``losses.jsonl`` line: the epoch's mean losses and speed."""
    return {
        "epoch": epochs_done,
        "step": steps_done,
        **final_losses,
        "images_per_second": round(images_per_second, 1),
        "epoch_seconds": round(epoch_seconds, 3),
    }


def epoch_pictures(
    trainer: GANTrainer | VAETrainer, out: Path, epoch: int, fixed_z: torch.Tensor, fixed_real: torch.Tensor
) -> None:
    """``samples/epoch-NNNN.png`` from fixed latents (VAE: also ``reconstructions/`` of fixed real images,
    real and reconstructed rows alternating), plus ``samples.png`` = the latest grid.

    Small images (28 px glyphs) are drawn at twice their size, images of 64 px and more at their own: a 64-image
    grid of 84×84×3 samples at twice the size took 1 s per PNG encode on the 2-core CPU, as long as a training step
    of 8 images. ``samples.png`` is a copy of the epoch's file (one encode, not two).
    """
    import shutil

    from lasium.previews import image_grid, preview_scale, save_png
    from lasium.safe_io import replace_atomically

    def nhwc(t: torch.Tensor) -> np.ndarray:
        return t.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()

    scale = preview_scale(*fixed_real.shape[-2:])
    grid = image_grid(nhwc(trainer.sample(fixed_z)), columns=8, scale=scale)
    epoch_png = save_png(grid, out / "samples" / f"epoch-{epoch:04d}.png")
    replace_atomically(out / "samples.png", lambda tmp: shutil.copyfile(epoch_png, tmp))
    if isinstance(trainer, VAETrainer):
        real, recon = nhwc(fixed_real), nhwc(trainer.reconstruct(fixed_real))
        rows = []
        for r in range(0, len(real), 8):
            rows += [real[r : r + 8], recon[r : r + 8]]
        save_png(
            image_grid(np.concatenate(rows), columns=8, scale=scale), out / "reconstructions" / f"epoch-{epoch:04d}.png"
        )
