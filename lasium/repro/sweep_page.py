"""The page of ``lasium-repro sweep``: ``sweep.md`` (tables by family, what the sweep picked against the learner's
reference values) and its charts, from the ``sweep.json`` the sweep writes after every point (``lasium-repro page
sweep.json`` redraws them from it alone)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lasium.safe_io import replace_atomically

from .charts import ChartsUnavailable, accuracy_chart, panels_chart

# Three values each (the ends and the middle of the range): a 2-core CPU affords ~15 points per session.
PARAMETERS = {"n": ("sigma", (0.5, 1.0, 2.0)), "ro": ("alpha", (0.2, 0.5, 0.8)), "oc": ("alpha", (0.2, 0.5, 0.8))}
LEARNER_NAMES = {"protonets": "ProtoNets", "maml": "MAML", "fomaml": "first-order MAML"}
PRESET_OF = {"protonets": "protonets", "maml": "maml", "fomaml": "maml"}  # --algo -> lasium-gen --tuned-for


def reference_value(algo: str, strategy: str, kind: str = "gan") -> float:
    """The authors' value of σ/α for the learner and generator kind (``REFERENCE_PARAMETERS``;
    ``docs/reference-facts.md``, "Reference σ and α")."""
    from lasium.generate import REFERENCE_PARAMETERS

    return REFERENCE_PARAMETERS[PRESET_OF[algo]]["vae" if kind == "vae" else "gan"][strategy]


def generator_kind(results: dict[str, Any]) -> str:
    """The kind of generator a sweep's points used (``gan`` for pages that record none: the bundled GAN)."""
    return str((results.get("generator") or {}).get("kind") or "gan")


def best_of(rows: list[dict[str, Any]], family: str, strategy: str | None = None) -> dict[str, Any] | None:
    """The row with the highest mean of 1- and 5-shot validation accuracy."""
    ok = [
        r
        for r in rows
        if r["status"] == "ok" and r["family"] == family and (strategy is None or r["strategy"] == strategy)
    ]
    return max(ok, key=lambda r: (r["val"]["1"]["accuracy_pct"] + r["val"]["5"]["accuracy_pct"]) / 2, default=None)


def generator_phrase(record: dict[str, Any] | None) -> str:
    """The generator of a sweep's points as the page names it (pages written before it was recorded: the bundled GAN,
    the only generator a sweep could use then)."""
    if not record:
        return "bundled GAN"
    name = record.get("spec") or record.get("name")
    return (
        f"{str(record.get('kind', '?')).upper()} `{name}` (weights sha256 `{str(record.get('weights_sha256'))[:12]}`)"
    )


FAMILY_TITLES = {"parameter": "LASIUM σ/α", "augment": "training augmentation", "mixture": "task mixtures"}


def title_of(rows: list[dict[str, Any]]) -> str:
    """What a sweep compared, by the families of its points: "LASIUM σ/α and training augmentation", ..."""
    families = [f for f in FAMILY_TITLES if any(r.get("family") == f for r in rows)] or ["parameter"]
    names = [FAMILY_TITLES[f] for f in families]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _epsilon_sentence(epsilon: float | None) -> str:
    """What the page says of ``lasium-gen --epsilon`` (None: nothing, lasium-gen's default)."""
    if epsilon is None:
        return ""
    if epsilon == 0:
        return " Anchors drawn independently (`lasium-gen --epsilon 0`: no least distance)."
    return f" Anchors at least ε {epsilon:g} apart (`lasium-gen --epsilon`)."


def numerics_sentence(rows: list[dict[str, Any]]) -> str:
    """``Numerics: trained in bf16, scored in bf16. ``: what the points' ``--precision`` resolved to (``auto`` is bf16
    on a machine with native bf16 and fp32 elsewhere, so two machines can run one command in different numerics);
    empty for pages written before the rows recorded it."""
    seen = {(n.get("train"), n.get("score")) for r in rows if (n := r.get("numerics"))}
    if not seen:
        return ""
    if len(seen) > 1:
        return "Numerics: they differ between points (each row's `numerics`). "
    train, score = seen.pop()
    return f"Numerics: trained in {train or 'unrecorded'}, scored in {score or 'unrecorded'}. "


def render(results: dict[str, Any], charts: tuple[str, ...] = ("sweep.png",)) -> str:
    """The page (markdown); ``charts``: the chart files beside it, linked at the end."""
    rows = results["rows"]
    a = results["sizes"]
    lines = [
        f"# Sweep: {title_of(rows)} for {LEARNER_NAMES[a.get('algo', 'protonets')]}, Omniglot validation tasks",
        "",
        f"Command: `{results['command']}`. Device: {results['device']}. "
        + numerics_sentence(rows)
        + f"Wall time {results['wall_seconds'] / 60:.0f} min.",
        "",
        f"**Status: {sum(r['status'] == 'ok' for r in rows)} of {results.get('planned', len(rows))} points done**"
        + (
            " (a partial sweep: resume it with `--resume`; what it picked so far may still change)."
            if sum(r["status"] == "ok" for r in rows) < results.get("planned", len(rows))
            else "."
        ),
        "",
        f"Each point: `lasium-gen` {a['tasks']:,} "
        + (f"{a['shots']}-shot " if a.get("shots", 1) != 1 else "")
        + (f"{a['ways']}-way " if a.get("ways", 5) != 5 else "")
        + "tasks from the "
        f"{generator_phrase(results.get('generator'))} (`--tuned-for {PRESET_OF[a.get('algo', 'protonets')]}`, "
        f"seed {a['seed']}) → "
        f"`lasium-train --algo {a.get('algo', 'protonets')}`, {a['iterations']:,} "
        f"iterations × meta-batch {a['meta_batch']} → `lasium-eval "
        f"--split val`: {a['val_tasks']} tasks per K_tr from the 100 **validation** characters (never the test split), "
        "5-way, 15 queries, mean ± 95% CI. Selection score: the mean of the 1- and 5-shot accuracy."
        + (f" Training tasks are {a['ways']}-way; validation stays 5-way." if a.get("ways", 5) != 5 else "")
        + (
            f" Training tasks are {a.get('shots', 1)}-shot ({a.get('queries', 5)} queries per class)."
            if a.get("shots", 1) != 1 or a.get("queries", 5) != 5
            else ""
        )
        + _epsilon_sentence(a.get("epsilon"))
        + (
            f" Learning rate: `--lr-schedule {a['lr_schedule']}`."
            if a.get("lr_schedule", "constant") != "constant"
            else ""
        )
        + (f" Distance to the prototypes: `--distance {a['distance']}`." if a.get("distance") else "")
        + (
            f" Softmax temperature of the distances: `--temperature {a['temperature']:g}`."
            if a.get("temperature")
            else ""
        )
        + (f" MAML inner steps in training: `--inner-steps {a['inner_steps']}`." if a.get("inner_steps") else "")
        + (f" MAML inner learning rate in training: `--inner-lr {a['inner_lr']:g}`." if a.get("inner_lr") else "")
        + (f" Adam's learning rate: `--lr {a['lr']:g}`." if a.get("lr") else "")
        + (f" Training and scoring numerics: `--precision {a['precision']}`." if a.get("precision") else "")
        + (
            f" Scored: a moving average of the weights (`lasium-train --ema-decay {a['ema_decay']:g}`)."
            if a.get("ema_decay")
            else ""
        ),
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
    mixed = [r for r in rows if r["family"] == "mixture"]
    if mixed:
        lines += [
            "## Task mixtures",
            "",
            "Each source's set has the point's task count (UMTRA: `lasium-gen --source umtra` defaults; LASIUM: the "
            "`--tuned-for` σ/α, on the sweep's generator, or on the one a source names after `@`); `lasium-train` "
            "draws each task from a set with the given weight.",
            "",
            "| mixture | augment | val 1-shot | val 5-shot |",
            "|---|---|---|---|",
        ]
        for r in mixed:
            what = " + ".join(part.replace(":", " × ") for part in r["mix"].split("+"))
            if r["status"] != "ok":
                lines.append(f"| {what} | `{r['augment']}` | {r['status']} | |")
                continue
            v = r["val"]
            lines.append(
                f"| {what} | `{r['augment']}` | {v['1']['accuracy_pct']:.2f} ± {v['1']['ci95_pct']:.2f} | "
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
            ref = reference_value(results["sizes"].get("algo", "protonets"), strategy, generator_kind(results))
            lines.append(
                f"- `{strategy}`: {best['parameter']} {best['value']:g} (reference value {ref:g}"
                f"{', held up' if abs(best['value'] - ref) < 1e-9 else ', did not hold up'})."
            )
    aug = best_of(rows, "augment")
    if aug:
        lines.append(f"- augmentation: `{aug['augment']}`.")
    mix = best_of(rows, "mixture")
    if mix:
        lines.append(f"- task mixture: `{mix['mix']}` (with `{mix['augment']}`).")
    lines.append("")
    for name in charts:
        lines += [f"![{CHART_TITLES.get(name, name)}]({name})", ""]
    return "\n".join(lines)


PARAMETER_CHART, AUGMENT_CHART, MIXTURE_CHART = "sweep.png", "sweep-augment.png", "sweep-mixture.png"
CHART_TITLES = {
    PARAMETER_CHART: "validation accuracy by parameter",
    AUGMENT_CHART: "validation accuracy by training augmentation",
    MIXTURE_CHART: "validation accuracy by task mixture",
}
STRATEGY_TITLES = {"n": "LASIUM-N", "ro": "LASIUM-RO", "oc": "LASIUM-OC"}


def draw(results: dict[str, Any], folder: Path) -> tuple[str, ...]:
    """Draw the sweep's charts into ``folder``; return their file names.

    ``sweep.png``: validation accuracy against σ/α, a panel per strategy, 1- and 5-shot with 95% CI error bars.
    ``sweep-augment.png``: validation accuracy of each training augmentation, with its CI."""
    learner = LEARNER_NAMES[results["sizes"].get("algo", "protonets")]
    drawn = []
    panels: dict[str, tuple[str, dict[str, list[tuple[float, float, float]]]]] = {}
    points = [
        r
        for r in results["rows"]
        if (r["family"] == "parameter" or r["key"] in results["shared_keys"]) and r["status"] == "ok"
    ]
    order = list(PARAMETERS)
    for r in sorted(points, key=lambda r: (order.index(r["strategy"]) if r["strategy"] in order else 99, r["value"])):
        symbol, meaning = ("σ", "standard deviation") if r["parameter"] == "sigma" else ("α", "interpolation weight")
        title = f"{STRATEGY_TITLES.get(r['strategy'], r['strategy'])} ({symbol})"
        series = panels.setdefault(title, (f"{symbol} ({meaning})", {}))[1]
        for shots in ("1", "5"):
            cell = r["val"][shots]
            series.setdefault(f"{shots}-shot", []).append((r["value"], cell["accuracy_pct"], cell["ci95_pct"]))
    if panels:
        panels_chart(
            panels,
            folder / PARAMETER_CHART,
            title=f"{learner} on LASIUM tasks (+ shift5): Omniglot validation accuracy, 95% CI",
            ylabel="validation accuracy (%)",
        )
        drawn.append(PARAMETER_CHART)
    augments = [
        {"label": f"{r['augment']} (σ {r['value']:g})", "eval": r["val"]}
        for r in results["rows"]
        if r["family"] == "augment" and r["status"] == "ok"
    ]
    if augments:
        accuracy_chart(
            augments,
            folder / AUGMENT_CHART,
            title=f"{learner} on LASIUM-N tasks: Omniglot validation accuracy by training augmentation",
        )
        drawn.append(AUGMENT_CHART)
    mixtures = [
        {"label": f"{r['mix']} ({r['augment']})", "eval": r["val"]}
        for r in results["rows"]
        if r["family"] == "mixture" and r["status"] == "ok"
    ]
    if mixtures:
        accuracy_chart(
            mixtures,
            folder / MIXTURE_CHART,
            title=f"{learner} on task mixtures: Omniglot validation accuracy",
        )
        drawn.append(MIXTURE_CHART)
    return tuple(drawn)


def write_page(results: dict[str, Any], folder: Path, *, write_json: bool = True) -> tuple[str, ...]:
    """Draw the charts and write ``sweep.md`` (and, with ``write_json``, ``sweep.json``) into ``folder``; return the
    chart names. Without matplotlib the page is written without charts."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    try:
        charts = draw(results, folder)
    except ChartsUnavailable as exc:
        print(f"[sweep] no charts: {exc}", file=sys.stderr)
        charts = ()
    if write_json:
        text = json.dumps(results, indent=2) + "\n"
        replace_atomically(folder / "sweep.json", lambda tmp: tmp.write_text(text))
    replace_atomically(folder / "sweep.md", lambda tmp: tmp.write_text(render(results, charts)))
    return charts
