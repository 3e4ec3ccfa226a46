"""What each lever tried on Omniglot *validation* tasks was worth: the levers table of the Omniglot page (issue 27).

A lever is one knob of the pipeline (σ/α, the training augmentation, the task mixture, the training budget, how long
the generator trained) tried at several settings by a validation experiment this project already runs
(``lasium-repro sweep``, ``lasium-repro epoch-curve``, ``lasium-repro step-curve``), each writing its JSON into the
results folder. This module only reads them: for each lever it takes the points of its experiments, the point at the
lever's reference setting (the authors' value, or the cheapest setting tried), and reports every point's validation
accuracy and its difference from the reference, with the 95% CI of the difference. Nothing is run and no figure is
assumed.

The CI of a difference is √(CI_a² + CI_b²), the interval of two independent estimates. The points of one lever are
scored on the same validation episodes (one episode seed), so this is conservative: a paired interval would be
narrower. Points are compared only within one experiment (one machine, one budget, one precision), except the budget
lever, whose experiments differ in their budget alone.

Adding a lever is one :class:`Lever` in :data:`LEVERS`; :func:`lasium.repro.levers_table.collect` reads them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from lasium.train import DEFAULT_DISTANCE

from .curve_page import GENERATOR_KINDS, page_name, row_epochs
from .lever_sizes import (
    LEARNERS,
    Lever,
    Results,
    Row,
    budget_setting,
    distance_note,
    fit_device_note,
    generator_identity,
    generator_spec,
    inner_steps_of,
    is_parameter_point,
    learner_algos,
    lr_schedule_of,
    seed_note,
    shape_note,
    sweep_algo,
    training_distance,
    training_ways,
    tuned_n_points,
    ways_note,
)
from .levers_budget import (
    BUDGET_SOURCES,
    REPEATED_BUDGET_SOURCES,
    annealed_run_lever,
    budget_lever,
    run_ways,
    step_lever,
)
from .levers_optimisation import ema_lever, inner_lr_lever, lr_lever, meta_batch_lever, temperature_lever
from .levers_task_shape import epsilon_lever, queries_lever, shots_lever, ways_lever
from .step_curve import FORMAT as STEP_CURVE
from .sweep import DEFAULT_GENERATOR
from .sweep_page import LEARNER_NAMES, PARAMETERS, generator_kind, generator_phrase, reference_value

SYMBOLS = {"sigma": "σ", "alpha": "α"}


def _parameter_setting(row: Row, results: Results) -> str:
    setting = (
        f"LASIUM-{str(row['strategy']).upper()} {SYMBOLS.get(row['parameter'], row['parameter'])} {row['value']:g}"
    )
    recipe = recipe_note(results)
    return f"{setting} ({recipe})" if recipe else setting


def recipe_note(results: Results) -> str:
    """``GAN `...`, 20-way, `mean-squared```: the generator (when not the bundled GAN), training ways and distance
    (when not the defaults) of a sweep, else nothing."""
    recipe = shape_note(results)
    if generator_spec(results) != DEFAULT_GENERATOR:  # a sweep on another generator says which
        recipe = f"{generator_phrase(results['generator'])}" + (f", {recipe}" if recipe else "")
    return recipe


def _is_reference_value(row: Row, results: Results) -> bool:
    value = row.get("value")
    reference = reference_value(sweep_algo(results), row["strategy"], generator_kind(results))
    return value is not None and abs(float(value) - reference) < 1e-9


def _strategy_order(row: Row, results: Results) -> tuple[float, ...]:
    order = list(PARAMETERS)
    return (order.index(row["strategy"]) if row["strategy"] in order else len(order), float(row["value"]))


# The σ/α lever's experiments by learner: sweeps of the parameter family, on the bundled GAN or (levers/gan*,
# levers/vae*) on another generator; each strategy's reference is the authors' value.
PARAMETER_SOURCES = {
    "protonets": ("sweep.json", "sweep-n/sweep.json", "levers/parameter*/sweep.json", "levers/gan*/sweep.json",
                  "levers/vae*/sweep.json"),
    "maml": ("sweep-maml/sweep.json", "levers/maml-parameter*/sweep.json"),
}  # fmt: skip


def _parameter_lever(learner: str, sources: tuple[str, ...]) -> Lever:
    algos = learner_algos(learner)
    return Lever(
        "σ / α",
        learner,
        sources,
        lambda r, res: is_parameter_point(r, res) and sweep_algo(res) in algos,
        _parameter_setting,
        f"the authors' value for {LEARNER_NAMES[learner]}",
        is_reference=_is_reference_value,
        order=_strategy_order,
        group=lambda r, res: str(r["strategy"]),
    )


# The augmentation lever's experiments by learner: sweeps of the augmentation family (``--only augment``), every
# preset on one LASIUM-N shard set; the reference is the authors' query shift.
AUGMENT_SOURCES = {
    "protonets": ("sweep.json", "levers/augment*/sweep.json"),
    "maml": ("levers/maml-augment*/sweep.json",),
}


def _augment_lever(learner: str, sources: tuple[str, ...]) -> Lever:
    algos = learner_algos(learner)
    return Lever(
        "training augmentation",
        learner,
        sources,
        lambda r, res: r.get("family") == "augment" and sweep_algo(res) in algos,
        lambda r, res: (
            f"`{r['augment']}` (LASIUM-N σ {r['value']:g}{', ' if recipe_note(res) else ''}{recipe_note(res)}"
            f"{seed_note(res)})"
        ),
        "`shift5`, the authors' query shift",
        is_reference=lambda r, res: r.get("augment") == "shift5",
    )


def _mixture_setting(row: Row, results: Results) -> str:
    """``n × 0.5 + umtra × 0.5 (`shift5-affine`)``, and the recipe (generator, ways, distance) of a sweep that is not
    the bundled GAN's 5-way one; a source on its own generator reads ``n@omniglot-gan``."""
    mix = " + ".join(part.replace(":", " × ") for part in str(row["mix"]).split("+"))
    recipe = recipe_note(results)
    return f"{mix} (`{row['augment']}`{', ' + recipe if recipe else ''})"


def _generator_setting(row: Row, results: Results) -> str:
    generator = results.get("generator") or {}
    epochs = f", {generator['epochs_done']} epochs" if generator.get("epochs_done") else ""
    recipe = f"{ways_note(results)}{budget_setting(row, results)}{distance_note(results)}{seed_note(results)}"
    return f"{generator_phrase(generator or None)}{epochs} ({recipe})"


# The generator lever's references by learner: the bundled GAN's sweeps of LASIUM-N at its tuned σ whose recipe a
# ``levers/gan*`` sweep on another generator repeats (5-way or 20-way tasks, either ProtoNets distance).
GENERATOR_REFERENCES = {
    "protonets": ("levers/distance-squared-euclidean/sweep.json", "levers/distance-mean-squared/sweep.json",
                  "levers/ways-20-mean-squared/sweep.json"),
    "maml": ("levers/maml-parameter-n/sweep.json",),
}  # fmt: skip


def _generator_lever(learner: str) -> Lever:
    """The generator behind the tasks: sweeps of LASIUM-N at its tuned σ on another GAN (``levers/gan*``) against
    the bundled GAN's sweep of the same recipe (:data:`GENERATOR_REFERENCES`, or a ``levers/gan*`` sweep of the
    bundled GAN at another seed), compared within one N of training tasks, distance, budget and seed; the reference is
    the bundled GAN."""
    return Lever(
        "generator",
        learner,
        ("levers/gan*/sweep.json", *GENERATOR_REFERENCES[learner]),
        tuned_n_points(learner),
        _generator_setting,
        "the bundled GAN (`omniglot-gan`)",
        is_reference=lambda r, res: generator_spec(res) == DEFAULT_GENERATOR,
        order=lambda r, res: (float(generator_spec(res) != DEFAULT_GENERATOR),),
        group=lambda r, res: f"{ways_note(res)}{training_distance(res)}, {budget_setting(r, res)}{seed_note(res)}",
        across_sources=True,
    )


def _inner_steps_lever() -> Lever:
    """MAML's inner SGD steps in training (``lasium-train --inner-steps``): sweeps of LASIUM-N at its tuned σ that
    differ in them alone, compared within one budget, generator and seed. The reference is the authors' 5 steps
    (Khodadadeh et al., 2021, after Finn et al., 2017); validation adapts 50 steps whatever the training took."""
    return Lever(
        "inner steps in training",
        "maml",
        ("levers/maml-inner-steps*/sweep.json", "levers/maml-parameter-n/sweep.json"),
        tuned_n_points("maml"),
        lambda r, res: f"{inner_steps_of(res)} inner steps ({budget_setting(r, res)})",
        "the authors' 5 inner steps",
        is_reference=lambda r, res: inner_steps_of(res) == 5,
        order=lambda r, res: (float(inner_steps_of(res)),),
        group=lambda r, res: f"{generator_identity(res)}, {budget_setting(r, res)}{seed_note(res)}",
        across_sources=True,
    )


def _distance_lever() -> Lever:
    """How ProtoNets compare a query with a prototype (``lasium-train --distance``): sweeps of LASIUM-N at its tuned
    σ that differ in the distance alone, compared within one budget and N of training tasks (a constant-rate sweep of
    the learning-rate lever and the 20-way sweeps of the ways lever are references too). The reference is the squared
    Euclidean distance every row trains with (Snell et al., 2017); the LASIUM authors' code takes its mean over the
    feature dimensions, the same nearest prototype with a softmax D times softer in training."""
    return Lever(
        "distance to the prototypes",
        "protonets",
        ("levers/distance*/sweep.json", "levers/lr-constant-*/sweep.json", "levers/ways-20*/sweep.json"),
        tuned_n_points("protonets"),
        lambda r, res: f"`{training_distance(res)}` ({ways_note(res)}{budget_setting(r, res)})",
        "the squared Euclidean distance (Snell et al., 2017)",
        is_reference=lambda r, res: training_distance(res) == DEFAULT_DISTANCE,
        order=lambda r, res: (float(training_distance(res) != DEFAULT_DISTANCE),),
        group=lambda r, res: f"{training_ways(res)}-way, {budget_setting(r, res)}",
        across_sources=True,
    )


def _lr_points(learner: str) -> Callable[[Row, Results], bool]:
    """A sweep's LASIUM-N points at the tuned σ; a step curve's point at its run's last step (a whole run)."""
    tuned, algos = tuned_n_points(learner), learner_algos(learner)

    def select(row: Row, results: Results) -> bool:
        if results.get("format") != STEP_CURVE:
            return tuned(row, results)
        train = results.get("train", {})
        return train.get("algo") in algos and row.get("step") == train.get("iterations")

    return select


def _lr_setting(row: Row, results: Results) -> str:
    if results.get("format") != STEP_CURVE:
        return f"`{lr_schedule_of(results)}` ({budget_setting(row, results)})"
    t, ways = results["train"], run_ways(results, ", {}-way tasks")
    return f"`{lr_schedule_of(results)}` (run `{results['run']}`, {t['iterations']:,} × {t['meta_batch']}{ways})"


def _lr_group(row: Row, results: Results) -> str:
    """Points compared with each other: a sweep's budget, or a step curve's training but for its schedule."""
    if results.get("format") != STEP_CURVE:
        return budget_setting(row, results)
    train = {k: v for k, v in results.get("train", {}).items() if k != "lr_schedule" and v is not None}
    return json.dumps(train, sort_keys=True)


def _lr_schedule_lever(learner: str) -> Lever:
    """How Adam's rate changes over a run (``lasium-train --lr-schedule``), against the constant rate of the authors'
    code: sweeps of LASIUM-N at its tuned σ that differ in ``--lr-schedule`` alone, compared within one budget, and
    whole runs (a step curve's last step) whose training differs in its schedule alone (the same shards, budget,
    augmentation and seed). A schedule is worth most where a constant rate has stopped gaining."""
    return Lever(
        "learning-rate schedule",
        learner,
        ("levers/lr-*/sweep.json", "levers/steps-*/step-curve.json"),
        _lr_points(learner),
        _lr_setting,
        "a constant rate, as in the authors' code",
        is_reference=lambda r, res: lr_schedule_of(res) == "constant",
        order=lambda r, res: (float(lr_schedule_of(res) != "constant"),),
        group=_lr_group,
        across_sources=True,
    )


LEVERS: tuple[Lever, ...] = (
    *(_parameter_lever(learner, sources) for learner, sources in PARAMETER_SOURCES.items()),
    *(_augment_lever(learner, sources) for learner, sources in AUGMENT_SOURCES.items()),
    Lever(
        "task mixture",
        "protonets",
        ("levers/mix*/sweep.json",),
        lambda r, res: r.get("family") == "mixture" and sweep_algo(res) == "protonets",
        _mixture_setting,
        "LASIUM-N alone",
        is_reference=lambda r, res: str(r.get("mix")) in ("n:1", "n:1.0"),
    ),
    *(budget_lever(learner, sources) for learner, sources in BUDGET_SOURCES.items()),
    *(budget_lever(learner, sources, ", repeated on one CPU") for learner, sources in REPEATED_BUDGET_SOURCES.items()),
    *(step_lever(learner) for learner in LEARNERS),
    *(annealed_run_lever(learner) for learner in LEARNERS),
    ways_lever("protonets"),
    *(shots_lever(learner) for learner in LEARNERS),
    *(queries_lever(learner) for learner in LEARNERS),
    *(epsilon_lever(learner) for learner in LEARNERS),
    _distance_lever(),
    *(_generator_lever(learner) for learner in LEARNERS),
    _inner_steps_lever(),
    *(_lr_schedule_lever(learner) for learner in LEARNERS),
    *(meta_batch_lever(learner) for learner in LEARNERS),
    *(lr_lever(learner) for learner in LEARNERS),
    inner_lr_lever(),
    *(ema_lever(learner) for learner in LEARNERS),
    temperature_lever(),
    *(
        Lever(
            f"{generator.label} training epochs",
            "protonets",
            (f"{page_name(kind)}.json", f"gpu-*/{page_name(kind)}.json"),  # gpu-*: a fit of benchmarks/gpu_check.sh
            lambda r, res: True,
            lambda r, res: f"{row_epochs(r)} epochs" + fit_device_note(res),
            "the fewest epochs tried",
            order=lambda r, res: (row_epochs(r),),
        )
        for kind, generator in GENERATOR_KINDS.items()
    ),
)
