"""The training loop of ``lasium-fit``: epochs of seeded batches, one checkpoint after each.

Speed: the whole training set lives on the device as one uint8 tensor and each epoch draws batches by
indexing it with a seeded permutation (no DataLoader, no host→device copies per step); losses stay on
the device and are synchronised once per epoch; CUDA runs replay each step as a CUDA graph
(:class:`StepRunner`). Every random stream is derived from (seed, stream name, epoch), so epoch e does
not depend on what ran before it and a resumed run continues exactly.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lasium.checkpoint_folder import CONFIG_FILE, WEIGHTS_FILE
from lasium.errors import ConfigError
from lasium.jsonl_log import JsonLinesLog
from lasium.safe_io import remove_stale_temporaries, replace_atomically
from lasium.seeding import numpy_rng, torch_generator

from .checkpoint import LOSS_LOG, save_training_checkpoint
from .fit_config import FitConfig, FitResult, ImageSet
from .fit_records import checkpoint_config, epoch_pictures, loss_record, training_state
from .gan import GANTrainer
from .vae import VAETrainer


class StepRunner:
    """Runs training steps: eagerly, or on CUDA as one replayed CUDA graph per step.

    A small GAN step is ~200 kernel launches; eager PyTorch spends ~8 ms of host time on them, far more
    than the GPU's work, so the graph replay (one launch) is what makes a 24k-image epoch take about a
    second. Inputs go through static buffers: the batch is gathered with ``index_select(out=)`` and
    the noise drawn with ``randn(out=, generator=)`` outside the graph, so randomness and batches are
    exactly those of the eager path. The first ``WARMUP`` steps run eagerly on a side stream (Adam
    state, cuDNN autotuning), then the step is captured once. If capture fails, training goes on eagerly.
    """

    WARMUP = 3

    def __init__(
        self, trainer: GANTrainer | VAETrainer, batch_shape: tuple[int, ...], device: torch.device, cuda_graphs: bool
    ):
        self.trainer = trainer
        self.batch = torch.empty(batch_shape, dtype=torch.uint8, device=device)
        self.noises = [torch.empty(s, device=device) for s in trainer.noise_shapes(batch_shape[0])]
        self.use_graph = cuda_graphs and device.type == "cuda"
        self.graph: Any = None
        self.losses: dict[str, torch.Tensor] = {}
        self.eager_steps = 0
        self.side: Any = None

    def run(self, pixels: torch.Tensor, index: torch.Tensor, noise: torch.Generator) -> dict[str, torch.Tensor]:
        torch.index_select(pixels, 0, index, out=self.batch)
        for buf in self.noises:
            torch.randn(buf.shape, generator=noise, device=buf.device, out=buf)
        if self.graph is not None:
            self.graph.replay()
            return self.losses
        if self.use_graph and self.eager_steps >= self.WARMUP:
            try:
                for opt in self.trainer.optimizers.values():  # grads are (re)allocated inside the graph's pool
                    opt.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    self.losses = self.trainer.step(self.batch, self.noises)
                self.graph = graph
                graph.replay()
                return self.losses
            except Exception as exc:  # unsupported op or driver: the eager path gives the same training
                self.use_graph = False
                tqdm.write(
                    f"note: CUDA graph capture failed ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:120]}); training eagerly"
                )
        self.eager_steps += 1
        if not self.use_graph:
            return self.trainer.step(self.batch, self.noises)
        if self.side is None:
            self.side = torch.cuda.Stream()
        self.side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.side):  # warm-up off the default stream, as CUDA-graph capture requires
            losses = self.trainer.step(self.batch, self.noises)
        torch.cuda.current_stream().wait_stream(self.side)
        return {k: v.clone() for k, v in losses.items()}


def keep_generator(out: Path, epochs: int) -> Path:
    """Copy the generator just saved in ``out`` (weights + config, no training state) to ``out/epoch-NNNN/``:
    a snapshot that ``lasium-gen --generator`` and ``bench_fid.py`` load like any fitted model."""
    folder = out / f"epoch-{epochs:04d}"
    folder.mkdir(exist_ok=True)
    for name in (WEIGHTS_FILE, CONFIG_FILE):  # the config last: a folder with it is complete
        replace_atomically(folder / name, lambda tmp, name=name: shutil.copyfile(out / name, tmp))
    return folder


def train_epochs(
    config: FitConfig,
    out: Path,
    trainer: GANTrainer | VAETrainer,
    images: np.ndarray,
    data: ImageSet,
    device: torch.device,
    previous: dict[str, Any],
    start_epoch: int,
    step: int,
    train_seconds: float,
    command: str | None,
    progress: bool,
) -> FitResult:
    """Train epochs ``start_epoch`` … ``config.epochs - 1`` (``previous``: the resumed checkpoint's config)."""
    remove_stale_temporaries(out)  # what a checkpoint write cut by a kill left (its writer gone), here and in epoch-N/
    n = images.shape[0]
    steps_per_epoch = n // config.batch_size  # the last partial batch is dropped: static shapes, equal-size steps
    pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)  # (n, C, H, W) uint8
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    fixed_z = torch.randn(64, config.latent_dim, generator=torch_generator(config.seed, "fit", "fixed-latents"))
    fixed_idx = np.sort(numpy_rng(config.seed, "fit", "fixed-real").choice(n, size=min(32, n), replace=False))
    fixed_real = pixels[torch.from_numpy(fixed_idx).to(device)].float() / 255.0

    commands = list(previous.get("commands") or []) + [command or " ".join(["lasium-fit"] + sys.argv[1:])]
    loss_log = JsonLinesLog(
        out / LOSS_LOG, key="epoch", keep_until=start_epoch, sort_keys=False
    )  # epochs past the checkpoint are redone

    session_start = time.perf_counter()
    final_losses: dict[str, float] = dict(previous.get("final_losses") or {})
    ips = float(previous.get("images_per_second") or 0.0)
    stopped = False
    epoch = start_epoch
    trainer.train()
    runner = StepRunner(trainer, (config.batch_size,) + tuple(pixels.shape[1:]), device, config.cuda_graphs)

    def save_checkpoint(epochs_done: int, stopped: bool) -> None:
        config_json = checkpoint_config(
            config,
            trainer,
            data,
            n,
            device,
            epochs_done=epochs_done,
            steps_done=step,
            commands=commands,
            final_losses=final_losses,
            train_seconds=train_seconds,
            images_per_second=ips,
            stopped=stopped,
            init=previous.get("init_from"),
        )
        state_json = training_state(config, epochs_done=epochs_done, steps_done=step, train_seconds=train_seconds)
        save_training_checkpoint(out, trainer, config_json, state_json)
        if epochs_done in config.keep_epochs:
            keep_generator(out, epochs_done)

    if not previous.get("format") and start_epoch in config.keep_epochs:  # a new fit (not a resumed checkpoint)
        # where the curve of accuracy against epochs starts: the untrained generator, or the one --init-from names
        save_checkpoint(start_epoch, False)
    for epoch in range(start_epoch, config.epochs):
        perm = torch.randperm(n, generator=torch_generator(config.seed, "fit", "permutation", epoch)).to(device)
        noise = torch_generator(config.seed, "fit", "noise", epoch, device=device)
        sums = {name: torch.zeros((), device=device) for name in trainer.loss_names}
        t0 = time.perf_counter()
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            disable=not progress,
            unit="step",
        )
        for b in bar:
            losses = runner.run(pixels, perm[b * config.batch_size : (b + 1) * config.batch_size], noise)
            for name, value in losses.items():
                sums[name] += value
            if progress and (b % 25 == 0 or b == steps_per_epoch - 1):  # one device sync per 25 steps
                bar.set_postfix({k: f"{v.item() / (b + 1):.3f}" for k, v in sums.items()})
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        epoch_seconds = time.perf_counter() - t0
        bar.close()
        step += steps_per_epoch
        train_seconds += epoch_seconds
        ips = steps_per_epoch * config.batch_size / epoch_seconds
        final_losses = {k: float(v.item()) / steps_per_epoch for k, v in sums.items()}
        if not all(np.isfinite(v) for v in final_losses.values()):
            raise ConfigError(
                f"training diverged in epoch {epoch + 1} (losses {final_losses}); lower --lr or change --seed"
            )

        epoch_pictures(trainer, out, epoch + 1, fixed_z, fixed_real)
        elapsed = time.perf_counter() - session_start
        # Stop when another epoch would overrun the budget, so the run ends inside it.
        stopped = (
            config.max_minutes is not None
            and epoch + 1 < config.epochs
            and elapsed + epoch_seconds > 60.0 * config.max_minutes
        )
        save_checkpoint(epoch + 1, stopped)
        loss_log.write(loss_record(epoch + 1, step, final_losses, ips, epoch_seconds))
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}/{config.epochs}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in final_losses.items())
                + f", {ips:.0f} images/s"
            )
        if stopped:
            if progress:
                tqdm.write(
                    f"stopping after epoch {epoch + 1}: --max-minutes "
                    f"{config.max_minutes} would be exceeded by another epoch"
                )
            break
    loss_log.close()
    return FitResult(out, epoch + 1, step, final_losses, ips, train_seconds, stopped)
