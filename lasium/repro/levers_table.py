"""The levers table of the Omniglot page (issue 27), from the comparisons :func:`lasium.repro.levers.collect` reads:
a row per point with its validation accuracy and Δ from its lever's reference, then a line per comparison naming its
best point, where a lever along an axis is spent, and which levers no experiment has tried yet."""

from __future__ import annotations

from typing import Any

from .levers import LEARNERS, LEVERS, difference
from .sweep_page import LEARNER_NAMES


def _cell(cell: dict[str, Any] | None) -> str:
    return f"{cell['accuracy_pct']:.2f} ± {cell['ci95_pct']:.2f}" if cell else "–"


def _delta(delta: dict[str, Any] | None, shots: str, reference: bool) -> str:
    if reference:
        return "reference"
    if not delta or shots not in delta:
        return "–"
    return f"{delta[shots]['pct']:+.2f} ± {delta[shots]['ci95_pct']:.2f}"


def table(comparisons: list[dict[str, Any]]) -> list[str]:
    """The page's levers table (markdown lines), then a line per comparison naming its best point; [] when no lever
    has two points yet."""
    if not comparisons:
        return []
    out = [
        "| lever | learner | setting | val 1-shot | val 5-shot | Δ 1-shot | Δ 5-shot | budget | from |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    best_lines = []
    for c in comparisons:
        learner = LEARNER_NAMES.get(c["learner"], c["learner"])
        for p in c["points"]:
            budget = c["budget"] if c["budget"] != "by point" else p["setting"]
            out.append(
                f"| {c['lever']} | {learner} | {p['setting']} | {_cell(p['val'].get('1'))} | "
                f"{_cell(p['val'].get('5'))} | {_delta(p['delta'], '1', p['reference'])} | "
                f"{_delta(p['delta'], '5', p['reference'])} | {budget} | {', '.join(c['sources'])} |"
            )
        best = max(c["points"], key=lambda p: sum(p["val"][s]["accuracy_pct"] for s in p["val"]) / len(p["val"]))
        if c["reference_setting"] is None:
            best_lines.append(
                f"- {c['lever']} ({learner}, {', '.join(c['sources'])}): best tried {best['setting']}; no point at the "
                f"reference ({c['reference']}) in this experiment, so no Δ."
            )
        elif best["reference"]:
            best_lines.append(
                f"- {c['lever']} ({learner}): the reference ({c['reference_setting']}) is the best setting tried: "
                "nothing more found in this lever."
            )
        else:
            d = best["delta"] or {}
            worth = " / ".join(f"{d[s]['pct']:+.2f} ± {d[s]['ci95_pct']:.2f}" for s in ("1", "5") if s in d)
            best_lines.append(
                f"- {c['lever']} ({learner}): best tried {best['setting']}, worth {worth} points (1-shot / 5-shot) "
                f"over the reference ({c['reference_setting']})."
            )
        if c.get("ordered") and best is not c["points"][-1]:
            best_lines.append(spent_line(c, best, learner))
    return [*out, "", *best_lines, *untried_lines(comparisons)]


def spent_line(comparison: dict[str, Any], best: dict[str, Any], learner: str) -> str:
    """The line saying a lever along an axis (budget, generator epochs) stopped paying: the largest setting tried
    against the best one, with the CI of the difference."""
    last = comparison["points"][-1]
    d = {s: difference(last["val"][s], best["val"][s]) for s in ("1", "5") if s in last["val"] and s in best["val"]}
    worth = " / ".join(f"{d[s]['pct']:+.2f} ± {d[s]['ci95_pct']:.2f}" for s in ("1", "5") if s in d)
    return (
        f"- {comparison['lever']} ({learner}): spent past {best['setting']}: the largest setting tried "
        f"({last['setting']}) scores {worth} points (1-shot / 5-shot) against it."
    )


def untried_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    """A line per learner naming the levers of :data:`LEVERS` no experiment in the folder has compared yet."""
    tried = {(c["lever"], c["learner"]) for c in comparisons}
    lines = []
    for learner in LEARNERS:
        name = LEARNER_NAMES[learner]
        untried = [lv.name for lv in LEVERS if lv.learner == learner and (lv.name, learner) not in tried]
        if untried:
            lines.append(f"- Not tried yet with {name}: {', '.join(dict.fromkeys(untried))}.")
    return lines
