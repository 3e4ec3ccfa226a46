"""What the levers table reads from a validation experiment's results JSON (a sweep, an epoch curve, a step curve):
its learner, budget, training ways, shots, distance, schedule and generator, and which of its points are LASIUM-N at
the learner's tuned σ; and :class:`Lever`, one lever's description (:mod:`lasium.repro.levers` lists them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lasium.train import DEFAULT_DISTANCE, DEFAULT_TEMPERATURE

from .generators import LEGACY_BUNDLED
from .step_curve import FORMAT as STEP_CURVE
from .sweep import DEFAULT_GENERATOR
from .sweep_page import PRESET_OF

Row = dict[str, Any]
Results = dict[str, Any]

LEARNERS = ("protonets", "maml")  # a lever's learner: the --tuned-for preset its experiments' --algo maps to


@dataclass(frozen=True)
class Lever:
    """One lever: which experiments tried it (``sources``: globs under the results folder, each a results JSON), which
    of their points belong to it, how the table names a point's setting, and which point is the reference.

    ``group`` splits a lever's points into comparisons of their own (one per strategy for σ/α); ``across_sources``
    compares points of different experiments (the budget lever, whose experiments differ in their budget alone);
    otherwise each experiment is its own comparison. The reference is the point ``is_reference`` holds for or,
    without it, the point that sorts first by ``order`` (the smallest budget, the fewest epochs)."""

    name: str
    learner: str
    sources: tuple[str, ...]
    select: Callable[[Row, Results], bool]
    setting: Callable[[Row, Results], str]
    reference_name: str  # what the reference is, as the table says it
    is_reference: Callable[[Row, Results], bool] | None = None
    order: Callable[[Row, Results], tuple[float, ...]] | None = None  # how the points sort
    group: Callable[[Row, Results], str] = lambda row, results: ""
    across_sources: bool = False
    budget: Callable[[Results], str] | None = None  # the table's budget phrase [tasks, iterations, val tasks]
    # a comparison is kept only when one of its points holds this (a lever whose references are other levers' sweeps
    # compares nothing among those alone)
    needs: Callable[[Row, Results], bool] | None = None


def sweep_algo(results: Results) -> str:
    return str(results.get("sizes", {}).get("algo", "protonets"))


def is_parameter_point(row: Row, results: Results) -> bool:
    return row.get("family") == "parameter" or row.get("key") in results.get("shared_keys", ())


def budget_setting(row: Row, results: Results) -> str:
    s = results["sizes"]
    return f"{s['tasks']:,} tasks, {s['iterations']:,} × {s['meta_batch']}"


def budget_size(results: Results) -> tuple[float, ...]:
    s = results["sizes"]
    return (int(s["iterations"]) * int(s["meta_batch"]), int(s["tasks"]))


def learner_algos(learner: str) -> tuple[str, ...]:
    """The ``--algo`` values a learner's experiments may have run (first-order MAML counts as MAML)."""
    return tuple(algo for algo, preset in PRESET_OF.items() if preset == learner)


def tuned_sigma(learner: str) -> float:
    """σ of LASIUM-N tuned for the learner (lasium-gen --tuned-for), on the GAN."""
    from lasium.generate import STRATEGY_PARAMETERS

    return float(STRATEGY_PARAMETERS[learner]["gan"]["n"])


def tuned_n_points(learner: str) -> Callable[[Row, Results], bool]:
    """Selects the points of sweeps of LASIUM-N at its tuned σ run by the learner: the experiments of the levers
    that change one thing besides the shard set's σ (budget, training ways, learning-rate schedule)."""
    sigma, algos = tuned_sigma(learner), learner_algos(learner)
    return lambda r, res: (
        is_parameter_point(r, res) and sweep_algo(res) in algos and r.get("strategy") == "n" and r.get("value") == sigma
    )


def training_ways(results: Results) -> int:
    return int(results.get("sizes", {}).get("ways", 5))


def inner_steps_of(results: Results) -> int:
    """A MAML sweep's ``--inner-steps`` in training (pages from before the option: lasium-train's 5)."""
    return int(results.get("sizes", {}).get("inner_steps") or 5)


def epsilon_of(results: Results) -> float | None:
    """A sweep's lasium-gen ``--epsilon``, the least squared distance between a task's anchors (None: lasium-gen's
    default, 246.09375·D/128 for a latent of size D)."""
    epsilon = results.get("sizes", {}).get("epsilon")
    return None if epsilon is None else float(epsilon)


def epsilon_note(results: Results) -> str:
    epsilon = epsilon_of(results)
    return f", ε {epsilon:g}" if epsilon is not None else ""


def training_shots(results: Results) -> int:
    return int(results.get("sizes", {}).get("shots", 1))


def training_queries(results: Results) -> int:
    """Query images per class of a sweep's training tasks (pages from before the option: lasium-gen's 5)."""
    return int(results.get("sizes", {}).get("queries", 5))


def training_distance(results: Results) -> str:
    """A sweep's ``--distance`` (pages from before the option: the squared Euclidean distance)."""
    return str(results.get("sizes", {}).get("distance", DEFAULT_DISTANCE))


def distance_note(results: Results) -> str:
    """``, `mean-squared``` for a sweep trained with another distance than the default, else nothing."""
    distance = training_distance(results)
    return f", `{distance}`" if distance != DEFAULT_DISTANCE else ""


def ways_note(results: Results) -> str:
    """``20-way, `` for a sweep of other training ways than the benchmark's 5, else nothing."""
    return f"{training_ways(results)}-way, " if training_ways(results) != 5 else ""


def shape_note(results: Results) -> str:
    """``20-way, `mean-squared``` (the training ways and distance where they are not the defaults), else nothing."""
    return f"{ways_note(results)}{distance_note(results).removeprefix(', ')}".removesuffix(", ")


def ema_decay_of(results: Results) -> float:
    """A sweep's ``--ema-decay`` (0: the stepped weights were scored, as before the option)."""
    return float(results.get("sizes", {}).get("ema_decay") or 0.0)


def temperature_of(results: Results) -> float:
    """A sweep's ``--temperature`` (ProtoNets; pages from before the option: 1, the logits are minus the distances)."""
    return float(results.get("sizes", {}).get("temperature") or DEFAULT_TEMPERATURE)


def meta_batch_of(results: Results) -> int:
    return int(results["sizes"]["meta_batch"])


def fit_device_note(results: Results) -> str:
    """`` (fit and scored on NVIDIA H200)`` for an epoch curve that ran on a GPU; nothing for one of a CPU."""
    device = str(results.get("device", ""))
    return f" (fit and scored on {device})" if device and "CPU" not in device else ""


def generator_spec(results: Results) -> str:
    """The generator a sweep's shards came from (sweeps from before it was recorded: the bundled GAN)."""
    generator = results.get("generator") or {}
    return str(generator.get("spec") or generator.get("name") or DEFAULT_GENERATOR)


def generator_identity(results: Results) -> str:
    """Which weights a sweep's shards came from, for grouping its points: their sha256 where the page records it (so
    one generator under two names, a lasium-fit folder and the bundled copy of its weights, is one), else its spec
    (pages from before the record name the bundled GAN, whose weights :data:`.generators.LEGACY_BUNDLED` gives)."""
    spec = generator_spec(results)
    sha = (results.get("generator") or {}).get("weights_sha256") or LEGACY_BUNDLED.get(spec, {}).get("weights_sha256")
    return str(sha or spec)


def lr_schedule_of(results: Results) -> str:
    """A sweep's or a step curve's run's ``--lr-schedule`` (pages from before the option: constant)."""
    if results.get("format") == STEP_CURVE:
        return str(results.get("train", {}).get("lr_schedule") or "constant")
    return str(results.get("sizes", {}).get("lr_schedule", "constant"))


def seed_note(results: Results) -> str:
    """``, seed 1`` for a sweep run with another seed than the default 0 (other generated tasks, initialisation and
    task order; a sweep scores every seed on the same validation episodes)."""
    seed = int(results.get("sizes", {}).get("seed", 0))
    return f", seed {seed}" if seed else ""
