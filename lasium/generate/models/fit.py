"""Fitting a generative model (GAN or VAE) on unlabeled images: the library behind ``lasium-fit``.

Speed: the whole training set lives on the device as one uint8 tensor and each epoch draws batches by
indexing it with a seeded permutation (no DataLoader, no host→device copies per step); losses stay on
the device and are synchronised once per epoch; CUDA runs use bf16 autocast, fused Adam and replay
each step as a CUDA graph (:class:`StepRunner`). Measured on one H200 (torch 2.11, 24k 28×28 images,
batch 64): ≈ 0.5 s per epoch (≈ 47k images/s) for the GAN and the VAE once the first epoch (≈ 2–5 s:
cuDNN autotuning, graph capture) is done; eager steps take ≈ 3.2 s per epoch (GAN).

Determinism and resume: every random stream is derived from (seed, stream name, epoch) with
:func:`lasium.seeding.derive_seed` — the init weights, the batch permutation and the noise of epoch e do
not depend on what ran before. A checkpoint is written after every epoch (weights, discriminator,
optimizer moments, step), so ``resume=True`` continues exactly: on CPU, 2 epochs + resume to 4 equals
4 uninterrupted epochs bit for bit.

This module checks the run and sets it up (:func:`fit`); the options and the result are in
:mod:`~lasium.generate.models.fit_config`, the epoch loop in :mod:`~lasium.generate.models.fit_loop`,
and what each epoch records (checkpoint JSON, loss line, sample grids) in
:mod:`~lasium.generate.models.fit_records`.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lasium.checkpoint_folder import CONFIG_FILE, WEIGHTS_FILE
from lasium.errors import ConfigError
from lasium.runtime import resolve_device
from lasium.seeding import derive_seed
from lasium.tasks import hwc

from .architecture import ArchitectureRecord, choose_architecture
from .checkpoint import STATE_JSON, architecture_from_config, load_into, read_config, restore_training_state
from .fit_config import (
    FitConfig,
    FitResult,
    ImageSet,
)
from .fit_loop import train_epochs
from .gan import GANTrainer
from .vae import VAETrainer

__all__ = ["build_trainer", "check_out_dir", "fit", "init_source", "load_training_images"]


def load_training_images(config: FitConfig) -> ImageSet:
    """The unlabeled train-split images of ``config.dataset`` (labels are never loaded here)."""
    from lasium.data import load_unlabeled

    return load_unlabeled(config.dataset, data_root=config.data_root, image_size=config.image_size)


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Refuse an --out we could not write, or one that already holds a run (unless resuming it)."""
    if resume:
        if not (out_dir / CONFIG_FILE).is_file() or not (out_dir / STATE_JSON).is_file():
            raise ConfigError(f"--resume needs a lasium-fit checkpoint with training state in {out_dir}; none found")
        return
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file, not a folder; choose another --out")
    if (out_dir / CONFIG_FILE).exists() or (out_dir / WEIGHTS_FILE).exists():
        raise ConfigError(
            f"--out {out_dir} already holds a checkpoint; pass --resume to continue it or choose another --out"
        )
    ancestor = out_dir
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ConfigError(f"cannot create --out {out_dir}: {ancestor} is a file; choose another --out")
    import os

    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write --out {out_dir}: {ancestor} is not writable; choose another --out")


def init_source(spec: str) -> tuple[Path, dict[str, Any]]:
    """The folder and ``config.json`` of the generator ``--init-from`` names: a bundled model or a lasium-fit folder
    (a checkpoint or one of its ``epoch-NNNN/`` snapshots)."""
    from .bundled_registry import bundled_folder, is_bundled_name

    folder = bundled_folder(spec) if is_bundled_name(spec) else Path(spec).expanduser()
    if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise ConfigError(
            f"--init-from {spec}: not a bundled generator or a lasium-fit folder (it needs {CONFIG_FILE} and "
            f"{WEIGHTS_FILE})"
        )
    return folder, read_config(folder)


def start_from(trainer: GANTrainer | VAETrainer, folder: Path, source: dict[str, Any]) -> tuple[int, int, float]:
    """Load the generator weights of ``folder`` into ``trainer`` (float16 bundled weights are cast up); returns the
    epochs, steps and training seconds it already had."""
    from lasium.safe_io import read_safetensors

    weights, _ = read_safetensors(folder / WEIGHTS_FILE)
    load_into(trainer.model, weights, str(folder / WEIGHTS_FILE))
    return int(source.get("epochs_done", 0)), int(source.get("steps_done", 0)), float(source.get("train_seconds", 0))


def fit_architecture(config: FitConfig, image_shape: tuple[int, int, int]) -> ArchitectureRecord:
    """The registered architecture ``config.model`` trains on images of ``image_shape`` (the DCGAN family for
    64-128 px colour images, the paper's VAE at 84×84×3, else the reference nets; see
    :mod:`lasium.generate.models.architecture`); ``config.latent_dim`` None: that family's default."""
    return choose_architecture(config.model, image_shape, config.latent_dim)


def build_trainer(
    config: FitConfig,
    image_shape: tuple[int, int, int],
    device: torch.device,
    arch: ArchitectureRecord | None = None,
    *,
    cpu_channels_last: bool = True,
) -> GANTrainer | VAETrainer:
    """Model + optimizers, initialised from (seed, "fit", "init") on the CPU so every device starts alike.

    ``arch``: the architecture to build (default: :func:`fit_architecture`; a resumed run passes its checkpoint's).
    ``cpu_channels_last``: on a CPU, keep every module's weights channels-last, so each convolution and its backward
    run in oneDNN's NHWC kernels (the same function up to float rounding; checkpoints are written contiguous, as
    always). Measured by ``benchmarks/bench_fit.py`` on a 2-core AMD EPYC (fp32, one thread, batch 64, the Omniglot
    architectures, every variant in one run, interleaved, the other core busy): a GAN step 1.44x and a VAE step 1.13x
    faster than NCHW, and the GAN 2.45x with its folded output convolution as well
    (:func:`~lasium.generate.models.gan.conv_as_fold`; ``results/bench_fit_cpu.json``).
    """
    arch = arch if arch is not None else fit_architecture(config, image_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "fit", "init"))
        trainer: GANTrainer | VAETrainer
        if config.model == "gan":
            trainer = GANTrainer(arch, config.lr, device, config.ms_weight)
        else:
            trainer = VAETrainer(arch, config.lr, device)
    if cpu_channels_last and device.type == "cpu":
        for module in (trainer.model, *trainer.extra_modules.values()):
            module.to(memory_format=torch.channels_last)
    return trainer


def fit(
    config: FitConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    data: ImageSet | None = None,
    command: str | None = None,
    progress: bool = True,
) -> FitResult:
    """Train ``config.model`` on unlabeled images (``data``, else :func:`load_training_images`) into ``out_dir``.

    Writes a checkpoint after every epoch (see :mod:`lasium.generate.models.checkpoint`), a loss line to
    ``losses.jsonl`` and sample grids; ``resume=True`` continues the checkpoint in ``out_dir`` to
    ``config.epochs`` epochs in total.
    """
    config = config.resolved()
    out = Path(out_dir)
    check_out_dir(out, resume)
    device = resolve_device(config.device)
    if data is None:
        data = load_training_images(config)
    images = np.asarray(data.images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ConfigError(f"training images must be uint8 (n, H, W, C), got {images.dtype} {images.shape}")
    if config.limit is not None:
        images = images[: config.limit]
    n = images.shape[0]
    if n < config.batch_size:
        raise ConfigError(
            f"--batch-size {config.batch_size} is larger than the {n} "
            "training images; lower --batch-size or raise --limit"
        )
    image_shape = hwc(images.shape[1:])

    previous: dict[str, Any] = {}
    start_epoch, step, train_seconds = 0, 0, 0.0
    source: tuple[Path, dict[str, Any]] | None = None  # the --init-from generator's folder and config
    if config.init_from is not None and not resume:
        source = source_folder, source_config = init_source(config.init_from)
        if source_config.get("kind") != config.model:
            raise ConfigError(
                f"--init-from {config.init_from} is a {source_config.get('kind')}; this fit is a {config.model}"
            )
        if (source_config.get("data") or {}).get("fingerprint") != data.fingerprint:
            raise ConfigError(
                f"--init-from {config.init_from} was trained on other images (fingerprint) than --dataset "
                f"{config.dataset}; start from a generator of the same data"
            )
        # its history, and where it came from, go on in this fit's records
        from lasium.safe_io import file_sha256

        init = {
            "spec": config.init_from,
            "weights_sha256": file_sha256(source_folder / WEIGHTS_FILE),
            "epochs_done": int(source_config.get("epochs_done", 0)),
        }
        previous = {"commands": list(source_config.get("commands") or []), "init_from": init}
    if resume:
        previous = read_config(out)
        if (previous.get("data") or {}).get("fingerprint") != data.fingerprint:
            raise ConfigError(
                f"the training data differs from the data {out} was "
                "trained on (fingerprint); resume with the same --dataset"
            )
        arch = architecture_from_config(previous)  # a checkpoint continues its own architecture
    elif source is not None:
        arch = architecture_from_config(source[1])
    else:
        arch = fit_architecture(config, image_shape)
    config = dataclasses.replace(config, latent_dim=arch.latent_dim)
    trainer = build_trainer(config, image_shape, device, arch)
    if resume:
        state = restore_training_state(out, trainer)
        start_epoch, step, train_seconds = (
            int(state["epoch"]),
            int(state["step"]),
            float(state.get("train_seconds", 0.0)),
        )
        if start_epoch >= config.epochs:
            raise ConfigError(f"{out} already has {start_epoch} epochs; pass a larger --epochs to train more")
    elif source is not None:
        start_epoch, step, train_seconds = start_from(trainer, *source)
        if start_epoch >= config.epochs:
            raise ConfigError(
                f"--init-from {config.init_from} already has {start_epoch} epochs; pass a larger --epochs (the total)"
            )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        return train_epochs(
            config, out, trainer, images, data, device, previous, start_epoch, step, train_seconds, command, progress
        )
    except BaseException:
        if created and not (out / CONFIG_FILE).exists():  # nothing usable was written: leave no partial output
            shutil.rmtree(out, ignore_errors=True)
        raise
