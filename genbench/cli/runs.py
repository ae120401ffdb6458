"""The commands that make results: ``genbench run``, ``genbench eval`` and ``genbench export``."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from genbench.cli.params import _parse_flag, declare_options
from genbench.cli.tables import _stdout
from genbench.protocol import TRAINING_ONLY, eval_options, run_options
from genbench.suite import Suite, load_suite


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
        with ProgressReporter(console) as reporter, _term_as_interrupt():
            result = run_grid(request, reporter)
    except KeyboardInterrupt:
        saved = out_dir / "results.csv"
        kept = f"finished cells are saved in {saved}" if saved.is_file() else "no cell had finished"
        console.print(f"[yellow]interrupted[/]: {kept}")
        raise typer.Exit(130) from None
    _stdout().print(to_rich(load_table(result.out_dir)))
    failed = sum(r.status != "ok" for r in result.records)
    console.print(
        f"{len(result.records)} cells, {failed} not ok; results in {result.out_dir / 'results.csv'}"
        f" (re-render with: genbench table {result.out_dir})"
    )


@contextlib.contextmanager
def _term_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM (``kill``, ``timeout``, a batch scheduler's stop) is a Ctrl-C: the driver
    stops its workers or its local Ray, removes its scratch folders and keeps every finished cell, instead
    of dying on the spot. It raises a real SIGINT, so each cell's guard (genbench.run.guard) sees the
    user's interrupt, not code raising KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda _signum, _frame: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# `run`'s options are made from their declarations (genbench.options): each defaults to None ("not
# given"), so that its value comes from --config, else from the declared default shown in --help.
_CONFIG = Annotated[
    Path | None, typer.Option(help="a suite file (TOML), e.g. benchmarks/smoke.toml; flags given here win")
]
_RUN_OPTIONS = declare_options(run, run_options(), {"config": (_CONFIG, None)})


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


def run_only_message(flag: str) -> str | None:
    """The one-line error for ``genbench eval FLAG`` when FLAG is an option of ``genbench run`` only
    (None for any other unknown option): click would suggest an unrelated eval option instead.

    Derived from the declarations (run's options less eval's), so a new run option is covered by itself.
    """
    shared = {opt.name for opt in eval_options()}
    for opt in run_options():
        if opt.name in shared or not opt.cli:
            continue
        flags = {opt.flag} | ({"--no-" + opt.flag.removeprefix("--")} if opt.kind == "bool" else set())
        if flag in flags:
            if opt.name in TRAINING_ONLY:
                why = "genbench eval trains nothing"
            else:
                why = "genbench eval evaluates one generator (or folder of samples) in this process"
            return f"{flag} is an option of genbench run; {why} (its options: genbench eval --help)"
    return None


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
