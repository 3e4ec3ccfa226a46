"""``lasium-fit``: train a GAN or VAE on the unlabeled train split.

A thin layer over :mod:`lasium.generate.models.fit`.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import click

from lasium.cli_support import COUNT, OneLineCommand, user_errors
from lasium.errors import ConfigError

from .fit import fit
from .fit_config import FitConfig, resume_config


@click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--model", type=str, default=None, help="gan (LASIUM GAN with the MSGAN mode-seeking term) or vae.")
@click.option(
    "--dataset",
    type=str,
    default=None,
    help="omniglot or imagefolder:PATH; only its train split is used, without labels.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Checkpoint folder to write (or to continue with --resume).",
)
@click.option(
    "--epochs", type=int, default=None, help="Total epochs to train (default 20; with --resume: the new total)."
)
@click.option("--batch-size", type=int, default=None, help="Images per step (default 64).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (default 3e-4 GAN, 1e-3 VAE).")
@click.option(
    "--latent-dim",
    type=int,
    default=None,
    help="Latent size (default 128 GAN, 20 VAE, 512 for the paper's 84×84×3 VAE).",
)
@click.option("--limit", type=COUNT, default=None, help="Train on the first N images only (smoke runs).")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="auto (default): cuda when available."
)
@click.option("--seed", type=int, default=None, help="Seed of every random stream (default 0).")
@click.option(
    "--max-minutes", type=float, default=None, help="Wall-clock budget: stop cleanly after the last epoch that fits."
)
@click.option(
    "--ms-weight", type=float, default=None, help="Weight of the mode-seeking term (GAN, default 1.0; 0 disables it)."
)
@click.option(
    "--image-size",
    type=int,
    default=None,
    help="Resize images to this side (default: the dataset's own, 28 for Omniglot and image folders). Colour "
    "images of 64-128 px get the DCGAN family (--model gan), 84 px the paper's 84×84×3 VAE (--model vae).",
)
@click.option(
    "--data-root", type=str, default=None, help="Where datasets live (default $LASIUM_DATA, else ~/.cache/lasium/data)."
)
@click.option(
    "--cuda-graphs/--no-cuda-graphs", default=None, help="Replay each step as a CUDA graph (default on; CUDA only)."
)
@click.option(
    "--keep-epochs",
    type=str,
    default=None,
    help="Also keep the generator after these epochs (comma-separated, e.g. 0,10,50,200,400; 0 = untrained) in "
    "<out>/epoch-NNNN/, each loadable by lasium-gen --generator: accuracy against generator training "
    "(lasium-repro epoch-curve).",
)
@click.option(
    "--resume", is_flag=True, help="Continue the checkpoint in --out (optimizer state included) up to --epochs."
)
@click.option(
    "--init-from",
    default=None,
    help="Start from this generator (a bundled name such as omniglot-vae, or a lasium-fit folder): its weights and "
    "epoch count, so --epochs is the total and --keep-epochs may include its epochs. The optimizer starts fresh, and "
    "so does what it does not hold (a GAN's discriminator: bundled GANs keep the generator only). --model and "
    "--dataset default to its own.",
)
@click.option("--quiet", is_flag=True, help="No progress bars or per-epoch lines.")
@user_errors
def main(
    model: str | None,
    dataset: str | None,
    out_dir: Path,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    latent_dim: int | None,
    limit: int | None,
    device: str | None,
    seed: int | None,
    max_minutes: float | None,
    ms_weight: float | None,
    image_size: int | None,
    data_root: str | None,
    cuda_graphs: bool | None,
    keep_epochs: str | None,
    resume: bool,
    init_from: str | None,
    quiet: bool,
) -> None:
    """Fit a generative model on unlabeled images, the first stage of LASIUM.

    Writes to --out: model.safetensors + config.json (the generator lasium-gen loads), training state
    for --resume, losses.jsonl, and a sample grid per epoch under samples/ (VAE: also
    reconstructions/). Nothing is pickled.

    \b
    Examples:
      lasium-fit --model gan --dataset omniglot --out runs/gan
      lasium-fit --model vae --dataset omniglot --epochs 50 --out runs/vae
      lasium-fit --model gan --dataset omniglot --limit 500 --epochs 1 --device cpu --out /tmp/smoke
      lasium-fit --model gan --dataset imagefolder:~/pics --image-size 64 --max-minutes 30 --out runs/pics
      lasium-fit --out runs/gan --resume --epochs 40
      lasium-fit --model gan --dataset omniglot --epochs 500 --keep-epochs 10,50,200,400 --out runs/gan500
      lasium-fit --init-from omniglot-vae --epochs 100 --keep-epochs 45,60,80,100 --out runs/vae100
    """
    options: dict[str, Any] = dict(
        model=model,
        dataset=dataset,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        latent_dim=latent_dim,
        limit=limit,
        device=device,
        seed=seed,
        max_minutes=max_minutes,
        ms_weight=ms_weight,
        image_size=image_size,
        data_root=data_root,
        cuda_graphs=cuda_graphs,
        keep_epochs=parse_epochs(keep_epochs) if keep_epochs is not None else None,
    )
    if resume:
        if init_from is not None:
            raise ConfigError("--init-from starts a new fit; --resume continues the one in --out (drop one of them)")
        config = resume_config(out_dir, options)
    else:
        if init_from is not None:
            from .fit import init_source

            source = init_source(init_from)[1]
            options.update(init_from=init_from)
            model = options["model"] = model or source.get("kind")
            dataset = options["dataset"] = dataset or (source.get("data") or {}).get("dataset")
        if model is None or dataset is None:
            raise ConfigError("--model and --dataset are required (or --resume to continue a checkpoint)")
        config = FitConfig(**{k: v for k, v in options.items() if v is not None})
    command = " ".join(shlex.quote(a) for a in ["lasium-fit"] + sys.argv[1:])
    from lasium.runtime import keep_freed_memory

    # reuse each step's activation buffers (the GAN's 28×28 layers: 26 MB each at batch 64): benchmarks/bench_fit.py,
    # one core of a 2-core AMD EPYC, sys 8.3-8.5 s -> 0.6-0.9 s and wall 60 s -> 48-52 s per run
    keep_freed_memory()
    result = fit(config, out_dir, resume=resume, command=command, progress=not quiet)
    note = " (stopped by --max-minutes)" if result.stopped_by_time_budget else ""
    losses = ", ".join(f"{k} {v:.4f}" for k, v in result.final_losses.items())
    click.echo(
        f"wrote {result.out_dir}: {result.epochs_done} epochs{note}, {losses}, "
        f"{result.images_per_second:.0f} images/s, {result.train_seconds:.1f} s training"
    )


def parse_epochs(text: str) -> tuple[int, ...]:
    """``"10,50,200"`` → (10, 50, 200); anything else is a one-line error."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--keep-epochs takes comma-separated epochs such as 10,50,200, got {text!r}") from None


if __name__ == "__main__":  # pragma: no cover
    main()
