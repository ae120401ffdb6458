"""The comparison table in a terminal: laid out for the width it is printed at.

A lab-report table has a dozen metric columns; printed as is in a 100-column
terminal, Rich shrinks every column until each metric cell reads ``…``. This
module lays the table out for the console's width instead, at print time
(:class:`FittedTable` is a Rich renderable):

1. every column, if their narrowest readable widths fit: a metric cell may wrap
   at its spaces (``12.3 ±`` / ``1.2``) but a number is never cut;
2. else the table turned on its side (one column per row of the table, one row
   per column), when that fits: a comparison of a few configurations on many
   metrics reads well that way;
3. else the columns that matter most, in this order, as many as fit: the model
   and what the grid varied, the status, the metrics in the run's order, the
   training time, the remaining hyper-parameters; a line under the table names
   the columns left out and says ``use --columns`` to choose them.

With a single feature backbone the headers drop its name (``FID`` rather than
``FID (domain)``); the protocol line above the table names it. Columns chosen
with ``genbench table --columns`` are never dropped.

rich is imported here only (and only when a table is printed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from genbench.reporting.table_output import TIE, Marks, mark

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions

    from genbench.reporting.table_output import ComparisonTable

BORDER = 3  # per column: a space of padding on each side and one rule; plus one rule for the whole table
LEFT = ("model", "dataset", "status")


@dataclass(frozen=True)
class Layout:
    """What to draw: ``transposed`` or not, the column positions shown, and the keys left out."""

    transposed: bool
    columns: list[int]
    dropped: list[str]


def _cell_text(table: ComparisonTable, i: int, j: int) -> str:
    """A cell's text as drawn (tie mark, interval on the next line), without styles."""
    text = table.rows[i][j]
    if (i, j) in table.ties:
        text = f"{text} {TIE}"
    if (i, j) in table.intervals:
        text = f"{text}\n{table.intervals[(i, j)]}"
    return text


def _min_width(texts: list[str]) -> int:
    """The narrowest width at which every text wraps at its spaces without cutting a word."""
    return max((len(word) for t in texts for line in t.splitlines() for word in line.split()), default=1)


def _max_width(texts: list[str]) -> int:
    """The width at which no text wraps."""
    return max((len(line) for t in texts for line in t.splitlines()), default=1)


def allot(low: list[int], high: list[int], width: int) -> list[int]:
    """Column widths between ``low`` and ``high`` that fill at most ``width`` (borders included).

    Rich's own shrinking takes the widest columns below their longest word (and cuts it
    with ``…``) while narrower ones keep room to spare; so the widths are decided here:
    every column gets its narrowest readable width; then, with what is left, as many
    columns as can be are widened so they do not wrap at all (those that need least
    first), and the rest is shared among the others in proportion to what they lack.
    """
    out = list(low)
    spare = width - needed(out)
    for j in sorted(range(len(out)), key=lambda j: high[j] - out[j]):
        missing = max(0, high[j] - out[j])
        if 0 < missing <= spare:
            out[j] += missing
            spare -= missing
    lack = [max(0, h - w) for w, h in zip(out, high, strict=True)]
    total = sum(lack)
    if spare <= 0 or total == 0:
        return out
    shares = [spare * d // total for d in lack]
    return [w + s for w, s in zip(out, shares, strict=True)]


def headers(table: ComparisonTable) -> list[str]:
    """The headers, without the backbone's name when the run used only one (the title names it)."""
    if len(table.backbones) != 1:
        return list(table.headers)
    suffix = f" ({table.backbones[0]})"
    return [h.removesuffix(suffix) if j in table.metric_columns else h for j, h in enumerate(table.headers)]


def _columns(table: ComparisonTable) -> list[list[str]]:
    heads = headers(table)
    return [[heads[j], *(_cell_text(table, i, j) for i in range(len(table.rows)))] for j in range(len(heads))]


def _transposed(table: ComparisonTable) -> list[list[str]]:
    """The texts of the table on its side: the labels' column, then one column per row (the model on top)."""
    heads = headers(table)
    return [heads] + [[_cell_text(table, i, j) for j in range(len(heads))] for i in range(len(table.rows))]


def column_widths(table: ComparisonTable) -> list[int]:
    """The narrowest readable width of each column: its longest word, header included."""
    return [_min_width(texts) for texts in _columns(table)]


def transposed_widths(table: ComparisonTable) -> list[int]:
    """The same, for the table on its side."""
    return [_min_width(texts) for texts in _transposed(table)]


def needed(widths: list[int]) -> int:
    return 1 + sum(w + BORDER for w in widths)


def plan(table: ComparisonTable, width: int, chosen: bool = False) -> Layout:
    """How to draw ``table`` in ``width`` columns (see the module docstring); ``chosen``: never drop columns."""
    widths = column_widths(table)
    every = list(range(len(widths)))
    if needed(widths) <= width:
        return Layout(False, every, [])
    if table.rows and needed(transposed_widths(table)) <= width:
        return Layout(True, every, [])
    if chosen:
        return Layout(False, every, [])  # as asked for; Rich wraps what it must
    priority = table.priority or [0] * len(widths)
    keep: list[int] = []
    for j in sorted(every, key=lambda j: (priority[j], j)):
        if needed([widths[k] for k in [*keep, j]]) <= width:
            keep.append(j)
    keep.sort()
    keys = table.keys or table.headers
    return Layout(False, keep, [keys[j] for j in every if j not in keep])


def _styled(table: ComparisonTable, i: int, j: int) -> str:
    from rich.markup import escape

    marks = Marks(
        lambda s: f"[bold green]{s}[/]", lambda s: f"[yellow]{s} {TIE}[/]", lambda s, ci: f"{s}\n[dim]{escape(ci)}[/]"
    )
    text = mark(table, i, j, escape(table.rows[i][j]), marks)
    if j == table.status_column:
        n_ok, n = table.ok_seeds[i] if i < len(table.ok_seeds) else (int(table.rows[i][j] == "ok"), 1)
        if n_ok < n:
            text = f"[{'yellow' if n_ok else 'red'}]{escape(table.rows[i][j])}[/]"
    return text


def build(table: ComparisonTable, layout: Layout, width: int | None = None) -> Any:
    """The ``rich.table.Table`` of ``layout``: the protocol as title, the legend and what was left out under it."""
    from rich.markup import escape
    from rich.table import Table

    legend = list(table.legend) if table.legend else [table.caption]
    if layout.dropped:
        legend.append(f"not shown: {', '.join(layout.dropped)}; use --columns to choose")
    rich_table = Table(
        title=escape(table.protocol),
        caption=escape("\n".join(legend)),
        title_justify="left",
        caption_justify="left",
        show_lines=table.seeds > 1,  # rules between rows only where cells hold an interval line
    )
    heads = headers(table)
    columns = _columns(table) if not layout.transposed else []  # each column's texts, formatted once
    texts = _transposed(table) if layout.transposed else [columns[j] for j in layout.columns]
    sizes: list[int | None] = [None] * len(texts)
    if width is not None:
        sizes = list(allot([_min_width(t) for t in texts], [_max_width(t) for t in texts], width))
    if layout.transposed:
        rich_table.add_column("", justify="left", width=sizes[0])
        for i, row in enumerate(table.rows):
            head = escape(row[0]) if table.keys[:1] == ["model"] else f"#{i + 1}"
            rich_table.add_column(head, justify="right", width=sizes[i + 1])
        start = 1 if table.keys[:1] == ["model"] else 0
        for j in layout.columns[start:]:
            rich_table.add_row(escape(heads[j]), *(_styled(table, i, j) for i in range(len(table.rows))))
        return rich_table
    for j, size in zip(layout.columns, sizes, strict=True):
        key = table.keys[j] if j < len(table.keys) else table.headers[j]
        rich_table.add_column(escape(heads[j]), justify="left" if key in LEFT else "right", width=size)
    for i in range(len(table.rows)):
        rich_table.add_row(*(_styled(table, i, j) for j in layout.columns))
    return rich_table


class FittedTable:
    """A Rich renderable that lays ``table`` out for the width it is printed at (see :func:`plan`)."""

    def __init__(self, table: ComparisonTable, chosen: bool = False) -> None:
        self.table = table
        self.chosen = chosen  # columns the user picked: never dropped

    def layout(self, width: int) -> Layout:
        return plan(self.table, width, self.chosen)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        width = options.max_width
        yield build(self.table, self.layout(width), width)
