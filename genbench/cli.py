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

from genbench.errors import GenbenchError
from genbench.options import Kind as OptionKind
from genbench.options import Option, parse_ints, parse_weights
from genbench.protocol import run_options
from genbench.suite import Suite, load_suite

app = typer.Typer(
    help="Benchmark generative image models: grids, timed protocols, torch-fidelity metrics, tables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)


def _stdout() -> Console:
    """The console for tables: in a pipe or a CI log, wide enough not to squeeze columns into ellipses."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


class Kind(StrEnum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"
    executors = "executors"
    plugins = "plugins"
    options = "options"


class TableFormat(StrEnum):
    rich = "rich"
    csv = "csv"
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
        return tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    if opt.kind == "seeds":
        from genbench.run.grid import parse_seeds

        return parse_seeds(raw)
    if opt.kind == "ints":
        return parse_ints(opt.flag, raw)
    if opt.kind == "weights":
        return parse_weights(raw)
    return raw


# `run`'s options are made from their declarations (genbench.options): each defaults to None ("not
# given"), so that its value comes from --config, else from the declared default shown in --help.
_RUN_OPTIONS = cli_parameters(run_options())
_CONFIG = Annotated[
    Path | None, typer.Option(help="a suite file (TOML), e.g. benchmarks/smoke.toml; flags given here win")
]
run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_CONFIG)]
    + [inspect.Parameter(o.key, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a) for o, a in _RUN_OPTIONS]
)
run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}  # type: ignore[attr-defined]
app.command()(run)


def _rows(kind: Kind) -> list[dict[str, Any]]:
    from genbench.hyper import describe
    from genbench.plugins import get_registry

    registry = get_registry()
    if kind is Kind.plugins:
        return [{"name": p.name, "origin": p.origin} for p in registry.plugins]
    if kind is Kind.options:
        return [
            {"name": o.flag, "key": o.key, "kind": o.kind, "group": o.group, "default": o.shown_default, "help": o.help}
            for o in run_options()
        ]
    tables: dict[Kind, dict[str, Any]] = {
        Kind.models: registry.models,
        Kind.datasets: registry.datasets,
        Kind.metrics: registry.metrics,
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
    """Show registered models (with hyper-parameters), datasets, metrics, executors or plugins, and their origin."""
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


@app.command()
def table(
    out: Annotated[Path, typer.Argument(help="a run folder holding results.csv")],
    format: Annotated[TableFormat, typer.Option("--format", help="rich, csv or markdown")] = TableFormat.rich,
) -> None:
    """Re-render the comparison table of a finished (or interrupted) run from disk."""
    from genbench.reporting.table import render

    if not (out / "results.csv").is_file():
        raise GenbenchError(f"{out}: no results.csv here; pass the folder a `genbench run --out` wrote")
    rendered = render(out, format.value)
    if isinstance(rendered, str):
        typer.echo(rendered, nl=False)
    else:
        _stdout().print(rendered)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, exit status 2 for bad input."""
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args or ["--help"], prog_name="genbench", standalone_mode=False)
    except GenbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except Exception as exc:
        # typer's (vendored click) usage errors: a bad option value, an unknown option...
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            return int(exc.exit_code)
        raise
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
