"""The charts of a report, as SVG (:mod:`genbench.reporting.svg`), made from :class:`RunView` objects.

* :func:`metric_charts`: each ranked metric against each hyper-parameter the grid
  varied, a line per model (and per value of the other varied axes), the mean over the
  ok seeds with its 95% confidence interval as an error bar: the numbers of the
  comparison table (:func:`genbench.reporting.table.comparison`), drawn.
* :func:`quality_charts`: the quality curves (``record.quality``), a line per cell and seed.
* :func:`scatter_charts`: precision against recall of every ok cell (or, on 2-D
  mixtures, the share of high-quality samples against the modes covered), one chart
  for every run that shares a dataset.
* :func:`cell_charts`: one cell's training curves: losses, D(x) and D(G(z)), the rest.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from genbench.reporting.images import curve_groups
from genbench.reporting.report import CellView, RunView
from genbench.reporting.svg import MARKERS, PALETTE, AxisKind, Point, Series, chart, fmt

SHOWN = {"d_x": "D(x)", "d_g_z": "D(G(z))"}  # logged keys as the lab reports write them


@dataclass(frozen=True)
class Chart:
    key: str  # a file-name-safe slug, unique within a report
    title: str
    svg: str
    caption: str = ""


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:80] or "chart"


def colour(colours: dict[str, int], model: str) -> str:
    return PALETTE[colours.get(model, 0) % len(PALETTE)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's numbers too
        return None
    return float(value) if math.isfinite(float(value)) else None


def axis_kind(values: list[Any]) -> AxisKind:
    """``linear`` for numbers, ``log`` for positive numbers spanning a factor of 20 or more, else ``category``."""
    numbers = [_number(v) for v in values]
    if not values or any(n is None for n in numbers):
        return "category"
    xs = [n for n in numbers if n is not None]
    if min(xs) > 0 and max(xs) / min(xs) >= 20:
        return "log"
    return "linear"


def metric_charts(run: RunView, colours: dict[str, int], prefix: str = "") -> list[Chart]:
    """Each ranked metric against each varied hyper-parameter (against the model when none varied)."""
    t = run.table
    axes = t.varied or ["model"]
    out = []
    for col, key in zip(t.metric_columns, t.metric_keys, strict=True):
        label = t.headers[col]
        for axis in axes:
            others = [a for a in t.varied if a != axis]
            values = [g.get(axis) for g in t.groups]
            kind = axis_kind(values) if axis != "model" else "category"
            series: dict[tuple[Any, ...], Series] = {}
            for i, group in enumerate(t.groups):
                s = t.summaries.get((i, col))
                if s is None or s.n == 0 or not math.isfinite(s.mean):
                    continue
                model = str(group.get("model"))
                name = " ".join([model, *(f"{a}={fmt_value(group.get(a))}" for a in others)])
                line = series.setdefault(
                    (model, *(str(group.get(a)) for a in others)),
                    Series(name, colour=colour(colours, model), line=axis != "model"),
                )
                value = group.get(axis)
                x: float | str = float(value) if kind != "category" and value is not None else fmt_value(value)
                tip = f"{name}, {axis}={fmt_value(group.get(axis))}: {label} {fmt(s.mean)}"
                if s.interval is not None:
                    tip += f" [95% CI {fmt(s.interval[0])}, {fmt(s.interval[1])}], n={s.n}"
                low, high = s.interval if s.interval is not None else (None, None)
                line.points.append(Point(x, s.mean, low, high, tip))
            if not series:
                continue
            better = run.manifest.get("metric_better", {}).get(key)
            arrow = " (lower is better)" if better == "lower" else " (higher is better)" if better == "higher" else ""
            categories = list(dict.fromkeys(fmt_value(v) for v in values)) if kind == "category" else []
            numeric = [float(v) for v in values if v is not None] if kind != "category" else []
            grid_values = sorted(set(numeric)) if len(set(numeric)) <= 8 else []
            svg = chart(
                list(series.values()), title=f"{label} vs {axis}", x_label=axis, y_label=label, x_kind=kind,
                categories=categories, legend=axis != "model" and len(series) > 1, x_ticks=grid_values,
                note="error bars: 95% CI over seeds" if t.seeds > 1 else "",
            )  # fmt: skip
            out.append(Chart(slug(f"{prefix}{key}-vs-{axis}"), f"{label} vs {axis}{arrow}", svg))
    return out


def fmt_value(value: Any) -> str:
    if isinstance(value, numbers.Real) and not isinstance(value, bool | numbers.Integral):
        return f"{float(value):g}"
    return str(value)


def quality_charts(run: RunView, colours: dict[str, int], prefix: str = "") -> list[Chart]:
    """Each metric of the quality curves, a line per cell and seed."""
    by_key: dict[str, list[Series]] = defaultdict(list)
    groups: dict[str, dict[tuple[str, ...], int]] = defaultdict(dict)  # model -> its grid cells, in order
    seeds_seen: set[tuple[str, ...]] = set()
    for cell in run.cells:
        if cell.record is None or not cell.record.quality:
            continue
        name = cell.label(run.table.varied)
        group = tuple(str(cell.hyper.get(a)) for a in run.table.varied)
        marker = MARKERS[groups[cell.model].setdefault(group, len(groups[cell.model])) % len(MARKERS)]
        first_seed = (cell.model, *group) not in seeds_seen
        seeds_seen.add((cell.model, *group))
        keys = dict.fromkeys(k for q in cell.record.quality for k in q if k != "epoch")
        for key in keys:
            pts = [
                Point(q["epoch"], q[key], tip=f"{name}: epoch {q['epoch']:g}, {key} {fmt(q[key])}")
                for q in cell.record.quality
                if key in q and "epoch" in q
            ]
            by_key[key].append(Series(name, pts, colour(colours, cell.model), marker, dashed=not first_seed))
    out = []
    for key, series in by_key.items():
        svg = chart(series, title=f"{key} over training", x_label="epoch", y_label=key, width=520, height=300,
                    legend=len(series) <= 16, integer_x=True)  # fmt: skip
        out.append(Chart(slug(f"{prefix}quality-{key}"), f"{key} over training", svg))
    return out


SCATTERS = (  # (x, y, title): precision-recall per backbone, or the toy metrics' quality against coverage
    ("recall_{b}", "precision_{b}", "precision vs recall ({b})"),
    ("modes_covered", "high_quality", "high-quality share vs modes covered"),
)


def scatter_charts(runs: list[RunView], colours: dict[str, int]) -> list[Chart]:
    """Every ok cell as a point: precision against recall per backbone (or the toy metrics' pair)."""
    groups: dict[str, list[int]] = defaultdict(list)  # runs that share a dataset share a chart
    for i, run in enumerate(runs):
        groups[run.dataset].append(i)
    out = []
    for dataset, members in groups.items():
        columns = set().union(*(set(runs[i].frame.columns) for i in members))
        pairs = []
        for x_tpl, y_tpl, title_tpl in SCATTERS:
            if "{b}" in x_tpl:
                backbones = sorted({c.removeprefix("precision_") for c in columns if c.startswith("precision_")})
                pairs += [(x_tpl.format(b=b), y_tpl.format(b=b), title_tpl.format(b=b)) for b in backbones]
            else:
                pairs.append((x_tpl, y_tpl, title_tpl))
        for x_key, y_key, title in pairs:
            if x_key not in columns or y_key not in columns:
                continue
            series: dict[tuple[int, str], Series] = {}
            for ri in members:
                run = runs[ri]
                for cell in run.cells:
                    x, y = cell.metrics.get(x_key), cell.metrics.get(y_key)
                    if cell.status != "ok" or x is None or y is None:
                        continue
                    label = cell.model if len(members) == 1 else f"{cell.model} ({run.name})"
                    s = series.setdefault(
                        (ri, cell.model),
                        Series(
                            label, colour=colour(colours, cell.model), marker=MARKERS[ri % len(MARKERS)], line=False
                        ),
                    )
                    name = cell.title(run.table.varied)
                    s.points.append(Point(x, y, tip=f"{name}: {x_key} {fmt(x)}, {y_key} {fmt(y)}"))
            if series:
                svg = chart(list(series.values()), title=title, x_label=x_key, y_label=y_key, width=520, height=340)
                out.append(Chart(slug(f"scatter-{dataset}-{x_key}-{y_key}"), f"{title}, {dataset}", svg))
    return out


def cell_charts(cell: CellView, key: str) -> list[Chart]:
    """One cell's training curves per epoch: the losses together, D(x) with D(G(z)), each other value alone."""
    record = cell.record
    if record is None or not record.history:
        return []
    history = record.history
    keys = list(dict.fromkeys(k for h in history for k in h))
    out = []
    for title, group in curve_groups(keys):
        series = [
            Series(
                SHOWN.get(k, k),
                [Point(i, h[k], tip=f"epoch {i}: {k} {fmt(h[k])}") for i, h in enumerate(history, 1) if k in h],
                PALETTE[j % len(PALETTE)],
            )
            for j, k in enumerate(group)
        ]
        values = [p.y for s in series for p in s.points]
        probability = title.startswith("D(") and values and min(values) >= 0 and max(values) <= 1
        svg = chart(series, title=title, x_label="epoch", width=340, height=220, hline=0.5 if probability else None,
                    legend=len(group) > 1, integer_x=True)  # fmt: skip
        out.append(Chart(slug(f"{key}-{title}"), title, svg))
    for q in dict.fromkeys(k for point in record.quality for k in point if k != "epoch"):
        pts = [Point(p["epoch"], p[q], tip=f"epoch {p['epoch']:g}: {q} {fmt(p[q])}") for p in record.quality
               if q in p and "epoch" in p]  # fmt: skip
        svg = chart([Series(q, pts, PALETTE[3])], title=f"quality: {q}", x_label="epoch", width=340, height=220,
                    legend=False, integer_x=True)  # fmt: skip
        out.append(Chart(slug(f"{key}-quality-{q}"), f"quality: {q}", svg))
    return out
