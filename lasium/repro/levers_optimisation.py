"""The levers of the optimisation (issue 27): how many tasks each step averages (``--meta-batch``), Adam's rate
(``--lr``), MAML's inner learning rate in training (``--inner-lr``), whether the weights scored are a moving average of
the stepped ones (``--ema-decay``), and how soft the softmax of ProtoNets' training loss is (``--temperature``). Each
compares sweeps of LASIUM-N at its tuned σ that differ in that setting alone with the sweep of their recipe at the
default (:data:`REFERENCES`); :data:`lasium.repro.levers.LEVERS` lists them with the others."""

from __future__ import annotations

import json
from collections.abc import Callable

from lasium.train import DEFAULT_TEMPERATURE, TrainConfig

from .lever_sizes import (
    Lever,
    Results,
    Row,
    ema_decay_of,
    epsilon_of,
    generator_identity,
    generator_spec,
    inner_steps_of,
    lr_schedule_of,
    meta_batch_of,
    shape_note,
    temperature_of,
    training_distance,
    training_queries,
    training_shots,
    training_ways,
    tuned_n_points,
)
from .published import REFERENCE_BUDGETS
from .sweep import DEFAULT_GENERATOR
from .sweep_page import generator_phrase

DEFAULT_LR = 1e-3  # lasium-train --lr: Adam's rate of every row, the authors' MAML rate (docs/reference-facts.md)
DEFAULT_INNER_LR = TrainConfig.inner_lr  # lasium-train --inner-lr: every MAML row's, the authors' (reference-facts.md)

# The sweeps each learner's lever sweeps repeat at the defaults: the best ProtoNets recipe's σ sweep, MAML's σ sweep
# and its budget sweeps (a lever point at 2,000 steps is compared with the 2,000-step sweep at the default setting).
REFERENCES = {
    "protonets": ("levers/gan-h200-207-w20-mean-squared/sweep.json",),
    "maml": ("levers/maml-parameter-n/sweep.json", "levers/maml-budget*/sweep.json"),
}
PREFIX = {"protonets": "levers/", "maml": "levers/maml-"}  # where each learner's lever sweeps are


def lr_of(results: Results) -> float:
    """A sweep's ``--lr`` (pages from before the option: lasium-train's default)."""
    return float(results.get("sizes", {}).get("lr") or DEFAULT_LR)


def inner_lr_of(results: Results) -> float:
    """A MAML sweep's ``--inner-lr`` in training (pages from before the option: lasium-train's default)."""
    return float(results.get("sizes", {}).get("inner_lr") or DEFAULT_INNER_LR)


def everything_but(setting: str) -> Callable[[Row, Results], str]:
    """A lever's comparisons: one per recipe (generator, task shape and anchor distance ε, ProtoNets distance, budget,
    seed and the other settings of the optimisation), so that its points differ in ``setting`` alone."""

    def key(row: Row, results: Results) -> str:
        s = results["sizes"]
        recipe = {
            "generator": generator_identity(results),
            "ways": training_ways(results),
            "epsilon": epsilon_of(results),
            "shots": training_shots(results),
            "queries": training_queries(results),
            "distance": training_distance(results),
            "tasks": s["tasks"],
            "iterations": s["iterations"],
            "seed": s.get("seed", 0),
            "lr_schedule": lr_schedule_of(results),
            "inner_steps": inner_steps_of(results),
            "inner_lr": inner_lr_of(results),
            "meta_batch": meta_batch_of(results),
            "lr": lr_of(results),
            "ema_decay": ema_decay_of(results),
            "temperature": temperature_of(results),
        }
        del recipe[setting]
        return json.dumps(recipe, sort_keys=True)

    return key


def recipe_phrase(results: Results) -> str:
    """``4,000 tasks, 1,000 × 4; GAN `...`; 20-way, `mean-squared```: a setting's brackets (the generator when not
    the bundled GAN, the ways and distance when not the defaults)."""
    s = results["sizes"]
    generator = generator_spec(results)
    parts = (
        f"{s['tasks']:,} tasks, {s['iterations']:,} × {s['meta_batch']}",
        generator_phrase(results["generator"]) if generator != DEFAULT_GENERATOR else "",
        shape_note(results),
    )
    return "; ".join(filter(None, parts))


def setting_lever(
    name: str,
    learner: str,
    folder: str,
    size_key: str,
    is_reference: Callable[[Results], bool],
    order: Callable[[Results], float],
    references: tuple[str, ...] | None = None,
    **kw,
) -> Lever:
    """A lever of the sweeps ``levers/[maml-]<folder>*`` that differ from their recipe's sweep in ``size_key`` alone
    (one comparison per recipe), against the point ``is_reference`` holds for; ``references``: the sweeps that hold
    that point (default :data:`REFERENCES`; empty where the lever's own sweeps hold it)."""
    return Lever(
        name,
        learner,
        (f"{PREFIX[learner]}{folder}*/sweep.json", *(REFERENCES[learner] if references is None else references)),
        tuned_n_points(learner),
        is_reference=lambda r, res: is_reference(res),
        order=lambda r, res: (order(res),),
        needs=lambda r, res: not is_reference(res),
        group=everything_but(size_key),
        across_sources=True,
        **kw,
    )


def _optimisation_lever(
    name: str, learner: str, folder: str, size_key: str, value: Callable[[Results], float], default: float, **kw
) -> Lever:
    """A lever of the sweeps ``levers/[maml-]<folder>*`` against their recipe's sweep at ``default``."""
    return setting_lever(
        name, learner, folder, size_key, lambda res: value(res) == default, lambda res: float(value(res)), **kw
    )


def ema_lever(learner: str) -> Lever:
    """The weights scored: a moving average of the stepped weights (``--ema-decay``; Polyak & Juditsky, 1992) against
    the stepped weights themselves, the authors' and every row's."""

    def setting(row: Row, results: Results) -> str:
        decay = ema_decay_of(results)
        return f"{f'moving average, decay {decay:g}' if decay else 'the stepped weights'} ({recipe_phrase(results)})"

    return _optimisation_lever(
        "moving average of the weights",
        learner,
        "ema",
        "ema_decay",
        ema_decay_of,
        0.0,
        setting=setting,
        reference_name="the stepped weights (no average), as in the authors' code",
    )


def meta_batch_lever(learner: str) -> Lever:
    """Tasks per optimizer step (``--meta-batch``) at one number of steps and distinct tasks, against the authors' 4:
    a larger meta-batch sees more tasks (each distinct task more often) in as many steps, at that much more compute."""
    return _optimisation_lever(
        "meta-batch (tasks per step)",
        learner,
        "meta-batch",
        "meta_batch",
        meta_batch_of,
        REFERENCE_BUDGETS[learner][1],
        setting=lambda r, res: f"meta-batch {meta_batch_of(res)} ({recipe_phrase(res)})",
        reference_name=f"the authors' {REFERENCE_BUDGETS[learner][1]} tasks per step",
    )


def lr_lever(learner: str) -> Lever:
    """Adam's learning rate (``--lr``) at one budget, against lasium-train's 1e-3, the rate every row trains with and
    the authors' rate for MAML. (``levers/adam-lr*``: ``levers/lr-*`` are the learning-rate schedule's sweeps.)"""
    return _optimisation_lever(
        "Adam's learning rate",
        learner,
        "adam-lr",
        "lr",
        lr_of,
        DEFAULT_LR,
        setting=lambda r, res: f"`--lr {lr_of(res):g}` ({recipe_phrase(res)})",
        reference_name=f"lasium-train's {DEFAULT_LR:g}, every row's rate",
    )


def inner_lr_lever() -> Lever:
    """MAML's inner learning rate in training (``--inner-lr``) against the authors' 0.4 (``lr_inner_ml`` of their
    ``models/lasiummamlgan/maml_gan_omniglot.py``; ``docs/reference-facts.md``, Budgets), every MAML row's.
    Validation adapts with the protocol's rate and 50 steps whatever the training took, so a point asks which inner
    rate in training makes the best initialisation for that test-time loop."""
    return _optimisation_lever(
        "inner learning rate in training",
        "maml",
        "inner-lr",
        "inner_lr",
        inner_lr_of,
        DEFAULT_INNER_LR,
        setting=lambda r, res: f"`--inner-lr {inner_lr_of(res):g}` ({recipe_phrase(res)})",
        reference_name=f"the authors' {DEFAULT_INNER_LR:g}, every MAML row's",
    )


def temperature_lever() -> Lever:
    """ProtoNets' softmax temperature (``--temperature``): the logits are minus the distances / T. The distance lever
    found the mean over the D features (T = D against the squared Euclidean distance) worth +0.95 at 20-way; this one
    asks whether another scale on top of it is worth more, against T = 1, every row's."""
    return _optimisation_lever(
        "softmax temperature",
        "protonets",
        "temperature",
        "temperature",
        temperature_of,
        DEFAULT_TEMPERATURE,
        setting=lambda r, res: f"`--temperature {temperature_of(res):g}` ({recipe_phrase(res)})",
        reference_name="T 1: the logits are minus the distances, every row's",
    )
