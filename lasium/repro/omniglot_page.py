"""The Omniglot reproduction page: ``omniglot.md`` and its charts from the results dict of
:class:`~lasium.repro.pipeline.Pipeline` (the same dict is saved as ``omniglot.json``, and
``lasium-repro page omniglot.json`` redraws the page from it alone).

The dict holds ``label`` (e.g. "reduced configuration, CPU"), ``device``, ``wall_seconds``, ``sizes``,
``generator``, ``stages`` (name, status, seconds, command, note), ``rows`` (one per method of ours: key,
label, algo, status, ``eval`` {"1": {"accuracy_pct", "ci95_pct"}, ...}, ``episode_digest``, ``train``,
``val_curve``) and ``images``. Everything here only formats and draws: no figure is computed or assumed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lasium.safe_io import replace_atomically, write_json_atomic

from .charts import ChartsUnavailable, accuracy_chart, line_chart
from .curve_page import GENERATOR_KINDS, page_name
from .levers_table import collect as collect_levers
from .levers_table import draw_chart as draw_levers_chart
from .levers_table import table as lever_table
from .omniglot_tables import (
    ablation_table,
    accuracy_table,
    every_row_lines,
    generator_table,
    machines_note,
    other_sources_table,
    stage_table,
    target_lines,
    tasks_scored,
    vae_table,
)
from .other_gan import other_gan_table
from .published import PROJECT_TARGETS, TARGETS, UNSUPERVISED_FAMILIES, UNSUPERVISED_TARGETS, at_reference_budgets
from .seed_spread import collect as collect_seed_spread
from .seed_spread import table as seed_table


def render_markdown(results: dict[str, Any]) -> str:
    """The whole page."""
    dev = results.get("device", {})
    rows = results.get("rows", [])
    protocol = results.get("protocol", {})
    budget = results.get("budget_seconds")
    lines = [
        "# LASIUM on Omniglot: reproduction",
        "",
        f"**{results.get('label', '')}**: device {dev.get('name', '?')} "
        f"({dev.get('type', '?')}, torch {dev.get('torch', '?')}), "
        f"started {results.get('started', '?')}, wall time {results.get('wall_seconds', 0):.0f} s"
        + (
            f" in the last invocation ({results.get('stage_seconds', 0):.0f} s of stages in all; "
            "the run was resumed and "
            "reuses stages an earlier invocation finished)"
            if results.get("resumed")
            else ""
        )
        + (f" of a {budget:.0f} s budget" if budget else "")
        + f", preset `{results.get('preset', '?')}`.",
        "",
        f"Generator: {results.get('generator', {}).get('description', '?')}.",
        "",
        *machines_note(rows),
        f"Driver: `{results.get('driver_command', '')}`",
        "",
        f"## Omniglot {protocol.get('ways', 5)}-way accuracy (%)",
        "",
        f"Ours: mean ± 95% CI (1.96·std/√n) over {protocol.get('tasks', '?')} test tasks per K_tr, "
        f"{protocol.get('queries', 15)} queries per class, episode seed {protocol.get('seed', 0)}; MAML adapts "
        f"{protocol.get('adapt_steps', '?')} steps of lr {protocol.get('adapt_lr', '?')}, "
        "ProtoNets use the nearest prototype.",
        "",
        *accuracy_table(rows, protocol.get("tasks")),
        "",
        "† as commonly cited elsewhere; not checked against the original paper's table.",
        "",
    ]
    images = results.get("images", {})
    for name in images.get("charts", []):
        lines += [f"![{CHART_TITLES.get(name, name)}]({name})", ""]
    # Methods scored on the same number of tasks must share the episode digest (the same seed gives the same
    # episodes, and a shorter run scores a prefix of them).
    by_count: dict[int | None, set[str]] = {}
    for r in rows:
        if r.get("episode_digest"):
            by_count.setdefault(tasks_scored(r), set()).add(r["episode_digest"])
    for count, digests in sorted(by_count.items(), key=lambda kv: -(kv[0] or 0)):
        scored = sum(1 for r in rows if r.get("episode_digest") in digests)
        if len(digests) == 1:
            lines += [
                f"All {scored} methods scored on {count if count is not None else '?'} tasks saw the same tasks "
                f"(episode digest `{next(iter(digests))[:16]}`).",
                "",
            ]
        else:
            lines += [
                f"**Warning**: methods scored on {count} tasks saw different task sets (episode digests differ).",
                "",
            ]
    lines += ["## Targets (LASIUM paper, Omniglot 5-way)", "", *target_lines(rows), ""]
    per_row = every_row_lines(rows)
    if per_row:
        lines += [*per_row, ""]
    if at_reference_budgets(results.get("sizes") or {}):  # the project's own bar too
        lines += [
            "Project targets at the reference budgets or larger (issue 15; bundled GAN as shipped):",
            "",
            *target_lines(rows, PROJECT_TARGETS),
            "",
            "Unsupervised at the level of supervised (issue 27): PsCo's 96.37 / 99.13 (the strongest published "
            "unsupervised Conv-4 figures, as commonly cited) for ProtoNets, supervised MAML as usually quoted "
            "(94.46 / 98.83) for MAML; the best row trained on unlabeled images only (LASIUM with either generator, "
            "UMTRA, CACTUs, mixtures):",
            "",
            *target_lines(rows, UNSUPERVISED_TARGETS, UNSUPERVISED_FAMILIES, "Unsupervised"),
            "",
        ]
        if results.get("levers"):
            lines += [
                "Where a target is missed, the levers table below (validation tasks only) says what each lever tried "
                "was worth, which found nothing more than its reference, where a lever along an axis (budget, "
                "generator epochs) is spent, and which have not been tried yet.",
                "",
            ]
    levers = lever_table(results.get("levers") or [])
    if levers or images.get("epoch_curves"):
        lines += [
            "## Levers on validation tasks (issue 27)",
            "",
            "What each lever tried was worth on Omniglot **validation** episodes (the 100 validation characters; "
            "never the test split), from the validation experiments in this folder (`lasium-repro sweep`, "
            "`lasium-repro epoch-curve`), each at its own reduced budget: val accuracy ± 95% CI, and Δ from the "
            "lever's reference point in the same experiment ± the 95% CI of the difference (√(CI_a² + CI_b²), "
            "conservative: the points of one experiment share their validation episodes). Reference: the authors' "
            "σ/α and query shift, LASIUM-N alone for mixtures, the smallest budget and the fewest generator epochs "
            "tried.",
            "",
            *(f"![{CHART_TITLES.get(name, name)}]({name})" for name in images.get("levers", [])),
            *([""] if images.get("levers") else []),
            *levers,
            "",
        ]
        for name in images.get("epoch_curves", []):
            lines += [f"![{name}]({name})", ""]
    spread = seed_table(results.get("seed_spread") or {})
    if spread:
        lines += [
            "### The same point at another seed",
            "",
            "A Δ above carries the CI of the validation episodes, not of the run. Each sweep `levers/<name>-seed<k>` "
            "repeats `levers/<name>` with `--seed k` (other generated tasks, initialisation and task order) and is "
            "paired with it where the two differ in that seed alone: the same sizes and generator weights, and per "
            "point the same stage commands but the seed and work folder and the same validation episodes, where the "
            "pages record them. How far a point moves with its seed alone, with the levers table's unpaired CI "
            "(conservative here: both seeds are scored on one set of episodes). A lever's Δ no larger than these is "
            "not told apart from a change of seed.",
            "",
            *spread,
            "",
        ]
    others = other_sources_table(rows, protocol.get("tasks"))
    if others:
        lines += [
            "## Other task sources",
            "",
            "Other unsupervised task constructions through the same shard format, trainer and test tasks: UMTRA "
            "(Khodadadeh et al., NeurIPS 2019; `lasium-gen --source umtra`) and CACTUs (Hsu, Levine & Finn, ICLR 2019; "
            "`lasium-gen --source cactus`), with their defaults, and ProtoNets on a LASIUM-N + UMTRA mixture "
            "(`lasium-train --shards A:0.5 --shards B:0.5`, the sets the LASIUM-N and UMTRA ProtoNets rows use). "
            "Budgets are the LASIUM rows' (tasks per learner, iterations, meta-batch, test tasks). Each source is "
            "trained as its authors used it: `--augment auto` adds nothing to UMTRA shards (their queries are "
            "augmented when generated) or CACTUs shards (real images); the mixture row asks for the LASIUM rows' "
            "preset explicitly (auto would turn it off for the whole mixture). The augment column is what each run "
            "used.",
            "",
            "**CACTUs here is not the published CACTUs-ACAI**: it clusters the bundled VAE's posterior means "
            "(`omniglot-vae`, 20-d; the `--source cactus` default), not ACAI embeddings (256-d), with the paper's "
            "k = 500 and P = 100; the published CACTUs figures are ACAI's. The published UMTRA figure is with MAML; "
            "none is listed for UMTRA + ProtoNets or for the mixture.",
            "",
            *others,
            "",
        ]
    vae = vae_table(rows, protocol.get("tasks"))
    if vae:
        lines += [
            "## LASIUM with a VAE",
            "",
            "LASIUM-N, -RO and -OC with a VAE instead of the GAN, at the GAN rows' budgets (tasks, iterations, "
            "meta-batch, test tasks): `lasium-gen --generator` is the run's `--vae` (the bundled `omniglot-vae` by "
            "default), whose anchors are encoded real train-split images (the real image is member 0 of its class), "
            "with the σ/α `lasium-gen --tuned-for` gives a VAE (the authors' values) unless its label names another "
            "(the value validation picked; see its note). Each row is beside the paper's own cell for the same "
            "strategy and learner.",
            "",
            *vae,
            "",
        ]
    other_gan = other_gan_table(rows)
    if other_gan:
        lines += [
            "## LASIUM with another GAN",
            "",
            "Rows a driver ran with another `--generator` (`--generator-results`: their own page is their record, "
            "stages included), each beside the row of the same recipe on this run's GAN. They count toward the "
            "unsupervised targets above, not toward the targets of the bundled GAN as shipped.",
            "",
            *other_gan,
            "",
        ]
    ablation = ablation_table(rows)
    if ablation:
        from lasium.generate import STRATEGY_PARAMETERS

        preset_sigma = STRATEGY_PARAMETERS["protonets"]["gan"]["n"]
        lines += [
            f"## Ablation: one ingredient at a time (LASIUM-N + ProtoNets, {protocol.get('tasks', '?')} test tasks)",
            "",
            "Each line adds one ingredient to the line above; σ 'preset' = `lasium-gen --tuned-for protonets` "
            f"(σ {preset_sigma:g} for LASIUM-N).",
            "",
            *ablation,
            "",
        ]
    trained = [r for r in rows if r.get("train")]
    if trained:
        lines += [
            "## Training",
            "",
            "| method | algorithm | iterations | meta-batch | tasks seen | best val acc (step) |",
            "|---|---|---|---|---|---|",
        ]
        for r in trained:
            t = r["train"]
            best = t.get("best_val_accuracy")
            best_text = f"{100 * best:.2f} ({t.get('best_step', '?')})" if isinstance(best, (int, float)) else "–"
            lines.append(
                f"| {r['label']} | {t.get('algo', r.get('algo'))} | {t.get('step', '?')} | "
                f"{t.get('meta_batch', '?')} | "
                f"{t.get('tasks_seen', '?')} | {best_text} |"
            )
        lines.append("")
    generators = generator_table(rows)
    if generators:
        lines += [
            "## Generators",
            "",
            "The generator each row's tasks came from, as the row recorded it (the sha256 of its weights, from its "
            "shard set's manifest); rows written before rows recorded it say so.",
            "",
            *generators,
            "",
        ]
    if images.get("curves"):
        lines += ["## Training curves (validation accuracy, real val-split episodes)", ""]
        lines += [f"![{name}]({name})" for name in images["curves"]] + [""]
    if images.get("previews"):
        lines += ["## Task previews (one row per class: support | query)", ""]
        lines += [f"**{key}**\n\n![{key}]({name})\n" for key, name in images["previews"].items()]
    lines += ["## Stages (exact commands, wall time)", "", *stage_table(results.get("stages", [])), ""]
    problems = [s for s in results.get("stages", []) if s["status"] not in ("ok", "reused")]
    if problems:
        lines += [
            "Not every stage ran: "
            + "; ".join(f"{s['name']}: {s['status']}" + (f" ({s['note']})" if s.get("note") else "") for s in problems)
            + ".",
            "",
        ]
    sizes = results.get("sizes", {})
    if sizes:
        lines += ["## Sizes", "", "| name | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in sizes.items()] + [""]
    lines += ["Every figure above is also in `omniglot.json` beside this page.", ""]
    return "\n".join(lines)


ACCURACY_CHART = "accuracy.png"
LEVERS_CHART = "levers.png"
CURVE_CHARTS = {"protonets": "curves-protonets.png", "maml": "curves-maml.png"}
EPOCH_CURVE_CHARTS = tuple(f"{page_name(kind)}.png" for kind in GENERATOR_KINDS)
CHART_TITLES = {
    ACCURACY_CHART: "Omniglot 5-way test accuracy of each row with its 95% CI",
    LEVERS_CHART: "What each lever was worth on validation tasks: per comparison, its best setting other than the "
    "reference (on an axis such as the budget: its largest) against the reference, with the 95% CI of the difference",
}


def draw_charts(results: dict[str, Any], folder: Path) -> tuple[dict[str, Any], list[str]]:
    """Draw the page's charts into ``folder`` from ``results`` alone; return its ``images`` record and the names of
    the files drawn.

    ``accuracy.png``: every scored row of ours (ablation steps aside) at 1 and 5 shots, 95% CI error bars, the
    paper's best cells as references. ``curves-<learner>.png``: validation accuracy against iterations of each
    trained row that recorded its curve; a page whose rows recorded none keeps the curve files it lists.
    ``levers.png``: per comparison of ``results["levers"]``, the Δ of its best other setting (on an axis: its largest).
    """
    images = dict(results.get("images") or {})
    rows = [r for r in results.get("rows", []) if r.get("family") != "ablation"]
    charts = []
    if any(r.get("eval") for r in rows):
        best = {f"LASIUM paper, best with {name}": TARGETS[algo] for algo, name in (("protonets", "ProtoNets"),
                                                                                  ("maml", "MAML"))}  # fmt: skip
        accuracy_chart(
            rows,
            folder / ACCURACY_CHART,
            title=f"Omniglot 5-way test accuracy ({results.get('protocol', {}).get('tasks', '?')} tasks per shot)",
            references=best,
        )
        charts.append(ACCURACY_CHART)
    curves = []
    for algo, name in CURVE_CHARTS.items():
        series = {
            r["key"]: [(p[0], 100.0 * p[1]) for p in r["val_curve"]]
            for r in rows
            if r.get("val_curve") and (r.get("algo") == "protonets") == (algo == "protonets")
        }
        if series:
            learner = "ProtoNets" if algo == "protonets" else "MAML"
            line_chart(
                series,
                folder / name,
                title=f"{learner}: validation accuracy (Omniglot val split, 5-way 1-shot)",
                xlabel="training iteration",
                ylabel="validation accuracy (%)",
            )
            curves.append(name)
    levers = [LEVERS_CHART] if results.get("levers") else []
    if levers:
        draw_levers_chart(results["levers"], folder / LEVERS_CHART)
    drawn = charts + curves + levers
    if not curves:  # nothing to redraw from: keep the pictures an earlier run drew
        curves = [n for n in images.get("curves", []) if (folder / n).is_file()]
    images.update(charts=charts, curves=curves)
    if levers:
        images["levers"] = levers
    else:
        images.pop("levers", None)
    # accuracy against generator epochs (lasium-repro epoch-curve draws them into the same results folder)
    epoch_curves = [n for n in EPOCH_CURVE_CHARTS if (folder / n).is_file()]
    if epoch_curves:
        images["epoch_curves"] = epoch_curves
    else:
        images.pop("epoch_curves", None)
    images.setdefault("previews", {})
    return images, drawn


def write_page(results: dict[str, Any], folder: str | Path) -> tuple[dict[str, Any], list[Path]]:
    """Draw the charts, then write ``omniglot.json`` and ``omniglot.md`` into ``folder`` (atomically); return the
    results as written and the files written. Without matplotlib the page keeps the pictures it already lists."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    levers, spread = collect_levers(folder), collect_seed_spread(folder)
    results = {
        **results,
        **({"levers": levers} if levers else {}),
        **({"seed_spread": spread} if spread else {}),
    }
    try:
        images, drawn = draw_charts(results, folder)
    except ChartsUnavailable as exc:
        print(f"[repro] no charts: {exc}", file=sys.stderr)
        images, drawn = dict(results.get("images") or {}), []
        kept = [n for n in images.pop("levers", []) if levers and (folder / n).is_file()]
        if kept:  # the picture an earlier run drew, while there are levers to show
            images["levers"] = kept
    results["images"] = images
    write_json_atomic(folder / "omniglot.json", results, sort_keys=False)
    replace_atomically(folder / "omniglot.md", lambda tmp: tmp.write_text(render_markdown(results)))
    return results, [folder / "omniglot.md", folder / "omniglot.json", *(folder / n for n in drawn)]
