"""Small SVG charts for reports: lines and dots with error bars, on linear, log or category axes.

Hand-written rather than a plotting library, for what a report needs: a chart is a
few kilobytes of text that embeds in HTML (inline) and in Markdown (a ``.svg`` file a
code host renders), needs no JavaScript and no network, and takes well under a
millisecond to make (``benchmarks/bench_report.py`` measures it against matplotlib).
Every point carries a ``<title>``, the tooltip a browser shows on hover. Every text
is escaped: model names and hyper-parameter values come from plugins and files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Literal

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
MARKERS = ("circle", "square", "triangle", "diamond")
AxisKind = Literal["linear", "log", "category"]


@dataclass
class Point:
    x: float | str
    y: float
    low: float | None = None  # error bar (a confidence interval), if any
    high: float | None = None
    tip: str = ""  # hover text


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)
    colour: str = PALETTE[0]
    marker: str = "circle"
    line: bool = True  # join the points (in x order)
    dashed: bool = False


def fmt(v: float) -> str:
    """A number for an axis or a tooltip: 4 significant digits, no trailing noise."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:.4g}"
    return f"{v:.2e}".replace("e-0", "e-").replace("e+0", "e")


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values (steps of 1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            ticks.append(round(v, 12))
        v += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    ticks = [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    inside = [t for t in ticks if lo * 0.999 <= t <= hi * 1.001]
    return inside if len(inside) >= 2 else [lo, hi]


def _marker(shape: str, x: float, y: float, r: float, colour: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>" if tip else ""
    if shape == "square":
        body = f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}"'
    elif shape == "triangle":
        pts = f"{x:.1f},{y - r * 1.2:.1f} {x - r * 1.1:.1f},{y + r * 0.8:.1f} {x + r * 1.1:.1f},{y + r * 0.8:.1f}"
        body = f'<polygon points="{pts}"'
    elif shape == "diamond":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r * 1.3:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} {x - r * 1.3:.1f},{y:.1f}"
        body = f'<polygon points="{pts}"'
    else:
        body = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"'
    return f'{body} fill="{colour}" stroke="#fff" stroke-width="0.8">{title}</{body.split()[0][1:]}>'


def chart(
    series: Sequence[Series],
    *,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_kind: AxisKind = "linear",
    categories: Sequence[str] = (),
    width: int = 380,
    height: int = 250,
    hline: float | None = None,
    legend: bool = True,
    note: str = "",
    x_ticks: Sequence[float] = (),
    integer_x: bool = False,
) -> str:
    """One chart as an ``<svg>`` element (standalone: it carries its namespace, size and font).

    ``x_ticks``: where to put the x ticks on a numeric axis (e.g. the grid's values), else
    round numbers; ``integer_x``: round numbers that are whole (epochs).
    """
    shown = [s for s in series if s.points]
    named = [s for s in shown if s.name] if legend else []
    column = min(width - 60, max(70, 18 + 6 * max((len(s.name) for s in named), default=0)))
    per_row = max(1, (width - 50) // column)
    legend_rows = math.ceil(len(named) / per_row) if named else 0
    top, left, right = (26 if title else 10), 58, 12
    bottom = 40 + legend_rows * 16 + (14 if note else 0)
    w, h = width - left - right, height - top - bottom
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif" font-size="11" '
        'role="img">'
    ]
    if title:
        out.append(f'<text x="{left}" y="16" font-size="12.5" font-weight="600" fill="#222">{escape(title)}</text>')
        out.append(f"<title>{escape(title)}</title>")
    values = [v for s in shown for p in s.points for v in (p.y, p.low, p.high) if v is not None and math.isfinite(v)]
    if hline is not None:
        values.append(hline)
    if not values:
        out.append(f'<text x="{left}" y="{top + h / 2:.0f}" fill="#888">no values</text></svg>')
        return "".join(out)
    y_lo, y_hi = min(values), max(values)
    pad = (y_hi - y_lo) * 0.06 or abs(y_hi) * 0.1 or 1.0
    y_ticks = nice_ticks(y_lo - pad, y_hi + pad)
    y_lo, y_hi = min(y_ticks[0], y_lo), max(y_ticks[-1], y_hi)

    def py(v: float) -> float:
        return top + h - (v - y_lo) / ((y_hi - y_lo) or 1.0) * h

    xs_all = [p.x for s in shown for p in s.points]
    if x_kind == "category":
        cats = list(categories) or list(dict.fromkeys(str(x) for x in xs_all))
        slot = w / max(1, len(cats))

        def px(x: float | str) -> float:
            return left + slot * (cats.index(str(x)) + 0.5) if str(x) in cats else left

        tick_marks: list[tuple[float, str]] = [(px(c), c) for c in cats]
    else:
        nums = [float(x) for x in xs_all if not isinstance(x, str) and math.isfinite(float(x))]
        if x_kind == "log":
            nums = [x for x in nums if x > 0]
        x_lo, x_hi = (min(nums), max(nums)) if nums else (0.0, 1.0)
        if x_kind == "log":
            a, b = math.log10(x_lo), math.log10(x_hi)
            a, b = (a - 0.15, b + 0.15) if b - a < 1e-9 else (a - (b - a) * 0.05, b + (b - a) * 0.05)
            ticks = _log_ticks(10**a, 10**b)

            def px(x: float | str) -> float:
                return left + (math.log10(float(x)) - a) / (b - a) * w
        else:
            span = (x_hi - x_lo) or abs(x_hi) or 1.0
            a, b = x_lo - span * 0.05, x_hi + span * 0.05
            ticks = nice_ticks(a, b, 6)
            if integer_x:
                ticks = [t for t in ticks if float(t).is_integer()] or [x_lo, x_hi]

            def px(x: float | str) -> float:
                return left + (float(x) - a) / ((b - a) or 1.0) * w

        if x_ticks:
            ticks = list(x_ticks)
        tick_marks = [(px(t), fmt(t)) for t in ticks if left - 0.5 <= px(t) <= left + w + 0.5]

    # grid, axes, ticks
    for t in y_ticks:
        y = py(t)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#eee"/>')
        out.append(f'<text x="{left - 6}" y="{y + 3.5:.1f}" text-anchor="end" fill="#555">{escape(fmt(t))}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#bbb"/>')
    rotate = x_kind == "category" and sum(len(label) for _, label in tick_marks) * 6 > w
    for x, label in tick_marks:
        out.append(f'<line x1="{x:.1f}" y1="{top + h}" x2="{x:.1f}" y2="{top + h + 4}" stroke="#999"/>')
        text = escape(label if len(label) <= 18 else label[:17] + "…")
        if rotate:
            out.append(
                f'<text x="{x:.1f}" y="{top + h + 13}" text-anchor="end" fill="#555" '
                f'transform="rotate(-25 {x:.1f} {top + h + 13})">{text}</text>'
            )
        else:
            out.append(f'<text x="{x:.1f}" y="{top + h + 15}" text-anchor="middle" fill="#555">{text}</text>')
    if x_label:
        out.append(
            f'<text x="{left + w / 2:.0f}" y="{top + h + 30}" text-anchor="middle" fill="#333">{escape(x_label)}</text>'
        )
    if y_label:
        out.append(
            f'<text x="12" y="{top + h / 2:.0f}" text-anchor="middle" fill="#333" '
            f'transform="rotate(-90 12 {top + h / 2:.0f})">{escape(y_label)}</text>'
        )
    if hline is not None:
        y = py(hline)
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#999" stroke-dasharray="4 3"/>'
        )

    # data
    for s in shown:
        pts = [(px(p.x), p) for p in s.points if math.isfinite(p.y)]
        pts.sort(key=lambda item: item[0])
        if s.line and len(pts) > 1:
            path = " ".join(f"{x:.1f},{py(p.y):.1f}" for x, p in pts)
            dash = ' stroke-dasharray="5 3"' if s.dashed else ""
            out.append(f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="1.8"{dash}/>')
        for x, p in pts:
            if p.low is not None and p.high is not None and math.isfinite(p.low) and math.isfinite(p.high):
                y0, y1 = py(p.low), py(p.high)
                out.append(
                    f'<path d="M{x:.1f},{y0:.1f}V{y1:.1f}M{x - 4:.1f},{y0:.1f}h8M{x - 4:.1f},{y1:.1f}h8" '
                    f'stroke="{s.colour}" stroke-width="1.2" fill="none"/>'
                )
            out.append(_marker(s.marker, x, py(p.y), 3.6, s.colour, p.tip))

    # legend
    if named:
        limit = (column - 18) // 6
        for i, s in enumerate(named):
            lx = left - 40 + (i % per_row) * column
            ly = top + h + 44 + (i // per_row) * 16
            out.append(_marker(s.marker, lx + 4, ly - 4, 3.6, s.colour, s.name))
            label = s.name if len(s.name) <= limit else s.name[: limit - 1] + "…"
            out.append(
                f'<text x="{lx + 12}" y="{ly}" fill="#333">{escape(label)}<title>{escape(s.name)}</title></text>'
            )
    if note:
        out.append(f'<text x="{left}" y="{height - 5}" fill="#777" font-size="10">{escape(note)}</text>')
    out.append("</svg>")
    return "".join(out)
