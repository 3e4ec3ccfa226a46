"""The levers of the optimisation (issue 27): how many tasks each step averages (``--meta-batch``) and whether the
weights scored are a moving average of the stepped ones (``lasium-train --ema-decay``). Each compares sweeps of
LASIUM-N at its tuned σ that differ in that alone, against the sweep of the same recipe without it (its reference
sweeps are named below); :data:`lasium.repro.levers.LEVERS` lists them with the others."""

from __future__ import annotations

from .lever_sizes import (
    Lever,
    Results,
    Row,
    distance_note,
    generator_spec,
    seed_note,
    training_distance,
    tuned_n_points,
    ways_note,
)
from .sweep import DEFAULT_GENERATOR
from .sweep_page import generator_phrase

AUTHORS_META_BATCH = 4  # tasks per step in the authors' Omniglot code (docs/reference-facts.md, "Budgets")

# The sweeps each lever's sweeps repeat (by learner): the best ProtoNets recipe's σ sweep and MAML's σ sweep.
REFERENCES = {
    "protonets": ("levers/gan-h200-207-w20-mean-squared/sweep.json",),
    "maml": ("levers/maml-parameter-n/sweep.json",),
}
PREFIX = {"protonets": "levers/", "maml": "levers/maml-"}  # where each learner's lever sweeps are


def ema_decay_of(results: Results) -> float:
    """A sweep's ``--ema-decay`` (0: the stepped weights were scored, as before the option)."""
    return float(results.get("sizes", {}).get("ema_decay") or 0.0)


def meta_batch_of(results: Results) -> int:
    return int(results["sizes"]["meta_batch"])


def _recipe(results: Results) -> str:
    """The generator (when not the bundled GAN), training ways and distance of a sweep, for a setting's brackets."""
    generator = generator_spec(results)
    parts = [generator_phrase(results["generator"])] if generator != DEFAULT_GENERATOR else []
    shape = f"{ways_note(results)}{distance_note(results).removeprefix(', ')}".removesuffix(", ")
    return "; ".join(parts + ([shape] if shape else []))


def _group(results: Results, *, budget: str) -> str:
    return f"{generator_spec(results)}, {ways_note(results)}{training_distance(results)}, {budget}{seed_note(results)}"


def _tasks_iterations(results: Results) -> str:
    s = results["sizes"]
    return f"{s['tasks']:,} tasks, {s['iterations']:,} steps"


def _budget_and_recipe(results: Results) -> str:
    """``4,000 tasks, 1,000 × 4; GAN `...`, 20-way, `mean-squared```: a setting's brackets."""
    s = results["sizes"]
    return "; ".join(filter(None, (f"{s['tasks']:,} tasks, {s['iterations']:,} × {s['meta_batch']}", _recipe(results))))


def _ema_setting(row: Row, results: Results) -> str:
    decay = ema_decay_of(results)
    return f"{f'moving average, decay {decay:g}' if decay else 'the stepped weights'} ({_budget_and_recipe(results)})"


def ema_lever(learner: str) -> Lever:
    """The weights scored: a moving average of the stepped weights (``--ema-decay``; Polyak & Juditsky, 1992)
    against the stepped weights themselves, the authors' and every row's; ``levers/ema*`` (ProtoNets) and
    ``levers/maml-ema*`` sweeps against their recipe's sweep, one comparison per generator, ways, distance, budget
    and seed."""
    return Lever(
        "moving average of the weights",
        learner,
        (f"{PREFIX[learner]}ema*/sweep.json", *REFERENCES[learner]),
        tuned_n_points(learner),
        _ema_setting,
        "the stepped weights (no average), as in the authors' code",
        is_reference=lambda r, res: ema_decay_of(res) == 0,
        order=lambda r, res: (ema_decay_of(res),),
        needs=lambda r, res: ema_decay_of(res) > 0,
        group=lambda r, res: _group(res, budget=f"{_tasks_iterations(res)} × {meta_batch_of(res)}"),
        across_sources=True,
    )


def _meta_batch_setting(row: Row, results: Results) -> str:
    return f"meta-batch {meta_batch_of(results)} ({_budget_and_recipe(results)})"


def meta_batch_lever(learner: str) -> Lever:
    """Tasks per optimizer step (``--meta-batch``) at one number of steps and distinct tasks: ``levers/meta-batch*``
    (ProtoNets) and ``levers/maml-meta-batch*`` sweeps against their recipe's sweep at the authors' 4 tasks per step;
    a larger meta-batch sees more tasks (each distinct task more often) for as many steps, at that much more compute.
    """
    return Lever(
        "meta-batch (tasks per step)",
        learner,
        (f"{PREFIX[learner]}meta-batch*/sweep.json", *REFERENCES[learner]),
        tuned_n_points(learner),
        _meta_batch_setting,
        f"the authors' {AUTHORS_META_BATCH} tasks per step",
        is_reference=lambda r, res: meta_batch_of(res) == AUTHORS_META_BATCH,
        order=lambda r, res: (float(meta_batch_of(res)),),
        needs=lambda r, res: meta_batch_of(res) != AUTHORS_META_BATCH,
        group=lambda r, res: _group(res, budget=_tasks_iterations(res)) + f", ema {ema_decay_of(res):g}",
        across_sources=True,
    )
