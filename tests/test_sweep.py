"""``benchmarks/sweep_omniglot.py`` and its page (``sweep_report.py``): the points and stage commands of a sweep,
for ProtoNets (the committed sweep) and for MAML (``--algo maml``: its own preset's shards, its own reference values
on the page). Fast: nothing runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from sweep_omniglot import Point, commands, plan
from sweep_report import reference_value, render


def options(**kw) -> argparse.Namespace:
    base = dict(tasks=2000, iterations=1000, meta_batch=4, val_tasks=300, seed=0, gen_precision="fp32", common=[])
    return argparse.Namespace(**{**base, **kw})


def test_plan_takes_the_given_values_for_every_strategy():
    default = [p for p in plan(1.0, ["oc"]) if p.family == "parameter"]
    assert [p.value for p in default] == [0.2, 0.5, 0.8]
    given = [p for p in plan(1.0, ["ro", "oc"], [0.2, 0.6]) if p.family == "parameter"]
    assert [(p.strategy, p.value) for p in given] == [("ro", 0.2), ("ro", 0.6), ("oc", 0.2), ("oc", 0.6)]


def test_maml_points_train_maml_on_the_maml_preset(tmp_path: Path):
    point = Point("parameter", "oc", "alpha", 0.6, "shift5")
    maml = commands(point, options(algo="maml"), tmp_path)
    assert maml["train"][maml["train"].index("--algo") + 1] == "maml"
    assert maml["gen"][maml["gen"].index("--tuned-for") + 1] == "maml"
    assert maml["gen"][maml["gen"].index("--alpha") + 1] == "0.6"
    # without --algo (the committed ProtoNets sweep, and gan_epoch_curve's reuse) the commands are as they were
    proto = commands(point, options(), tmp_path)
    assert proto["train"][proto["train"].index("--algo") + 1] == "protonets"
    assert proto["gen"][proto["gen"].index("--tuned-for") + 1] == "protonets"


def test_page_judges_each_learner_against_its_own_reference():
    assert (reference_value("protonets", "oc"), reference_value("maml", "oc")) == (0.2, 0.6)

    def row(value: float, one: float, five: float) -> dict:
        point = Point("parameter", "oc", "alpha", value, "shift5")
        val = {
            "1": dict(accuracy_pct=one, ci95_pct=0.5, tasks=300),
            "5": dict(accuracy_pct=five, ci95_pct=0.2, tasks=300),
        }
        return {
            "family": "parameter",
            "strategy": "oc",
            "parameter": "alpha",
            "value": value,
            "augment": "shift5",
            "key": point.key,
            "status": "ok",
            "val": val,
        }

    results = {
        "command": "python benchmarks/sweep_omniglot.py --algo maml",
        "device": "cpu",
        "wall_seconds": 60.0,
        "sizes": dict(tasks=2000, iterations=1000, meta_batch=4, val_tasks=300, seed=0, threads=1, algo="maml"),
        "shared_keys": [],
        "rows": [row(0.2, 85.0, 95.0), row(0.6, 70.0, 90.0)],
        "planned": 2,
        "values": [0.2, 0.6],
    }
    page = render(results)
    assert "for MAML" in page and "`lasium-train --algo maml`" in page and "`--tuned-for maml`" in page
    assert "- `oc`: alpha 0.2 (reference value 0.6, did not hold up)." in page
    results["rows"] = [row(0.2, 60.0, 80.0), row(0.6, 70.0, 90.0)]
    assert "- `oc`: alpha 0.6 (reference value 0.6, held up)." in render(results)
    results["rows"] = results["rows"][:1]  # one of the two values so far: no pick
    assert "1 of 2 values tried so far; no pick yet." in render(results)
