"""The curve subcommands of ``lasium-repro`` (registered on its group in :mod:`lasium.repro.cli`): accuracy against
generator training (``epoch-curve``) and along one training run (``step-curve``), both on validation tasks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lasium.cli_support import user_errors

from .cli_options import CONTEXT, budget_options, numbers, with_options


# --- epoch-curve ----------------------------------------------------------------------------------------------
@click.command("epoch-curve", context_settings=CONTEXT)
@click.option(
    "--fit",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="A lasium-fit output folder (GAN or VAE: its config.json says which) with epoch-NNNN/ snapshots "
    "(lasium-fit --keep-epochs).",
)
@click.option("--epochs", default=None, help="Only these training epochs, comma-separated [every snapshot].")
@click.option(
    "--work",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where the stages run [runs/gan-curve or runs/vae-curve, by the fit's kind].",
)
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=Path("results"), show_default=True)
@with_options(budget_options(4000, "auto", 1000))
@click.option("--threads", type=int, default=None, help="OMP_NUM_THREADS of every stage [unchanged].")
@click.option("--resume", is_flag=True, help="Reuse stages whose commands are unchanged.")
@click.option("--keep-points", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="An earlier curve's results JSON (same kind and budget; may be the one rewritten): its points at "
              "epochs this fit does not score stay, each naming its fit.")  # fmt: skip
@user_errors
def epoch_curve(fit: Path, epochs: str | None, work: Path | None, results: Path, tasks: int, iterations: int,
                meta_batch: int, val_tasks: int, gen_precision: str, seed: int, device: str, data_root: str | None,
                quick: bool, threads: int | None, resume: bool, keep_points: Path | None) -> None:  # fmt: skip
    """Accuracy against generator training: LASIUM-N + ProtoNets validation accuracy for each snapshot a GAN or
    VAE fit kept (σ: lasium-gen's value tuned for ProtoNets tasks of the fit's kind), beside the LASIUM authors'
    published curve for a GAN (their figure data covers no VAE). Writes accuracy-vs-gan-epochs.md, .json and .png
    (a VAE fit: accuracy-vs-vae-epochs.*).

    \b
    Examples:
      lasium-repro epoch-curve --fit runs/bundled/omniglot-gan              # work in runs/gan-curve
      lasium-repro epoch-curve --fit runs/vae-fit --resume                  # a VAE fit; continue its curve
      lasium-repro epoch-curve --quick --fit /tmp/gan --work /tmp/curve --results /tmp/curve
      lasium-fit --init-from omniglot-gan --epochs 64 --keep-epochs 40,48,56,64 --out runs/gan-cont
      lasium-repro epoch-curve --fit runs/gan-cont --keep-points results/accuracy-vs-gan-epochs.json
    """
    from .curve_page import GENERATOR_KINDS
    from .epoch_curve import QUICK, CurveOptions, run
    from .sweep import PointBudget

    sizes: dict[str, Any] = dict(tasks=tasks, iterations=iterations, val_tasks=val_tasks) | (QUICK if quick else {})
    budget = PointBudget(meta_batch=meta_batch, gen_precision=gen_precision, seed=seed, device=device,
                         data_root=data_root, **sizes)  # fmt: skip
    options = CurveOptions(
        fit=fit,
        budget=budget,
        epochs=numbers(epochs, int, "--epochs"),
        work=work,
        results=results,
        threads=threads,
        resume=resume,
        keep_points=keep_points,
    )
    written = run(options)
    failed = [r["epochs"] for r in written["rows"] if r["status"] != "ok"]
    if failed:
        label = GENERATOR_KINDS[written["kind"]].label
        click.echo(f"error: the points of {label} epochs {failed} failed; see {written['work']}/epoch-*/logs", err=True)
        sys.exit(1)


# --- step-curve -----------------------------------------------------------------------------------------------
@click.command("step-curve", context_settings=CONTEXT)
@click.option("--run", "run_folder", type=click.Path(path_type=Path, file_okay=False, exists=True), required=True,
              help="A lasium-train run folder with step-N/ checkpoints (--checkpoint-every).")  # fmt: skip
@click.option("--steps", default=None, metavar="STEPS",
              help="Comma-separated training steps to score [the final step and its halves down to the first "
              "checkpoint kept].")  # fmt: skip
@click.option("--val-tasks", type=int, default=1000, show_default=True, help="Validation tasks per K_tr.")
@click.option("--seed", type=int, default=0, show_default=True, help="Episode seed.")
@click.option("--work", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where the stages run [runs/steps-<run>].")  # fmt: skip
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Where step-curve.md, .json and .png go [results/levers/steps-<run>, read by the Omniglot "
              "page's levers table].")  # fmt: skip
@click.option("--threads", type=int, default=None, help="OMP_NUM_THREADS of every stage [unchanged].")
@click.option("--resume", is_flag=True, help="Reuse stages whose commands are unchanged.")
@user_errors
def step_curve(run_folder: Path, steps: str | None, **values: Any) -> None:
    """The budget lever along one run: validation accuracy of the checkpoints a lasium-train run kept.

    lasium-train keeps its learning rate constant and draws each task once, so the checkpoint at step s is a run of
    s iterations over s x meta-batch distinct tasks: scoring a long run's checkpoints at 1x, 2x, 4x, 8x of a budget
    on validation episodes (never the test split) says what more iterations and distinct tasks were worth, with
    evaluations only.

    \b
    Examples:
      lasium-repro step-curve --run runs/repro-cpu/runs/maml-n-x8 --steps 1000,2000,4000,8000 --threads 1
      lasium-repro step-curve --run runs/repro-cpu/runs/protonets-n-x4 --resume
      lasium-repro page results/levers/steps-maml-n-x8/step-curve.json        # redraw its page
    """
    from .step_curve import StepCurveOptions, run

    written = run(StepCurveOptions(run=run_folder, steps=numbers(steps, int, "--steps"), **values))
    failed = [r["step"] for r in written["rows"] if r["status"] != "ok"]
    if failed:
        click.echo(f"error: the evaluations of steps {failed} failed; see {written['options']['work']}/logs", err=True)
        sys.exit(1)
