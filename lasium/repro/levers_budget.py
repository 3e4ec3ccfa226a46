"""The budget lever (issue 27): what more iterations and distinct tasks were worth on validation tasks, read three
ways. Sweeps of LASIUM-N at its tuned σ that differ in their budget alone (:data:`BUDGET_SOURCES`, and
:data:`REPEATED_BUDGET_SOURCES` measured again on one machine); the checkpoints along one run at a constant rate
(``lasium-repro step-curve``); and whole runs that anneal their rate, each at its last step, across budgets.
:data:`lasium.repro.levers.LEVERS` lists them with the others."""

from __future__ import annotations

import json
from collections.abc import Callable

from .lever_sizes import (
    Lever,
    Results,
    Row,
    budget_setting,
    budget_size,
    learner_algos,
    lr_schedule_of,
    seed_note,
    sweep_algo,
    tuned_n_points,
    tuned_sigma,
)

# The budget lever's experiments by learner: sweeps of LASIUM-N at its tuned σ (``--only parameter --strategies n
# --values σ``) that differ in their budget alone; the sweep at the smallest budget is the reference. MAML's: its σ
# sweep at 1,000 × 4 and, on the same 4,000 tasks, twice the task draws as twice the steps (``levers/maml-budget*``)
# or twice the meta-batch (``levers/maml-meta-batch*``), the same compute either way.
BUDGET_SOURCES = {
    "protonets": ("sweep-n/sweep.json", "levers/budget*/sweep.json"),
    "maml": (
        "levers/maml-parameter-n/sweep.json",
        "levers/maml-budget*/sweep.json",
        "levers/maml-meta-batch*/sweep.json",
    ),
}


# The same lever measured again on one machine (the AMD EPYC of 2026-12-04/05): MAML's σ 0.5 point at 1,000 and
# 2,000 steps, each at seeds 0 and 1, so that its Δ holds no other CPU's difference.
REPEATED_BUDGET_SOURCES = {
    "maml": (
        "levers/repeat-maml-parameter-n/sweep.json",
        "levers/repeat-maml-parameter-n-seed1/sweep.json",
        "levers/repeat-maml-budget-*/sweep.json",
    ),
}


def budget_lever(learner: str, sources: tuple[str, ...], where: str = "") -> Lever:
    """Compared within one learning-rate schedule and seed: a cosine run's budget against cosine runs only.
    ``where``: what the settings add to say the comparison's points were measured apart from the others."""
    sigma = tuned_sigma(learner)

    def schedule_note(results: Results) -> str:
        schedule = lr_schedule_of(results)
        return f", `{schedule}` rate" if schedule != "constant" else ""

    return Lever(
        "budget (iterations, distinct tasks)",
        learner,
        sources,
        tuned_n_points(learner),
        lambda r, res: f"{budget_setting(r, res)}{schedule_note(res)}{seed_note(res)}{where}",
        f"the smallest budget tried (LASIUM-N σ {sigma:g})",
        order=lambda r, res: budget_size(res),
        group=lambda r, res: f"{lr_schedule_of(res)}{seed_note(res)}",
        across_sources=True,
    )


def run_ways(results: Results, phrase: str = "{}-way ") -> str:
    """``phrase`` with a step curve's run's N where its training tasks were not 5-way, else nothing."""
    ways = results.get("train", {}).get("ways")
    return phrase.format(ways) if ways not in (None, 5) else ""


def _step_budget(results: Results) -> str:
    s = results["sizes"]
    run = f"`{results['run']}`, {s['iterations']:,} × {s['meta_batch']}"
    return f"checkpoints of one run ({run}), {s['val_tasks']} val tasks"


def step_lever(learner: str) -> Lever:
    """The budget lever read off one run (``lasium-repro step-curve``): its checkpoints at several steps."""
    algos = learner_algos(learner)
    return Lever(
        "budget (iterations, distinct tasks)",
        learner,
        ("levers/steps-*/step-curve.json",),
        # an annealed run's earlier checkpoints are not shorter runs of its schedule: no budget points
        lambda r, res: sweep_algo(res) in algos and lr_schedule_of(res) == "constant",
        lambda r, res: f"step {r['step']:,} ({r['tasks_seen']:,} distinct {run_ways(res)}tasks)",
        "the fewest steps scored along the run",
        order=lambda r, res: (float(r["step"]),),
        budget=_step_budget,
    )


def _annealed_run_points(learner: str) -> Callable[[Row, Results], bool]:
    """A step curve's point at the last step of a run that anneals its rate (a whole run of its schedule)."""
    algos = learner_algos(learner)

    def select(row: Row, results: Results) -> bool:
        train = results.get("train", {})
        return (
            train.get("algo") in algos
            and lr_schedule_of(results) != "constant"
            and row.get("step") == train.get("iterations")
        )

    return select


def _annealed_run_group(row: Row, results: Results) -> str:
    """Whole annealed runs compared with each other: their training but for its length, on shard sets named alike
    but for their task count (``n-maml-32000``, ``n-maml-64000``: one recipe of set at two sizes)."""
    tasks = str(results.get("sizes", {}).get("tasks", ""))
    train = {k: v for k, v in results.get("train", {}).items() if k != "iterations" and v is not None}
    train["shards"] = [str(s).replace(tasks, "{tasks}") if tasks else str(s) for s in train.get("shards", [])]
    return json.dumps(train, sort_keys=True)


def annealed_run_lever(learner: str) -> Lever:
    """The budget lever across whole runs that anneal their rate (``--lr-schedule cosine``): each run's last step
    (``lasium-repro step-curve``), against the shortest such run of the same training. An annealed run's earlier
    checkpoints are not shorter runs of its schedule, so only whole runs measure its budget."""
    return Lever(
        "budget (iterations, distinct tasks)",
        learner,
        ("levers/steps-*/step-curve.json",),
        _annealed_run_points(learner),
        lambda r, res: (
            f"{res['train']['iterations']:,} × {res['train']['meta_batch']} ({r['tasks_seen']:,} distinct "
            f"{run_ways(res)}tasks), `{lr_schedule_of(res)}` rate, run `{res['run']}`"
        ),
        "the shortest annealed run of the same training",
        order=lambda r, res: (float(res["train"]["iterations"]),),
        group=_annealed_run_group,
        across_sources=True,
        budget=lambda res: f"whole runs, each scored at its last step, {res['sizes']['val_tasks']} val tasks",
    )
