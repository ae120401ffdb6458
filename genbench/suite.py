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

Keys (every one optional; a key left out takes the default ``genbench run`` has):

==================  ===========================================  ==========================
key                 TOML type                                    default
==================  ===========================================  ==========================
models              list of strings (or one "a,b" string)        none: here or ``--models``
dataset             string                                       ``"mnist5k"``
seeds               integer >= 0 or list of them                 ``[0]``
epochs              integer >= 1                                 each model's own
metrics             ``"all"`` or list of strings                 ``"all"``
backbones           list of strings (or one "a,b" string)        ``["domain"]``
eval_samples        integer >= 2                                 1000
reference_split     ``"test"`` or ``"train"``                    ``"test"``
feature_layer       string                                       each backbone's standard
kid_subsets         integer >= 1                                 100
kid_subset_size     integer >= 1                                 min(1000, samples)
isc_splits          integer >= 1                                 10
prc_neighborhood    integer >= 1                                 3
eval_batch_size     integer >= 1                                 256
reference_stats     string (path to an .npz)                     none
backbone_weights    table: backbone name = "path"                none
device              string: auto, cpu, cuda                      ``"auto"``
out                 string (path)                                ``results/<timestamp>``
data_dir            string (path)                                ``$GENBENCH_DATA``
cache_dir           string (path)                                ``~/.cache/genbench``
download            boolean                                      true
resume              boolean                                      false
grid                table: ``key = value or [values]``, and      no axes
                    sub-tables ``[grid.<model>]`` the same way
==================  ===========================================  ==========================

Each key means what the ``genbench run`` option of the same name means
(``backbones`` is ``--backbone``); relative paths are taken from the current
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

    from genbench.runner import run_grid, validate
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from genbench.errors import GenbenchError, choices
from genbench.grid import parse_axis
from genbench.hyper import build, field_types, parse_value
from genbench.protocol import Protocol

if TYPE_CHECKING:
    from genbench.plugins import Registry
    from genbench.runner import RunRequest

ALL_METRICS = "all"  # the same word as genbench.runner.ALL_METRICS (not imported: the runner is slow to import)

# The protocol's own defaults, so that a suite, the command line and a library Protocol agree.
_P: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(Protocol) if f.default is not dataclasses.MISSING}


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


@dataclass(frozen=True)
class Suite:
    """What ``genbench run`` runs: models, dataset, grid, seeds and the evaluation protocol.

    ``metrics == ("all",)`` means every registered metric (those that do not apply to a
    model are noted, not run). ``out``, ``data_dir`` and ``cache_dir`` left as None take
    the library's defaults (``results/<timestamp>``, ``$GENBENCH_DATA``, ``$GENBENCH_CACHE``).
    ``source`` is the file the suite was loaded from, if any.
    """

    models: tuple[str, ...] = ()
    dataset: str = "mnist5k"
    grid: tuple[Axis, ...] = ()
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = _P["epochs"]
    metrics: tuple[str, ...] = (ALL_METRICS,)
    backbones: tuple[str, ...] = _P["backbones"]
    eval_samples: int = _P["eval_samples"]
    reference_split: str = _P["reference_split"]
    feature_layer: str | None = _P["feature_layer"]
    kid_subsets: int = _P["kid_subsets"]
    kid_subset_size: int | None = _P["kid_subset_size"]
    isc_splits: int = _P["isc_splits"]
    prc_neighborhood: int = _P["prc_neighborhood"]
    eval_batch_size: int = _P["eval_batch_size"]
    reference_stats: Path | None = _P["reference_stats"]
    backbone_weights: tuple[tuple[str, Path], ...] = _P["backbone_weights"]
    device: str = _P["device"]
    download: bool = _P["download"]
    out: Path | None = None
    data_dir: Path | None = None
    cache_dir: Path | None = None
    resume: bool = False
    source: Path | None = field(default=None, compare=False)

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
        return dataclasses.replace(self, **changes)

    def request(self) -> RunRequest:
        """The runner's request; checks what the file said against the final models first."""
        from genbench.plugins import get_registry
        from genbench.runner import RunRequest

        registry = get_registry()
        if not self.models:
            where = f" (or models = [...] in {self.source})" if self.source else ""
            raise GenbenchError(f"--models is required{where}; valid: {choices(registry.models)}")
        _check_axes(registry, [a for a in self.grid if a.where], self.models)
        metrics = tuple(registry.metrics) if self.metrics == (ALL_METRICS,) else self.metrics
        locations = {"data_dir": self.data_dir, "cache_dir": self.cache_dir}
        protocol = Protocol(
            dataset=self.dataset,
            metrics=metrics,
            backbones=self.backbones,
            eval_samples=self.eval_samples,
            reference_split=cast(Any, self.reference_split),  # checked by the runner
            epochs=self.epochs,
            device=self.device,
            download=self.download,
            feature_layer=self.feature_layer,
            backbone_weights=self.backbone_weights,
            reference_stats=self.reference_stats,
            eval_batch_size=self.eval_batch_size,
            kid_subsets=self.kid_subsets,
            kid_subset_size=self.kid_subset_size,
            isc_splits=self.isc_splits,
            prc_neighborhood=self.prc_neighborhood,
            **{k: v for k, v in locations.items() if v is not None},  # None: the library's defaults
        )
        out = self.out or Path("results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        grid = tuple(a.option for a in self.grid)
        return RunRequest(self.models, protocol, out, grid, self.seeds, self.resume)


KEYS = tuple(f.name for f in dataclasses.fields(Suite) if f.name != "source")  # the TOML keys: the field names


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
        if key not in KEYS:
            raise GenbenchError(f"{where}: unknown key {key!r}; valid: {choices(KEYS)}")
    registry = get_registry()
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key != "grid":
            values[key] = _CONVERT[key](value, key, where, registry)
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


# -- value checks: (value, key, file, registry) -> the Suite field's value ---------------------
def _type_error(where: str, key: str, expected: str, value: Any) -> GenbenchError:
    return GenbenchError(f"{where}: {key!r} must be {expected}, got {value!r}")


def _int(minimum: int) -> Callable[[Any, str, str, Registry], int]:
    def convert(value: Any, key: str, where: str, registry: Registry) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _type_error(where, key, "an integer", value)
        if value < minimum:
            raise GenbenchError(f"{where}: {key!r} must be an integer >= {minimum}, got {value}")
        return value

    return convert


def _str(value: Any, key: str, where: str, registry: Registry) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _type_error(where, key, "a non-empty string", value)
    return value.strip()


def _path(value: Any, key: str, where: str, registry: Registry) -> Path:
    return Path(_str(value, key, where, registry))


def _file(value: Any, key: str, where: str, registry: Registry) -> Path:
    path = _path(value, key, where, registry)
    if not path.is_file():
        raise GenbenchError(f"{where}: {key!r}: no such file {str(path)!r}")
    return path


def _bool(value: Any, key: str, where: str, registry: Registry) -> bool:
    if not isinstance(value, bool):
        raise _type_error(where, key, "true or false", value)
    return value


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    """A list of strings, or one string of comma-separated names (as on the command line)."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise _type_error(where, key, 'a list of strings (e.g. ["a", "b"])', value)
    names = tuple(dict.fromkeys(s.strip() for s in items if s.strip()))
    if not names:
        raise GenbenchError(f"{where}: {key!r} is empty; name at least one")
    return names


def _known(where: str, key: str, kind: str, names: Iterable[str], valid: Iterable[str]) -> None:
    valid = list(valid)
    for name in names:
        if name not in valid:
            raise GenbenchError(f"{where}: {key!r}: unknown {kind} {name!r}; valid: {choices(valid)}")


def _models(value: Any, key: str, where: str, registry: Registry) -> tuple[str, ...]:
    names = _strings(value, key, where)
    _known(where, key, "model", names, registry.models)
    return names


def _dataset(value: Any, key: str, where: str, registry: Registry) -> str:
    name = _str(value, key, where, registry)
    _known(where, key, "dataset", [name], registry.datasets)
    return name


def _metrics(value: Any, key: str, where: str, registry: Registry) -> tuple[str, ...]:
    names = _strings(value, key, where)
    if names == (ALL_METRICS,):
        return names
    if ALL_METRICS in names:
        raise GenbenchError(
            f"{where}: {key!r}: {ALL_METRICS!r} stands alone (metrics = {ALL_METRICS!r}), got {value!r}"
        )
    _known(where, key, "metric", names, [*registry.metrics, ALL_METRICS])
    return names


def _backbones(value: Any, key: str, where: str, registry: Registry) -> tuple[str, ...]:
    from genbench.metrics.backbones import BACKBONES

    names = _strings(value, key, where)
    _known(where, key, "backbone", names, BACKBONES)
    return names


def _seeds(value: Any, key: str, where: str, registry: Registry) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in items):
        raise _type_error(where, key, "an integer >= 0 or a list of them (e.g. [0, 1, 2])", value)
    return tuple(dict.fromkeys(items))


def _split(value: Any, key: str, where: str, registry: Registry) -> str:
    valid = ("test", "train")
    if value not in valid:
        raise GenbenchError(f"{where}: {key!r} must be one of {choices(valid)}, got {value!r}")
    return cast(str, value)


def _weights(value: Any, key: str, where: str, registry: Registry) -> tuple[tuple[str, Path], ...]:
    from genbench.metrics.backbones import BACKBONES

    if not isinstance(value, dict):
        raise _type_error(where, key, 'a table of backbone = "path" (e.g. {inception = "pt_inception.pth"})', value)
    _known(where, key, "backbone", value, BACKBONES)
    return tuple((name, _path(path, f"{key}.{name}", where, registry)) for name, path in value.items())


_CONVERT: dict[str, Callable[[Any, str, str, Registry], Any]] = {
    "models": _models,
    "dataset": _dataset,
    "seeds": _seeds,
    "epochs": _int(1),
    "metrics": _metrics,
    "backbones": _backbones,
    "eval_samples": _int(2),
    "reference_split": _split,
    "feature_layer": _str,
    "kid_subsets": _int(1),
    "kid_subset_size": _int(1),
    "isc_splits": _int(1),
    "prc_neighborhood": _int(1),
    "eval_batch_size": _int(1),
    "reference_stats": _file,
    "backbone_weights": _weights,
    "device": _str,
    "out": _path,
    "data_dir": _path,
    "cache_dir": _path,
    "download": _bool,
    "resume": _bool,
}
assert set(_CONVERT) | {"grid"} == set(KEYS), "every Suite field needs a TOML converter"


# -- the grid -------------------------------------------------------------------------------------
_SCALAR = (str, int, float)  # bool is an int
_BARE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _grid(value: Any, where: str, registry: Registry, models: Sequence[str]) -> tuple[Axis, ...]:
    """``[grid]`` (every model) and ``[grid.<model>]`` tables -> axes, unscoped ones first."""
    if not isinstance(value, dict):
        raise _type_error(where, "grid", "a table ([grid] with key = [values], and [grid.<model>])", value)
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
