"""How much a validation point moves when only its run's seed changes: the seed-spread table of the Omniglot page
(issue 27), beside the levers table.

A lever's Δ in the levers table carries the 95% CI of the validation episodes drawn, not of the run: another
``--seed`` draws other tasks from the generator, another initialisation and another task order, and no CI holds that.
Each validation sweep ``levers/<name>-seed<k>`` (k > 0) repeats ``levers/<name>`` at seed k; this module pairs them
when they differ in that seed alone: the page records seed k, the sizes but the seed and the generator's weights are
the same, and so is each point's key, its stage commands but the seed and the work folder (where both pages record
them) and its validation episodes (where both rows record their digest). Each point's difference gets the CI the
levers table uses, √(CI_a² + CI_b²): unpaired, so conservative for two runs scored on one set of episodes, as
``lasium-repro sweep`` scores every seed (``lasium-eval --seed 0``). Nothing is run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from .lever_sizes import (
    LEARNERS,
    Results,
    Row,
    budget_setting,
    generator_identity,
    lr_schedule_of,
    sweep_algo,
)
from .levers import SYMBOLS, recipe_note
from .levers_table import accuracy_cell, difference, machine_of, read_results
from .stages import canonical, page_work
from .sweep_page import LEARNER_NAMES, PRESET_OF

SEED_FOLDER = re.compile(r"^(?P<twin>.+)-seed(?P<seed>[1-9][0-9]*)$")
SHOTS = ("1", "5")  # the page's shots, as the levers table keys them
SEEDED_STAGES = ("gen", "train")  # the stages whose --seed is the run's; scoring keeps lasium-eval --seed 0
# A device record that names no CPU model: two such pages may be two machines (records.machine names the model).
UNNAMED_MACHINE = re.compile(r"^(\w+ CPU, \d+ cores|cpu|x86_64)?$")
SEED_ELSEWHERE_NOTE = (
    "‡ The two seeds' points were not measured on one recorded machine in the same numerics (their pages' device, "
    "or the precision each point trained and scored in, differ, or a page names no CPU model): such a Δ may hold the "
    "machine's difference too."
)


def _learner(results: Results) -> str | None:
    return PRESET_OF.get(sweep_algo(results))


def _seed(results: Results) -> int:
    return int(results.get("sizes", {}).get("seed", 0))


def seed_twins(original: Results, repeat: Results) -> bool:
    """Whether two sweep pages differ in their seed alone, as far as their sizes and generator say: the same sizes but
    the seed and the same generator weights (:func:`~lasium.repro.lever_sizes.generator_identity`)."""
    sizes = [{k: v for k, v in r.get("sizes", {}).items() if k != "seed"} for r in (original, repeat)]
    return (
        _seed(original) != _seed(repeat)
        and sizes[0] == sizes[1]
        and all(k in sizes[0] for k in ("tasks", "iterations", "meta_batch"))
        and generator_identity(original) == generator_identity(repeat)
    )


def _commands_but_seed(row: Row, results: Results) -> dict[str, list[str]] | None:
    """A row's stage commands with the work folder as a placeholder and the run's seed blanked; None where the page
    records none."""
    commands = row.get("commands")
    if not isinstance(commands, dict) or not commands:
        return None
    work = page_work(results)
    out = {}
    for stage, command in commands.items():
        words = shlex.split(canonical(str(command), work))
        if stage in SEEDED_STAGES:
            words = ["SEED" if before == "--seed" else w for before, w in zip(["", *words[:-1]], words, strict=True)]
        out[stage] = words
    return out


def same_point_but_seed(a: Row, original: Results, b: Row, repeat: Results) -> bool:
    """Whether two rows of seed-twin pages are one point: the same stage commands but the seed and work folder
    (where both pages record them) and the same validation episodes (where both rows record their digest)."""
    first, again = _commands_but_seed(a, original), _commands_but_seed(b, repeat)
    if first is not None and again is not None and first != again:
        return False
    digests = a.get("episode_digest"), b.get("episode_digest")
    return not all(digests) or digests[0] == digests[1]


def _ok_rows(results: Results) -> dict[str, Row]:
    return {r["key"]: r for r in results["rows"] if r.get("status") == "ok" and r.get("val") and r.get("key")}


def _named_machine(results: Results) -> bool:
    device = results.get("device")
    return isinstance(device, str) and not UNNAMED_MACHINE.match(device)


def _setting(row: Row, results: Results) -> str:
    """``LASIUM-N σ 0.5, `shift5` (4,000 tasks, 1,000 × 4, `cosine` rate; GAN `...`, 20-way)``."""
    symbol = SYMBOLS.get(str(row.get("parameter")), str(row.get("parameter", "")))
    point = (
        f"LASIUM-{str(row.get('strategy', '?')).upper()} {symbol} {row['value']:g}"
        if row.get("value") is not None
        else str(row.get("mix") or row["key"])
    )
    schedule = lr_schedule_of(results)
    recipe = [budget_setting(row, results) + (f", `{schedule}` rate" if schedule != "constant" else "")]
    if recipe_note(results):
        recipe.append(recipe_note(results))
    augment = f", `{row['augment']}`" if row.get("augment") else ""
    return f"{point}{augment} ({'; '.join(recipe)})"


def collect(folder: str | Path) -> dict[str, Any]:
    """The seed repeats under ``folder``: ``pairs``, a dict per point measured at seed 0 (``levers/<name>``) and again
    at seed k (``levers/<name>-seed<k>``), with both validation cells, the difference (repeat − original) with its CI
    by shot and whether the two were measured on one recorded machine in the same numerics; ``unpaired``, the
    ``-seed<k>`` sweeps no page pairs with."""
    folder = Path(folder)
    pairs: dict[str, dict[str, Any]] = {}  # by the two rows' scoring commands: one measurement on two pages is one
    unpaired: list[str] = []
    for path in sorted(folder.glob("levers/*/sweep.json")):
        match = SEED_FOLDER.match(path.parent.name)
        if not match:
            continue
        twin = path.parent.with_name(match["twin"]) / "sweep.json"
        repeat, original = read_results(path), read_results(twin)
        source = path.relative_to(folder).as_posix()
        if (
            repeat is None
            or original is None
            or _seed(repeat) != int(match["seed"])
            or not seed_twins(original, repeat)
            or _learner(repeat) is None
        ):
            unpaired.append(source)
            continue
        found = 0
        first, again = _ok_rows(original), _ok_rows(repeat)
        for key in (k for k in first if k in again):
            a, b = first[key], again[key]
            shots = [s for s in SHOTS if s in a["val"] and s in b["val"]]
            if not shots or not same_point_but_seed(a, original, b, repeat):
                continue
            found += 1
            sources = [twin.relative_to(folder).as_posix(), source]
            same = repr([(a.get("commands") or {}).get("eval"), (b.get("commands") or {}).get("eval"), a["val"]])
            if same in pairs:  # a sweep that reused another's runs: the same measurement, named once
                pairs[same]["sources"] = sorted({*pairs[same]["sources"], *sources})
                continue
            pairs[same] = {
                "learner": _learner(repeat),
                "setting": _setting(a, original),
                "seeds": [_seed(original), _seed(repeat)],
                "sources": sources,
                "val": [{s: a["val"][s] for s in shots}, {s: b["val"][s] for s in shots}],
                "delta": {s: difference(b["val"][s], a["val"][s]) for s in shots},
                "elsewhere": machine_of(a, original) != machine_of(b, repeat)
                or not (_named_machine(original) and _named_machine(repeat)),
            }
        if not found:
            unpaired.append(source)
    return {"pairs": list(pairs.values()), "unpaired": unpaired} if pairs or unpaired else {}


def table(spread: dict[str, Any]) -> list[str]:
    """The page's seed-spread table (markdown lines), a line per learner on the largest difference and how many fell
    inside their CI, and a line naming the ``-seed<k>`` sweeps left unpaired; [] when there are none."""
    pairs, unpaired = spread.get("pairs") or [], spread.get("unpaired") or []
    out: list[str] = []
    if pairs:
        out += [
            "| learner | point | seeds | val 1-shot | val 5-shot | Δ 1-shot | Δ 5-shot | from |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for p in pairs:
        mark = " ‡" if p["elsewhere"] else ""
        cells = [" → ".join(accuracy_cell(v.get(s)) for v in p["val"]) if s in p["delta"] else "–" for s in SHOTS]
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
        out += ["", SEED_ELSEWHERE_NOTE]
    if out:
        out.append("")
    for learner in LEARNERS:
        mine = [p for p in pairs if p["learner"] == learner]
        if mine:
            out.append(summary_line(learner, mine))
    if unpaired:
        out.append(
            f"- Not paired (no `levers/<name>` page that differs from it in the seed alone): {', '.join(unpaired)}."
        )
    return out


def summary_line(learner: str, pairs: list[dict[str, Any]]) -> str:
    """``- MAML: 2 points repeated at another seed moved by at most 1.00 / 0.20 points (1-shot / 5-shot); 3 of 4
    differences inside their (unpaired) CI.``"""
    largest = {s: max((abs(p["delta"][s]["pct"]) for p in pairs if s in p["delta"]), default=None) for s in SHOTS}
    deltas = [p["delta"][s] for p in pairs for s in SHOTS if s in p["delta"]]
    inside = sum(abs(d["pct"]) <= d["ci95_pct"] for d in deltas)
    most = " / ".join(f"{largest[s]:.2f}" if largest[s] is not None else "–" for s in SHOTS)
    return (
        f"- {LEARNER_NAMES.get(learner, learner)}: {len(pairs)} point{'s' if len(pairs) != 1 else ''} repeated at "
        f"another seed moved by at most {most} points (1-shot / 5-shot); {inside} of {len(deltas)} differences "
        "inside their (unpaired) CI."
    )
