"""The charts of the results pages, drawn with matplotlib (the ``repro`` extra: ``pip install 'lasium[repro]'``).

Every chart is drawn from figures a results JSON holds, so ``lasium-repro page`` redraws it without running
anything. Each has a title, labelled axes with units, a legend, and 95% confidence intervals as error bars
wherever the figure has one. Files are written atomically and without a timestamp or version in their metadata,
so the same figures give the same bytes on the same matplotlib.

Charts use :class:`matplotlib.figure.Figure` directly (no ``pyplot``): no global backend or figure state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lasium.safe_io import replace_atomically

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-safe palette (Okabe & Ito, 2008).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
DPI = 100

# (x, y) or (x, y, 95% CI half-width) points of one named line
Point = tuple[float, float] | tuple[float, float, float | None]
Series = Mapping[str, Sequence[Point]]  # read only, so any dict of lists of such points


class ChartsUnavailable(RuntimeError):
    """matplotlib is not installed (it comes with the ``repro`` extra)."""


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches (an ImportError becomes :class:`ChartsUnavailable`)."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:  # the page is still written; the caller says how to get the charts
        raise ChartsUnavailable("charts need matplotlib: pip install 'lasium[repro]'") from exc
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically, with no creation time or software version in it (same figures, same bytes)."""
    return replace_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}))


def _style(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _plot_series(ax: Axes, series: Series, *, start: int = 0, linestyle: str = "-") -> None:
    """One line per series, with error bars where its points carry a CI; an empty series is named in the legend."""
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[(start + i) % len(PALETTE)]
        pts = sorted(points, key=lambda p: p[0])
        if not pts:
            ax.plot([], [], color=colour, label=f"{name} (no data)")
            continue
        xs, ys = [float(p[0]) for p in pts], [float(p[1]) for p in pts]
        errors = [p[2] if len(p) > 2 else None for p in pts]
        if any(e is not None for e in errors):
            ax.errorbar(
                xs,
                ys,
                yerr=[float(e or 0.0) for e in errors],
                color=colour,
                linestyle=linestyle,
                marker="o",
                markersize=4,
                capsize=3,
                label=name,
            )
        else:
            ax.plot(xs, ys, color=colour, linestyle=linestyle, marker="o", markersize=4, label=name)


def line_chart(
    series: Series,
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[float, float] = (7.2, 4.4),
    xscale: str = "linear",
    legend_outside: bool = False,
) -> Path:
    """Each named series of points as a line with markers (and 95% CI error bars when the points carry them);
    ``xscale``: linear, symlog or log2 (the last two with a tick at every plotted x); ``legend_outside``: the legend
    right of the axes, where it cannot cover a point."""
    fig = new_figure(*size)
    ax = fig.subplots()
    _plot_series(ax, series)
    if xscale in ("symlog", "log2"):
        if xscale == "symlog":
            ax.set_xscale("symlog", linthresh=10)
        else:
            ax.set_xscale("log", base=2)
        # a tick at every plotted x, labelled as the number it is: the scale's own ticks are powers of ten (none at
        # all when the points lie between two of them, such as 45-75 epochs) or of two
        ticks = sorted({float(p[0]) for points in series.values() for p in points})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        from matplotlib.ticker import NullLocator

        ax.xaxis.set_minor_locator(NullLocator())
    _style(ax, title, xlabel, ylabel)
    if legend_outside:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=8, loc="best")
    return save_figure(fig, path)


def accuracy_chart(
    rows: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    title: str,
    references: dict[str, dict[int, float]] | None = None,
) -> Path:
    """Horizontal bars of each scored row's 1- and 5-shot accuracy (%) with its 95% CI as error bars; optional
    ``references`` ({name: {shots: accuracy}}) are drawn as dashed vertical lines in the panel of their shots."""
    scored = [r for r in rows if r.get("eval")]
    height = 1.2 + 0.32 * len(scored)
    fig = new_figure(10.0, height)
    axes = fig.subplots(1, 2, sharey=True)
    labels = [r["label"] for r in scored]
    positions = list(range(len(scored)))[::-1]  # the first row at the top
    for ax, shots, colour in zip(axes, (1, 5), PALETTE):
        values = [((r["eval"].get(str(shots)) or {}).get("accuracy_pct")) for r in scored]
        cis = [((r["eval"].get(str(shots)) or {}).get("ci95_pct")) for r in scored]
        ax.barh(
            positions,
            [v if v is not None else 0.0 for v in values],
            xerr=[c if c is not None else 0.0 for c in cis],
            color=colour,
            alpha=0.85,
            capsize=2,
            height=0.7,
        )
        for y, v in zip(positions, values):
            if v is not None:
                ax.annotate(f"{v:.2f}", (v, y), xytext=(-4, 0), textcoords="offset points", ha="right", va="center",
                            fontsize=7, color="white")  # fmt: skip
        for j, (name, cells) in enumerate((references or {}).items()):
            if shots in cells:
                ax.axvline(cells[shots], color=PALETTE[(j + 2) % len(PALETTE)], linestyle="--", linewidth=1,
                           label=f"{name}: {cells[shots]:.2f}")  # fmt: skip
        known = [v for v in values if v is not None] + [c[shots] for c in (references or {}).values() if shots in c]
        low = min(known, default=0.0)
        ax.set_xlim(max(0.0, low - 8.0), 100.0)
        _style(ax, f"{shots}-shot", "accuracy (%), error bars: 95% CI", "")
        if references:  # below the panel, where it hides no bar
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)
    axes[0].set_yticks(positions, labels, fontsize=8)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


@dataclass(frozen=True)
class Estimate:
    """A difference with its 95% CI half-width (both in points), drawn on the row ``row`` of a :func:`forest_chart`
    at position ``slot`` among that row's estimates (the same slot in every panel: one comparison, one height);
    ``elsewhere``: measured on another machine or in other numerics than what it is compared with (a diamond)."""

    row: str
    value: float
    ci95: float
    slot: int = 0
    elsewhere: bool = False


@dataclass(frozen=True)
class ForestMark:
    """How :func:`forest_chart` draws one estimate: a whisker from ``low`` to ``high`` and a marker at ``x`` (all
    within the axis), ``filled`` where the CI excludes 0; ``label``: the value written beside an estimate past the axis
    (drawn as an arrow head at its edge)."""

    x: float
    low: float
    high: float
    colour: str
    marker: str
    filled: bool
    label: str = ""


GAIN, LOSS, INSIDE = PALETTE[2], PALETTE[1], PALETTE[0]


def forest_mark(estimate: Estimate, limit: float) -> ForestMark | None:
    """The mark of ``estimate`` on an axis from ``-limit`` to ``limit``; None for a value or CI that is not a finite
    number (nothing is drawn rather than a wrong mark)."""
    value, ci = estimate.value, estimate.ci95
    if not (math.isfinite(value) and math.isfinite(ci)):
        return None
    beyond = abs(value) > ci
    colour = (GAIN if value > 0 else LOSS) if beyond else INSIDE
    low, high = max(-limit, value - ci), min(limit, value + ci)
    if abs(value) > limit:  # past the axis: an arrow head at its edge, the value beside it
        x = math.copysign(limit, value)
        return ForestMark(x, min(low, x), max(high, x), colour, ">" if value > 0 else "<", True, f"{value:+.1f}")
    return ForestMark(value, low, high, colour, "D" if estimate.elsewhere else "o", beyond)


def forest_chart(
    panels: Mapping[str, tuple[Sequence[Estimate], float]],
    path: str | Path,
    *,
    title: str,
    xlabel: str,
    elsewhere_label: str = "measured on another machine or numerics",
) -> Path:
    """Differences as dots with 95% CI whiskers, a row per label, one panel per entry ({panel title: (estimates,
    half-width of its x axis)}), the panels side by side sharing their rows (first seen first, at the top).

    A dot is filled where its CI excludes 0 (green above, vermillion below) and hollow where it does not; a diamond
    marks an estimate measured elsewhere (``elsewhere_label`` in the legend); an estimate past the axis is an arrow head
    at the edge with its value beside it (:func:`forest_mark`)."""
    every = [e for estimates, _ in panels.values() for e in estimates]
    rows = list(dict.fromkeys(e.row for e in every))
    slots = {row: 1 + max(e.slot for e in every if e.row == row) for row in rows}
    fig = new_figure(10.0, 1.4 + 0.26 * max(1, len(rows)))
    axes = fig.subplots(1, max(1, len(panels)), sharey=True, squeeze=False)[0]
    y_of = {row: len(rows) - 1 - i for i, row in enumerate(rows)}  # the first row at the top
    for ax, (name, (estimates, limit)) in zip(axes, panels.items()):
        for e in estimates:
            mark = forest_mark(e, limit)
            if mark is None:
                continue
            n = slots[e.row]
            y = y_of[e.row] + ((n - 1) / 2 - e.slot) * min(0.22, 0.7 / n)  # slot 0 highest
            ax.plot([mark.low, mark.high], [y, y], color=mark.colour, linewidth=1.2, clip_on=False)
            ax.plot([mark.x], [y], marker=mark.marker, markersize=5, color=mark.colour, clip_on=False,
                    markerfacecolor=mark.colour if mark.filled else "white")  # fmt: skip
            if mark.label:
                right = mark.x > 0
                ax.annotate(mark.label, (mark.x, y), xytext=(-6 if right else 6, 0), textcoords="offset points",
                            ha="right" if right else "left", va="center", fontsize=7, color=mark.colour)  # fmt: skip
        ax.axvline(0.0, color="#555555", linewidth=0.9)
        ax.set_xlim(-limit, limit)
        _style(ax, name, xlabel, "")
    legend = [("o", GAIN, GAIN, "gain beyond its CI"), ("o", LOSS, LOSS, "loss beyond its CI"),
              ("o", INSIDE, "white", "inside its CI")]  # fmt: skip
    if any(e.elsewhere for e in every):
        legend.append(("D", "#555555", "white", elsewhere_label))
    for marker, colour, face, label in legend:
        axes[-1].plot([], [], marker=marker, linestyle="", color=colour, markerfacecolor=face, label=label)
    # below the x label of the last panel, where it hides no row
    from matplotlib.transforms import offset_copy

    below = offset_copy(axes[-1].transAxes, fig=fig, y=-34, units="points")
    axes[-1].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=below, frameon=False,
                    ncol=2)  # fmt: skip
    axes[0].set_yticks(list(y_of.values()), rows, fontsize=8)
    axes[0].set_ylim(-0.7, len(rows) - 0.3)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def panels_chart(
    panels: Mapping[str, tuple[str, Series]],
    path: str | Path,
    *,
    title: str,
    ylabel: str,
) -> Path:
    """One panel per entry ({panel title: (x label, series)}), side by side with a shared y axis."""
    fig = new_figure(3.6 * max(1, len(panels)) + 0.8, 4.0)
    axes = fig.subplots(1, max(1, len(panels)), sharey=True, squeeze=False)[0]
    for ax, (name, (xlabel, series)) in zip(axes, panels.items()):
        _plot_series(ax, series)
        _style(ax, name, xlabel, ylabel if ax is axes[0] else "")
        ax.legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, path)


def write_results_page(
    results: dict[str, Any],
    folder: Path,
    name: str,
    draw: Callable[[dict[str, Any], Path], Path],
    render: Callable[[dict[str, Any], tuple[str, ...]], str],
    *,
    write_json: bool = True,
    tag: str = "page",
) -> tuple[str, ...]:
    """Draw ``name``.png with ``draw`` and write ``name``.md with ``render`` (and, with ``write_json``, the results as
    ``name``.json) into ``folder``, each file replaced atomically; return the chart names. Without matplotlib the
    page is written without its chart (a line on stderr says why)."""
    import json
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    try:
        charts: tuple[str, ...] = (draw(results, folder / f"{name}.png").name,)
    except ChartsUnavailable as exc:
        print(f"[{tag}] no chart: {exc}", file=sys.stderr)
        charts = ()
    if write_json:
        text = json.dumps(results, indent=2) + "\n"
        replace_atomically(folder / f"{name}.json", lambda tmp: tmp.write_text(text))
    replace_atomically(folder / f"{name}.md", lambda tmp: tmp.write_text(render(results, charts)))
    return charts
