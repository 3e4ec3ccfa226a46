"""The levers table of the Omniglot page (issue 27): :func:`collect` reads, for each lever of
:data:`lasium.repro.levers.LEVERS`, its comparisons from the results folder; :func:`table` renders them, a row per point
with its validation accuracy and Δ from its lever's reference, then a line per comparison naming its best point, where
a lever along an axis is spent or the best point's lead over the next setting is inside the CI, and which levers no
experiment has tried yet."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .charts import Estimate, forest_chart
from .levers import LEARNERS, LEVERS, Results, Row
from .sweep_page import LEARNER_NAMES


def accuracy_cell(cell: dict[str, Any] | None) -> str:
    """``91.95 ± 0.40``: a validation cell (accuracy ± its 95% CI, in points), or ``–``."""
    return f"{cell['accuracy_pct']:.2f} ± {cell['ci95_pct']:.2f}" if cell else "–"


def _delta(delta: dict[str, Any] | None, shots: str, reference: bool, elsewhere: bool = False) -> str:
    if reference:
        return "reference"
    if not delta or shots not in delta:
        return "–"
    return f"{delta[shots]['pct']:+.2f} ± {delta[shots]['ci95_pct']:.2f}" + (" ‡" if elsewhere else "")


ELSEWHERE_NOTE = (
    "‡ The point and its reference were not measured on one recorded machine in the same numerics (their pages' "
    "device, and the precision each point trained and scored in, differ or were not recorded): the same command and "
    "seed can score differently on another CPU (MAML's σ 0.5 sweep: 0.77 points at 1-shot, "
    "`levers/repeat-maml-parameter-n`), so such a Δ holds the machine's difference too."
)


def machine_of(row: Row, results: Results) -> tuple[Any, Any, Any]:
    """What a point was measured on, as its page records it: the page's device and the numerics (``--precision``
    resolved) its row records; two points with different records may differ by the machine alone."""
    numerics = row.get("numerics") or {}
    return results.get("device"), numerics.get("train"), numerics.get("score")


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
            budget = c["budget"] if c["budget"] != "by point" else p["budget"]
            elsewhere = p.get("elsewhere", False)
            out.append(
                f"| {c['lever']} | {learner} | {p['setting']} | {accuracy_cell(p['val'].get('1'))} | "
                f"{accuracy_cell(p['val'].get('5'))} | {_delta(p['delta'], '1', p['reference'], elsewhere)} | "
                f"{_delta(p['delta'], '5', p['reference'], elsewhere)} | {budget} | {', '.join(c['sources'])} |"
            )
        best = max(c["points"], key=_mean)
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
            inside = bool(d) and all(abs(d[s]["pct"]) <= d[s]["ci95_pct"] for s in d)
            best_lines.append(
                f"- {c['lever']} ({learner}): best tried {best['setting']}, worth {worth} points (1-shot / 5-shot) "
                f"over the reference ({c['reference_setting']})"
                + (", inside the CI: no measurable gain." if inside else ".")
            )
        if c.get("ordered") and best is not c["points"][-1]:
            best_lines.append(spent_line(c, best, learner))
        elif not best["reference"]:
            best_lines += runner_up_line(c, best, learner)
    elsewhere = any(p.get("elsewhere") for c in comparisons for p in c["points"])
    return [*out, *(["", ELSEWHERE_NOTE] if elsewhere else []), "", *best_lines, *untried_lines(comparisons)]


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


def _mean(point: dict[str, Any]) -> float:
    return sum(point["val"][s]["accuracy_pct"] for s in point["val"]) / len(point["val"])


def runner_up_line(comparison: dict[str, Any], best: dict[str, Any], learner: str) -> list[str]:
    """A line when the best point's lead over the next-best setting other than the reference is inside the CI of
    their difference at every shot (the best setting is no measurable gain over the runner-up); [] otherwise."""
    others = [p for p in comparison["points"] if p is not best and not p["reference"]]
    if not others:
        return []
    runner = max(others, key=_mean)
    d = {s: difference(best["val"][s], runner["val"][s]) for s in ("1", "5") if s in best["val"] and s in runner["val"]}
    if not d or any(abs(v["pct"]) > v["ci95_pct"] for v in d.values()):
        return []
    worth = " / ".join(f"{d[s]['pct']:+.2f} ± {d[s]['ci95_pct']:.2f}" for s in ("1", "5") if s in d)
    return [
        f"- {comparison['lever']} ({learner}): {best['setting']} scores {worth} points (1-shot / 5-shot) against "
        f"{runner['setting']}, a difference inside its CI: no measurable gain over that setting."
    ]


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


CHART_AXES = {"1": 5.0, "5": 2.5}  # half-width of each panel's x axis (points): further differences are arrows


def chart_point(comparison: dict[str, Any]) -> dict[str, Any] | None:
    """The point of a comparison its picture shows: the setting other than the reference with the highest mean
    validation accuracy (the one its "best tried" line names, or, where the reference is best, the closest the others
    came); on an axis (budget, generator epochs), the largest setting tried, so that a noisy peak along the axis is not
    what the picture shows. None where the comparison has no reference point."""
    others = [p for p in comparison["points"] if p["delta"]]
    if not others:
        return None
    return others[-1] if comparison.get("ordered") else max(others, key=_mean)


def chart_estimates(comparisons: list[dict[str, Any]], shots: str) -> list[Estimate]:
    """An estimate per comparison at ``shots``: the Δ of its :func:`chart_point` from the reference, with its CI, on
    the row "learner · lever" (ProtoNets' levers first, each learner's in the order of :data:`LEVERS`), at the same
    slot of that row whatever ``shots``; ‡ points (another machine or numerics than the reference) are marked."""
    out: list[Estimate] = []
    slots: dict[str, int] = {}
    for learner in LEARNERS:
        for c in comparisons:
            point = chart_point(c) if c["learner"] == learner else None
            if point is None:
                continue
            row = f"{LEARNER_NAMES[learner]} · {c['lever']}"
            slot = slots[row] = slots.get(row, -1) + 1
            if shots in point["delta"]:
                d = point["delta"][shots]
                out.append(Estimate(row, d["pct"], d["ci95_pct"], slot, bool(point.get("elsewhere"))))
    return out


def draw_chart(comparisons: list[dict[str, Any]], path: Path) -> Path:
    """What each lever was worth as a picture: per comparison, its :func:`chart_point`'s Δ from the reference with
    the 95% CI of the difference, at 1 and 5 shots (:func:`lasium.repro.charts.forest_chart`)."""
    panels = {f"{s}-shot": (chart_estimates(comparisons, s), CHART_AXES[s]) for s in ("1", "5")}
    return forest_chart(
        panels,
        path,
        title="Levers on validation tasks: each comparison's best other setting (on an axis: its largest) against its "
        "reference",
        xlabel="Δ validation accuracy (points), 95% CI",
        elsewhere_label="‡ its reference measured elsewhere",
    )


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    return {
        "pct": round(a["accuracy_pct"] - b["accuracy_pct"], 2),
        "ci95_pct": round(math.hypot(a["ci95_pct"], b["ci95_pct"]), 2),
    }


def read_results(path: Path) -> Results | None:
    """A validation experiment's results JSON (a dict with a list of rows), or None where it cannot be read."""
    try:
        results = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return results if isinstance(results, dict) and isinstance(results.get("rows"), list) else None


def _budget_phrase(results: Results) -> str:
    s = results.get("sizes", {})
    return (
        f"{s.get('tasks', '?'):,} tasks, {s.get('iterations', '?'):,} × {s.get('meta_batch', '?')}, "
        f"{s.get('val_tasks', '?')} val tasks"
    )


def collect(folder: str | Path) -> list[dict[str, Any]]:
    """Every lever comparison the results under ``folder`` hold: a dict per comparison with the lever, the learner,
    the experiments it came from, the reference point and every point with its difference from the reference
    (``delta``: by shot, ``pct`` and ``ci95_pct``; None where the comparison has no reference point)."""
    folder = Path(folder)
    comparisons: list[dict[str, Any]] = []
    for lever in LEVERS:
        found: list[tuple[str, Results]] = []
        for pattern in lever.sources:
            for path in sorted(folder.glob(pattern)):
                results = read_results(path)
                if results is not None:
                    found.append((path.relative_to(folder).as_posix(), results))
        groups: dict[tuple[str, str], list[tuple[Row, Results, str]]] = {}
        for source, results in found:
            for row in results["rows"]:
                if row.get("status") == "ok" and row.get("val") and lever.select(row, results):
                    key = ("" if lever.across_sources else source, lever.group(row, results))
                    groups.setdefault(key, []).append((row, results, source))
        for points in groups.values():
            if lever.order is not None:
                order = lever.order
                points.sort(key=lambda p: order(p[0], p[1]))
            if lever.is_reference is not None:
                reference = next((p for p in points if lever.is_reference(p[0], p[1])), None)
            else:
                reference = points[0]
            if len(points) < 2 or (lever.needs and not any(lever.needs(p[0], p[1]) for p in points)):
                continue  # nothing to compare
            entry: dict[str, Any] = {
                "lever": lever.name,
                "learner": lever.learner,
                "sources": sorted({p[2] for p in points}),
                "budget": "by point" if lever.across_sources else (lever.budget or _budget_phrase)(points[0][1]),
                "reference": lever.reference_name,
                "reference_setting": lever.setting(reference[0], reference[1]) if reference else None,
                "ordered": lever.is_reference is None and lever.order is not None,  # an axis: budgets, epochs
                "points": [],
            }
            for row, results, _source in points:
                val = {s: row["val"][s] for s in ("1", "5") if s in row["val"]}
                delta = None
                if reference is not None and row is not reference[0]:
                    delta = {s: difference(val[s], reference[0]["val"][s]) for s in val if s in reference[0]["val"]}
                entry["points"].append(
                    {
                        "setting": lever.setting(row, results),
                        "budget": (lever.budget or _budget_phrase)(results),
                        "reference": reference is not None and row is reference[0],
                        "val": val,
                        "delta": delta,
                        # measured on another (or an unrecorded) machine or in other numerics than its reference
                        "elsewhere": reference is not None
                        and delta is not None
                        and machine_of(row, results) != machine_of(reference[0], reference[1]),
                    }
                )
            comparisons.append(entry)
    return comparisons
