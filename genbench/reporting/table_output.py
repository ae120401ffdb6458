"""The comparison table as data, and its Markdown and CSV text.

:class:`ComparisonTable` is what :func:`genbench.reporting.table.comparison` makes of a
run: every cell already text, with the best and tied cells, intervals, the protocol line and
the legend beside it. :func:`to_markdown` and :func:`to_csv` write it out here; the HTML
report (:mod:`genbench.reporting.html`) and the terminal (:mod:`genbench.richtable`) draw
the same object.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.reporting.stats import Summary
from genbench.results import safe_csv_text

TIE = "≈"


@dataclass
class ComparisonTable:
    """A renderer-agnostic table: headers, cell strings, which cells are best or tied, protocol, legend.

    ``rows`` hold the main text of each cell (``mean ± std`` over seeds, or the
    bare value); ``intervals`` the confidence-interval text of metric cells over
    several seeds; ``summaries`` the numbers behind every metric cell.
    """

    headers: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)  # clear best: bold
    caption: str = ""  # the legend in one line, shown under the table
    previews: list[str] = field(default_factory=list)  # samples.png path per row, relative to the run folder
    ties: set[tuple[int, int]] = field(default_factory=set)  # tied for best within the 95% CI
    intervals: dict[tuple[int, int], str] = field(default_factory=dict)
    summaries: dict[tuple[int, int], Summary] = field(default_factory=dict)
    protocol: str = ""  # the evaluation protocol, shown once above the table
    seeds: int = 1  # the most seeds any row aggregates
    metric_columns: list[int] = field(default_factory=list)  # column positions of the metrics
    ok_seeds: list[tuple[int, int]] = field(default_factory=list)  # (ok seeds, seeds run) per row
    legend: list[str] = field(default_factory=list)  # the legend's lines
    keys: list[str] = field(default_factory=list)  # results.csv column of each header (what --columns takes)
    priority: list[int] = field(default_factory=list)  # per column, 0 first: what a narrow terminal keeps
    status_column: int | None = None  # position of the status column, if shown
    backbones: list[str] = field(default_factory=list)  # feature backbones of the run (short headers with one)
    # What reports draw charts from (genbench.reporting.report): per row, the raw grouping values and the cell ids
    groups: list[dict[str, Any]] = field(default_factory=list)  # model, dataset and every hyper-parameter
    cells: list[list[str]] = field(default_factory=list)  # results.csv's "cell" of each seed in the row
    metric_keys: list[str] = field(default_factory=list)  # results.csv column of each metric column
    varied: list[str] = field(default_factory=list)  # hyper-parameters the grid varied within a model


@dataclass(frozen=True)
class Marks:
    """How one renderer (terminal, Markdown, HTML) marks a metric cell: the clear best, a value tied with
    it within the 95% CI (followed by :data:`TIE`), and the confidence interval under or after it. Every
    renderer marks the same cells through :func:`mark`; only the markup differs."""

    best: Callable[[str], str]
    tie: Callable[[str], str]
    interval: Callable[[str, str], str]  # (the cell's text, the interval's text) -> both


def mark(table: ComparisonTable, i: int, j: int, text: str, marks: Marks) -> str:
    """``text`` (cell ``i, j`` of ``table``, already escaped for the renderer) with its marks."""
    if (i, j) in table.best:
        text = marks.best(text)
    elif (i, j) in table.ties:
        text = marks.tie(text)
    if (i, j) in table.intervals:
        text = marks.interval(text, table.intervals[(i, j)])
    return text


MARKDOWN_MARKS = Marks(lambda s: f"**{s}**", lambda s: f"{s} {TIE}", lambda s, ci: f"{s} {ci}")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


MISSING = "—"  # a value a row does not have (a VAE's lr_d), in the Rich and Markdown tables; empty in CSV


def _fmt(value: Any, digits: int = 4, missing: str = MISSING) -> str:
    if _missing(value):
        return missing
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _decimals(x: float, significant: int) -> int:
    """Decimals that show ``x`` to ``significant`` significant digits (0 for large numbers)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, significant - 1 - math.floor(math.log10(abs(x))))


def format_summary(s: Summary) -> tuple[str, str]:
    """``("12.3 ± 1.2", "[10.1, 14.5]")``: the mean to 4 significant digits, the std to 2, on common decimals.

    One value gives the bare value (as with one seed) and no interval text; no value gives "—".
    """
    if s.n == 0:
        return "—", ""
    if s.interval is None:
        return _fmt(s.mean), ""
    lo, hi = s.interval
    if not 1e-4 <= max(abs(s.mean), abs(s.std)) < 1e6:
        return f"{s.mean:.4g} ± {s.std:.2g}", f"[{lo:.4g}, {hi:.4g}]"
    d = min(8, max(_decimals(s.mean, 4), _decimals(s.std, 2)))
    return f"{s.mean:.{d}f} ± {s.std:.{d}f}", f"[{lo:.{d}f}, {hi:.{d}f}]"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: ComparisonTable, out_dir: Path | None = None, links_from: Path | None = None) -> str:
    """The protocol paragraph, the table (``**best**``, ``value ≈`` for a tie, the interval after it), the legend.

    Sample previews are linked relative to ``links_from``, the folder the Markdown file
    is written to, when it and ``out_dir`` (the run folder) are given; else relative to
    the run folder, where they resolve for a file saved there.
    """
    headers = [*table.headers, "preview"]
    lines = [f"_{_md(table.protocol)}_", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for i, row in enumerate(table.rows):
        cells = []
        for j, v in enumerate(row):
            cells.append(mark(table, i, j, _md(v), MARKDOWN_MARKS))
        link = table.previews[i]
        if link and out_dir is not None and links_from is not None:
            link = Path(os.path.relpath(Path(out_dir) / link, links_from)).as_posix()
        preview = f"![samples]({link})" if link else ""
        lines.append("| " + " | ".join([*cells, preview]) + " |")
    lines += ["", _md(table.caption)]
    return "\n".join(lines) + "\n"


def to_csv(table: ComparisonTable) -> str:
    """One row per cell. Over several seeds each metric is its mean followed by ``std``, ``CI low``,
    ``CI high`` and ``n`` columns; ``best`` names the metrics where a row is best (``≈`` tied);
    ``protocol`` repeats the protocol line on every row."""
    columns: dict[str, list[str]] = {}
    for j, header in enumerate(table.headers):
        columns[header] = ["" if row[j] == MISSING else row[j] for row in table.rows]  # empty: a CSV reader's NaN
        if table.seeds > 1 and j in table.metric_columns:
            stats = [table.summaries[(i, j)] for i in range(len(table.rows))]
            columns[header] = [_fmt(s.mean, 6, "") for s in stats]
            columns[f"{header} std"] = [_fmt(s.std, 6, "") for s in stats]
            columns[f"{header} CI low"] = [_fmt(s.ci_low, 6, "") for s in stats]
            columns[f"{header} CI high"] = [_fmt(s.ci_high, 6, "") for s in stats]
            columns[f"{header} n"] = [str(s.n) for s in stats]
    frame = pd.DataFrame(columns)
    frame["best"] = [
        ", ".join(
            (table.headers[j] if (i, j) in table.best else f"{TIE} {table.headers[j]}")
            for j in table.metric_columns
            if (i, j) in table.best or (i, j) in table.ties
        )
        for i in range(len(table.rows))
    ]
    frame["preview"] = table.previews
    frame["protocol"] = table.protocol
    return safe_csv_text(frame)  # text that a spreadsheet would run as a formula is guarded
