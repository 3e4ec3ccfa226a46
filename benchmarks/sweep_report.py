"""The page of ``sweep_omniglot.py``: ``sweep.md`` (tables by family, what the sweep picked against the learner's
reference values) and ``sweep.png``, from the ``sweep.json`` the sweep writes after every point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Three values each (the ends and the middle of the range): a 2-core CPU affords ~15 points per session.
PARAMETERS = {"n": ("sigma", (0.5, 1.0, 2.0)), "ro": ("alpha", (0.2, 0.5, 0.8)), "oc": ("alpha", (0.2, 0.5, 0.8))}
LEARNER_NAMES = {"protonets": "ProtoNets", "maml": "MAML", "fomaml": "first-order MAML"}
PRESET_OF = {"protonets": "protonets", "maml": "maml", "fomaml": "maml"}  # --algo -> lasium-gen --tuned-for


def reference_value(algo: str, strategy: str) -> float:
    """The authors' GAN value of σ/α for the learner (DESIGN.md; ``REFERENCE_PARAMETERS``)."""
    from lasium.generate.synthesis.presets import REFERENCE_PARAMETERS

    return REFERENCE_PARAMETERS[PRESET_OF[algo]]["gan"][strategy]


def best_of(rows: list[dict[str, Any]], family: str, strategy: str | None = None) -> dict[str, Any] | None:
    """The row with the highest mean of 1- and 5-shot validation accuracy."""
    ok = [
        r
        for r in rows
        if r["status"] == "ok" and r["family"] == family and (strategy is None or r["strategy"] == strategy)
    ]
    return max(ok, key=lambda r: (r["val"]["1"]["accuracy_pct"] + r["val"]["5"]["accuracy_pct"]) / 2, default=None)


def render(results: dict[str, Any]) -> str:
    rows = results["rows"]
    a = results["sizes"]
    lines = [
        f"# Sweep: LASIUM σ/α and training augmentation for {LEARNER_NAMES[a.get('algo', 'protonets')]}, "
        "Omniglot validation tasks",
        "",
        f"Command: `{results['command']}`. Device: {results['device']}. "
        f"Wall time {results['wall_seconds'] / 60:.0f} min.",
        "",
        f"**Status: {sum(r['status'] == 'ok' for r in rows)} of {results.get('planned', len(rows))} points done**"
        + (
            " (a partial sweep: resume it with `--resume`; what it picked so far may still change)."
            if sum(r["status"] == "ok" for r in rows) < results.get("planned", len(rows))
            else "."
        ),
        "",
        f"Each point: `lasium-gen` {a['tasks']:,} tasks from the "
        f"bundled GAN (`--tuned-for {PRESET_OF[a.get('algo', 'protonets')]}`, seed {a['seed']}) → "
        f"`lasium-train --algo {a.get('algo', 'protonets')}`, {a['iterations']:,} "
        f"iterations × meta-batch {a['meta_batch']} → `lasium-eval "
        f"--split val`: {a['val_tasks']} tasks per K_tr from the 100 **validation** characters (never the test split), "
        "5-way, 15 queries, mean ± 95% CI. Selection score: the mean of the 1- and 5-shot accuracy.",
        "",
    ]
    for family, title, column in (
        ("parameter", "Strategy parameter (augmentation shift5)", "parameter"),
        ("augment", "Training augmentation (LASIUM-N)", "augment"),
    ):
        fam = [
            r for r in rows if r["family"] == family or (family == "parameter" and r["key"] in results["shared_keys"])
        ]
        if family == "parameter":
            fam.sort(key=lambda r: (list(PARAMETERS).index(r["strategy"]), r["value"]))
        if not fam:
            continue
        lines += [f"## {title}", "", f"| strategy | {column} | val 1-shot | val 5-shot |", "|---|---|---|---|"]
        for r in fam:
            what = (
                f"{r['parameter']} {r['value']:g}" if column == "parameter" else f"`{r['augment']}` (σ {r['value']:g})"
            )
            if r["status"] != "ok":
                lines.append(f"| {r['strategy']} | {what} | {r['status']} | |")
                continue
            v = r["val"]
            lines.append(
                f"| {r['strategy']} | {what} | {v['1']['accuracy_pct']:.2f} ± {v['1']['ci95_pct']:.2f} | "
                f"{v['5']['accuracy_pct']:.2f} ± {v['5']['ci95_pct']:.2f} |"
            )
        lines.append("")
    lines += ["## What the sweep picked", ""]
    as_parameter = [dict(r, family="parameter") if r["key"] in results["shared_keys"] else r for r in rows]
    for strategy in PARAMETERS:
        best = best_of(as_parameter, "parameter", strategy)
        tried = sum(
            1 for r in as_parameter if r["status"] == "ok" and r["family"] == "parameter" and r["strategy"] == strategy
        )
        planned = results.get("values") or PARAMETERS[strategy][1]
        if best and tried < len(planned):
            lines.append(f"- `{strategy}`: {tried} of {len(planned)} values tried so far; no pick yet.")
        elif best:
            ref = reference_value(results["sizes"].get("algo", "protonets"), strategy)
            lines.append(
                f"- `{strategy}`: {best['parameter']} {best['value']:g} (reference value {ref:g}"
                f"{', held up' if abs(best['value'] - ref) < 1e-9 else ', did not hold up'})."
            )
    aug = best_of(rows, "augment")
    if aug:
        lines.append(f"- augmentation: `{aug['augment']}`.")
    lines += ["", "![validation accuracy by parameter](sweep.png)", ""]
    return "\n".join(lines)


def draw(results: dict[str, Any], path: Path) -> None:
    from plots import line_chart

    series: dict[str, list[tuple[float, float]]] = {}
    for r in sorted(results["rows"], key=lambda r: r["value"]):
        if (r["family"] == "parameter" or r["key"] in results["shared_keys"]) and r["status"] == "ok":
            for shots in ("1", "5"):
                series.setdefault(f"{r['strategy']} ({r['parameter']}) {shots}-shot", []).append(
                    (r["value"], r["val"][shots]["accuracy_pct"])
                )
    line_chart(
        series,
        path,
        title=f"{LEARNER_NAMES[results['sizes'].get('algo', 'protonets')]} on LASIUM tasks (+shift5): Omniglot val "
        "accuracy",
        xlabel="sigma (n) / alpha (ro, oc)",
        ylabel="val accuracy %",
    )
