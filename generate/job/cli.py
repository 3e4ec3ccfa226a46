"""``lasium-gen``: turn a generator's latent space (LASIUM) or unlabeled images (UMTRA, CACTUs) into few-shot
tasks, written as task shards."""

from __future__ import annotations

import click

from lasium.cli_support import COUNT, OneLineCommand, user_errors
from lasium.generate.synthesis.presets import preset_table  # no torch: writer processes re-import this module

# Nothing heavy is imported at module level: writer processes are spawned and re-import this module.


def _echo(message: str) -> None:
    click.echo(message, err=True)


def _shard_range(shard_range: str | None, old_spelling: str | None) -> str | None:
    """--shard-range, or the deprecated --shards (kept for one release: it means shard *sources* in lasium-train)."""
    if old_spelling is None:
        return shard_range
    if shard_range is not None:
        from lasium.errors import ConfigError

        raise ConfigError("give --shard-range only (--shards is its deprecated spelling)")
    _echo(
        "warning: lasium-gen --shards A:B is deprecated and will be removed in the next release; use --shard-range A:B"
    )
    return old_spelling


@click.command(
    cls=OneLineCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Strategy parameters (Omniglot; --preset picks the rows, not a learner): the LASIUM reference values,
"""
    + "\n".join(preset_table())
    + """
Anchor distance: epsilon = 246.09375 * D / 128 by default (D = latent size; 246.09375 for D = 128).

\b
Other task sources (--source; same shard format, same trainer):
  real    episodes from a labeled split (--dataset, --split): the supervised upper bound
  umtra   UMTRA (Khodadadeh et al., NeurIPS 2019): N unlabeled train images per task, each its own
          class, without replacement within an epoch; support = the image (--shots 1), queries =
          copies with each pixel set to the background with p = --umtra-erase (0.5), then shifted
          by integers dx, dy in [-S, S], S = --umtra-shift (6). Labels are never read: a flat
          folder of images works (--dataset imagefolder:PATH).
  cactus  CACTUs (Hsu, Levine & Finn, ICLR 2019): embed every unlabeled train image (--embedding:
          the bundled VAE's posterior mean by default, pixels, or an (M, d) .npy in image order),
          k-means (scikit-learn, k-means++) with k = --clusters (500) for P = --partitions (100)
          partitions, partition 0 on z, the others on z * w, w ~ U[0,1)^d each; clusters with
          fewer than --min-cluster-size (K_tr + K_val) images are dropped. A task: a random
          partition, N of its clusters, K_tr + K_val images of each. Partitions are cached under
          $LASIUM_CACHE/cactus. Needs: pip install 'lasium[cactus]'.

\b
Determinism: a task depends only on (config, --seed, its shard) and the kind of device; workers,
GPUs and --shard-range never change the bytes. Rerunning the same command resumes (complete shards are
kept); a different config in the same --out is refused unless --overwrite.
""",
)
@click.option(
    "--strategy", metavar="n|ro|oc", help="LASIUM sampling: n (noise), ro (random out-of-class), oc (other class)."
)
@click.option("--n-tasks", "num_tasks", type=COUNT, required=True, help="Number of tasks: 1000000, 1_000_000 or 1e6.")
@click.option(
    "--generator",
    default="omniglot-gan",
    show_default=True,
    help="Bundled name (omniglot-gan, omniglot-vae), lasium-fit checkpoint folder, TorchScript file or "
    "package.module:factory.",
)
@click.option("--latent-dim", type=int, help="Latent size of an external generator (TorchScript / factory).")
@click.option(
    "--output-range",
    metavar="[0,1]|[-1,1]",
    help='Value range of an external generator\'s images: "[-1,1]" for tanh outputs (mapped to [0, 1]) '
    "[default: the module's output_range attribute, else [0,1]]; checked on probe latents at load time.",
)
@click.option("--ways", type=int, default=5, show_default=True, help="N: classes per task.")
@click.option("--shots", type=int, default=1, show_default=True, help="K_tr: support images per class.")
@click.option("--queries", type=int, default=5, show_default=True, help="K_val: query images per class.")
@click.option(
    "--preset",
    type=click.Choice(["maml", "protonets"]),
    default="maml",
    show_default=True,
    help="Which reference sigma/alpha values to use: those the paper tuned for tasks meant for this "
    "meta-learner (table below). It picks strategy parameters only, not a learner; the tasks suit any learner.",
)
@click.option("--sigma", type=float, help="LASIUM-N noise scale (overrides the preset).")
@click.option("--alpha", type=float, help="LASIUM-RO / -OC interpolation fraction (overrides the preset).")
@click.option("--epsilon", type=float, help="Minimum squared L2 distance between anchors (default 246.09375·D/128).")
@click.option(
    "--format",
    "container",
    type=click.Choice(["wds", "hdf5"]),
    default="wds",
    show_default=True,
    help="Shard container: WebDataset tar or HDF5.",
)
@click.option(
    "--compression",
    type=click.Choice(["gzip", "none"]),
    default=None,
    help="gzip (level 1): wds shards become <name>-NNNNNN.tar.gz (a third of the bytes, for sets you publish), hdf5 "
    "datasets use the gzip filter; none: plain .tar / unfiltered .h5 [default: none for wds, gzip for hdf5].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder [default: shards/<dataset>/<strategy>, <dataset> = what the generator was fitted on "
    "(bundled and lasium-fit generators; an external one: its name), e.g. shards/omniglot/oc; --source real: "
    "shards/<dataset>/real-<split>].",
)
@click.option(
    "--tasks-per-shard",
    type=COUNT,
    default=1000,
    show_default=True,
    help="Tasks per shard file (the unit of work and resume).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--save-latents", is_flag=True, help="Also store each image's latent (float16).")
@click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:I (under torchrun: cuda:LOCAL_RANK)."
)
@click.option(
    "--shard-range",
    "shard_range",
    metavar="A:B",
    help="Only shards A … B-1 (array jobs); then run 'lasium-shards index OUT' at the end.",
)
@click.option("--shards", "old_shard_range", metavar="A:B", hidden=True, help="Deprecated spelling of --shard-range.")
@click.option("--workers", type=int, help="Writer processes [default: min(8, CPUs-1)]; 0 writes in the main process.")
@click.option(
    "--compile",
    "compile_",
    is_flag=True,
    help="torch.compile the generator's network (faster on GPUs after a warm-up).",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16"]),
    default="auto",
    show_default=True,
    help="Decoder numerics: auto = bf16 autocast where the device computes bf16 natively (CUDA; CPUs with "
    "AVX512-BF16/AMX, ~2x faster there), else fp32; fp32 gives the same bytes on every CPU.",
)
@click.option("--overwrite", is_flag=True, help="Remove a different shard set already in --out first.")
@click.option(
    "--verify-existing", is_flag=True, help="On resume, check existing shards' sha256 (default: size and sidecar)."
)
@click.option(
    "--source",
    type=click.Choice(["generator", "real", "umtra", "cactus"]),
    default="generator",
    show_default=True,
    help="generator: LASIUM synthesis; real: episodes from a labeled split (supervised upper bound); "
    "umtra, cactus: UMTRA or CACTUs tasks from unlabeled images (see below).",
)
@click.option(
    "--dataset",
    default="omniglot",
    show_default=True,
    help="Images of real, UMTRA and CACTUs tasks and of VAE anchors: omniglot or imagefolder:PATH.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "val", "test"]),
    default="train",
    show_default=True,
    help="Split for --source real.",
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    help="Dataset folder [default: $LASIUM_DATA or ~/.cache/lasium/data].",
)
@click.option(
    "--name", help="Shard-set name in file names [default: the --out folder name; without --out, <dataset>-<strategy>]."
)
@click.option(
    "--decode-tasks",
    type=int,
    default=250,
    show_default=True,
    help="Tasks per generator call (fixed shape, tail padded; part of the config since it fixes the kernels).",
)
@click.option(
    "--umtra-erase",
    type=float,
    default=0.5,
    show_default=True,
    help="UMTRA: probability that a query pixel is set to the background (ink only disappears).",
)
@click.option(
    "--umtra-shift", type=int, default=6, show_default=True, help="UMTRA: query shifts dx, dy are integers in [-S, S]."
)
@click.option(
    "--embedding",
    default="omniglot-vae",
    show_default=True,
    help="CACTUs: a VAE (bundled name or lasium-fit folder; its posterior mean), pixels, or PATH.npy "
    "(M x d, image order).",
)
@click.option("--clusters", type=int, default=500, show_default=True, help="CACTUs: k, clusters per k-means partition.")
@click.option("--partitions", type=int, default=100, show_default=True, help="CACTUs: P, k-means partitions.")
@click.option(
    "--scaling/--no-scaling",
    default=True,
    show_default=True,
    help="CACTUs: partitions after the first cluster z * w, w ~ U[0,1)^d (off: all cluster z).",
)
@click.option("--min-cluster-size", type=int, help="CACTUs: drop smaller clusters [default: K_tr + K_val].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def main(
    strategy,
    num_tasks,
    generator,
    latent_dim,
    output_range,
    ways,
    shots,
    queries,
    preset,
    sigma,
    alpha,
    epsilon,
    container,
    compression,
    out,
    tasks_per_shard,
    seed,
    save_latents,
    device,
    shard_range,
    old_shard_range,
    workers,
    compile_,
    precision,
    overwrite,
    verify_existing,
    source,
    dataset,
    split,
    data_root,
    name,
    decode_tasks,
    umtra_erase,
    umtra_shift,
    embedding,
    clusters,
    partitions,
    scaling,
    min_cluster_size,
    quiet,
) -> None:
    """Synthesize N-way few-shot tasks with LASIUM (Khodadadeh et al., ICLR 2021) and write task shards.

    Anchors (one latent per class, pairwise farther apart than epsilon) are drawn on the device by
    batched rejection; each class gets K_tr + K_val - 1 more latents by the chosen strategy; all are
    decoded, support = the first K_tr images of each class, query = the last K_val.

    \b
    Examples:
      lasium-gen --strategy oc --n-tasks 1e6                      # bundled Omniglot GAN → shards/omniglot/oc
      lasium-gen --strategy ro --n-tasks 1e6                      #                       → shards/omniglot/ro
      lasium-gen --strategy oc --n-tasks 200_000 --generator runs/gan --format hdf5 --out shards/oc
      lasium-gen --strategy ro --n-tasks 1e6 --compression gzip            # .tar.gz shards to publish
      lasium-gen --strategy n --n-tasks 1e5 --generator omniglot-vae --preset protonets
      lasium-gen --source real --dataset omniglot --split train --n-tasks 1e5   # → shards/omniglot/real-train
      lasium-gen --source umtra --n-tasks 1e5                      # UMTRA tasks → shards/omniglot/umtra
      lasium-gen --source cactus --n-tasks 1e5                     # CACTUs, bundled VAE embedding \
→ shards/omniglot/cactus
      torchrun --nproc-per-node 8 $(which lasium-gen) --strategy ro --n-tasks 1e7
      lasium-gen --strategy ro --n-tasks 1e7 --shard-range 0:2500  # one part of an array job

    Afterwards: lasium-shards verify OUT, lasium-shards preview OUT, and lasium-train --shards OUT, or
    lasium-train --shards shards/omniglot to train on every set under it as one mixture.
    """
    from lasium.generate.job.config import GenerationConfig
    from lasium.generate.job.job import GenerationJob

    shard_range = _shard_range(shard_range, old_shard_range)
    config = GenerationConfig(
        num_tasks=num_tasks,
        strategy=strategy if source == "generator" else None,
        source=source,
        generator=generator,
        latent_dim=latent_dim,
        output_range=output_range,
        dataset=dataset,
        split=split,
        data_root=data_root,
        ways=ways,
        shots=shots,
        queries=queries,
        preset=preset,
        sigma=sigma,
        alpha=alpha,
        epsilon=epsilon,
        container=container,
        compression=compression,
        out=out,
        name=name,
        tasks_per_shard=tasks_per_shard,
        seed=seed,
        save_latents=save_latents,
        device=device,
        shard_range=shard_range,
        workers=workers,
        compile=compile_,
        precision=precision,
        overwrite=overwrite,
        verify_existing=verify_existing,
        decode_tasks=decode_tasks,
        progress=not quiet,
        umtra_erase=umtra_erase,
        umtra_shift=umtra_shift,
        embedding=embedding,
        clusters=clusters,
        partitions=partitions,
        scaling=scaling,
        min_cluster_size=min_cluster_size,
    )
    job = GenerationJob(config, log=_echo)
    result = job.run()
    if job.rank.world_size > 1 and job.rank.rank != 0:
        _echo(f"rank {job.rank.rank}: {result.summary()}")
        return
    _echo(result.summary())
    if result.manifest_written:
        _echo(f"manifest: {result.out_dir / 'manifest.json'}")
        _echo(f"look at some tasks: lasium-shards preview {result.out_dir}")


if __name__ == "__main__":  # pragma: no cover
    main()
