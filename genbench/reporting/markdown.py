"""``genbench report --format markdown``: a README.md and its pictures in a folder, for a lab report.

The Markdown starts with the comparison table (``genbench table --format markdown``,
its sample previews linking to the copied pictures), then the charts as ``.svg`` files,
then a section per cell with its figures (PNG and animated GIF) and curves. Every link
is relative, so the folder renders as it is on a code host (GitHub, GitLab) or in an
editor's preview, and can be moved or zipped whole.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.reporting import charts
from genbench.reporting.embed import thumbnail
from genbench.reporting.report import CellView, RunView, datasets_differ, model_colours
from genbench.reporting.table import to_markdown
from genbench.results import atomic_path, atomic_write_text

README = "README.md"
CHARTS = "charts"


def _md(text: str) -> str:
    """Text for a Markdown line: characters that would start markup are escaped."""
    out = str(text).replace("\\", "\\\\")
    for ch in "`*_[]<>|#":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def write_markdown(runs: list[RunView], out: Path, figure_info: dict[str, tuple[str, str]] | None = None) -> Path:
    """Write ``out/README.md``, ``out/charts/*.svg`` and the runs' pictures below ``out``; return the README."""
    info = figure_info or {}
    if out.exists() and not out.is_dir():
        raise GenbenchError(f"-o {out}: not a folder; --format markdown writes a folder (README.md and pictures)")
    if (out / README).exists() and not _ours(out / README):
        raise GenbenchError(f"-o {out}: holds a README.md that genbench did not write; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    colours = model_colours(runs)
    several = len(runs) > 1
    lines = ["<!-- written by genbench report -->", "# genbench report", ""]
    for run in runs:
        lines.append(f"- **{_md(run.name)}** (`{run.path}`): dataset {_md(run.dataset)}, {_md(run.summary())}")
    lines.append("")
    if datasets_differ(runs):
        lines += [
            "> These runs use different datasets: their numbers are not comparable; each is shown on its own.",
            "",
        ]
    for ri, run in enumerate(runs):
        prefix = f"run{ri + 1}/" if several else ""
        copied = _copy_pictures(run, out, prefix)
        previews = _thumbnails(run, out, prefix)
        lines += [f"## Comparison: {_md(run.name)}" if several else "## Comparison", ""]
        for note in run.notes:
            lines += [f"> {_md(note)}", ""]
        if not run.ok:
            lines += [f"> No cell finished ok ({_md(run.summary())}): each cell's error is below.", ""]
        lines += [to_markdown(dataclasses.replace(run.table, previews=previews)), ""]
        made = charts.metric_charts(run, colours, f"r{ri + 1}-")
        quality = charts.quality_charts(run, colours, f"r{ri + 1}-")
        if made:
            lines += ["### Metrics against the grid", "", *_chart_links(made, out), ""]
        if quality:
            lines += ["### Quality over training", "", *_chart_links(quality, out), ""]
        lines += ["### Cells", ""]
        for cell in run.cells:
            lines += _cell(cell, run, copied, info)
    scatter = charts.scatter_charts(runs, colours)
    if scatter:
        lines += ["## Precision and recall", "", *_chart_links(scatter, out), ""]
    path = out / README
    atomic_write_text(path, "\n".join(lines).rstrip() + "\n")
    return path


def _ours(readme: Path) -> bool:
    try:
        with open(readme, encoding="utf-8") as f:
            return f.readline().startswith("<!-- written by genbench report -->")
    except (OSError, UnicodeDecodeError):
        return False


def _chart_links(made: list[charts.Chart], out: Path) -> list[str]:
    (out / CHARTS).mkdir(exist_ok=True)
    links = []
    for c in made:
        atomic_write_text(out / CHARTS / f"{c.key}.svg", c.svg)
        links.append(f"![{_md(c.title)}]({CHARTS}/{c.key}.svg)")
    return [" ".join(links)]


def _copy_pictures(run: RunView, out: Path, prefix: str) -> dict[tuple[str, str], str]:
    """Copy every checked picture to ``out/<prefix>cells/<id>/<file>``; map (cell, artifact) to its link.

    ``Artifact.path`` was checked when it was read (``cells/<cell_id>/<file>``, plain parts),
    so every copy lands below ``out``.
    """
    copied: dict[tuple[str, str], str] = {}
    for cell in run.cells:
        for name, art in cell.pictures.items():
            link = f"{prefix}{art.path}"
            target = out / link
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                tmp.write_bytes(art.data)
            copied[(cell.cell_id, name)] = link
    return copied


def _thumbnails(run: RunView, out: Path, prefix: str) -> list[str]:
    """A small preview per table row (the first seed's samples, cropped), written to ``thumbs/``: the table's
    preview column links to it, so the table stays one line high per row."""
    links = []
    for i in range(len(run.table.rows)):
        ids = run.table.cells[i] if i < len(run.table.cells) else []
        cell = next((c for c in run.cells if c.cell_id in ids and "samples" in c.pictures), None)
        if cell is None:
            links.append("")
            continue
        link = f"{prefix}thumbs/{cell.cell_id}.png"
        (out / link).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / link) as tmp:
            tmp.write_bytes(thumbnail(cell.pictures["samples"].data).data)
        links.append(link)
    return links


def _cell(
    cell: CellView, run: RunView, copied: dict[tuple[str, str], str], info: dict[str, tuple[str, str]]
) -> list[str]:
    lines = [f"#### {_md(cell.title(run.table.varied))}: {cell.status}", ""]
    if cell.error:
        lines += [f"**{cell.status}:** {_md(cell.error)}", ""]
    lines += [f"- flag: {_md(f)}" for f in cell.flags]
    lines += [f"- missing: {_md(m)}" for m in cell.missing]
    if cell.flags or cell.missing:
        lines.append("")
    record = cell.record
    if record is not None and record.metrics:
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {_md(k)} | {charts.fmt(v)} |" for k, v in record.metrics.items()]
        lines.append("")
    pictures = []
    if (cell.cell_id, "samples") in copied:
        pictures.append(f"![samples]({copied[(cell.cell_id, 'samples')]})")
    if record is not None:
        for figure, files in record.figures.items():
            title = info.get(figure, (figure.replace("_", " "), ""))[0]
            for f in files:
                if (cell.cell_id, f) in copied:
                    pictures.append(f"![{_md(title)}]({copied[(cell.cell_id, f)]})")
        if (cell.cell_id, "curves") in copied:
            pictures.append(f"![training curves]({copied[(cell.cell_id, 'curves')]})")
        notes = {k: v for k, v in record.figure_notes.items() if not v.startswith("not applicable")}
        lines += [f"- {_md(k)}: {_md(v)}" for k, v in notes.items()]
        if notes:
            lines.append("")
    if pictures:
        lines += [" ".join(pictures), ""]
    return lines
