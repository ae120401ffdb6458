"""``genbench`` command line: parse, make one library call, render.

Every user error is one line on stderr (``error: ...``) and exit status 2.

The commands live in modules grouped by what users do: :mod:`~genbench.cli.runs` (run, eval,
export), :mod:`~genbench.cli.info` (list), :mod:`~genbench.cli.tables` (table, report) and
:mod:`~genbench.cli.gate` (compare, baseline, check); :mod:`~genbench.cli.params` makes typer
parameters from option declarations. They are registered below, in the order ``--help`` lists them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from genbench.cli.gate import baseline, check, compare
from genbench.cli.info import list_
from genbench.cli.params import cli_parameters as cli_parameters
from genbench.cli.params import declare_options as declare_options
from genbench.cli.runs import _EVAL_OWN as _EVAL_OWN
from genbench.cli.runs import eval_, export, run, run_only_message
from genbench.cli.tables import report, table
from genbench.errors import GenbenchError

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


# The commands, in the order --help lists them.
app.command()(run)
app.command("eval")(eval_)
app.command("export")(export)
app.command("list")(list_)
app.command()(table)
app.command()(compare)
app.command()(baseline)
app.command()(check)
app.command()(report)


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
            print(f"error: {_usage_message(exc)}", file=sys.stderr)
            return int(exc.exit_code)
        raise
    return int(result) if isinstance(result, int) else 0


def _usage_message(exc: Exception) -> str:
    """click's message, but for an option of ``genbench run`` given to ``genbench eval``: there click
    suggests an eval option of similar spelling (``--executor``: ``--generator``), which points the wrong way."""
    ctx = getattr(exc, "ctx", None)
    option = getattr(exc, "option_name", None)  # set by click's NoSuchOption
    if option and ctx is not None and ctx.info_name == "eval" and (message := run_only_message(option)):
        return message
    return str(exc.format_message())  # type: ignore[attr-defined]
