"""``lasium-train``: meta-train MAML, first-order MAML or ProtoNets on task shards."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from lasium.cli_support import COUNT, OneLineCommand, user_errors
from lasium.errors import CheckpointError, ConfigError
from lasium.precision import PRECISIONS
from lasium.train.augment import preset_names
from lasium.train.backbone import BACKBONES
from lasium.train.checkpoint import read_configs
from lasium.train.config import TrainConfig
from lasium.train.distances import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE, DISTANCES
from lasium.train.lr_schedule import LR_SCHEDULES
from lasium.train.registry import ALGORITHMS
from lasium.train.shard_access import run_name

logger = logging.getLogger(__name__)

# CLI option name -> TrainConfig field (all the same but for the resume flag and progress)
FIELDS = (
    "shards",
    "out",
    "algo",
    "iterations",
    "meta_batch",
    "inner_steps",
    "inner_lr",
    "lr",
    "lr_schedule",
    "ema_decay",
    "backbone",
    "distance",
    "temperature",
    "precision",
    "augment",
    "compile",
    "workers",
    "loader_group",
    "shuffle_buffer",
    "skip_corrupt",
    "allow_partial",
    "val_every",
    "val_tasks",
    "val_ways",
    "val_dataset",
    "val_inner_steps",
    "data_root",
    "checkpoint_every",
    "checkpoint_minutes",
    "log_every",
    "device",
    "seed",
)


@click.command(cls=OneLineCommand, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--shards",
    multiple=True,
    metavar="SRC[:W]",
    help="Shard folder (a set, or a folder of sets: all of them), manifest.json, brace pattern or URL (file:, pipe:, "
    "http(s):); repeat for several sources. A trailing :W (a positive number) weights a source: tasks are drawn "
    "from the sources in those proportions (give every source a weight, or none: then all are pooled, each in "
    "proportion to its tasks).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Run folder [default: runs/<name>-<algo>, <name> = the --shards path below shards/ with '/' as '-' "
    "(shards/omniglot → omniglot, shards/omniglot/oc → omniglot-oc), else its last folder name; several --shards: "
    "joined with '+'].",
)
@click.option("--algo", type=click.Choice(list(ALGORITHMS)), default="maml", show_default=True)
@click.option(
    "--iterations", type=COUNT, default=10_000, show_default=True, help="Meta-training steps (meta-batches per rank)."
)
@click.option("--meta-batch", type=int, default=4, show_default=True, help="Tasks per step and rank.")
@click.option("--inner-steps", type=int, default=5, show_default=True, help="MAML inner SGD steps.")
@click.option("--inner-lr", type=float, default=0.4, show_default=True, help="MAML inner learning rate.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate (meta-parameters).")
@click.option(
    "--lr-schedule",
    type=click.Choice(list(LR_SCHEDULES)),
    default="constant",
    show_default=True,
    help="How --lr changes over the run: constant, or cosine (annealed to 0 at --iterations; a --resume with "
    "another --iterations stretches or shortens the rest of the curve). A new one is one entry of "
    "lasium.train.lr_schedule.LR_SCHEDULES.",
)
@click.option(
    "--ema-decay",
    type=float,
    default=0.0,
    show_default=True,
    metavar="D",
    help="Keep an exponential moving average of the weights, decay D per step (0 = off): validation, best/, "
    "last/ and lasium-eval use the average; the stepped weights stay in online.safetensors for --resume. The "
    "decay warms up as min(D, (1+t)/(10+t)) after t steps, so D 0.99 averages about the last 100 steps.",
)
@click.option(
    "--backbone",
    default="conv4",
    show_default=True,
    help=f"Feature extractor of the learner, by name ({', '.join(BACKBONES)}); recorded in every checkpoint. "
    "conv4 = 4 x (3x3 conv 64, batch norm on the task's own statistics, 2x2 max-pool, ReLU). A new one is one "
    "entry of lasium.train.backbone.BACKBONES.",
)
@click.option(
    "--distance",
    type=click.Choice(list(DISTANCES)),
    default=DEFAULT_DISTANCE,
    show_default=True,
    help="ProtoNets: how a query's features are compared with each prototype. squared-euclidean = the sum of the "
    "squared differences (Snell et al. 2017); mean-squared = their mean over the feature dimensions (the LASIUM "
    "authors' code): the same nearest prototype, a softmax D times softer in training. Refused for MAML.",
)
@click.option(
    "--temperature",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TEMPERATURE,
    show_default=True,
    metavar="T",
    help="ProtoNets: the logits are minus the distances / T, so T > 1 softens the softmax of the training loss and "
    "T < 1 sharpens it; the nearest prototype, so every accuracy at a given set of weights, is the same. "
    "--distance mean-squared is squared-euclidean at T = D (64 features for conv4 at 28x28). Refused for MAML.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="auto = bf16 autocast where the device computes bf16 natively (CUDA; CPUs with AVX512-BF16/AMX, "
    "about 2x faster there), else fp32. Batch norm and losses always run in fp32.",
)
@click.option(
    "--augment",
    type=click.Choice(preset_names()),
    default="auto",
    show_default=True,
    help="Augmentation of each task's query images (supports untouched unless the preset says so): none; "
    "shift5 = integer shift U[-5,5) px, the LASIUM reference code's 'small translation'; shift5-affine = shift5 "
    "+ rotation ±15°, scale 0.85-1.15, sub-pixel shift; umtra = pixels erased (p 0.5) + shift U[-6,6] px; others "
    "in lasium.train.augment. auto = shift5-affine for generated (LASIUM) tasks: queries that are near copies "
    "of the support teach no invariance (on Omniglot val, ProtoNets 72.5% without, 89.9% with shift5, 90.9% "
    "with shift5-affine, 5-way 1-shot; results/sweep.md); none for real-image, UMTRA and CACTUs tasks, for "
    "shards that record no task source (pipe: or URL lists without a manifest), and for mixtures that hold "
    "any: pass --augment for those. The kind is read from each set's manifest or sidecars.",
)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the meta-gradient (slow start, faster steps).")
@click.option(
    "--workers", type=int, default=2, show_default=True, help="DataLoader worker processes per rank (0 = main process)."
)
@click.option(
    "--loader-group",
    type=int,
    default=0,
    show_default=True,
    help="Meta-batches per DataLoader item (fewer, larger transfers); 0 = 8 on CUDA, 1 on CPU.",
)
@click.option(
    "--shuffle-buffer", type=int, default=None, help="Tasks in the shuffle buffer [default: ~256 MB, at most 1000]."
)
@click.option(
    "--skip-corrupt",
    is_flag=True,
    help="Warn about and skip shards that cannot be read or whose bytes differ from the manifest (size, sha256) "
    "instead of stopping; the run ends with a count of the shards and tasks skipped. Without it such a shard "
    "stops the run with one line naming it (exit 2). Every shard a manifest or sidecar vouches for is checked "
    "before its tasks are used.",
)
@click.option(
    "--allow-partial",
    is_flag=True,
    help="Train on a partial set: a set without manifest.json whose sidecars (or shard numbers) leave task "
    "ranges uncovered, e.g. what a disk-full lasium-gen leaves, is refused with the missing ranges unless given.",
)
@click.option("--val-every", type=int, default=500, show_default=True, help="Validate every N steps (0 = never).")
@click.option("--val-tasks", type=int, default=200, show_default=True, help="Validation episodes.")
@click.option(
    "--val-ways",
    type=int,
    default=0,
    show_default=True,
    help="N of the validation episodes (0 = the shards' N). Give the N you will test at when training wider, "
    "e.g. 20-way tasks for a 5-way benchmark: best/ is then chosen on 5-way episodes. ProtoNets only: "
    "MAML's head fixes N.",
)
@click.option(
    "--val-dataset",
    default="auto",
    show_default=True,
    help="omniglot, imagefolder:PATH or none; auto = omniglot for 28x28x1 shards, else none.",
)
@click.option(
    "--val-inner-steps", type=int, default=None, help="MAML inner steps at validation [default: --inner-steps]."
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Data root of the validation dataset [default: $LASIUM_DATA].",
)
@click.option(
    "--checkpoint-every",
    type=COUNT,
    default=1000,
    show_default=True,
    help="Keep a step-N/ checkpoint every N steps (0 = never).",
)
@click.option(
    "--checkpoint-minutes",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Also save autosave/ every M minutes (0 = never), so --resume after a kill loses at most that much "
    "training, even before the first step-N/; it is rewritten in place and removed when last/ is written.",
)
@click.option("--log-every", type=int, default=10, show_default=True, help="Write train metrics every N steps.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in --out from its latest checkpoint, exactly; "
    "options given again override the saved ones (e.g. a larger --iterations, or --shards where the set moved); "
    "another --lr, --lr-schedule, --ema-decay, --distance, --temperature, --seed, --augment, --meta-batch or inner "
    "loop is refused.",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@user_errors
def main(ctx: click.Context, resume: bool, quiet: bool, compile_: bool, **options: Any) -> None:
    """Meta-train a few-shot learner on task shards (from lasium-gen) and save it in --out.

    \b
    Examples:
      lasium-train --shards shards/omniglot            # every set under it (oc, ro, ...) as one mixture \
→ runs/omniglot-maml
      lasium-train --shards shards/omniglot/ro --algo protonets --meta-batch 32 --iterations 30k   # \
→ runs/omniglot-ro-protonets
      lasium-train --shards shards/omniglot/ro:0.5 --shards shards/omniglot/umtra:0.5 --out runs/ro-umtra  # \
a weighted mixture
      lasium-train --shards 'pipe:aws s3 cp s3://bucket/ro/ro-{000000..000099}.tar -' --val-dataset none --out runs/s3
      lasium-train --out runs/omniglot-maml --resume --iterations 60000
      torchrun --nproc-per-node 8 $(which lasium-train) --shards shards/omniglot/ro --out runs/ro-maml-8gpu

    \b
    The run folder gets metrics.jsonl (one record per log step; TensorBoard too when installed),
    checkpoints step-NNNNNNN/, best/ (best validation accuracy), last/ and, while the run goes on,
    autosave/ (every --checkpoint-minutes), each with model.safetensors, config.json, optimizer.safetensors
    and state.json; lasium-eval reads best/ (else last/). --resume continues from the newest of last/,
    autosave/ and step-N/, after removing what a checkpoint write cut by a kill left behind.
    Validation uses real val-split episodes (the shards' N unless --val-ways, their K_tr, 15 queries); with the
    default --val-dataset auto, 28x28x1 shards are validated on Omniglot when it is present (--data-root or
    $LASIUM_DATA; else one warning and no validation: 'lasium-data download omniglot' enables it); an explicit
    --val-dataset omniglot requires it. A --out that holds another run is refused, never overwritten.
    """
    from lasium.runtime import RankInfo, keep_freed_memory
    from lasium.train.run_folder import latest_checkpoint, tidy_run_folder
    from lasium.train.trainer import train

    options["compile"] = compile_
    options["shards"] = list(options["shards"])
    if options["out"] is None:
        if not options["shards"]:
            raise ConfigError(
                "give --shards (and --out, or the default runs/<name>-<algo>); with --resume, the run's --out"
            )
        options["out"] = str(Path("runs") / f"{run_name(options['shards'])}-{options['algo']}")
    if resume:
        if RankInfo.from_env().is_main:
            tidy_run_folder(Path(options["out"]))  # a checkpoint write cut by a kill: its temporaries, or a swap
        latest = latest_checkpoint(Path(options["out"]))
        if latest is None:
            raise CheckpointError(
                f"nothing to resume in {options['out']}: no last/, autosave/ or step-N/ checkpoint; "
                "start without --resume"
            )
        _, saved = read_configs(latest)
        given = {k for k in FIELDS if k != "compile" and ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE}
        if compile_:
            given.add("compile")
        merged = saved.to_dict()
        merged.update({k: options[k] for k in given if not (k == "shards" and not options[k])})
        if "shards" not in given or not options["shards"]:
            piped = [s for s in merged["shards"] if str(s).startswith("pipe:")]
            if piped:
                raise ConfigError(
                    f"the run's config names a pipe: source ({piped[0]!r}); a pipe: command runs only when you type "
                    "it: pass the run's --shards again to resume"
                )
        config = TrainConfig.from_dict(merged)
        if config.lr_schedule != "constant" and config.iterations != saved.iterations:
            logger.warning(
                "--lr-schedule %s follows --iterations: resuming with %d instead of %d redraws the rest of its curve",
                config.lr_schedule,
                config.iterations,
                saved.iterations,
            )
    else:
        config = TrainConfig(**{k: options[k] for k in FIELDS})
    keep_freed_memory()  # reuse each step's activation buffers for the next (no page faults; 84-px MAML: sys 6-7 → 4 s)
    result = train(config, resume=resume, progress=not quiet)
    summary = (
        f"done: step {result.step}, train loss {result.train.get('loss', float('nan')):.4f} "
        f"acc {result.train.get('accuracy', float('nan')):.4f}"
    )
    if result.best_val_accuracy is not None:
        summary += f", best val acc {result.best_val_accuracy:.4f}"
    if result.out and (result.out / "last").exists():
        click.echo(f"{summary}; checkpoints in {result.out}", err=True)


if __name__ == "__main__":
    main()
