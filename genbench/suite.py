"""Suites as files: ``genbench run --config benchmarks/<name>.toml``.

A suite is everything ``genbench run`` takes, written down in a TOML file so that a
comparison (the GAN-vs-VAE grid of a lab report, the CI smoke run) can be re-run
with one short command and reviewed in a diff::

    models = ["gan", "vae"]
    dataset = "mnist5k"
    epochs = 5                  # the same budget for every model, like --epochs
    seeds = [0]
    metrics = ["fid", "kid"]    # or "all"

    [grid]                      # axes for every model, like --grid key=v1,v2
    [grid.gan]                  # axes for gan only, like --grid gan.key=v1,v2
    z_dim = [32, 64, 128]
    lr = [1e-4, 2e-4]
    batch_size = [64, 128]
    [grid.vae]
    z_dim = [8, 16, 32]

Keys (every one optional; a key left out takes the default ``genbench run`` has) are the
options of ``genbench run``, by their field names (``backbones`` is ``--backbone``, ``out`` is
``--out``), plus the grid: the README's option table lists them with their TOML types and
defaults, and ``genbench list options`` prints it. They are declared once (:mod:`genbench.options`,
the fields of :class:`~genbench.protocol.Protocol` and ``RunRequest``), and this module derives
:class:`Suite` and every check from them.

A ``[check]`` table holds what ``genbench check`` uses with this suite (``alpha = 0.01`` and a
``[check.tolerance]`` table such as ``fid_domain = "5%"``, ``speed = "15%"``; see
:mod:`genbench.reporting.tolerance`); ``genbench run`` ignores it.

Each key means what the ``genbench run`` option of the same name means; relative paths are taken from the current
folder, as on the command line. Grid values are checked against each model's
hyper-parameter dataclass when the file is loaded. A ``[grid.<model>]`` table
must name one of ``models``; a key ``epochs`` in the grid conflicts with
``epochs`` (as ``--grid epochs=...`` conflicts with ``--epochs``).

Every mistake in the file (an unknown key, a wrong type, an unknown model, a
hyper-parameter the model does not have, invalid TOML, a missing file) raises
:class:`~genbench.errors.GenbenchError` with one line naming the file, the key
(and grid table) and the valid choices, before anything trains.

Command-line flags win (:meth:`Suite.override`): a flag given explicitly replaces
the file's value; ``--models`` also drops the ``[grid.<model>]`` tables of models
it leaves out; ``--grid key=...`` replaces that key's axis (an unscoped ``--grid
key`` replaces it in every table, ``--grid gan.key`` only in ``[grid.gan]``) and
keeps the file's other axes; ``--backbone-weights NAME=PATH`` replaces that
backbone's entry; ``--epochs`` drops the file's ``epochs`` grid axes and a
``--grid ...epochs=`` axis drops the file's ``epochs``.

As a library::

    from genbench.run.runner import run_grid, validate
    from genbench.suite import load_suite

    suite = load_suite("benchmarks/lab-report.toml").override(epochs=1)
    cells = validate(suite.request())     # the expanded grid, nothing trained
    result = run_grid(suite.request())

The defaults of :class:`Suite` are the defaults of ``genbench run``: the command
line declares none of its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from genbench.errors import GenbenchError, choices
from genbench.hyper import build, field_types, parse_value
from genbench.options import ALL, Option
from genbench.protocol import run_options
from genbench.run.grid import parse_axis

if TYPE_CHECKING:
    from genbench.plugins import Registry
    from genbench.protocol import RunRequest
    from genbench.reporting.tolerance import CheckSettings

ALL_METRICS = ALL  # the same word as genbench.run.runner.ALL_METRICS (not imported: the runner is slow to import)
# Every suite key is an option of genbench run, by its key; the grid is one of them.
OPTIONS: dict[str, Option] = {o.key: o for o in run_options() if o.toml}


@dataclass(frozen=True)
class Axis:
    """One grid axis: a hyper-parameter, its values (as ``--grid`` text), the model it is scoped to.

    ``where`` says where it was written, for error messages: ``benchmarks/x.toml: [grid.gan] z_dim``
    for an axis from a file, ``""`` for one from ``--grid``.
    """

    key: str
    values: tuple[str, ...]
    scope: str | None = None
    where: str = ""

    @property
    def option(self) -> str:
        """The ``--grid`` spelling the runner parses: ``gan.z_dim=32,64``."""
        prefix = f"{self.scope}." if self.scope else ""
        return f"{prefix}{self.key}={','.join(self.values)}"

    @classmethod
    def parse(cls, text: str) -> Axis:
        """A ``--grid key=v1,v2`` / ``model.key=v1,v2`` option (errors name ``--grid``)."""
        axis = parse_axis(text)
        return cls(axis.key, axis.values, axis.scope)


def _suite_default(opt: Option) -> Any:
    """A suite's value for an option it does not set: the option's default, else "not given" (None, or no names)."""
    if opt.default is not dataclasses.MISSING:
        return opt.default
    return () if opt.kind in ("names", "grid") else None


class _SuiteMethods:
    """What ``genbench run`` runs: models, dataset, grid, seeds and the evaluation protocol.

    One field per option of ``genbench run`` (its suite key), plus ``source``, the file the
    suite was loaded from. ``metrics == ("all",)`` means every registered metric (those that
    do not apply to a model are noted, not run). ``out``, ``data_dir`` and ``cache_dir`` left
    as None take the library's defaults (``results/<timestamp>``, ``$GENBENCH_DATA``,
    ``$GENBENCH_CACHE``). ``grid`` holds :class:`Axis` values. The fields are made from the
    option declarations (:data:`OPTIONS`) by :func:`dataclasses.make_dataclass`, below.
    """

    if TYPE_CHECKING:  # the fields, for the type checker (they are made at run time)
        source: Path | None
        check: CheckSettings | None  # the [check] table: genbench check's level and tolerances

        def __init__(self, **values: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

    def override(self, **flags: Any) -> Suite:
        """This suite with explicit (command-line) values winning; a value of None means "not given".

        ``flags`` are field names. ``grid`` takes ``--grid`` strings (or :class:`Axis`) and
        replaces only the axes of the same key (an unscoped key: in every scope); ``models``
        drops the grid axes scoped to models it leaves out; ``backbone_weights`` replaces
        entries by backbone; ``epochs`` drops ``epochs`` axes already in the suite, and an
        ``epochs`` axis in ``grid`` clears the suite's ``epochs``.
        """
        given = {k: v for k, v in flags.items() if v is not None}
        bad = sorted(set(given) - set(KEYS))
        if bad:
            raise TypeError(f"Suite.override: no field {bad[0]!r}; valid: {choices(KEYS)}")
        changes = dict(given)
        grid = list(self.grid)
        if "models" in given:
            models = tuple(given["models"])
            changes["models"] = models
            grid = [a for a in grid if a.scope is None or a.scope in models]
        new_axes = [a if isinstance(a, Axis) else Axis.parse(a) for a in given.get("grid", ())]
        for new in new_axes:
            grid = [a for a in grid if not (a.key == new.key and new.scope in (None, a.scope))]
        if "epochs" in given:
            grid = [a for a in grid if a.key != "epochs"]
        elif any(a.key == "epochs" for a in new_axes):
            changes["epochs"] = None
        changes["grid"] = tuple(grid + new_axes)
        if "backbone_weights" in given:
            changes["backbone_weights"] = tuple((dict(self.backbone_weights) | dict(given["backbone_weights"])).items())
        for name in ("seeds", "metrics", "backbones"):
            if name in given:
                changes[name] = tuple(given[name])
        return cast(Suite, dataclasses.replace(cast(Any, self), **changes))

    def request(self) -> RunRequest:
        """The runner's request; checks what the file said against the final models first."""
        from genbench import protocol as declarations  # read at call time: the declarations are the truth
        from genbench.plugins import get_registry

        registry = get_registry()
        if not self.models:
            where = f" (or models = [...] in {self.source})" if self.source else ""
            raise GenbenchError(f"--models is required{where}; valid: {choices(registry.models)}")
        _check_axes(registry, [a for a in self.grid if a.where], self.models)
        values = {key: getattr(self, key) for key in OPTIONS}
        values["metrics"] = tuple(registry.metrics) if self.metrics == (ALL_METRICS,) else self.metrics
        values["out"] = self.out or Path("results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        values["grid"] = tuple(a.option for a in self.grid)
        given = {o.name: values[o.key] for o in OPTIONS.values() if values[o.key] is not None}  # None: the default
        protocol = declarations.Protocol(
            **{o.name: v for o in OPTIONS.values() if o.group == "protocol" and (v := given.get(o.name)) is not None}
        )
        run = {o.name: v for o in OPTIONS.values() if o.group == "run" and (v := given.get(o.name)) is not None}
        return declarations.RunRequest(protocol=protocol, **run)


if TYPE_CHECKING:
    Suite = _SuiteMethods
else:  # one field per option, from its declaration (in declaration order; every one has a default)
    Suite = dataclasses.make_dataclass(
        "Suite",
        [(key, Any, field(default=_suite_default(opt))) for key, opt in OPTIONS.items()]
        + [("source", Path | None, field(default=None, compare=False))]
        + [("check", Any, field(default=None, compare=False))],
        bases=(_SuiteMethods,),
        frozen=True,
        namespace={"__doc__": _SuiteMethods.__doc__, "__module__": __name__},
    )

KEYS = tuple(OPTIONS)  # the TOML keys of genbench run's options
CHECK = "check"  # the [check] table: genbench check's alpha and [check.tolerance] (genbench.reporting.tolerance)


# -- loading --------------------------------------------------------------------------------------
def load_suite(path: str | Path) -> Suite:
    """Read, parse and check a TOML suite file; every mistake is a one-line GenbenchError naming the file."""
    path = Path(path)
    return parse_suite(_read(path), source=path)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        near = sorted(p.name for p in path.parent.glob("*.toml")) if path.parent.is_dir() else []
        hint = f"; suites in {path.parent}: {choices(near)}" if near else ""
        raise GenbenchError(f"{path}: no such file{hint}")
    if not path.is_file():
        raise GenbenchError(f"{path}: not a file; expected a TOML suite such as benchmarks/smoke.toml")
    try:
        with path.open("rb") as fp:
            return tomllib.load(fp)
    except tomllib.TOMLDecodeError as exc:
        raise GenbenchError(f"{path}: invalid TOML: {' '.join(str(exc).split())}") from None
    except UnicodeDecodeError:
        raise GenbenchError(f"{path}: invalid TOML: not UTF-8 text") from None
    except OSError as exc:
        raise GenbenchError(f"{path}: cannot read: {exc.strerror}") from None


def parse_suite(data: Mapping[str, Any], source: str | Path = "<suite>") -> Suite:
    """Check a parsed TOML document (a dict) and turn it into a :class:`Suite`."""
    from genbench.plugins import get_registry

    where = str(source)
    for key in data:
        if key not in KEYS and key != CHECK:
            raise GenbenchError(f"{where}: unknown key {key!r}; valid: {choices([*KEYS, CHECK])}")
    registry = get_registry()
    values: dict[str, Any] = {}
    if CHECK in data:  # genbench check's settings; the tolerance names are checked against the run's metrics there
        from genbench.reporting.tolerance import parse_check

        values[CHECK] = parse_check(data[CHECK], where)
    for key, value in data.items():
        if key not in ("grid", CHECK):
            values[key] = OPTIONS[key].from_toml(value, where, lambda table: valid_names(table, registry))
    models: tuple[str, ...] = values.get("models", ())
    if "grid" in data:
        axes = _grid(data["grid"], where, registry, models)
        epochs = values.get("epochs")
        for axis in axes:
            if axis.key == "epochs" and epochs is not None:
                raise GenbenchError(f"{axis.where}: conflicts with epochs = {epochs}; use one of them")
        if models:
            _check_axes(registry, axes, models)
        else:  # the models come from --models: unscoped axes are checked by Suite.request
            _check_axes(registry, [a for a in axes if a.scope], models)
        values["grid"] = axes
    return Suite(**values, source=Path(source))


def valid_names(table: str, registry: Registry) -> list[str]:
    """The names a suite may give for ``table``: registered models, datasets, metrics, or the backbones."""
    if table == "backbones":
        from genbench.metrics.backbones import BACKBONES

        return list(BACKBONES)
    return list(getattr(registry, table))


# -- the grid -------------------------------------------------------------------------------------
_SCALAR = (str, int, float)  # bool is an int
_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _grid(value: Any, where: str, registry: Registry, models: Sequence[str]) -> tuple[Axis, ...]:
    """``[grid]`` (every model) and ``[grid.<model>]`` tables -> axes, unscoped ones first."""
    if not isinstance(value, dict):
        raise GenbenchError(
            f"{where}: 'grid' must be a table ([grid] with key = [values], and [grid.<model>]), got {value!r}"
        )
    unscoped, scoped = [], []
    for key, item in value.items():
        if not isinstance(item, dict):
            unscoped.append(_axis(key, item, None, f"{where}: [grid] {key}"))
            continue
        table = f"{where}: [grid.{key}]"
        if key not in registry.models:
            raise GenbenchError(f"{table}: unknown model {key!r}; valid: {choices(registry.models)}")
        if models and key not in models:
            raise GenbenchError(f"{table}: model {key!r} is not in 'models'; valid: {choices(models)}")
        for name, values in item.items():
            scoped.append(_axis(name, values, key, f"{table} {name}"))
    return tuple(unscoped + scoped)


def _text(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    text = str(value).strip()
    if not text:
        raise GenbenchError(f"{where}: empty value")
    if "," in text:
        raise GenbenchError(f"{where}: value {text!r} contains a comma; write a list of values instead")
    return text


def _axis(key: str, value: Any, scope: str | None, where: str) -> Axis:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, _SCALAR) for v in items):
        raise GenbenchError(f"{where}: must be a value or a non-empty list of values, got {value!r}")
    if not _BARE_KEY.match(key):
        raise GenbenchError(f"{where}: {key!r} is not a hyper-parameter name")
    return Axis(key, tuple(dict.fromkeys(_text(v, where) for v in items)), scope, where)


def _check_axes(registry: Registry, axes: Iterable[Axis], models: Sequence[str]) -> None:
    """Every axis against the hyper-parameter dataclass of every model it applies to."""
    for axis in axes:
        for model in [axis.scope] if axis.scope else models:
            cls = registry.model(model)
            types = field_types(cls.Hyper)
            if axis.key not in types:
                raise GenbenchError(
                    f"{axis.where}: model {model!r} has no hyper-parameter {axis.key!r}; valid: {choices(types)}"
                )
            for text in axis.values:
                try:
                    value = parse_value(types[axis.key], text)
                except ValueError as exc:
                    raise GenbenchError(f"{axis.where}: {exc} (model {model!r})") from None
                build(cls.Hyper, {axis.key: value}, f"{axis.where} (model {model!r})")
