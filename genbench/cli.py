"""``genbench`` command line: parse, make one library call, render.

Every user error is one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from genbench.errors import GenbenchError, choices
from genbench.options import Kind as OptionKind
from genbench.options import Option, parse_ints, parse_weights
from genbench.protocol import eval_options, run_options
from genbench.suite import Suite, load_suite

app = typer.Typer(
    help="Benchmark generative image models: grids, timed protocols, torch-fidelity metrics, tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
)


def _show_version(value: bool) -> None:
    if value:
        from genbench import __version__

        typer.echo(f"genbench {__version__}")
        raise typer.Exit()


@app.callback()
def _app(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Benchmark generative image models: grids, timed protocols, torch-fidelity metrics, tables."""


def _stdout() -> Console:
    """The console for tables: in a pipe or a CI log, wide enough not to squeeze columns into ellipses."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


class Kind(StrEnum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"
    figures = "figures"
    executors = "executors"
    plugins = "plugins"
    options = "options"


class TableFormat(StrEnum):
    rich = "rich"
    csv = "csv"
    markdown = "markdown"


class ReportFormat(StrEnum):
    html = "html"
    markdown = "markdown"


def run(config: Path | None = None, **flags: Any) -> None:
    """Train and evaluate every model x grid cell x seed; save results and print the table."""
    from genbench.console import ProgressReporter
    from genbench.plugins import get_registry
    from genbench.reporting.table import load_table, to_rich
    from genbench.run.runner import run_grid

    registry = get_registry()
    suite = load_suite(config) if config is not None else Suite()
    suite = suite.override(**{opt.key: _parse_flag(opt, flags[opt.key]) for opt, _ in _RUN_OPTIONS})
    request = suite.request()
    out_dir = request.out_dir

    console = Console(stderr=True)
    for problem in registry.problems:
        console.print(f"[yellow]plugin problem:[/] {problem}")
    try:
        with ProgressReporter(console) as reporter:
            result = run_grid(request, reporter)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: finished cells are saved in {out_dir / 'results.csv'}")
        raise typer.Exit(130) from None
    _stdout().print(to_rich(load_table(result.out_dir)))
    failed = sum(r.status != "ok" for r in result.records)
    console.print(
        f"{len(result.records)} cells, {failed} not ok; results in {result.out_dir / 'results.csv'}"
        f" (re-render with: genbench table {result.out_dir})"
    )


# One typer type per kind of option (genbench.options.Kind); none per option.
_CLI_TYPE: dict[OptionKind, Any] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "path": Path,
    "file": Path,
    "names": str,
    "seeds": str,
    "ints": str,
    "weights": list[str],
    "grid": list[str],
}


def cli_parameters(options: Iterable[Option]) -> list[tuple[Option, Any]]:
    """(option, typer annotation) for every command-line option; each defaults to None ("not given")."""
    out = []
    for opt in options:
        if not opt.cli:
            continue
        decls = [opt.flag] if opt.kind != "bool" else [f"{opt.flag}/--no-{opt.flag.removeprefix('--')}"]
        info = typer.Option(*decls, help=opt.help_text(), show_default=False, metavar=opt.metavar or None)
        out.append((opt, Annotated[_CLI_TYPE[opt.kind] | None, info]))
    return out


def _parse_flag(opt: Option, raw: Any) -> Any:
    """A command-line value (typer has made numbers, booleans and paths) -> the field's type."""
    if raw is None:
        return None
    if opt.kind == "names":
        names = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
        if not names:  # `--metrics ''` would silently measure nothing
            from genbench.plugins import get_registry
            from genbench.suite import valid_names

            valid = valid_names(opt.registry, get_registry()) if opt.registry else []
            valid = ["all", *valid] if opt.registry == "metrics" else valid
            raise GenbenchError(f"{opt.flag}: none given; valid: {choices(valid)}")
        return names
    if opt.kind == "seeds":
        from genbench.run.grid import parse_seeds

        return parse_seeds(raw)
    if opt.kind == "ints":
        return parse_ints(opt.flag, raw)
    if opt.kind == "weights":
        return parse_weights(raw)
    return raw


def declare_options(
    command: Any, options: Iterable[Option], own: dict[str, tuple[Any, Any]]
) -> list[tuple[Option, Any]]:
    """Give ``command`` (a function taking ``**flags``) its typer parameters: ``own`` (name -> (annotation,
    default)) first, then one per declared option, made by :func:`cli_parameters` (so ``run`` and ``eval``
    share every declaration). Each declared option defaults to None, "not given"."""
    derived = cli_parameters(options)
    kw = inspect.Parameter.KEYWORD_ONLY
    command.__signature__ = inspect.Signature(
        [inspect.Parameter(name, kw, default=default, annotation=a) for name, (a, default) in own.items()]
        + [inspect.Parameter(o.key, kw, default=None, annotation=a) for o, a in derived]
    )
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}
    return derived


# `run`'s options are made from their declarations (genbench.options): each defaults to None ("not
# given"), so that its value comes from --config, else from the declared default shown in --help.
_CONFIG = Annotated[
    Path | None, typer.Option(help="a suite file (TOML), e.g. benchmarks/smoke.toml; flags given here win")
]
_RUN_OPTIONS = declare_options(run, run_options(), {"config": (_CONFIG, None)})
app.command()(run)


def eval_(**flags: Any) -> None:
    """Evaluate a generator genbench did not train (images, TorchScript, ONNX, module:function) by the
    protocol of `genbench run`; with --out naming a run, the row joins that run's table."""
    from genbench.reporting.table import load_table, to_rich
    from genbench.run.evaluate import EvalRequest, evaluate_source

    given = {opt.name: _parse_flag(opt, flags[opt.key]) for opt, _ in _EVAL_OPTIONS if opt.group == "protocol"}
    out = flags["out"]
    if out is None:
        import datetime as dt

        out = Path("results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    request = EvalRequest(
        out_dir=out,
        images=flags["images"],
        generator=flags["generator"],
        z_dim=flags["z_dim"],
        z_dist=flags["z_dist"].value if flags["z_dist"] is not None else None,
        conditional=flags["conditional"],
        seed=flags["seed"],
        name=flags["name"],
        protocol_options={k: v for k, v in given.items() if v is not None},
    )
    console = Console(stderr=True)
    result = evaluate_source(request, lambda message: console.print(f"[dim]{message}[/]"))
    _stdout().print(to_rich(load_table(result.out_dir)))
    record = result.record
    where = "added to the run in" if result.added_to_run else "results in"
    status = record.status if record.status == "ok" else f"{record.status}: {record.error}"
    typer.echo(f"{record.model}: {status}; {where} {result.out_dir} (cell {record.cell_id})", err=True)
    if record.status != "ok":
        raise typer.Exit(1)


class ZDistChoice(StrEnum):
    normal = "normal"
    uniform = "uniform"


_EVAL_OWN: dict[str, tuple[Any, Any]] = {
    "images": (
        Annotated[Path | None, typer.Option(help="a folder of PNG/JPEG samples, or an .npz of them (see README)")],
        None,
    ),
    "generator": (
        Annotated[
            str | None,
            typer.Option(help="FILE.pt (TorchScript), FILE.onnx (onnxruntime) or module:function; runs its code"),
        ],
        None,
    ),
    "z_dim": (Annotated[int | None, typer.Option(help="size of z (default: the export's metadata)", min=1)], None),
    "z_dist": (
        Annotated[ZDistChoice | None, typer.Option(help="z ~ normal N(0, I) or uniform U[-1, 1] (default: normal)")],
        None,
    ),
    "conditional": (
        Annotated[
            bool | None,
            typer.Option("--conditional/--unconditional", help="the generator takes (z, labels): class-balanced"),
        ],
        None,
    ),
    "seed": (Annotated[int, typer.Option(help="sampling seed: a cell's seed reproduces its samples", min=0)], 0),
    "name": (Annotated[str | None, typer.Option(help="the row's model name (default: the file or folder name)")], None),
}
_EVAL_OPTIONS = declare_options(eval_, eval_options(), _EVAL_OWN)
app.command("eval")(eval_)


@app.command("export")
def export(
    cell: Annotated[Path, typer.Argument(help="a trained cell: RUN/cells/<cell>")],
    out: Annotated[Path, typer.Option("-o", "--output", help="FILE.pt (TorchScript) or FILE.onnx")],
) -> None:
    """Write a trained cell's generator as TorchScript (.pt) or ONNX (.onnx), for `genbench eval --generator`."""
    from genbench.run.export import export_cell

    done = export_cell(cell, out)
    meta = done.metadata
    typer.echo(
        f"wrote {done.path} ({done.format}): {meta['model']} on {meta['dataset']}, z_dim {meta['z_dim']} "
        f"({meta['z_dist']}){', conditional' if meta['conditional'] else ''}; reproduce the cell with: "
        f"genbench eval --generator {done.path} --seed {meta['seed']} --out RUN",
        err=True,
    )


def _rows(kind: Kind) -> list[dict[str, Any]]:
    from genbench.hyper import describe
    from genbench.plugins import get_registry

    registry = get_registry()
    if kind is Kind.plugins:
        return [{"name": p.name, "origin": p.origin, "description": p.description} for p in registry.plugins]
    if kind is Kind.options:
        return [
            {"name": o.flag, "key": o.key, "kind": o.kind, "group": o.group, "default": o.shown_default, "help": o.help}
            for o in run_options()
        ]
    tables: dict[Kind, dict[str, Any]] = {
        Kind.models: registry.models,
        Kind.datasets: registry.datasets,
        Kind.metrics: registry.metrics,
        Kind.figures: registry.figures,
        Kind.executors: registry.executors,
    }
    rows = []
    for name, entry in tables[kind].items():
        cls: Any = entry.cls
        row: dict[str, Any] = {
            "name": name,
            "plugin": entry.plugin.name,
            "origin": entry.plugin.origin,
            "description": cls.description,
        }
        if kind is Kind.models:
            row["capabilities"] = sorted(c.value for c in cls.capabilities)
            row["hyper"] = [
                {"name": f.name, "type": f.type, "default": f.default, "by_kind": f.by_kind, "help": f.help}
                for f in describe(cls.Hyper)
            ]
        elif kind is Kind.datasets:
            row.update(shape=list(cls.shape), kind=cls.kind, classes=cls.num_classes)
        elif kind is Kind.figures:
            row.update(
                requires=sorted(c.value for c in cls.requires),
                data_kinds=sorted(cls.data_kinds),
                every_epoch=cls.every_epoch,
            )
        elif kind is Kind.executors:
            row["options"] = sorted(cls.uses)
        else:
            row.update(
                better="higher" if cls.higher_is_better else "lower",
                requires=sorted(c.value for c in cls.requires),
            )
        rows.append(row)
    return rows


def _default_text(h: dict[str, Any]) -> str:
    """``256``, or with defaults for some data kinds ``256 (points: 64)``."""
    extra = ", ".join(f"{kind}: {value}" for kind, value in h["by_kind"].items())
    return f"{h['default']} ({extra})" if extra else str(h["default"])


@app.command("list")
def list_(
    kind: Annotated[Kind, typer.Argument(help="what to list")] = Kind.models,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show registered models (with hyper-parameters), datasets, metrics, figures, executors or plugins."""
    from genbench.plugins import get_registry

    rows = _rows(kind)
    problems = get_registry().problems
    if as_json:
        typer.echo(json.dumps({kind.value: rows, "problems": problems}, indent=2, default=str))
        return
    from rich.table import Table

    console = Console()
    table = Table(title=f"genbench {kind.value}")
    if kind is Kind.options:  # genbench run's options: flag, suite key, default, what it records or steers
        for col in ("option", "suite key", "default", "group", "meaning"):
            table.add_column(col)
        for row in rows:
            table.add_row(row["name"], row["key"], row["default"], row["group"], row["help"])
        console.print(table)
        return
    for col in ("name", "origin", "description"):
        table.add_column(col)
    if kind is Kind.models:
        table.add_column("hyper-parameters (type = default)")
    for row in rows:
        cells = [row["name"], row["origin"], row.get("description", "")]
        if kind is Kind.models:
            cells.append("\n".join(f"{h['name']}: {h['type']} = {_default_text(h)}" for h in row["hyper"]))
        table.add_row(*cells)
    console.print(table)
    for problem in problems:
        Console(stderr=True).print(f"[yellow]plugin problem:[/] {problem}")


_SUFFIX_FORMATS = {".md": TableFormat.markdown, ".markdown": TableFormat.markdown, ".csv": TableFormat.csv}


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


@app.command()
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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, exit status 2 for bad input."""
    from genbench.threads import prefer_passive_wait

    prefer_passive_wait()  # before anything loads torch: idle OpenMP threads sleep instead of spinning
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args or ["--help"], prog_name="genbench", standalone_mode=False)
    except GenbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code  # 2 for bad input; 74 for a full disk (genbench.errors.DiskFull)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # typer's completion options exit by themselves
        return exc.code if isinstance(exc.code, int) else 0
    except Exception as exc:
        # typer's (vendored click) usage errors: a bad option value, an unknown option...
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return int(exc.exit_code)
        raise
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
