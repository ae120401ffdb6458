"""``genbench report``: how long a page takes, what it weighs, and what its charts would cost with matplotlib.

For the runs given, the script times :func:`genbench.reporting.make.write_report` (best of
``--repeats``), splits the page's size into pictures (data URIs), charts (inline SVG) and
the rest, then re-draws every chart of the page three ways and compares time and bytes:

``genbench svg``
    :func:`genbench.reporting.svg.chart`, what the page uses;
``matplotlib svg``
    the same series (lines, markers, error bars, legend) with matplotlib's Agg figure saved
    as SVG (text as text, ``svg.fonttype = none``, so fonts are not embedded as paths);
``matplotlib png``
    the same figure as a PNG at the SVG's pixel size, counted as the base64 a page embeds.

Plotly is reported when installed (``to_html(include_plotlyjs=True)`` embeds its
JavaScript bundle once per page); it is not a genbench dependency.

    python benchmarks/bench_report.py results/quickstart
    python benchmarks/bench_report.py results/a results/b --repeats 3
"""

from __future__ import annotations

import argparse
import base64
import io
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from genbench.reporting import charts as charts_module
from genbench.reporting import svg
from genbench.reporting.make import write_report
from genbench.reporting.report import load_runs, model_colours


def captured_charts(paths: list[Path]) -> list[tuple[list[svg.Series], dict[str, Any]]]:
    """Every chart a page of ``paths`` draws, as the (series, keywords) given to ``svg.chart``."""
    calls: list[tuple[list[svg.Series], dict[str, Any]]] = []
    original = charts_module.chart

    def spy(series: Any, **kw: Any) -> str:
        calls.append((list(series), kw))
        return original(series, **kw)

    charts_module.chart = spy
    try:
        runs = load_runs(paths)
        colours = model_colours(runs)
        for run in runs:
            charts_module.metric_charts(run, colours)
            charts_module.quality_charts(run, colours)
            for cell in run.cells:
                charts_module.cell_charts(cell, cell.cell_id)
        charts_module.scatter_charts(runs, colours)
    finally:
        charts_module.chart = original
    return calls


def matplotlib_chart(series: list[svg.Series], kw: dict[str, Any], fmt: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    width, height = kw.get("width", 380), kw.get("height", 250)
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    for s in series:
        xs = [p.x for p in s.points]
        ys = [p.y for p in s.points]
        err = [[p.y - (p.low if p.low is not None else p.y) for p in s.points],
               [(p.high if p.high is not None else p.y) - p.y for p in s.points]]  # fmt: skip
        ax.errorbar(xs, ys, yerr=err, label=s.name, color=s.colour, marker="o", linestyle="-" if s.line else "none")
    if kw.get("x_kind") == "log":
        ax.set_xscale("log")
    ax.set_title(kw.get("title", ""), fontsize=9)
    ax.set_xlabel(kw.get("x_label", ""), fontsize=8)
    ax.set_ylabel(kw.get("y_label", ""), fontsize=8)
    if kw.get("legend", True) and len(series) > 1:
        ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    plt.close(fig)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            write_report(args.runs, page)
            times.append(time.perf_counter() - start)
        text = page.read_text(encoding="utf-8")
    pictures = sum(len(m) for m in re.findall(r'src="(data:[^"]+)"', text))
    inline_svg = sum(len(m) for m in re.findall(r"<svg.*?</svg>", text, flags=re.S))
    cells = len(re.findall(r'<details class="cell"', text))
    print(
        f"page: {cells} cells, {len(text.encode()) / 1e6:.2f} MB (pictures {pictures / 1e6:.2f} MB, charts "
        f"{inline_svg / 1e6:.2f} MB, the rest {(len(text) - pictures - inline_svg) / 1e6:.2f} MB); "
        f"written in {min(times):.2f} s (best of {args.repeats}, imports excluded)"
    )

    calls = captured_charts(args.runs)
    results: dict[str, tuple[float, int]] = {}
    for name, draw in (
        ("genbench svg", lambda s, kw: svg.chart(s, **kw).encode()),
        ("matplotlib svg", lambda s, kw: matplotlib_chart(s, kw, "svg")),
        ("matplotlib png", lambda s, kw: base64.b64encode(matplotlib_chart(s, kw, "png"))),
    ):
        draw(*calls[0])  # warm-up (matplotlib's first figure loads fonts)
        start = time.perf_counter()
        size = sum(len(draw(s, kw)) for s, kw in calls)
        results[name] = (time.perf_counter() - start, size)
    print(f"{len(calls)} charts:")
    for name, (seconds, size) in results.items():
        print(
            f"  {name:15s} {seconds:7.2f} s ({seconds / len(calls) * 1e3:6.2f} ms a chart), "
            f"{size / 1e6:6.2f} MB ({size / len(calls) / 1e3:5.1f} kB a chart)"
        )
    try:
        import plotly  # noqa: F401
        from plotly.offline import get_plotlyjs

        print(f"  plotly          its JavaScript bundle alone: {len(get_plotlyjs()) / 1e6:.2f} MB per page")
    except ImportError:
        print("  plotly          not installed (to_html(include_plotlyjs=True) embeds its ~3.5 MB bundle per page)")
    print(f"median chart: {statistics.median(len(svg.chart(s, **kw)) for s, kw in calls) / 1e3:.1f} kB of SVG")


if __name__ == "__main__":
    main()
