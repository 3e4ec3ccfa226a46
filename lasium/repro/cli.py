"""``lasium-repro``: reproduce the LASIUM paper's Omniglot table and its side experiments. A thin layer over
:mod:`lasium.repro` (each subcommand fills an options dataclass and calls one library function)."""

from __future__ import annotations

from pathlib import Path

import click

from lasium.cli_support import OneLineGroup, user_errors

from .cli_options import CONTEXT, names, numbers
from .sizes import SIZES


@click.group(cls=OneLineGroup, context_settings=CONTEXT)
def main() -> None:
    """Reproduce LASIUM (Khodadadeh et al., ICLR 2021) on Omniglot with the real lasium commands.

    Every stage is the console command a user would type (lasium-fit, lasium-gen, lasium-shards, lasium-train,
    lasium-eval), run as a subprocess with its exact command line, log, status and wall time recorded in a work
    folder; results pages (markdown, JSON and charts) are written after every row or point, so an interrupted run
    still leaves one, and --resume continues where it stopped, across sessions.

    \b
    Start here:
      lasium-repro omniglot --sizes quick --work /tmp/rq --results /tmp/rq   # smoke run, minutes on a CPU
      lasium-repro omniglot                          # GPU sizes, bundled GAN (~6 min on one H100/H200)
      lasium-repro omniglot --sizes cpu --plan       # the reference budgets: rows left and their hours
      lasium-repro omniglot --sizes cpu --resume     # ... run across sessions on a CPU
      lasium-repro page results/omniglot.json        # redraw a page from its stored figures

    Charts need matplotlib: pip install 'lasium[repro]'.
    """


def _register_side_experiments() -> None:
    from .cli_curves import epoch_curve, step_curve
    from .cli_sweep import sweep

    main.add_command(sweep)
    main.add_command(epoch_curve)
    main.add_command(step_curve)


_register_side_experiments()


# --- omniglot -------------------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option(
    "--sizes",
    type=click.Choice(sorted(SIZES)),
    default="gpu",
    show_default=True,
    help="Stage sizes: gpu (~6 min on one H100/H200), cpu (the authors' budgets with distinct tasks, every row on "
    "1,000 test tasks: hours per row on 2 cores, use --resume), cpu-reduced (the earlier reduced configuration, "
    "~1.5 h), quick (smoke run, minutes).",
)
@click.option("--ablation", is_flag=True, help="Also LASIUM-N + ProtoNets with one ingredient added at a time.")
@click.option(
    "--only",
    default=None,
    metavar="ROWS",
    help="Comma-separated row keys or families (lasium, supervised, scratch, other, vae, ablation) to run [all, in "
    "priority order; the vae rows only when named]. --plan lists the keys.",
)
@click.option(
    "--optional/--no-optional",
    default=None,
    help="Run the optional rows (MAML n/oc, supervised MAML, UMTRA, CACTUs, the mixture, 4x MAML) [yes with --sizes "
    "gpu or cpu; rows named by --only run unless --no-optional].",
)
@click.option("--fit", is_flag=True, help="Fit a fresh GAN with lasium-fit first (budget: --fit-minutes).")
@click.option("--fit-minutes", type=float, default=None, help="Wall-clock budget of --fit [the sizes'].")
@click.option(
    "--generator", default="omniglot-gan", show_default=True, help="Generator of lasium-gen (bundled name or folder)."
)
@click.option(
    "--vae",
    default="omniglot-vae",
    show_default=True,
    help="VAE of the LASIUM-VAE rows (--only vae): a bundled name or a lasium-fit folder, e.g. a refitted run.",
)
@click.option("--maml-algo", type=click.Choice(["maml", "fomaml"]), default=None, help="MAML variant [maml].")
@click.option(
    "--budget-seconds", type=float, default=None, help="Start no row that would not fit; kill stages at the deadline."
)
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("runs/repro-omniglot"),
    show_default=True,
    help="Shards, runs, evals and logs (what --resume continues from).",
)
@click.option(
    "--results",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("results"),
    show_default=True,
    help="Where omniglot.md, omniglot.json and the charts go.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda (passed to every stage).")
@click.option("--data-root", default=None, help="Dataset root of every stage [$LASIUM_DATA].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of generation, training, scratch init.")
@click.option("--eval-seed", type=int, default=0, show_default=True, help="Test episodes' seed (same for all rows).")
@click.option(
    "--threads",
    type=int,
    default=None,
    help="OMP_NUM_THREADS of every stage [unchanged; 1 on a CPU]. More threads than cores left free is ruinous: "
    "ProtoNets training at 2 threads on 2 cores ran at 0.33 tasks/s beside a 1-thread job, 18.4 alone.",
)
@click.option(
    "--eval-workers",
    type=int,
    default=1,
    show_default=True,
    help="lasium-eval --workers of every evaluation (CPU: processes of one thread each; the same scores, e.g. 2 "
    "when no other driver runs beside this one).",
)
@click.option("--keep-shards", is_flag=True, help="Keep the shard sets at the end (default: deleted).")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue a run in --work: stages whose command already succeeded are reused, a stage that was cut off "
    "continues (lasium-gen keeps its shards, lasium-train and lasium-eval get --resume; so does a run folder "
    "the planned command made by hand), and rows a results page holds with today's commands are taken from it.",
)
@click.option("--overwrite", is_flag=True, help="Clear an earlier run in --work first.")
@click.option(
    "--reuse-results",
    type=click.Path(path_type=Path, dir_okay=False),
    multiple=True,
    metavar="PAGE",
    help="With --resume, --plan or --page-only: also take the finished rows of this omniglot.json (e.g. a second "
    "command's --results, run in parallel with other --only rows on the same --work). Repeatable.",
)
@click.option(
    "--generator-results",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    multiple=True,
    metavar="PAGE",
    help="Show the finished LASIUM rows of this omniglot.json, written by a driver run with another --generator, in "
    "a section of their own (keys and labels name that GAN; counted toward the unsupervised targets, never run "
    "here). Repeatable.",
)
@click.option("--plan", "mode", flag_value="plan", help="Run nothing: list the rows, which are done, hours left.")
@click.option(
    "--page-only",
    "mode",
    flag_value="page-only",
    help="Run nothing: rewrite the page from the rows results pages hold with today's commands (--results, "
    "--reuse-results); the others are marked 'not run' with their estimate.",
)
@user_errors
def omniglot(
    mode: str | None,
    only: str | None,
    reuse_results: tuple[Path, ...],
    generator_results: tuple[Path, ...],
    **values: object,
) -> None:
    """Reproduce the paper's Omniglot 5-way table: LASIUM (N, RO, OC) with ProtoNets and MAML, baselines, other
    task sources; writes omniglot.md, omniglot.json and charts into --results.

    Each row: lasium-gen → lasium-shards preview → lasium-train → lasium-eval (1,000 test tasks, 1- and 5-shot, the
    same episodes for every row). Rows run in priority order; a failing stage is recorded and the rest go on.

    \b
    Examples:
      lasium-repro omniglot --sizes quick --fit --work /tmp/rq --results /tmp/rq
      lasium-repro omniglot --sizes cpu --ablation --plan
      lasium-repro omniglot --sizes cpu --resume --only maml-ro-x4 --threads 1 --keep-shards
      lasium-repro omniglot --sizes cpu --plan --only vae            # the LASIUM-VAE rows (six + σ-tuned)
      lasium-repro omniglot --sizes cpu --resume --only vae --vae runs/vae-fit   # ... with a refitted VAE
    Two cores, two rows at once (one --work, a --results page each; then merge them into results/):
      lasium-repro omniglot --sizes cpu --threads 1 --keep-shards --only protonets-n --results runs/a
      lasium-repro omniglot --sizes cpu --threads 1 --keep-shards --only maml-ro --results runs/b --resume
      lasium-repro omniglot --sizes cpu --page-only --reuse-results runs/a/omniglot.json \\
          --reuse-results runs/b/omniglot.json
    Rows on another GAN (their own --work and --results), shown beside the run's GAN rows:
      lasium-repro omniglot --sizes cpu --only protonets-n --generator omniglot-gan-h200 --work runs/h200 \\
          --results runs/h200-page
      lasium-repro omniglot --sizes cpu --page-only --resume --generator-results runs/h200-page/omniglot.json
    """
    from . import omniglot as driver
    from .options import OmniglotOptions

    options = OmniglotOptions(
        only=names(only),
        reuse_results=reuse_results,
        generator_results=generator_results,
        **values,  # type: ignore[arg-type]
    )
    if mode == "plan":
        click.echo("\n".join(driver.plan_omniglot(options)))
        return
    if mode == "page-only":
        results = driver.page_only_omniglot(options)
        done = sum(r["status"] == "ok" for r in results["rows"])
        click.echo(f"[repro] page: {done} of {len(results['rows'])} rows done; see {options.results / 'omniglot.md'}")
        return
    driver.run_omniglot(options)


# --- bundled --------------------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("runs/bundled"),
              show_default=True, help="Where the full checkpoints go.")  # fmt: skip
@click.option("--gan-epochs", type=int, default=500, show_default=True, help="GAN epochs in all (the authors').")
@click.option("--vae-epochs", type=int, default=1000, show_default=True, help="VAE epochs in all (the authors').")
@click.option("--gan-minutes", type=float, default=4.0, show_default=True, help="GAN training minutes per call.")
@click.option("--vae-minutes", type=float, default=3.0, show_default=True, help="VAE training minutes per call.")
@click.option("--gan-keep-epochs", default="0,10,50,200,400", show_default=True,
              help="GAN snapshots to keep (lasium-fit --keep-epochs; 0 = untrained).")  # fmt: skip
@click.option("--batch-size", type=int, default=128, show_default=True, help="Images per step (the authors').")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--skip-fid", is_flag=True, help="Export without measuring Fréchet distances.")
@click.option("--limit", type=int, default=None, help="Train on the first N images only (smoke runs).")
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where to export [the package's bundled/ folder].")  # fmt: skip
@click.option("--note", default=None, help="Training note (markdown) for both model cards.")
@user_errors
def bundled(gan_keep_epochs: str, **values: object) -> None:
    """Fit the bundled Omniglot GAN and VAE with lasium-fit, measure their Fréchet distances, export them.

    Each call trains for at most --gan-minutes / --vae-minutes; run the same command again to continue until the
    epochs are done (a model is measured and exported once its fit reached them).

    \b
    Example (GPU):
      lasium-repro bundled --out runs/bundled
    """
    from .bundled import BundledOptions, run

    run(BundledOptions(gan_keep_epochs=numbers(gan_keep_epochs, int, "--gan-keep-epochs"), **values))  # type: ignore[arg-type]


# --- precision ------------------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.option("--shards", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="A LASIUM shard set (e.g. 2,000 LASIUM-N tasks).")  # fmt: skip
@click.option("--work", type=click.Path(path_type=Path, file_okay=False), default=Path("runs/prec"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=Path("results"), show_default=True)
@click.option("--iterations", type=int, default=500, show_default=True, help="ProtoNets iterations of each run.")
@click.option("--tasks", type=int, default=1000, show_default=True, help="Test tasks per K_tr.")
@click.option("--threads", type=int, default=1, show_default=True, help="OMP_NUM_THREADS of every stage.")
@click.option("--resume", is_flag=True, help="Reuse stages whose commands are unchanged.")
@user_errors
def precision(**values: object) -> None:
    """Does bf16 change accuracy? The same ProtoNets run in fp32 and in bf16, each scored in its own precision on
    the fixed test tasks. Writes precision.md and precision.json (wall times are not a speed measurement)."""
    from .precision import PrecisionOptions, run

    run(PrecisionOptions(**values))  # type: ignore[arg-type]


# --- page -----------------------------------------------------------------------------------------------------
@main.command(context_settings=CONTEXT)
@click.argument("results_json", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@user_errors
def page(results_json: tuple[Path, ...]) -> None:
    """Redraw results pages (markdown and charts) from their stored JSON; runs nothing.

    Takes omniglot.json, sweep.json, accuracy-vs-gan-epochs.json, accuracy-vs-vae-epochs.json, step-curve.json or
    precision.json (as written by the other subcommands); writes the page beside each.

    \b
    Example:
      lasium-repro page results/omniglot.json results/sweep.json results/cpu-reduced/omniglot.json
    """
    from .pages import redraw_page

    for path in results_json:
        for written in redraw_page(path):
            click.echo(f"wrote {written}")


if __name__ == "__main__":
    main()
