"""The levers of the training tasks' shape (issue 27): how many classes (``--ways``), support images (``--shots``)
and query images (``--queries``) each generated task has, and how far apart its classes' anchors must be
(``--epsilon``). Each compares sweeps of LASIUM-N at its tuned σ that differ in that alone;
:data:`lasium.repro.levers.LEVERS` lists them with the others."""

from __future__ import annotations

import math

from .lever_sizes import (
    Lever,
    Results,
    Row,
    budget_setting,
    budget_size,
    distance_note,
    epsilon_note,
    epsilon_of,
    generator_identity,
    generator_spec,
    seed_note,
    training_distance,
    training_queries,
    training_shots,
    training_ways,
    tuned_n_points,
    ways_note,
)
from .levers_optimisation import REFERENCES, recipe_phrase, setting_lever
from .longer_rows import WIDER_TASKS
from .sweep import DEFAULT_GENERATOR
from .sweep_page import generator_phrase


def _generator_note(results: Results) -> str:
    """``; GAN `...` (weights sha256 ...)`` for a sweep on another generator than the bundled GAN, else nothing."""
    return f"; {generator_phrase(results['generator'])}" if generator_spec(results) != DEFAULT_GENERATOR else ""


def _ways_setting(row: Row, results: Results) -> str:
    generator = _generator_note(results)
    recipe = f"{budget_setting(row, results)}{generator}"
    return f"{training_ways(results)}-way training tasks{epsilon_note(results)}{distance_note(results)} ({recipe})"


def ways_lever(learner: str) -> Lever:
    """N of the training tasks: sweeps of LASIUM-N at its tuned σ that differ in ``--ways`` alone (validation stays
    5-way), one comparison per generator, ProtoNets distance and seed (a 20-way sweep with the mean-squared distance
    is compared with the 5-way sweep of that distance; the sweeps of another GAN, ``levers/gan*``, with that GAN's
    5-way sweep); the reference is 5-way, the benchmark's N."""
    return Lever(
        "training ways",
        learner,
        ("levers/ways*/sweep.json", "levers/distance-mean-squared/sweep.json", "levers/gan*/sweep.json"),
        tuned_n_points(learner),
        _ways_setting,
        "5-way training tasks, the benchmark's N",
        is_reference=lambda r, res: training_ways(res) == 5,
        order=lambda r, res: (*budget_size(res), training_ways(res)),
        group=lambda r, res: (
            f"{generator_identity(res)}, {training_distance(res)}, {budget_setting(r, res)}{seed_note(res)}"
        ),
        across_sources=True,
    )


def _queries_setting(row: Row, results: Results) -> str:
    generator = _generator_note(results)
    recipe = f"{ways_note(results)}{budget_setting(row, results)}{distance_note(results)}{generator}"
    return f"{training_queries(results)} queries per class ({recipe})"


# The training-queries lever's references: the 5-query sweeps whose recipe a ``levers/[maml-]queries*`` sweep repeats.
QUERIES_REFERENCES = {
    "protonets": ("levers/gan*/sweep.json", "levers/ways*/sweep.json", "levers/distance*/sweep.json"),
    "maml": REFERENCES["maml"],
}


def queries_lever(learner: str) -> Lever:
    """Query images per class of the training tasks (``lasium-gen --queries``; validation keeps its 15): sweeps of
    LASIUM-N at its tuned σ that differ in them alone (``levers/[maml-]queries*`` against the 5-query sweep of the
    same recipe: generator, ways, distance, budget, seed and training settings); the reference is lasium-gen's and the
    authors' 5. More queries average the training loss (MAML's outer loss) over more images of each task."""
    return setting_lever(
        "training queries",
        learner,
        "queries",
        "queries",
        lambda res: training_queries(res) == 5,
        lambda res: float(training_queries(res)),
        QUERIES_REFERENCES[learner],
        setting=_queries_setting,
        reference_name="5 queries per class, the authors' K_val",
    )


def _shots_setting(row: Row, results: Results) -> str:
    shots, ways, budget = training_shots(results), training_ways(results), budget_setting(row, results)
    return f"{shots}-shot {ways}-way training tasks{epsilon_note(results)} ({budget})"


def shots_lever(learner: str) -> Lever:
    """K of the training tasks: sweeps of LASIUM-N at its tuned σ that differ in ``--shots`` alone (``levers/shots*``
    for ProtoNets, ``levers/maml-shots*`` against MAML's 1-shot σ sweep; one comparison per recipe); the reference is
    1-shot, what every row trains on. ProtoNets' authors trained with the shot they tested (Snell et al., 2017), as did
    MAML's (Finn et al., 2017)."""
    return setting_lever(
        "training shots",
        learner,
        "shots",
        "shots",
        lambda res: training_shots(res) == 1,
        lambda res: float(training_shots(res)),
        () if learner == "protonets" else None,  # ProtoNets' shots sweeps hold their own 1-shot reference
        setting=_shots_setting,
        reference_name="1-shot training tasks",
    )


def rows_epsilon(ways: int) -> float | None:
    """The anchor distance ε the page's rows of ``ways``-way training tasks use: the wider rows' (the value lasium-gen
    suggests for 1% acceptance), or None, lasium-gen's default, at the benchmark's 5 ways."""
    return next((wider.epsilon for wider in WIDER_TASKS if wider.ways == ways), None)


def _is_rows_epsilon(results: Results) -> bool:
    return epsilon_of(results) == rows_epsilon(training_ways(results))


def _epsilon_order(results: Results) -> float:
    """Widest anchors first: lasium-gen's default (None), then the larger ε."""
    epsilon = epsilon_of(results)
    return -math.inf if epsilon is None else -epsilon


def _epsilon_setting(row: Row, results: Results) -> str:
    epsilon = epsilon_of(results)
    if epsilon is None:
        setting = "lasium-gen's default ε (246.09375·D/128)"
    elif epsilon == 0:
        setting = "ε 0 (no rejection: anchors drawn independently)"
    else:
        setting = f"ε {epsilon:g}"
    return f"{setting} ({recipe_phrase(results)})"


def epsilon_lever(learner: str) -> Lever:
    """How far apart a task's anchors must be (``lasium-gen --epsilon``, the least squared L2 distance between any two
    of them; Khodadadeh et al., 2021, draw anchors by rejection against it): sweeps ``levers/[maml-]epsilon*`` against
    their recipe's sweep at the rows' ε (:func:`rows_epsilon`). A smaller ε lets classes of one task come from nearby
    latents, so tasks hold more look-alike classes; ε 0 draws the anchors independently."""
    return setting_lever(
        "anchor distance ε",
        learner,
        "epsilon",
        "epsilon",
        _is_rows_epsilon,
        _epsilon_order,
        setting=_epsilon_setting,
        reference_name="the rows' ε: lasium-gen's default at 5-way, the wider rows' at more ways",
    )
