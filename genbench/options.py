"""Run options, declared once: every option of ``genbench run`` is one field with one declaration.

An option is a field of :class:`~genbench.protocol.Protocol` (``group="protocol"``: it can
change the numbers, so every record carries it) or of :class:`~genbench.protocol.RunRequest`
(``group="run"``: it only steers the run), declared with :func:`option`. Everything else is
derived from these declarations, with no per-option code anywhere:

- the ``genbench run`` command-line options and their ``--help`` (:func:`cli_parameters`),
- the TOML suite keys, their type and range checks and messages (:meth:`Option.from_toml`),
- the range and choice checks of flags and library calls (:meth:`Option.check`, run by
  :func:`check_request` from ``genbench.run.runner.validate``, before any work),
- the option table of the README (:func:`markdown_table`; a test keeps the two equal).

Plain dataclass field metadata rather than a validation library (pydantic was weighed):
the option types are few (integers with a lower bound, strings, paths, booleans, name lists)
and genbench's messages must name the flag or the file and key in one line, which is a
dozen lines here and a custom error renderer with pydantic; and the value objects stay the
plain, picklable dataclasses that cells carry to worker processes.

Adding an option: declare a field with :func:`option` on ``Protocol`` or ``RunRequest``, then
write the code that uses it. The flag, the suite key, ``--help``, the checks and the README
row follow (``genbench list options --markdown`` prints the table to paste; a test compares).
docs/contributing.md has the recipe.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genbench.errors import GenbenchError, choices

# Valid names of a table ("models", "datasets", "metrics", "backbones"): given by the caller, so that
# this module depends on nothing but genbench.errors (the declarations in genbench.protocol use it).
NameLookup = Callable[[str], Sequence[str]]
SEED_LIMIT = 2**63  # torch.manual_seed takes < 2**64, and sampling seeds with seed + 1_000_003

Group = Literal["protocol", "run"]
# How a value is written and checked. One parser per kind, none per option:
#   int / float     a number, optionally with a lower bound (``minimum``) or an exclusive one (``above``)
#   str             a non-empty string, optionally one of ``choices``
#   bool            true or false (``--x/--no-x``)
#   path / file     a path (``file``: one that must exist)
#   names           comma-separated names (a TOML list of strings or one "a,b" string); ``registry`` checks them
#   seeds           integers >= 0
#   ints            comma-separated integers >= 0 (a TOML integer or list of them), e.g. GPU indices
#   weights         NAME=PATH pairs (a TOML table of name = "path")
#   grid            ``key=v1,v2`` axes (a TOML ``[grid]`` table, handled by genbench.suite)
Kind = Literal["int", "float", "str", "bool", "path", "file", "names", "seeds", "ints", "weights", "grid"]
METADATA = "genbench_option"
MISSING: Any = dataclasses.MISSING


@dataclass(frozen=True)
class Option:
    """One option of ``genbench run``: its field, how it is written, checked and documented."""

    name: str  # the field name; the TOML key unless ``key`` says otherwise
    kind: Kind
    help: str
    group: Group
    default: Any = MISSING  # what ``genbench run`` uses when the option is not given
    default_text: str = ""  # shown instead of the default where it is computed (e.g. a timestamped folder)
    minimum: float | None = None  # numbers: the smallest valid value
    above: float | None = None  # numbers: values must be strictly greater
    choices: tuple[str, ...] = ()  # strings: the valid values
    registry: str = ""  # names/str: the registry table whose names are valid ("models", "datasets", ...)
    why: str = ""  # said after a range error: "(FID needs a covariance)"
    unit: str = ""  # numbers: what they count, for messages ("must be a number of seconds > 0")
    flag_name: str = ""  # command-line spelling when it differs from the field (``--backbone``)
    key_name: str = ""  # TOML key when it differs from the field (``out`` for ``out_dir``)
    cli: bool = True  # a command-line flag
    toml: bool = True  # a suite key
    nullable: bool = False  # None is a valid value (the default of optional settings)
    metavar: str = ""

    @property
    def flag(self) -> str:
        return self.flag_name or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        return self.key_name or self.name

    @property
    def shown_default(self) -> str:
        """The default as ``--help`` and the README show it (empty: none)."""
        if self.default_text:
            return self.default_text
        value = self.default
        if value is MISSING or value is None:
            return ""
        if self.kind == "bool":
            return self.flag.removeprefix("--") if value else "no-" + self.flag.removeprefix("--")
        if isinstance(value, tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    def help_text(self) -> str:
        shown = self.shown_default
        return f"{self.help}  [default: {shown}]" if shown else self.help

    # -- checks ------------------------------------------------------------------------------
    def problem(self, value: Any) -> str | None:
        """What is wrong with a typed ``value`` (range, choices), or None: one text for flags and files."""
        if value is None:
            return None
        if self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            what += f" of {self.unit}" if self.unit else ""
            why = f" ({self.why})" if self.why else ""
            finite = math.isfinite(value)  # nan and inf are no count of anything
            if self.minimum is not None and not (finite and value >= self.minimum):
                return f"must be {what} >= {self.minimum:g}{why}"
            if self.above is not None and not (finite and value > self.above):
                return f"must be {what} > {self.above:g}{why}"
        if self.kind == "str" and self.choices and value not in self.choices:
            return f"must be one of {choices(self.choices)}"
        if self.kind == "file" and not Path(value).is_file():
            return "no such file"
        if self.kind == "seeds" and any(not 0 <= seed < SEED_LIMIT for seed in value):
            return "must be integers >= 0 and < 2**63"
        if self.kind == "ints" and any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value):
            return "must be integers >= 0"
        return None

    def check(self, value: Any) -> None:
        """A flag's (or library value's) range and choices: ``--epochs -1: must be an integer >= 1``."""
        if self.kind == "str" and self.choices and value not in self.choices:
            raise GenbenchError(f"{self.flag} {value!r}; valid: {choices(self.choices)}")
        problem = self.problem(value)
        if problem and self.kind == "seeds":  # name the seed at fault
            value = next(seed for seed in value if not 0 <= seed < SEED_LIMIT)
        if problem:
            shown = repr(value) if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else value
            if self.kind == "ints":
                shown = ",".join(str(v) for v in value)
            raise GenbenchError(f"{self.flag} {shown}: {problem}")

    def from_toml(self, value: Any, where: str, names: NameLookup) -> Any:
        """A suite file's value, typed and checked: ``x.toml: 'epochs' must be an integer >= 1, got 0``."""
        key = self.key
        typed = _TOML[self.kind](self, value, where, names)
        problem = self.problem(typed)
        if problem:
            raise GenbenchError(f"{where}: {key!r} {problem}, got {value!r}")
        return typed


def option(
    help: str,
    kind: Kind,
    default: Any = MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    cli_default: Any = MISSING,
    **declaration: Any,
) -> Any:
    """A dataclass field that is a ``genbench run`` option (see :class:`Option` for the keywords).

    ``default`` is the field's default; ``cli_default`` is what the command line and suites use
    when it differs (``Protocol.dataset`` is required in the library, ``mnist5k`` for a user).
    """
    shown = cli_default if cli_default is not MISSING else default
    meta = {METADATA: {"help": help, "kind": kind, "default": shown, **declaration}}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def declared(cls: type, group: Group) -> tuple[Option, ...]:
    """The options declared on the dataclass ``cls``, in field order."""
    return tuple(
        Option(name=f.name, group=group, **f.metadata[METADATA])
        for f in dataclasses.fields(cls)
        if METADATA in f.metadata
    )


def check_values(options: Iterable[Option], protocol: Any, request: Any) -> None:
    """Range and choice checks of every declared field of a request and its protocol (flag-style messages)."""
    for opt in options:
        opt.check(getattr(protocol if opt.group == "protocol" else request, opt.name))


# -- command line ---------------------------------------------------------------------------------
def parse_weights(items: Iterable[str]) -> tuple[tuple[str, Path], ...]:
    """``NAME=PATH`` options -> ((name, path), ...)."""
    out = []
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise GenbenchError(f"--backbone-weights {item!r}: expected NAME=PATH, e.g. inception=weights.pth")
        out.append((name.strip(), Path(path.strip())))
    return tuple(out)


def parse_ints(flag: str, text: str) -> tuple[int, ...]:
    """``0,1`` -> (0, 1): comma-separated integers >= 0 (an ``ints`` option on the command line)."""
    try:
        values = tuple(dict.fromkeys(int(s) for s in text.split(",") if s.strip()))
    except ValueError:
        values = ()
    if not values or any(v < 0 for v in values):
        raise GenbenchError(f"{flag} {text!r}: expected comma-separated integers >= 0, e.g. 0,1")
    return values


# -- suite files ----------------------------------------------------------------------------------
def _type_error(where: str, key: str, expected: str, value: Any) -> GenbenchError:
    return GenbenchError(f"{where}: {key!r} must be {expected}, got {value!r}")


def _toml_int(opt: Option, value: Any, where: str, names: NameLookup) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(where, opt.key, "an integer", value)
    return value


def _toml_float(opt: Option, value: Any, where: str, names: NameLookup) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _type_error(where, opt.key, "a number", value)
    return float(value)


def _toml_str(opt: Option, value: Any, where: str, names: NameLookup) -> str:
    if opt.choices and value not in opt.choices:
        raise GenbenchError(f"{where}: {opt.key!r} must be one of {choices(opt.choices)}, got {value!r}")
    if not isinstance(value, str) or not value.strip():
        raise _type_error(where, opt.key, "a non-empty string", value)
    if opt.registry:
        _known(where, opt.key, opt.registry, [value.strip()], names)
    return value.strip()


def _toml_path(opt: Option, value: Any, where: str, names: NameLookup) -> Path:
    return Path(_toml_str(opt, value, where, names))


def _toml_file(opt: Option, value: Any, where: str, names: NameLookup) -> Path:
    path = _toml_path(opt, value, where, names)
    if not path.is_file():
        raise GenbenchError(f"{where}: {opt.key!r}: no such file {str(path)!r}")
    return path


def _toml_bool(opt: Option, value: Any, where: str, names: NameLookup) -> bool:
    if not isinstance(value, bool):
        raise _type_error(where, opt.key, "true or false", value)
    return value


ALL = "all"  # metrics = "all": every metric that applies


def _toml_names(opt: Option, value: Any, where: str, names: NameLookup) -> tuple[str, ...]:
    """A list of strings, or one string of comma-separated names (as on the command line)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise _type_error(where, opt.key, 'a list of strings (e.g. ["a", "b"])', value)
    given = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    if not given:
        raise GenbenchError(f"{where}: {opt.key!r} is empty; name at least one")
    if opt.registry == "metrics":
        if given == (ALL,):
            return given
        if ALL in given:
            raise GenbenchError(f"{where}: {opt.key!r}: {ALL!r} stands alone ({opt.key} = {ALL!r}), got {value!r}")
    if opt.registry:
        _known(where, opt.key, opt.registry, given, names)
    return given


def _toml_seeds(opt: Option, value: Any, where: str, names: NameLookup) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in items):
        raise _type_error(where, opt.key, "an integer >= 0 or a list of them (e.g. [0, 1, 2])", value)
    return tuple(dict.fromkeys(items))


def _toml_ints(opt: Option, value: Any, where: str, names: NameLookup) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in items):
        raise _type_error(where, opt.key, "an integer >= 0 or a list of them (e.g. [0, 1])", value)
    return tuple(dict.fromkeys(items))


def _toml_weights(opt: Option, value: Any, where: str, names: NameLookup) -> tuple[tuple[str, Path], ...]:
    if not isinstance(value, dict):
        raise _type_error(where, opt.key, 'a table of backbone = "path" (e.g. {inception = "pt_inception.pth"})', value)
    _known(where, opt.key, "backbones", value, names)
    named = [dataclasses.replace(opt, kind="path", key_name=f"{opt.key}.{name}") for name in value]
    return tuple(
        (name, _toml_path(o, path, where, names)) for o, (name, path) in zip(named, value.items(), strict=True)
    )


def _toml_grid(opt: Option, value: Any, where: str, names: NameLookup) -> Any:
    raise AssertionError("the grid is read by genbench.suite")  # pragma: no cover


_TOML: dict[Kind, Callable[[Option, Any, str, NameLookup], Any]] = {
    "int": _toml_int,
    "float": _toml_float,
    "str": _toml_str,
    "bool": _toml_bool,
    "path": _toml_path,
    "file": _toml_file,
    "names": _toml_names,
    "seeds": _toml_seeds,
    "ints": _toml_ints,
    "weights": _toml_weights,
    "grid": _toml_grid,
}

_KINDS = {
    "models": "model",
    "datasets": "dataset",
    "metrics": "metric",
    "backbones": "backbone",
    "executors": "executor",
}


def _known(where: str, key: str, table: str, given: Iterable[str], names: NameLookup) -> None:
    valid = [*names(table), ALL] if table == "metrics" else list(names(table))
    for name in given:
        if name not in valid:
            raise GenbenchError(f"{where}: {key!r}: unknown {_KINDS[table]} {name!r}; valid: {choices(valid)}")


# -- documentation --------------------------------------------------------------------------------
_TOML_TYPE: dict[Kind, str] = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "path": "string (a path)",
    "file": "string (a file's path)",
    "names": 'list of strings, or "a,b"',
    "seeds": "integer >= 0 or list of them",
    "ints": "integer >= 0 or list of them",
    "weights": 'table of backbone = "path"',
    "grid": "[grid] and [grid.<model>] tables of key = value or [values]",
}


def markdown_table(options: Iterable[Option]) -> str:
    """The README's option table of ``genbench run``: flag, suite key, default, meaning."""
    rows = ["| option | suite key | TOML type | default | meaning |", "|---|---|---|---|---|"]
    for opt in options:
        flag = f"`{opt.flag}`" if opt.cli else ""
        key = f"`{opt.key}`" if opt.toml else ""
        toml = _TOML_TYPE[opt.kind] if opt.toml else ""
        default = f"`{opt.shown_default}`" if opt.shown_default else ""
        meaning = opt.help.replace("|", "\\|").replace("`", "")
        if opt.minimum is not None or opt.above is not None:
            bound = f">= {opt.minimum:g}" if opt.minimum is not None else f"> {opt.above:g}"
            meaning += f" ({bound})"
        rows.append(f"| {flag} | {key} | {toml} | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
