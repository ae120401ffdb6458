"""Typer parameters made from option declarations (:mod:`genbench.options`): ``run`` and ``eval``
share every declaration, and a command-line value is parsed into the declared field's type.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import typer

from genbench.errors import GenbenchError, choices
from genbench.options import Kind as OptionKind
from genbench.options import Option, parse_ints, parse_weights

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
