"""The page of an accuracy-against-generator-training curve (``lasium-repro epoch-curve``): the generator kinds a
curve is drawn for, the markdown table beside the LASIUM authors' published GAN curve, and the chart. Everything here
reads a stored results JSON only, so ``lasium-repro page`` redraws it without running anything."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lasium.errors import ConfigError

from .charts import line_chart, write_results_page
from .published import PUBLISHED_GAN_CURVE

TUNED_FOR = "protonets"  # lasium-gen --tuned-for of every point: σ is the value tuned for ProtoNets tasks


@dataclass(frozen=True)
class GeneratorKind:
    """What the curve of one kind of generator (a ``lasium-fit --model``) shows beside ours."""

    label: str  # how pages name it: GAN, VAE
    published: Mapping[int, float]  # the LASIUM authors' 1-shot accuracy after N epochs (empty: none published)
    published_note: str  # the page's line on the published curve (or on its absence)


GENERATOR_KINDS: dict[str, GeneratorKind] = {
    "gan": GeneratorKind(
        "GAN",
        PUBLISHED_GAN_CURVE,
        "Published: the LASIUM authors' figure data (LASIUM-N, 5-way 1-shot, 1,000 iterations; test tasks, their "
        "GAN, no query shift). Ours are validation accuracies, so compare the shape and the level, not the digits.",
    ),
    "vae": GeneratorKind(
        "VAE",
        {},
        "Published: none. The LASIUM authors' figure data of accuracy against training epochs covers their GAN "
        'only (docs/reference-facts.md, "Accuracy against GAN training"); this curve has ours alone.',
    ),
}
"""The generator kinds a curve can be drawn for, by the ``kind`` a ``lasium-fit`` config records."""


def page_name(kind: str) -> str:
    """The results' file name without suffix: ``accuracy-vs-gan-epochs``, ``accuracy-vs-vae-epochs``."""
    return f"accuracy-vs-{kind}-epochs"


def results_format(kind: str) -> str:
    """The ``format`` of the results JSON (what ``lasium-repro page`` redraws it by)."""
    return f"lasium-{page_name(kind)}"


def results_kind(results: Mapping[str, Any]) -> str:
    """The generator kind of stored results: recorded once (``kind``), else (results written before it was
    recorded) the one their ``format`` names; a :class:`ConfigError` when neither is a kind curves are drawn for."""
    by_format = {results_format(k): k for k in GENERATOR_KINDS}
    kind = results.get("kind", by_format.get(results.get("format", "")))
    if kind not in GENERATOR_KINDS:
        raise ConfigError(
            f"these results record generator kind {kind!r}; an accuracy-against-epochs curve is drawn for "
            f"{' or '.join(repr(k) for k in GENERATOR_KINDS)}"
        )
    return str(kind)


def row_epochs(row: Mapping[str, Any]) -> int:
    """A row's training epochs (``epochs``; ``gan_epochs`` in results written before the VAE had curves)."""
    return int(row["epochs"] if "epochs" in row else row["gan_epochs"])


def _sigma_line(results: dict[str, Any], label: str) -> str:
    """What σ the points used: read from their shard sets (results written before it was recorded say so)."""
    sigmas = sorted({float(r["sigma"]) for r in results["rows"] if r.get("sigma") is not None})
    chosen = f"the `--tuned-for {TUNED_FOR}` value for a {label}, which lasium-gen chooses from the snapshot's kind"
    if not sigmas:
        return f"σ of every point: {chosen} (not recorded by this curve)."
    return f"σ of every point: {' and '.join(str(s) for s in sigmas)} ({chosen}; read from each point's shard set)."


def _kept_lines(results: dict[str, Any]) -> list[str]:
    """The page's paragraph on points carried from earlier curves (``--keep-points``): which epochs, which fit,
    which command; nothing when every point is this fit's."""
    by_fit: dict[tuple[str, str], list[int]] = {}
    for r in results["rows"]:
        if r.get("kept_from"):
            by_fit.setdefault((str(r["kept_from"]["fit"]), str(r["kept_from"]["command"])), []).append(row_epochs(r))
    lines = [
        f"Kept from an earlier curve of the same recipe and budget: epochs {', '.join(map(str, sorted(e)))} from fit "
        f"`{fit}` (`{command}`)."
        for (fit, command), e in by_fit.items()
    ]
    return [*lines, ""] if lines else []


def render(results: dict[str, Any], charts: tuple[str, ...] | None = None) -> str:
    """The page (markdown); ``charts``: the chart files beside it, linked at the end (default: the usual one)."""
    kind = results_kind(results)
    generator = GENERATOR_KINDS[kind]
    label, published_curve = generator.label, generator.published
    if charts is None:
        charts = (f"{page_name(kind)}.png",)
    s = results["sizes"]
    lines = [
        f"# Accuracy against {label} training (LASIUM-N + ProtoNets, Omniglot validation tasks)",
        "",
        f"Command: `{results['command']}`. Device: {results['device']}. {label} fit: `{results['fit']}`.",
        "",
        f"Each snapshot: `lasium-gen --strategy n --tuned-for {TUNED_FOR} --generator <snapshot>` ({s['tasks']:,} "
        f"tasks, seed {s['seed']}) → `lasium-train --algo protonets --augment auto` ({s['iterations']:,} iterations "
        f"× meta-batch {s['meta_batch']}) → `lasium-eval --split val` ({s['val_tasks']} tasks per K_tr from the "
        "validation characters; 5-way, 15 queries; mean ± 95% CI).",
        "",
        _sigma_line(results, label),
        "",
        *_kept_lines(results),
        generator.published_note,
        "",
        f"| {label} epochs | published 1-shot | ours val 1-shot | ours val 5-shot | Fréchet distance | status |",
        "|---|---|---|---|---|---|",
    ]
    by_epoch = {row_epochs(r): r for r in results["rows"]}
    for e in sorted(set(by_epoch) | set(published_curve)):
        r = by_epoch.get(e)
        published = f"{published_curve[e]:.2f}" if e in published_curve else "–"
        if r is None:
            lines.append(f"| {e} | {published} | – | – | – | no snapshot |")
            continue
        fd = f"{r['frechet_distance']:.1f}" if r.get("frechet_distance") is not None else "–"
        if r["status"] != "ok":
            lines.append(f"| {e} | {published} | – | – | {fd} | {r['status']} |")
            continue
        v = r["val"]
        cells = [f"{v[k]['accuracy_pct']:.2f} ± {v[k]['ci95_pct']:.2f}" if k in v else "–" for k in ("1", "5")]
        status = f"ok (fit `{r['kept_from']['fit']}`)" if r.get("kept_from") else "ok"
        lines.append(f"| {e} | {published} | {cells[0]} | {cells[1]} | {fd} | {status} |")
    lines.append("")
    failures = [
        f"- {row_epochs(r)} {label} epochs, `{stage['name']}`: {stage.get('note') or stage['status']}"
        for r in results["rows"]
        if r["status"] != "ok"
        for stage in r.get("stages", [])
        if stage.get("status") != "ok"
    ]
    if failures:
        lines += ["Points that did not finish (each stage's log is under the work folder):", "", *failures, ""]
    lines += [line for name in charts for line in (f"![accuracy against {label} epochs]({name})", "")]
    return "\n".join(lines)


def draw(results: dict[str, Any], path: Path) -> Path:
    """Ours (validation, 1- and 5-shot, 95% CI error bars) against training epochs, and the published 1-shot curve
    where there is one (the GAN's)."""
    generator = GENERATOR_KINDS[results_kind(results)]
    ours: dict[str, list[tuple[float, float, float]]] = {"ours, val 1-shot": [], "ours, val 5-shot": []}
    for r in results["rows"]:
        if r["status"] == "ok":
            kept = f" (fit {r['kept_from']['fit']})" if r.get("kept_from") else ""
            for shots in ("1", "5"):
                if shots in r["val"]:
                    cell = r["val"][shots]
                    points = ours.setdefault(f"ours, val {shots}-shot{kept}", [])
                    points.append((row_epochs(r), cell["accuracy_pct"], cell["ci95_pct"]))
    series: dict[str, list] = {}
    if generator.published:
        series["published (LASIUM authors), test 1-shot"] = [
            (float(e), v) for e, v in sorted(generator.published.items())
        ]
    return line_chart(
        {**series, **ours},
        path,
        title=f"LASIUM-N + ProtoNets: Omniglot 5-way accuracy against {generator.label} training",
        xlabel=f"{generator.label} training epochs (symmetric log scale)",
        ylabel="accuracy (%), error bars: 95% CI",
        xscale="symlog",
        size=(9.6, 4.4),
        legend_outside=True,  # points at every epoch, so any place inside may cover one
    )


def write_page(results: dict[str, Any], folder: Path, *, write_json: bool = True) -> tuple[str, ...]:
    """Draw the chart and write the page (and, with ``write_json``, its JSON) into ``folder``; return the chart
    names. Without matplotlib the page is written without the chart."""
    name = page_name(results_kind(results))
    return write_results_page(results, folder, name, draw, render, write_json=write_json, tag="curve")
