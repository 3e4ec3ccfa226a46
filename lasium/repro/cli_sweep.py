"""The ``sweep`` subcommand of ``lasium-repro`` (registered on its group in :mod:`lasium.repro.cli`): one lever at a
time on Omniglot validation tasks (σ/α, augmentation, mixtures, budget, ways, shots, distance, schedule, inner
steps, generator)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from lasium.cli_support import user_errors
from lasium.precision import PRECISIONS
from lasium.train import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE, DISTANCES, LR_SCHEDULES

from .cli_options import CONTEXT, budget_options, names, numbers, with_options


# --- sweep ----------------------------------------------------------------------------------------------------
@click.command(context_settings=CONTEXT)
@click.option("--work", type=click.Path(path_type=Path, file_okay=False), default=Path("runs/sweep"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path, file_okay=False), default=Path("results"), show_default=True)
@click.option(
    "--algo",
    type=click.Choice(["protonets", "maml", "fomaml"]),
    default="protonets",
    show_default=True,
    help="The learner every point trains (its shards use the σ/α tuned for it: lasium-gen --tuned-for).",
)
@with_options(budget_options(2000, "bf16", 1000))
@click.option("--strategies", default="n,ro,oc", show_default=True, help="Strategies of the parameter family.")
@click.option(
    "--values", default=None, help="σ/α values of every strategy, e.g. 0.2,0.6 [n: 0.5,1,2; ro, oc: 0.2,0.5,0.8]."
)
@click.option(
    "--augment-sigma", type=float, default=1.0, show_default=True, help="σ of the augmentation family's n shard set."
)
@click.option(
    "--augments",
    default=None,
    metavar="PRESETS",
    help="The augmentation family's presets (lasium-train --augment), comma-separated, a point each, e.g. "
    "shift5,shift5-affine,shift5-support [all eight].",
)
@click.option(
    "--mixtures",
    default=None,
    metavar="MIXES",
    help="Task-mixture points, comma-separated, each SOURCE:WEIGHT joined by + (sources n, ro, oc, umtra; a LASIUM "
    "source may name its own generator, n@omniglot-gan, to mix two generators' tasks), e.g. "
    "n:0.5+umtra:0.5,n:0.25+ro:0.25+oc:0.25+umtra:0.25 [none].",
)
@click.option(
    "--mixture-augment",
    default="shift5-affine",
    show_default=True,
    help="lasium-train --augment of the mixture points (auto would mean none as soon as UMTRA is mixed in).",
)
@click.option(
    "--only", type=click.Choice(["parameter", "augment", "mixture"]), default=None, help="Run one family only."
)
@click.option(
    "--generator",
    default="omniglot-gan",
    show_default=True,
    help="Generator of every point: a bundled name or a lasium-fit folder (a refitted GAN, a VAE: then give "
    "--values, the defaults are the GAN's).",
)
@click.option("--ways", type=int, default=5, show_default=True,
              help="N of the generated training tasks (validation stays 5-way): the training-ways lever.")  # fmt: skip
@click.option("--epsilon", type=float, default=None,
              help="lasium-gen --epsilon of every point [lasium-gen's default; more --ways may need a smaller one, "
              "which lasium-gen suggests].")  # fmt: skip
@click.option("--lr-schedule", type=click.Choice(list(LR_SCHEDULES)), default="constant", show_default=True,
              help="lasium-train --lr-schedule of every point: the learning-rate schedule lever.")  # fmt: skip
@click.option("--shots", type=int, default=1, show_default=True,
              help="K of the generated training tasks (validated at 1 and 5 shots): the shots lever.")  # fmt: skip
@click.option("--queries", type=int, default=5, show_default=True,
              help="Query images per class of the generated training tasks: the training-queries lever.")  # fmt: skip
@click.option("--distance", type=click.Choice(list(DISTANCES)), default=DEFAULT_DISTANCE, show_default=True,
              help="lasium-train --distance of every point (ProtoNets): the distance lever.")  # fmt: skip
@click.option("--temperature", type=float, default=DEFAULT_TEMPERATURE, show_default=True, metavar="T",
              help="lasium-train --temperature of every point (ProtoNets): the temperature lever.")  # fmt: skip
@click.option("--inner-steps", type=int, default=None,
              help="lasium-train --inner-steps of every point (MAML): the inner-steps lever [lasium-train's 5, "
              "the authors' value; validation adapts 50 steps whatever the training took].")  # fmt: skip
@click.option("--inner-lr", type=float, default=None,
              help="lasium-train --inner-lr of every point (MAML): the inner learning-rate lever [lasium-train's "
              "0.4, the authors'; validation adapts at the protocol's 0.4 whatever the training took].")  # fmt: skip
@click.option("--lr", type=float, default=None,
              help="lasium-train --lr of every point, Adam's rate: the learning-rate lever [lasium-train's 1e-3, "
              "every row's rate and the authors' MAML rate].")  # fmt: skip
@click.option("--ema-decay", type=float, default=0.0, show_default=True, metavar="D",
              help="lasium-train --ema-decay of every point (0 = off): the weight-average lever.")  # fmt: skip
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="auto", show_default=True,
              help="lasium-train and lasium-eval --precision of every point (auto: bf16 autocast where the machine "
              "computes bf16 natively, fp32 elsewhere; name one to compare runs across machines).")  # fmt: skip
@click.option("--threads", type=int, default=1, show_default=True, help="OMP_NUM_THREADS of every stage.")
@click.option("--resume", is_flag=True, help="Reuse stages (and points of the page) whose commands are unchanged.")
@click.option("--plan", "plan_only", is_flag=True,
              help="Run nothing: list the points, which are done, and each stage's estimated hours (a stage longer "
              "than one 3 h sitting is marked: --resume continues it).")  # fmt: skip
@user_errors
def sweep(work: Path, results: Path, algo: str, tasks: int, iterations: int, meta_batch: int, val_tasks: int,
          gen_precision: str, seed: int, device: str, data_root: str | None, quick: bool, strategies: str,
          values: str | None, augment_sigma: float, augments: str | None, mixtures: str | None, mixture_augment: str,
          only: str | None, generator: str, ways: int, epsilon: float | None, lr_schedule: str, shots: int,
          queries: int, distance: str, temperature: float, inner_steps: int | None, inner_lr: float | None,
          lr: float | None, ema_decay: float, precision: str, threads: int, resume: bool,
          plan_only: bool) -> None:  # fmt: skip
    """Choose σ/α and the training augmentation on Omniglot *validation* tasks (never the test split).

    Each point: lasium-gen (--generator, default the bundled GAN) → lasium-train → lasium-eval --split val (1- and
    5-shot). Families: the strategy parameter (σ for n, α for ro and oc; augmentation shift5), the augmentation
    presets (on one n set), and, with --mixtures, task mixtures of LASIUM strategies and UMTRA. The budget
    (--tasks, --iterations, --meta-batch) is one per sweep. Writes sweep.md, sweep.json and charts after every point.

    \b
    Examples:
      lasium-repro sweep --work runs/sweep                  # the full sweep (~1-2 h on a 2-core CPU)
      lasium-repro sweep --work runs/sweep --resume         # continue it
      lasium-repro sweep --work runs/sweep --plan           # what is done, and each stage's hours left
      lasium-repro sweep --quick --work /tmp/sweep --results /tmp/sweep
      lasium-repro sweep --algo maml --only parameter --strategies oc --values 0.2,0.6 --val-tasks 300 \\
          --work runs/sweep-maml --results results/sweep-maml
    One lever at a time (a point per value; another budget or generator is another sweep, in its own folders):
      lasium-repro sweep --only parameter --strategies n --values 0.5 --iterations 16000 --tasks 64000 \\
          --work runs/lever-budget --results results/levers/budget
      lasium-repro sweep --generator runs/gan-fit --only parameter --strategies n --values 0.25,0.5,1 \\
          --work runs/lever-gan --results results/levers/gan
      lasium-repro sweep --only mixture --mixtures n:1,n:0.5+umtra:0.5,n:0.25+ro:0.25+oc:0.25+umtra:0.25 \\
          --work runs/lever-mix --results results/levers/mix
      lasium-repro sweep --generator runs/gan-fit --only mixture --mixtures n:1,n:0.5+n@omniglot-gan:0.5 \\
          --work runs/lever-mix-gans --results results/levers/mix-gans   # two generators' tasks, half each
      lasium-repro sweep --only parameter --strategies n --values 0.5 --ways 20 --epsilon 204.2 \\
          --work runs/lever-ways-20 --results results/levers/ways-20   # beside a --ways 5 sweep of the same budget
      lasium-repro sweep --only parameter --strategies n --values 0.5 --tasks 32000 --iterations 8000 \\
          --lr-schedule cosine --work runs/lever-lr-cosine --results results/levers/lr-cosine   # beside a constant one
      lasium-repro sweep --only parameter --strategies n --values 0.5 --ways 20 --epsilon 204.2 --shots 5 \\
          --work runs/lever-shots-5 --results results/levers/shots-5-w20   # beside the 1-shot 20-way sweep
      lasium-repro sweep --only parameter --strategies n --values 0.5 --distance mean-squared \\
          --work runs/lever-distance-mean --results results/levers/distance-mean-squared   # beside a default one
      lasium-repro sweep --algo maml --only parameter --strategies n --values 0.5 --tasks 4000 --inner-steps 10 \\
          --work runs/lever-maml-inner-10 --results results/levers/maml-inner-steps-10   # beside a 5-step sweep
      lasium-repro sweep --algo maml --only parameter --strategies n --values 0.5 --tasks 4000 --inner-lr 0.2 \\
          --work runs/lever-maml-inner-lr-0.2 --results results/levers/maml-inner-lr-0.2   # beside the 0.4 sweep
      lasium-repro sweep --algo maml --only augment --augment-sigma 0.5 --augments shift5,shift5-affine \\
          --tasks 4000 --work runs/lever-maml-augment --results results/levers/maml-augment   # MAML's augmentation
      lasium-repro sweep --only parameter --strategies n --values 0.5 --tasks 4000 --ema-decay 0.99 \\
          --work runs/lever-ema --results results/levers/ema-0.99   # a moving average of the weights
      lasium-repro sweep --only parameter --strategies n --values 0.5 --tasks 4000 --distance mean-squared \\
          --temperature 4 --work runs/lever-t4 --results results/levers/temperature-4   # a softer softmax
      lasium-repro sweep --algo maml --only parameter --strategies n --values 0.5 --tasks 4000 --epsilon 0 \\
          --work runs/lever-maml-eps-0 --results results/levers/maml-epsilon-0   # anchors drawn independently
      lasium-repro sweep --algo maml --only parameter --strategies n --values 0.5 --tasks 4000 --queries 15 \\
          --work runs/lever-maml-q15 --results results/levers/maml-queries-15   # MAML's outer loss on more queries
      lasium-repro sweep --algo maml --only parameter --strategies n --values 0.5 --tasks 4000 --precision fp32 \\
          --work runs/maml-fp32 --results results/levers/repeat-maml-parameter-n-fp32   # fp32 on a bf16 CPU
    """
    from .sweep import AUGMENTS, QUICK, PointBudget, SweepOptions, run

    sizes: dict[str, Any] = dict(tasks=tasks, iterations=iterations, val_tasks=val_tasks) | (QUICK if quick else {})
    budget = PointBudget(meta_batch=meta_batch, algo=algo, gen_precision=gen_precision, seed=seed, device=device,
                         data_root=data_root, ways=ways, epsilon=epsilon, lr_schedule=lr_schedule, shots=shots,
                         queries=queries, distance=distance, temperature=temperature, inner_steps=inner_steps,
                         inner_lr=inner_lr, lr=lr, ema_decay=ema_decay, precision=precision, **sizes)  # fmt: skip
    options = SweepOptions(
        budget=budget,
        strategies=names(strategies),
        values=numbers(values, float, "--values"),
        augment_sigma=augment_sigma,
        augments=names(augments) or AUGMENTS,
        mixtures=names(mixtures),
        mixture_augment=mixture_augment,
        only=only,
        generator=generator,
        work=work,
        results=results,
        threads=threads,
        resume=resume,
    )
    if plan_only:
        from .sweep_plan import plan_sweep

        click.echo("\n".join(plan_sweep(options)))
        return
    run(options)
