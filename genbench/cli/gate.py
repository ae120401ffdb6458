"""The regression gate's commands: ``genbench compare``, ``genbench baseline`` and ``genbench check``."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from genbench.cli.tables import _stdout


class CompareFormat(StrEnum):
    rich = "rich"
    markdown = "markdown"
    json = "json"
    csv = "csv"


class Speed(StrEnum):
    raw = "raw"
    calibrated = "calibrated"


_TOLERANCE = Annotated[
    list[str] | None,
    typer.Option(
        "--tolerance",
        metavar="NAME=VALUE",
        help="how large a change must be to count: fid_domain=5%, kid_domain=0.002 (in the metric's units), "
        "speed=15% (time per image), metrics=10% (every metric without its own); repeatable",
    ),
]
_ALPHA = Annotated[
    float | None,
    typer.Option(
        help="level of the t-tests over the seeds, Benjamini-Hochberg adjusted over the figures  [default: 0.01]"
    ),
]
_CHECK_CONFIG = Annotated[
    Path | None, typer.Option("--config", help="a suite file whose [check] table gives tolerances and alpha")
]


def compare(
    run_a: Annotated[Path, typer.Argument(help="a run folder (A, the reference)")],
    run_b: Annotated[Path, typer.Argument(help="another run folder (B)")],
    format: Annotated[CompareFormat, typer.Option("--format", help="rich, markdown, json or csv")] = CompareFormat.rich,
    tolerance: _TOLERANCE = None,
    alpha: _ALPHA = None,
    speed: Annotated[
        Speed, typer.Option(help="raw (images/s: same machine) or calibrated (ratios to each run's calibration)")
    ] = Speed.raw,
    config: _CHECK_CONFIG = None,
) -> None:
    """Per matched cell and figure: A, B, the change and a verdict (better, worse, no significant change)."""
    from genbench.reporting import gate_output
    from genbench.reporting.gate import compare_runs

    result = compare_runs(run_a, run_b, tolerance or (), alpha, speed.value, config)
    if format is CompareFormat.rich:
        _stdout().print(gate_output.compare_rich(result))
        return
    render = {
        "markdown": gate_output.compare_markdown,
        "json": gate_output.compare_json,
        "csv": gate_output.compare_csv,
    }
    typer.echo(render[format.value](result), nl=False)


def baseline(
    run: Annotated[Path, typer.Argument(help="the run folder to keep as the reference")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="the baseline file to write, e.g. benchmarks/baseline.json")
    ],
    tolerance: _TOLERANCE = None,
    alpha: _ALPHA = None,
    config: _CHECK_CONFIG = None,
) -> None:
    """Store a run's per-seed metrics, speed figures, protocol, environment and tolerances as a baseline file."""
    from genbench.reporting.gate import write_run_baseline

    written = write_run_baseline(run, output, tolerance or (), alpha, config)
    typer.echo(f"wrote {written.path}: {written.cells} cells, {written.seeds} seeds")
    for note in written.notes:
        typer.echo(note)


def check(
    run: Annotated[Path, typer.Argument(help="the run folder to check")],
    baseline: Annotated[
        Path | None, typer.Option(help="a baseline file (genbench baseline): speed as calibrated ratios")
    ] = None,
    against: Annotated[Path | None, typer.Option(help="a run made in the same job (base): raw speed figures")] = None,
    tolerance: _TOLERANCE = None,
    alpha: _ALPHA = None,
    speed: Annotated[
        Speed | None,
        typer.Option(help="override: raw or calibrated  [default: calibrated with --baseline, raw with --against]"),
    ] = None,
    config: _CHECK_CONFIG = None,
    markdown: Annotated[
        Path | None, typer.Option(help="write the Markdown summary here (also to $GITHUB_STEP_SUMMARY when set)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the full result as JSON here")] = None,
    junit: Annotated[Path | None, typer.Option(help="write JUnit XML here: one test case per cell x figure")] = None,
) -> None:
    """Exit 0 when nothing regressed, 1 when something did (metric, speed, status or new flag), 2 for bad input."""
    from genbench.reporting.gate import check_run, write_reports
    from genbench.reporting.gate_output import check_markdown

    result = check_run(run, baseline, against, tolerance or (), alpha, None if speed is None else speed.value, config)
    write_reports(result, markdown, json_out, junit)
    typer.echo(check_markdown(result), nl=False)
    if result.exit_code:
        raise typer.Exit(result.exit_code)
