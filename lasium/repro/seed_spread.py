"""How much a validation point moves when only its run's seed changes: the seed-spread table of the Omniglot page
(issue 27), beside the levers table.

A lever's Δ in the levers table carries the 95% CI of the validation episodes drawn, not of the run: another
``--seed`` draws other tasks from the generator, another initialisation and another task order, and no CI holds that.
Each validation sweep ``levers/<name>-seed<k>`` (k > 0) repeats ``levers/<name>`` at seed k; this module pairs them,
checks that the two differ in their seed alone (the same sizes but the seed, the same generator, the same point key
and, where both rows record it, the same validation episodes: ``lasium-repro sweep`` scores every seed on the episodes
of ``lasium-eval --seed 0``), and reports each point's difference with its CI, √(CI_a² + CI_b²), as the levers table
does. A lever whose Δ is no larger than these differences is not told apart from a change of seed. Nothing is run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .lever_sizes import LEARNERS, Results, Row, budget_setting, learner_algos, lr_schedule_of, shape_note
from .levers_table import difference, machine_of, read_results
from .sweep import DEFAULT_GENERATOR
from .sweep_page import LEARNER_NAMES, generator_phrase

SEED_FOLDER = re.compile(r"^(?P<twin>.+)-seed(?P<seed>[1-9][0-9]*)$")
SHOTS = ("1", "5")
ELSEWHERE_NOTE = (
    "‡ The two seeds' pages do not record one machine in the same numerics (a device without its CPU model, or "
    "another precision): such a Δ may hold the machine's difference too."
)


def _learner(results: Results) -> str | None:
    algo = str(results.get("sizes", {}).get("algo", "protonets"))
    return next((learner for learner in LEARNERS if algo in learner_algos(learner)), None)


def _without_seed(results: Results) -> dict[str, Any]:
    return {k: v for k, v in results.get("sizes", {}).items() if k != "seed"}


def _generator(results: Results) -> Any:
    generator = results.get("generator") or {}
    return generator.get("spec") or generator.get("name") or DEFAULT_GENERATOR, generator.get("weights_sha256")


def seed_twins(original: Results, repeat: Results) -> bool:
    """Whether two sweep pages differ in their seed alone: the same sizes but the seed, the same learner and the same
    generator (name and weights)."""
    return (
        original.get("sizes", {}).get("seed", 0) != repeat.get("sizes", {}).get("seed", 0)
        and _without_seed(original) == _without_seed(repeat)
        and _generator(original) == _generator(repeat)
    )


def _ok_rows(results: Results) -> dict[str, Row]:
    return {r["key"]: r for r in results["rows"] if r.get("status") == "ok" and r.get("val") and r.get("key")}


def _setting(row: Row, results: Results) -> str:
    """``LASIUM-N σ 0.5, `shift5` (4,000 tasks, 1,000 × 4, `cosine` rate; GAN `...`; 20-way)``."""
    symbol = {"sigma": "σ", "alpha": "α"}.get(str(row.get("parameter")), str(row.get("parameter", "")))
    point = (
        f"LASIUM-{str(row.get('strategy', '?')).upper()} {symbol} {row['value']:g}"
        if row.get("value") is not None
        else str(row.get("mix") or row["key"])
    )
    schedule = lr_schedule_of(results)
    recipe = [budget_setting(row, results) + (f", `{schedule}` rate" if schedule != "constant" else "")]
    if _generator(results)[0] != DEFAULT_GENERATOR:
        recipe.append(generator_phrase(results.get("generator")))
    if shape_note(results):
        recipe.append(shape_note(results))
    augment = f", `{row['augment']}`" if row.get("augment") else ""
    return f"{point}{augment} ({'; '.join(recipe)})"


def collect(folder: str | Path) -> list[dict[str, Any]]:
    """Every seed repeat under ``folder``: a dict per point measured at seed 0 (``levers/<name>``) and again at seed
    k (``levers/<name>-seed<k>``), with both validation cells, the difference (repeat − original) with its CI by
    shot, and whether the two were measured on one recorded machine in the same numerics."""
    folder = Path(folder)
    pairs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for path in sorted(folder.glob("levers/*/sweep.json")):
        match = SEED_FOLDER.match(path.parent.name)
        if not match:
            continue
        twin = path.parent.with_name(match["twin"]) / "sweep.json"
        repeat, original = read_results(path), read_results(twin)
        if repeat is None or original is None or not seed_twins(original, repeat):
            continue
        learner = _learner(repeat)
        if learner is None:
            continue
        first, again = _ok_rows(original), _ok_rows(repeat)
        for key in (k for k in first if k in again):
            a, b = first[key], again[key]
            if a.get("episode_digest") and b.get("episode_digest") and a["episode_digest"] != b["episode_digest"]:
                continue  # scored on other episodes: not a change of seed alone
            shots = [s for s in SHOTS if s in a["val"] and s in b["val"]]
            if not shots:
                continue
            pair = {
                "learner": learner,
                "setting": _setting(a, original),
                "seeds": [int(original["sizes"].get("seed", 0)), int(repeat["sizes"]["seed"])],
                "sources": [twin.relative_to(folder).as_posix(), path.relative_to(folder).as_posix()],
                "val": [{s: a["val"][s] for s in shots}, {s: b["val"][s] for s in shots}],
                "delta": {s: difference(b["val"][s], a["val"][s]) for s in shots},
                "elsewhere": machine_of(a, original) != machine_of(b, repeat),
            }
            # one measurement on two pages (a sweep that reused another's runs) counts once
            same = json.dumps([pair["learner"], pair["setting"], pair["seeds"], pair["val"]], sort_keys=True)
            if same not in seen:
                seen.add(same)
                pairs.append(pair)
    return pairs


def _cell(cell: dict[str, Any]) -> str:
    return f"{cell['accuracy_pct']:.2f} ± {cell['ci95_pct']:.2f}"


def table(pairs: list[dict[str, Any]]) -> list[str]:
    """The page's seed-spread table (markdown lines) and a line per learner on the largest difference and how many
    fell inside their CI; [] without a seed repeat."""
    if not pairs:
        return []
    out = [
        "| learner | point | seeds | val 1-shot | val 5-shot | Δ 1-shot | Δ 5-shot | from |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in pairs:
        mark = " ‡" if p["elsewhere"] else ""
        cells = [" → ".join(_cell(v[s]) for v in p["val"]) if s in p["delta"] else "–" for s in SHOTS]
        deltas = [
            f"{p['delta'][s]['pct']:+.2f} ± {p['delta'][s]['ci95_pct']:.2f}{mark}" if s in p["delta"] else "–"
            for s in SHOTS
        ]
        out.append(
            f"| {LEARNER_NAMES.get(p['learner'], p['learner'])} | {p['setting']} | "
            f"{' → '.join(str(s) for s in p['seeds'])} | {cells[0]} | {cells[1]} | {deltas[0]} | {deltas[1]} | "
            f"{', '.join(p['sources'])} |"
        )
    if any(p["elsewhere"] for p in pairs):
        out += ["", ELSEWHERE_NOTE]
    out.append("")
    for learner in LEARNERS:
        mine = [p for p in pairs if p["learner"] == learner]
        if mine:
            out.append(summary_line(learner, mine))
    return out


def summary_line(learner: str, pairs: list[dict[str, Any]]) -> str:
    """``- MAML: 5 points repeated at another seed moved by at most 0.45 / 0.20 points (1-shot / 5-shot); 9 of 10
    differences inside their CI.``"""
    largest = {s: max((abs(p["delta"][s]["pct"]) for p in pairs if s in p["delta"]), default=None) for s in SHOTS}
    deltas = [p["delta"][s] for p in pairs for s in SHOTS if s in p["delta"]]
    inside = sum(abs(d["pct"]) <= d["ci95_pct"] for d in deltas)
    most = " / ".join(f"{largest[s]:.2f}" if largest[s] is not None else "–" for s in SHOTS)
    return (
        f"- {LEARNER_NAMES.get(learner, learner)}: {len(pairs)} point{'s' if len(pairs) != 1 else ''} repeated at "
        f"another seed moved by at most {most} points (1-shot / 5-shot); {inside} of {len(deltas)} differences "
        "inside their CI."
    )
