"""Line charts as PNG with Pillow alone (no matplotlib dependency): training curves for reports.

Example::

    from plots import line_chart, validation_curves
    line_chart({"ro": [(0, 0.2), (500, 0.61)], "oc": [(0, 0.2), (500, 0.55)]}, "curves.png",
               title="validation accuracy", xlabel="iteration", ylabel="accuracy")
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lasium.imaging import save_png

# Colour-blind-safe palette (Okabe & Ito, 2008).
PALETTE = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
    (0, 0, 0),
    (240, 228, 66),
]
Series = dict[str, Sequence[tuple[float, float]]]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 × 10^k apart) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks, value = [], first
    while value <= high + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(value: float) -> str:
    if abs(value) >= 1000 and float(value).is_integer():
        return f"{value / 1000:g}k" if value % 1000 == 0 else f"{int(value)}"
    return f"{value:g}"


def line_chart(
    series: Series,
    path: str | Path,
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    size: tuple[int, int] = (720, 440),
    y_range: tuple[float, float] | None = None,
) -> Path:
    """Draw each named series of (x, y) points as a coloured line with markers, a legend, axes and ticks;
    write the PNG atomically. Empty series are listed in the legend as "(no data)"."""
    width, height = size
    left, right, top, bottom = 64, 170, 34 if title else 14, 46
    font = ImageFont.load_default()
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    points = [p for pts in series.values() for p in pts]
    xs = [float(x) for x, _ in points] or [0.0, 1.0]
    ys = [float(y) for _, y in points] or [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range if y_range is not None else (min(ys), max(ys))
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 <= y0:
        y0, y1 = y0 - 0.05, y1 + 0.05
    pad = 0.05 * (y1 - y0)
    y0, y1 = (y0, y1) if y_range is not None else (y0 - pad, y1 + pad)
    plot = (left, top, width - right, height - bottom)

    def px(x: float) -> float:
        return plot[0] + (x - x0) / (x1 - x0) * (plot[2] - plot[0])

    def py(y: float) -> float:
        return plot[3] - (y - y0) / (y1 - y0) * (plot[3] - plot[1])

    for t in nice_ticks(y0, y1):
        if y0 <= t <= y1:
            draw.line([(plot[0], py(t)), (plot[2], py(t))], fill=(232, 232, 232))
            draw.text((plot[0] - 6, py(t)), _label(t), fill=(60, 60, 60), font=font, anchor="rm")
    for t in nice_ticks(x0, x1, 6):
        if x0 <= t <= x1:
            draw.line([(px(t), plot[3]), (px(t), plot[3] + 4)], fill=(60, 60, 60))
            draw.text((px(t), plot[3] + 6), _label(t), fill=(60, 60, 60), font=font, anchor="mt")
    draw.rectangle(plot, outline=(60, 60, 60))
    if title:
        draw.text(((plot[0] + plot[2]) / 2, 10), title, fill=(0, 0, 0), font=font, anchor="mt")
    if xlabel:
        draw.text(((plot[0] + plot[2]) / 2, height - 14), xlabel, fill=(0, 0, 0), font=font, anchor="mm")
    if ylabel:
        draw.text((8, top - 4 if title else 2), ylabel, fill=(0, 0, 0), font=font, anchor="la" if not title else "ld")
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = [(px(float(x)), py(float(y))) for x, y in sorted(pts)]
        if len(coords) > 1:
            draw.line(coords, fill=colour, width=2)
        for cx, cy in coords:
            draw.ellipse([cx - 2.5, cy - 2.5, cx + 2.5, cy + 2.5], fill=colour)
        ly = plot[1] + 6 + 16 * i
        draw.line([(plot[2] + 12, ly), (plot[2] + 32, ly)], fill=colour, width=3)
        draw.text((plot[2] + 38, ly), name if coords else f"{name} (no data)", fill=(0, 0, 0), font=font, anchor="lm")
    return save_png(img, path)


def validation_curves(run_dirs: dict[str, str | Path], key: str = "accuracy", split: str = "val") -> Series:
    """(step, value) per run from the trainer's ``metrics.jsonl`` (records with ``split == split``); runs
    without the file or without such records give an empty series."""
    out: dict[str, list[tuple[float, float]]] = {}
    for name, run in run_dirs.items():
        points: list[tuple[float, float]] = []
        path = Path(run) / "metrics.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed run
                if record.get("split") == split and isinstance(record.get(key), (int, float)):
                    points.append((float(record["step"]), float(record[key])))
        out[name] = points
    return out
