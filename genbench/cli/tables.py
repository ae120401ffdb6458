"""``genbench table`` and ``genbench report``: a finished run's table and report, from disk; and the
console every command prints its tables to.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from genbench.errors import GenbenchError


def _stdout() -> Console:
    """The console for tables: in a pipe or a CI log, wide enough not to squeeze columns into ellipses."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


class TableFormat(StrEnum):
    rich = "rich"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(StrEnum):
    html = "html"
    markdown = "markdown"


_SUFFIX_FORMATS = {".md": TableFormat.markdown, ".markdown": TableFormat.markdown, ".csv": TableFormat.csv}


def table(
    out: Annotated[Path, typer.Argument(help="a run folder holding results.csv")],
    format: Annotated[
        TableFormat | None,
        typer.Option("--format", help="rich, csv or markdown [rich; with -o, from the file's suffix]"),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(help="comma-separated columns, e.g. model,z_dim,fid_domain,status [those that fit]"),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="write to this file (markdown or csv); image links resolve from it"),
    ] = None,
) -> None:
    """Re-render the comparison table of a finished (or interrupted) run from disk."""
    from genbench.reporting.table import render

    if not (out / "results.csv").is_file():
        raise GenbenchError(f"{out}: no results.csv here; pass the folder a `genbench run --out` wrote")
    if output is not None and output.is_dir():
        raise GenbenchError(f"-o {output}: is a folder; give a file, e.g. {output / 'table.md'}")
    if format is None:
        format = _SUFFIX_FORMATS.get(output.suffix.lower(), TableFormat.rich) if output else TableFormat.rich
    if output is not None and format is TableFormat.rich:
        raise GenbenchError(f"-o {output}: writes markdown or csv; add --format markdown or --format csv")
    chosen = None if columns is None else list(_list(columns)) or [""]
    links_from = output.parent if output is not None else None  # stdout: links relative to the run folder
    rendered = render(out, format.value, chosen, links_from)
    if output is not None:
        from genbench.results import atomic_write_text

        atomic_write_text(output, str(rendered))
        Console(stderr=True).print(f"wrote {output}")
    elif isinstance(rendered, str):
        typer.echo(rendered, nl=False)
    else:
        _stdout().print(rendered)


def report(
    runs: Annotated[list[Path], typer.Argument(help="run folders (several: shown side by side)", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", help="the HTML file, or the folder for markdown [default: inside the first run]"),
    ] = None,
    format: Annotated[
        ReportFormat, typer.Option("--format", help="html: one self-contained page; markdown: README.md + pictures")
    ] = ReportFormat.html,
) -> None:
    """Write a report of one or more runs: protocol, sortable table, charts, quality curves and every figure."""
    from genbench.reporting.make import write_report

    path = write_report(list(runs), out, format.value)
    typer.echo(f"report written to {path}")
