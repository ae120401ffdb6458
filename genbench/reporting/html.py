"""``genbench report`` as one self-contained HTML page: nothing is fetched, everything is inside.

Pictures are data URIs, charts inline SVG (:mod:`genbench.reporting.svg`), the style
and the sorting script inline; a Content-Security-Policy forbids the page any
request (``default-src 'none'``), so it opens from disk, offline, as it was written.
The page holds, per run and side by side when there are several: the protocol, the
comparison table of ``genbench table`` (sortable, thumbnails, mean ± CI, bold and ≈),
each metric against the grid's axes, the quality curves, then a precision-recall
scatter of all cells, and a section per cell with its figures, training curves,
flags, errors and what is missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from html import escape
from typing import Any

from genbench.reporting import charts
from genbench.reporting.embed import Embedded, fit, picture, thumbnail
from genbench.reporting.report import CellView, RunView, datasets_differ, model_colours
from genbench.reporting.table_output import TIE, ComparisonTable, Marks, mark

SHEETS_UP_TO = 16  # cells in a report up to which a cell shows its figures' still sheets beside the animations
OPEN_UP_TO = 12  # cells shown open; more are folded (a click, or a link from the table, opens one)

CSS = """
:root{--ink:#1d2430;--muted:#667085;--line:#e4e7ec;--bg:#f6f7f9;--card:#fff;--ok:#067647;--bad:#b42318;
--warn:#b54708;--accent:#2f5bd3}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
color:var(--ink);background:var(--bg)}
header{background:#fff;border-bottom:1px solid var(--line);padding:18px 28px 14px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:2px 0;color:var(--muted)}
nav{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.96);border-bottom:1px solid var(--line);
padding:7px 28px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:var(--accent);text-decoration:none;font-weight:500}
main{max-width:1600px;margin:0 auto;padding:10px 28px 60px}
h2{font-size:18px;margin:30px 0 10px}
h3{font-size:15px;margin:0 0 6px}
code{font-size:12.5px;background:#f2f4f7;padding:1px 4px;border-radius:4px}
a{color:var(--accent);text-decoration:none}a:hover{text-decoration:underline}
.runs{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px;align-items:start}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:14px 16px;min-width:0}
.muted{color:var(--muted)}
.protocol{color:var(--muted);font-size:12.5px;margin:4px 0 10px}
.banner{border-left:4px solid var(--warn);background:#fffaeb;padding:9px 14px;border-radius:6px;margin:12px 0}
.banner.bad{border-color:var(--bad);background:#fef3f2}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
table.cmp{width:100%}
table.cmp th{background:#f2f4f7;text-align:left;font-weight:600;padding:6px 8px;border-bottom:1px solid var(--line);
white-space:nowrap;cursor:pointer;user-select:none;position:relative}
table.cmp th:hover{background:#e9edf3}
table.cmp th[aria-sort=ascending]::after{content:" \\25B2";font-size:10px}
table.cmp th[aria-sort=descending]::after{content:" \\25BC";font-size:10px}
table.cmp td{padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:middle}
table.cmp td.num{text-align:right;white-space:nowrap}
table.cmp tr:hover td{background:#fafbfc}
.ci{display:block;color:var(--muted);font-size:11px}
.best{font-weight:700;color:#05603a}
.tie{color:var(--warn)}
.badge{display:inline-block;padding:0 8px;border-radius:999px;font-size:12px;font-weight:600;white-space:nowrap}
.b-ok{background:#ecfdf3;color:var(--ok)}.b-failed{background:#fef3f2;color:var(--bad)}
.b-diverged{background:#fffaeb;color:var(--warn)}
.chip{display:inline-block;padding:0 7px;margin:1px 2px;border-radius:6px;font-size:12px;background:#fff4e5;
color:var(--warn)}
img.px{image-rendering:pixelated}
img.thumb{display:block;border-radius:3px}
.legend{color:var(--muted);font-size:12px;margin-top:6px}
.charts{display:flex;flex-wrap:wrap;gap:8px}
.charts svg{background:#fff;border:1px solid var(--line);border-radius:8px;max-width:100%;height:auto}
.gallery{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;margin:10px 0}
figure{margin:0;max-width:100%}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:4px;background:#fff}
figcaption{font-size:12px;color:var(--muted);max-width:440px;margin-top:3px}
figcaption b{color:var(--ink)}
details.cell{background:var(--card);border:1px solid var(--line);border-radius:10px;margin:10px 0;min-width:0}
details.cell>summary{padding:10px 14px;cursor:pointer;display:flex;gap:10px;align-items:center;flex-wrap:wrap}
details.cell>summary::-webkit-details-marker{display:none}
details.cell>summary::before{content:"\\25B8";color:var(--muted)}
details.cell[open]>summary::before{content:"\\25BE"}
details.cell>div{padding:0 14px 14px}
.title{font-weight:600}
.errors{color:var(--bad);margin:6px 0}
.missing{color:var(--warn);margin:6px 0}
table.kv td{padding:2px 10px 2px 0;border:0;font-size:13px}
table.kv td:first-child{color:var(--muted)}
ul.notes{margin:4px 0;padding-left:18px;color:var(--muted);font-size:12.5px}
"""

SCRIPT = """
(function(){
function key(td){var v=td.getAttribute('data-v');if(v===null||v==='')return null;var n=Number(v);
return isNaN(n)?v.toLowerCase():n;}
function sortBy(table,col,th){
var asc=th.getAttribute('aria-sort')!=='ascending';
table.querySelectorAll('th').forEach(function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=key(a.cells[col]),y=key(b.cells[col]);
if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
if(typeof x!==typeof y)return typeof x==='number'?-1:1;return (x<y?-1:x>y?1:0)*(asc?1:-1);});
rows.forEach(function(r){body.appendChild(r);});}
document.querySelectorAll('table.sortable').forEach(function(t){
t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){sortBy(t,i,th);});});});
function openTarget(){var id=decodeURIComponent(location.hash.slice(1));var el=id&&document.getElementById(id);
if(el&&el.tagName==='DETAILS'){el.open=true;}}
window.addEventListener('hashchange',openTarget);openTarget();
})();
"""

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

HTML_MARKS = Marks(
    lambda s: f'<span class="best">{s}</span>',
    lambda s: f'<span class="tie">{s} {TIE}</span>',
    lambda s, ci: f'{s}<span class="ci">{escape(ci)}</span>',
)


@dataclass
class _Pictures:
    """Every picture of the page, made once, so that the size budget sees them all before rendering."""

    cells: dict[tuple[int, str, str], Embedded] = field(default_factory=dict)  # (run, cell, artifact) -> picture
    thumbs: dict[tuple[int, str], Embedded] = field(default_factory=dict)  # (run, cell) -> thumbnail
    halved: int = 0

    def all(self) -> list[Embedded]:
        return [*self.cells.values(), *self.thumbs.values()]


def _img(p: Embedded, alt: str, cls: str = "") -> str:
    classes = " ".join(c for c in (cls, "px" if p.pixelated else "") if c)
    width, height = round(p.width * p.scale), round(p.height * p.scale)
    return (
        f'<img src="{p.uri()}" alt="{escape(alt)}" width="{width}" height="{height}"'
        + (f' class="{classes}"' if classes else "")
        + ">"
    )


def cell_anchor(run: int, cell_id: str) -> str:
    return f"r{run}-{cell_id}"


def _shown_files(cell: CellView, sheets: bool) -> list[tuple[str, str]]:
    """(artifact name, figure name) in the order a cell shows them: samples, then each figure's files."""
    if cell.record is None:
        return []
    out = [("samples", "samples")] if "samples" in cell.pictures else []
    for figure, files in cell.record.figures.items():
        gifs = [f for f in files if f.endswith(".gif")]
        for f in files:
            if f in cell.pictures and (sheets or not gifs or f.endswith(".gif")):
                out.append((f, figure))
    return out


def render_html(runs: list[RunView], figure_info: dict[str, tuple[str, str]] | None = None) -> str:
    """The report page for ``runs``; ``figure_info`` maps a figure name to (title, description)."""
    info = figure_info or {}
    colours = model_colours(runs)
    total_cells = sum(len(r.cells) for r in runs)
    sheets = total_cells <= SHEETS_UP_TO
    pics = _Pictures()
    for ri, run in enumerate(runs):
        for cell in run.cells:
            for name, _ in _shown_files(cell, sheets):
                art = cell.pictures[name]
                pics.cells[(ri, cell.cell_id, name)] = picture(art.data, art.mime)
            if "samples" in cell.pictures:
                pics.thumbs[(ri, cell.cell_id)] = thumbnail(cell.pictures["samples"].data)
    run_charts = [
        (charts.metric_charts(run, colours, f"r{ri}-"), charts.quality_charts(run, colours, f"r{ri}-"))
        for ri, run in enumerate(runs)
    ]
    scatter = charts.scatter_charts(runs, colours)
    cell_charts = {
        (ri, c.cell_id): charts.cell_charts(c, cell_anchor(ri, c.cell_id))
        for ri, run in enumerate(runs)
        for c in run.cells
    }
    fixed = sum(len(c.svg) for m, q in run_charts for c in [*m, *q]) + sum(len(c.svg) for c in scatter)
    fixed += sum(len(c.svg) for cs in cell_charts.values() for c in cs)
    pics.halved = fit(pics.all(), fixed)

    body = [_header(runs), _nav(), "<main>", _banners(runs, pics, sheets)]
    body.append('<h2 id="comparison">Comparison</h2><div class="runs">')
    body += [_run_table(ri, run, pics) for ri, run in enumerate(runs)]
    body.append("</div>")
    body.append('<h2 id="metrics">Metrics against the grid</h2><div class="runs">')
    for ri, run in enumerate(runs):
        body.append(_charts_card(run, run_charts[ri][0], "no ranked metric with a value" if not run.ok else ""))
    body.append("</div>")
    body.append('<h2 id="quality">Quality over training</h2><div class="runs">')
    for ri, run in enumerate(runs):
        none = "no quality curve in this run (genbench run --eval-every 0, or every cell failed before one)"
        body.append(_charts_card(run, run_charts[ri][1], none))
    body.append("</div>")
    body.append('<h2 id="scatter">Precision and recall</h2>')
    if scatter:
        body.append('<div class="charts">' + "".join(c.svg for c in scatter) + "</div>")
    else:
        body.append(
            '<p class="muted">No precision/recall (metric <code>prc</code>) or toy-metric pair in these runs.</p>'
        )
    body.append('<h2 id="cells">Cells</h2><div class="runs">')
    for ri, run in enumerate(runs):
        cards = [_cell_section(ri, run, c, pics, cell_charts[(ri, c.cell_id)], info, total_cells) for c in run.cells]
        body.append(f'<div class="card"><h3>{escape(run.name)}</h3>{"".join(cards)}</div>')
    body.append("</div></main>")
    title = "genbench report: " + ", ".join(r.name for r in runs)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        + "".join(body)
        + f"<script>{SCRIPT}</script></body></html>\n"
    )


def _header(runs: list[RunView]) -> str:
    from genbench import __version__

    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    lines = "".join(
        f"<p><b>{escape(r.name)}</b> <code>{escape(str(r.path))}</code>: dataset {escape(r.dataset)}, "
        f"{escape(r.summary())}</p>"
        for r in runs
    )
    return f"<header><h1>genbench report</h1>{lines}<p>generated {escape(when)} by genbench {__version__}</p></header>"


def _nav() -> str:
    links = [("comparison", "Comparison"), ("metrics", "Metrics vs grid"), ("quality", "Quality over training"),
             ("scatter", "Precision-recall"), ("cells", "Cells")]  # fmt: skip
    return "<nav>" + "".join(f'<a href="#{k}">{t}</a>' for k, t in links) + "</nav>"


def _banners(runs: list[RunView], pics: _Pictures, sheets: bool) -> str:
    out = []
    if datasets_differ(runs):
        named = "; ".join(f"{r.name}: {r.dataset}" for r in runs)
        out.append(
            f'<div class="banner">These runs use different datasets ({escape(named)}): their numbers are not '
            "comparable, so each run is shown on its own.</div>"
        )
    for run in runs:
        for note in run.notes:
            out.append(f'<div class="banner">{escape(run.name)}: {escape(note)}</div>')
        if not run.ok:
            out.append(
                f'<div class="banner bad">{escape(run.name)}: no cell finished ok ({escape(run.summary())}): '
                "nothing to compare. Each cell's error is in its section below.</div>"
            )
        lacking = [c for c in run.cells if c.missing]
        if lacking:
            out.append(
                f'<div class="banner">{escape(run.name)}: {len(lacking)} of {len(run.cells)} cells lack files the '
                "run wrote (deleted or changed since); each cell's section lists them.</div>"
            )
    if pics.halved:
        out.append(
            f'<div class="banner">{pics.halved} pictures are shown at reduced size to keep this page under 10 MB; '
            "the full-size files are in each cell's folder.</div>"
        )
    if not sheets:
        out.append(
            '<p class="muted">Animations only: each figure\'s still sheet (every epoch in one picture) is in the '
            "cell's folder.</p>"
        )
    return "".join(out)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _num(text: str) -> str:
    """The sort key of a table cell: the leading number of ``12.3 ± 1.2``, else the text ("" for "—": last)."""
    head = text.split(" ")[0]
    if _is_number(head):
        return head
    return "" if text.strip() in ("—", "") else text


def _run_table(ri: int, run: RunView, pics: _Pictures) -> str:
    t: ComparisonTable = run.table
    head = "".join(f'<th title="sort by {escape(h)}">{escape(h)}</th>' for h in ["samples", *t.headers])
    rows = []
    for i, row in enumerate(t.rows):
        cells_of_row = t.cells[i] if i < len(t.cells) else []
        target = cells_of_row[0] if cells_of_row else ""
        first = next((c for c in cells_of_row if (ri, c) in pics.thumbs), None)  # the first seed with samples
        thumb = pics.thumbs.get((ri, first)) if first else None
        shown = f'<a href="#{escape(cell_anchor(ri, target))}">{_img(thumb, "samples", "thumb")}</a>' if thumb else ""
        tds = [f'<td data-v="">{shown}</td>']
        for j, value in enumerate(row):
            text = mark(t, i, j, escape(value), HTML_MARKS)
            key = _num(value)
            numeric = _is_number(key)
            if j == 0 and target:
                text = f'<a href="#{escape(cell_anchor(ri, target))}">{text}</a>'
            if j == t.status_column:
                n_ok, n = t.ok_seeds[i] if i < len(t.ok_seeds) else (1, 1)
                kind = "ok" if n_ok == n else "failed" if n_ok == 0 else "diverged"
                text = f'<span class="badge b-{kind}">{text}</span>'
            tds.append(f'<td data-v="{escape(key)}"{" class=num" if numeric and key else ""}>{text}</td>')
        rows.append("<tr>" + "".join(tds) + "</tr>")
    legend = "<br>".join(escape(line) for line in t.legend)
    protocol = _protocol_details(run)
    return (
        f'<div class="card"><h3>{escape(run.name)}</h3><p class="protocol">{escape(t.protocol)}</p>{protocol}'
        f'<div class="scroll"><table class="cmp sortable" data-run="{ri}"><thead><tr>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}</tbody></table></div><p class="legend">{legend}</p></div>'
    )


def _protocol_details(run: RunView) -> str:
    protocol = run.manifest.get("protocol") or {}
    if not isinstance(protocol, dict) or not protocol:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(k))}</td><td><code>{escape(_value(v))}</code></td></tr>" for k, v in protocol.items()
    )
    extra = []
    for key in ("models", "grid", "seeds", "created"):
        if key in run.manifest:
            extra.append(f"<tr><td>{key}</td><td><code>{escape(_value(run.manifest[key]))}</code></td></tr>")
    table = f'<table class="kv">{rows}{"".join(extra)}</table>'
    return f'<details><summary class="muted">the whole protocol</summary>{table}</details>'


def _value(v: Any) -> str:
    if isinstance(v, list | tuple):
        return ", ".join(str(x) for x in v) or "—"
    return "—" if v is None else str(v)


def _charts_card(run: RunView, made: list[charts.Chart], empty: str) -> str:
    if not made:
        return f'<div class="card"><h3>{escape(run.name)}</h3><p class="muted">{escape(empty or "no chart")}</p></div>'
    return (
        f'<div class="card"><h3>{escape(run.name)}</h3><div class="charts">{"".join(c.svg for c in made)}</div></div>'
    )


def _cell_section(
    ri: int,
    run: RunView,
    cell: CellView,
    pics: _Pictures,
    made: list[charts.Chart],
    info: dict[str, tuple[str, str]],
    total: int,
) -> str:
    record = cell.record
    varied = run.table.varied
    summary = [f'<span class="badge b-{escape(cell.status)}">{escape(cell.status)}</span>',
               f'<span class="title">{escape(cell.title(varied))}</span>']  # fmt: skip
    t = run.table
    for j, key in zip(t.metric_columns[:2], t.metric_keys[:2], strict=False):
        if key in cell.metrics:
            summary.append(f'<span class="muted">{escape(t.headers[j])} {charts.fmt(cell.metrics[key])}</span>')
    summary += [f'<span class="chip">{escape(f.split(":", 1)[0])}</span>' for f in cell.flags]
    parts = []
    if cell.error:
        parts.append(f'<p class="errors"><b>{escape(cell.status)}:</b> {escape(cell.error)}</p>')
    for flag in cell.flags:
        parts.append(f'<p class="missing"><b>flag</b> {escape(flag)}</p>')
    for line in cell.missing:
        parts.append(f'<p class="missing"><b>missing</b> {escape(line)}</p>')
    gallery = []
    for name, figure in _shown_files(cell, total <= SHEETS_UP_TO):
        p = pics.cells.get((ri, cell.cell_id, name))
        if p is None:
            continue
        title, description = _figure_text(figure, name, info, cell)
        gallery.append(
            f"<figure>{_img(p, title)}<figcaption><b>{escape(title)}</b> {escape(description)}</figcaption></figure>"
        )
    if gallery:
        parts.append('<div class="gallery">' + "".join(gallery) + "</div>")
    if made:
        parts.append('<div class="charts">' + "".join(c.svg for c in made) + "</div>")
    if record is not None:
        parts.append(_cell_details(cell, record))
    open_attr = " open" if total <= OPEN_UP_TO else ""
    return (
        f'<details class="cell" id="{escape(cell_anchor(ri, cell.cell_id))}"{open_attr}><summary>{"".join(summary)}'
        f"</summary><div>{''.join(parts)}</div></details>"
    )


def _figure_text(figure: str, file_name: str, info: dict[str, tuple[str, str]], cell: CellView) -> tuple[str, str]:
    if figure == "samples":
        points = cell.record is not None and cell.record.protocol.get("dataset", "").startswith("toy")
        return "Samples", "generated points (red) over the data (grey)" if points else "the cell's evaluation samples"
    title, description = info.get(figure, (figure.replace("_", " ").capitalize(), ""))
    if file_name.endswith(".gif"):
        title += " (animation)"
    return title, description


def _cell_details(cell: CellView, record: Any) -> str:
    rows = [f"<tr><td>{escape(k)}</td><td>{escape(charts.fmt(v))}</td></tr>" for k, v in record.metrics.items()]
    hyper = ", ".join(f"{k}={v}" for k, v in record.hyper.items())
    timing = ", ".join(f"{k} {v.seconds:.2f} s" for k, v in record.timings.items())
    notes = [f"<li>{escape(k)}: {escape(v)}</li>" for k, v in {**record.metric_notes, **record.figure_notes}.items()]
    return (
        '<details><summary class="muted">metrics, hyper-parameters, timings, notes</summary>'
        f'<table class="kv">{"".join(rows)}</table><p class="muted">hyper-parameters: <code>{escape(hyper)}</code></p>'
        f'<p class="muted">timings: {escape(timing)}; device {escape(record.device)}; '
        f"cell <code>{escape(cell.cell_id)}</code></p>"
        + (f'<ul class="notes">{"".join(notes)}</ul>' if notes else "")
        + "</details>"
    )
