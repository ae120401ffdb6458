"""``genbench report``'s library call: read the runs, write one HTML page or a Markdown folder."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from genbench.errors import GenbenchError
from genbench.reporting.html import render_html
from genbench.reporting.markdown import write_markdown
from genbench.reporting.report import load_runs
from genbench.results import atomic_write_text

ReportFormat = Literal["html", "markdown"]
HTML_NAME = "report.html"
MARKDOWN_DIR = "report"


def figure_info() -> dict[str, tuple[str, str]]:
    """Each registered figure's (title, description), for captions; figures of uninstalled plugins get their name."""
    from genbench.plugins import get_registry

    return {name: (e.cls.title or name.replace("_", " ").capitalize(), e.cls.description)
            for name, e in get_registry().figures.items()}  # fmt: skip


def write_report(runs: list[Path], out: Path | None = None, fmt: ReportFormat = "html") -> Path:
    """Write the report of ``runs`` and return its path: ``out`` (default: ``report.html``, or the folder
    ``report/`` for Markdown, inside the first run). Raises GenbenchError for a folder that is not a run."""
    if fmt not in ("html", "markdown"):
        raise GenbenchError(f"--format {fmt!r}; valid: 'html', 'markdown'")
    views = load_runs(runs)
    info = figure_info()
    if fmt == "markdown":
        return write_markdown(views, out if out is not None else views[0].path / MARKDOWN_DIR, info)
    target = out if out is not None else views[0].path / HTML_NAME
    if target.is_dir():
        raise GenbenchError(f"-o {target}: is a folder; give the page's file name, e.g. {target / HTML_NAME}")
    if not target.parent.is_dir():
        raise GenbenchError(f"-o {target}: no folder {target.parent} to write it in")
    atomic_write_text(target, render_html(views, info))
    return target
