"""``lasium-gen``: turn a generator's latent space (LASIUM) or unlabeled images (UMTRA, CACTUs) into few-shot
tasks, written as task shards."""

from __future__ import annotations

import dataclasses
from typing import Any

import click
from click.core import ParameterSource

from lasium.cli_support import COUNT, OneLineCommand, user_errors
from lasium.generate.synthesis.presets import parameter_table
from lasium.shards.codecs import IMAGE_CODECS
from lasium.shards.format import COMPRESSIONS, CONTAINERS, GENERATOR_SOURCE

# Nothing heavy is imported at module level: writer processes may be spawned, and they re-import this module. The
# task sources (and torch with them) are imported when the command runs: SourceCommand.get_params.


def _echo(message: str) -> None:
    click.echo(message, err=True)


def source_params() -> list[click.Parameter]:
    """``--source`` and every registered source's own options, from their options dataclasses (field metadata made
    by :func:`lasium.generate.sources.base.cli_option`); an option several sources declare appears once."""
    from lasium.generate.sources.base import CLI_METADATA, option_flag
    from lasium.generate.sources.registry import TASK_SOURCES

    summaries = "; ".join(f"{name}: {kind.summary}" for name, kind in TASK_SOURCES.items())
    params: list[click.Parameter] = [
        click.Option(
            ["--source"],
            type=click.Choice(list(TASK_SOURCES)),
            default=GENERATOR_SOURCE,
            show_default=True,
            help=f"Where the tasks come from ({summaries}). Each source takes only its own options.",
        )
    ]
    seen: dict[str, Any] = {}
    owners: dict[str, list[str]] = {}
    for name, kind in TASK_SOURCES.items():
        for field in kind.cli_fields():
            owners.setdefault(field.name, []).append(name)
    for name, kind in TASK_SOURCES.items():
        for field in kind.cli_fields():
            meta = field.metadata[CLI_METADATA]
            if field.name in seen:
                if seen[field.name] != meta:
                    raise TypeError(f"source {name!r} declares option {field.name!r} unlike another source")
                continue
            seen[field.name] = meta
            extra = dict(meta.click)
            if meta.choices:
                extra["type"] = click.Choice(meta.choices)
            params.append(
                click.Option(
                    [meta.flag or option_flag(field), field.name],
                    default=None,
                    help=f"{meta.help}{_default_text(field, meta)} [--source {', '.join(owners[field.name])}]",
                    **extra,
                )
            )
    return params


def _default_text(field: dataclasses.Field[Any], meta: Any) -> str:
    default = field.default
    if "[default:" in meta.help or default is dataclasses.MISSING or default is None:
        return ""
    if isinstance(default, bool):
        if meta.flag and "/" in meta.flag:
            on, off = meta.flag.split("/")
            return f" [default: {on if default else off}]"
        return ""
    return f" [default: {default}]"


class SourceCommand(OneLineCommand):
    """``lasium-gen``: the options every source shares (declared below) and, built when the command runs,
    ``--source`` with each registered source's own options, so a new source needs no change here."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        help_option = self.get_help_option(ctx)
        shared = [p for p in params if p is not help_option]
        taken = {p.name for p in shared}
        own = source_params()
        clash = sorted(p.name for p in own if p.name in taken)
        if clash:
            raise TypeError(f"task-source options {clash} clash with lasium-gen's shared options")
        return [*shared, *own, *([help_option] if help_option is not None else [])]


@click.command(
    cls=SourceCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="""\b
Strategy parameters (Omniglot; --tuned-for picks the rows, not a learner): the LASIUM reference values,
"""
    + "\n".join(parameter_table())
    + """
Anchor distance: epsilon = 246.09375 * D / 128 by default (D = latent size; 246.09375 for D = 128).

\b
Other task sources (--source; same shard format, same trainer):
  real    episodes from a labeled split (--dataset, --split): the supervised upper bound
  umtra   UMTRA (Khodadadeh et al., NeurIPS 2019): N unlabeled train images per task, each its own
          class, without replacement within an epoch; support = the image (--shots 1), queries =
          copies with each pixel set to the background with p = --umtra-erase, then shifted
          by integers dx, dy in [-S, S], S = --umtra-shift. Labels are never read: a flat
          folder of images works (--dataset imagefolder:PATH).
  cactus  CACTUs (Hsu, Levine & Finn, ICLR 2019): embed every unlabeled train image (--embedding:
          the bundled VAE's posterior mean by default, pixels, or an (M, d) .npy in image order),
          k-means (scikit-learn, k-means++) with k = --clusters for P = --partitions partitions,
          partition 0 on z, the others on z * w, w ~ U[0,1)^d each; clusters with fewer than
          --min-cluster-size (K_tr + K_val) images are dropped. A task: a random
          partition, N of its clusters, K_tr + K_val images of each. Partitions are cached under
          $LASIUM_CACHE/cactus. Needs: pip install 'lasium[cactus]'.

\b
Determinism: a task depends only on (config, --seed, its shard) and the kind of device; workers,
GPUs and --shard-range never change the bytes. Rerunning the same command resumes (complete shards are
kept); a different config in the same --out is refused unless --overwrite.
""",
)
@click.option("--n-tasks", "num_tasks", type=COUNT, required=True, help="Number of tasks: 1000000, 1_000_000 or 1e6.")
@click.option("--ways", type=int, default=5, show_default=True, help="N: classes per task.")
@click.option("--shots", type=int, default=1, show_default=True, help="K_tr: support images per class.")
@click.option("--queries", type=int, default=5, show_default=True, help="K_val: query images per class.")
@click.option(
    "--format",
    "container",
    type=click.Choice(list(CONTAINERS)),
    default="wds",
    show_default=True,
    help="Shard container: WebDataset tar or HDF5.",
)
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default=None,
    help="gzip (level 6): wds shards become <name>-NNNNNN.tar.gz (about 35% of the bytes at 28x28x1, for sets you "
    "publish), hdf5 datasets use the gzip filter (level 1); none: plain .tar / unfiltered .h5 "
    "[default: none for wds, gzip for hdf5].",
)
@click.option(
    "--image-codec",
    type=click.Choice(list(IMAGE_CODECS)),
    default=None,
    help="How wds tasks store their images: npy (raw arrays), png or webp (lossless image members a stock "
    "webdataset decoder opens), jpeg (LOSSY, quality 90; recorded in the manifest and on the set card) "
    "[default: webp for colour images of 64 px or more (about half the bytes of npy at 84x84x3), npy below].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Output folder [default: shards/<dataset>/<strategy>, <dataset> = what the generator was fitted on "
    "(bundled and lasium-fit generators; an external one: its name), e.g. shards/omniglot/oc; --source real: "
    "shards/<dataset>/real-<split>; other sources: shards/<dataset>/<source>].",
)
@click.option(
    "--tasks-per-shard",
    type=COUNT,
    default=1000,
    show_default=True,
    help="Tasks per shard file (the unit of work and resume).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--device",
    default="auto",
    show_default=True,
    help="auto, cpu, cuda or cuda:I (under torchrun: cuda:LOCAL_RANK); --source real works on the CPU.",
)
@click.option(
    "--shard-range",
    "shard_range",
    metavar="A:B",
    help="Only shards A … B-1 (array jobs); then run 'lasium-shards index OUT' at the end.",
)
@click.option("--workers", type=int, help="Writer processes [default: min(8, CPUs-1)]; 0 writes in the main process.")
@click.option("--overwrite", is_flag=True, help="Remove a different shard set already in --out first.")
@click.option(
    "--verify-existing", is_flag=True, help="On resume, check existing shards' sha256 (default: size and sidecar)."
)
@click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    help="Dataset folder [default: $LASIUM_DATA or ~/.cache/lasium/data].",
)
@click.option(
    "--name", help="Shard-set name in file names [default: the --out folder name; without --out, <dataset>-<strategy>]."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@user_errors
def main(num_tasks: int, source: str, quiet: bool, **values: Any) -> None:
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
      lasium-gen --strategy n --n-tasks 1e5 --generator omniglot-vae --tuned-for protonets
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

    ctx = click.get_current_context()
    shared = {f.name for f in dataclasses.fields(GenerationConfig)}
    # Shared options always (their defaults are the config's); a source's own options only when given, so one that
    # the chosen source does not have is refused by name.
    given = {
        name: value
        for name, value in values.items()
        if name in shared or ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    }
    config = GenerationConfig.build(source, num_tasks=num_tasks, progress=not quiet, **given)
    from lasium.runtime import keep_freed_memory

    # reuse each decode batch's activation buffers (GAN, 50 tasks: ~600 MB) instead of page-faulting fresh ones: 300
    # LASIUM-N tasks on one core of a 2-core AMD EPYC, sys 8.6-8.7 s -> 1.9-2.0 s, wall 55-57 s -> 46 s, same shards
    keep_freed_memory()
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
