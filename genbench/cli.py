"""``genbench`` command line: parse, make one library call, render.

Every user error is one line on stderr (``error: ...``) and exit status 2.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from genbench.errors import GenbenchError
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


def _weights(items: list[str]) -> tuple[tuple[str, Path], ...]:
    """``NAME=PATH`` options -> ((name, path), ...)."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise GenbenchError(f"--backbone-weights {item!r}: expected NAME=PATH, e.g. inception=weights.pth")
        out.append((name.strip(), Path(path.strip())))
    return tuple(out)


def _list(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))


class Kind(StrEnum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"
    plugins = "plugins"


class TableFormat(StrEnum):
    rich = "rich"
    csv = "csv"
    markdown = "markdown"


# Every `run` option defaults to None ("not given"): its value comes from --config, else from the
# defaults of genbench.suite.Suite (shown in --help), so explicit flags can win over a suite file.
_D = Suite()


def _help(text: str, default: object) -> str:
    """Option help that shows the default the suite resolves (the option itself defaults to None)."""
    return f"{text}  [default: {default}]"


@app.command()
def run(
    config: Annotated[
        Path | None, typer.Option(help="a suite file (TOML), e.g. benchmarks/smoke.toml; flags given here win")
    ] = None,
    models: Annotated[str | None, typer.Option(help="comma-separated model names (see `genbench list models`)")] = None,
    dataset: Annotated[
        str | None, typer.Option(help=_help("dataset name (see `genbench list datasets`)", _D.dataset))
    ] = None,
    grid: Annotated[list[str] | None, typer.Option(help="key=v1,v2 or model.key=v1,v2; repeatable")] = None,
    seeds: Annotated[
        str | None, typer.Option(help=_help("training seeds, e.g. 0,1,2", ",".join(map(str, _D.seeds))))
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="epochs for every model (same budget)")] = None,
    device: Annotated[str | None, typer.Option(help=_help("auto, cpu or cuda", _D.device))] = None,
    metrics: Annotated[
        str | None,
        typer.Option(help=_help("comma-separated metrics, or all (those that apply)", ",".join(_D.metrics))),
    ] = None,
    backbone: Annotated[
        str | None,
        typer.Option(help=_help("feature backbones: domain, inception, vgg16, clip-*, ...", ",".join(_D.backbones))),
    ] = None,
    eval_samples: Annotated[
        int | None,
        typer.Option(help=_help("generated samples per cell (and max reference)", str(_D.eval_samples))),
    ] = None,
    reference_split: Annotated[
        str | None, typer.Option(help=_help("reference split: test or train", _D.reference_split))
    ] = None,
    feature_layer: Annotated[str | None, typer.Option(help="FID/KID/PR layer [each backbone's standard]")] = None,
    kid_subsets: Annotated[
        int | None, typer.Option(help=_help("KID: number of random subsets", str(_D.kid_subsets)))
    ] = None,
    kid_subset_size: Annotated[int | None, typer.Option(help="KID subset size [min(1000, samples)]")] = None,
    isc_splits: Annotated[
        int | None, typer.Option(help=_help("Inception Score: number of splits", str(_D.isc_splits)))
    ] = None,
    prc_neighborhood: Annotated[
        int | None,
        typer.Option(help=_help("precision/recall: k nearest neighbours", str(_D.prc_neighborhood))),
    ] = None,
    eval_batch_size: Annotated[
        int | None, typer.Option(help=_help("feature extraction batch size", str(_D.eval_batch_size)))
    ] = None,
    reference_stats: Annotated[Path | None, typer.Option(help="an .npz (mu, sigma) to compute FID against")] = None,
    backbone_weights: Annotated[
        list[str] | None, typer.Option(help="NAME=PATH: weights file of a backbone (offline); repeatable")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default results/<timestamp>)")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="torchvision datasets [$GENBENCH_DATA]")] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="backbones, statistics [~/.cache/genbench]")] = None,
    download: Annotated[
        bool | None,
        typer.Option(help=_help("allow dataset downloads", "download" if _D.download else "no-download")),
    ] = None,
    resume: Annotated[
        bool | None,
        typer.Option(help=_help("reuse finished cells already in --out", "resume" if _D.resume else "no-resume")),
    ] = None,
) -> None:
    """Train and evaluate every model x grid cell x seed; save results and print the table."""
    from genbench.console import ProgressReporter
    from genbench.grid import parse_seeds
    from genbench.plugins import get_registry
    from genbench.report import load_table, to_rich
    from genbench.runner import run_grid

    registry = get_registry()
    suite = load_suite(config) if config is not None else _D
    suite = suite.override(
        models=None if models is None else _list(models),
        dataset=dataset,
        grid=grid,
        seeds=None if seeds is None else parse_seeds(seeds),
        epochs=epochs,
        device=device,
        metrics=None if metrics is None else _list(metrics),  # ("all",): every metric that applies
        backbones=None if backbone is None else _list(backbone),
        eval_samples=eval_samples,
        reference_split=reference_split,
        feature_layer=feature_layer,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        isc_splits=isc_splits,
        prc_neighborhood=prc_neighborhood,
        eval_batch_size=eval_batch_size,
        reference_stats=reference_stats,
        backbone_weights=None if backbone_weights is None else _weights(backbone_weights),
        out=out,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        resume=resume,
    )
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


def _rows(kind: Kind) -> list[dict[str, Any]]:
    from genbench.hyper import describe
    from genbench.plugins import get_registry

    registry = get_registry()
    if kind is Kind.plugins:
        return [{"name": p.name, "origin": p.origin} for p in registry.plugins]
    tables: dict[Kind, dict[str, Any]] = {
        Kind.models: registry.models,
        Kind.datasets: registry.datasets,
        Kind.metrics: registry.metrics,
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
    """Show registered models (with hyper-parameters), datasets, metrics or plugins, and where each came from."""
    from genbench.plugins import get_registry

    rows = _rows(kind)
    problems = get_registry().problems
    if as_json:
        typer.echo(json.dumps({kind.value: rows, "problems": problems}, indent=2, default=str))
        return
    from rich.table import Table

    console = Console()
    table = Table(title=f"genbench {kind.value}")
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
    from genbench.report import render

    if not (out / "results.csv").is_file():
        raise GenbenchError(f"{out}: no results.csv here; pass the folder a `genbench run --out` wrote")
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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, exit status 2 for bad input."""
    from genbench.threads import prefer_passive_wait

    prefer_passive_wait()  # before anything loads torch: idle OpenMP threads sleep instead of spinning
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
