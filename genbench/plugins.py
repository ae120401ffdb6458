"""The one plugin manager and the registries built from it.

Built-in plugins and third-party ones take the same road: each is a module (or
object) handed to :meth:`Registry.add_plugin`, which registers it with pluggy
and then calls its hooks with a ``register`` callback. Built-ins come from
:data:`DEFAULT_PLUGINS`; third-party plugins from entry points in the group
``genbench``. Problems never make a plugin vanish silently: a plugin that fails
to import, registers a duplicate name, implements a misspelt hook or raises in a
hook is listed in :attr:`Registry.problems` by name, and the rest still load.

Set ``GENBENCH_DISABLE_PLUGINS=name1,name2`` to skip entry-point plugins by name.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from genbench import hookspecs
from genbench.datasets.base import DATA_KINDS, Dataset
from genbench.errors import GenbenchError, unknown
from genbench.hyper import Hyper as BaseHyper
from genbench.hyper import build, field_types
from genbench.metrics.base import Metric
from genbench.models.base import Capability, GenerativeModel
from genbench.protocol import IDENTITY_COLUMNS, PROTOCOL_COLUMNS, TIMING_COLUMNS
from genbench.reporting.figures.base import NAME as FIGURE_NAME
from genbench.reporting.figures.base import RESERVED as RESERVED_FIGURES
from genbench.reporting.figures.base import Figure
from genbench.run.executors.base import EXECUTOR_OPTIONS, Executor

ENTRY_POINT_GROUP = "genbench"
BUILTIN = "built-in"
DEFAULT_PLUGINS = (
    "genbench.models.builtin",
    "genbench.datasets.builtin",
    "genbench.metrics.builtin",
    "genbench.reporting.figures.builtin",
    "genbench.run.executors.builtin",
)
# Hyper-parameter names that would collide with the other columns of results.csv.
RESERVED_HYPER = IDENTITY_COLUMNS | PROTOCOL_COLUMNS | TIMING_COLUMNS

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name, where it came from (``built-in`` or ``package version``), what it adds.

    ``description`` (the ``genbench list plugins`` column) is the plugin module's
    ``GENBENCH_DESCRIPTION`` string if it sets one, else its distribution's summary (the
    ``description`` of its ``pyproject.toml``), else the first line of its module docstring.
    """

    name: str
    origin: str
    description: str = ""


DESCRIPTION_ATTRIBUTE = "GENBENCH_DESCRIPTION"


def describe_plugin(plugin: object, summary: str = "") -> str:
    """One line saying what ``plugin`` adds (see :class:`PluginInfo`)."""
    declared = getattr(plugin, DESCRIPTION_ATTRIBUTE, None)
    if isinstance(declared, str) and declared.strip():
        return " ".join(declared.split())
    if summary.strip():
        return " ".join(summary.split())
    doc = getattr(plugin, "__doc__", None) if not isinstance(plugin, type) else None
    lines = doc.strip().splitlines() if isinstance(doc, str) and doc.strip() else []
    return lines[0].strip() if lines else ""


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered class and the plugin that contributed it."""

    name: str
    cls: T
    plugin: PluginInfo


@dataclass
class Registry:
    """Models, datasets, metrics, figures and executors from every plugin, plus the problems met loading them."""

    pm: pluggy.PluginManager = field(default_factory=lambda: _new_manager())
    plugins: list[PluginInfo] = field(default_factory=list)
    models: dict[str, Entry[type[GenerativeModel]]] = field(default_factory=dict)
    datasets: dict[str, Entry[type[Dataset]]] = field(default_factory=dict)
    metrics: dict[str, Entry[type[Metric]]] = field(default_factory=dict)
    figures: dict[str, Entry[type[Figure]]] = field(default_factory=dict)
    executors: dict[str, Entry[type[Executor]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Plugins added after load_registry() built this registry (a test's fake models, a notebook's
    # plugin object): name -> (plugin, origin). Worker processes and Ray tasks build their own
    # registry from the default plugins and entry points, then add these (genbench.run.executors).
    added: dict[str, tuple[object, str]] = field(default_factory=dict)
    loaded: bool = False  # set by load_registry once the default plugins and entry points are in

    # -- loading ---------------------------------------------------------------------------
    def add_plugin(self, name: str, load: Callable[[], object], origin: str, summary: str = "") -> bool:
        """Import (via ``load``), register and collect one plugin. Return False if it was rejected.

        ``summary`` is its distribution's one-line summary, a fallback for its description.
        """
        try:
            plugin = load()
        except Exception as exc:  # any import error must be reported, not fatal
            self.problems.append(f"plugin {name!r} ({origin}) failed to load: {type(exc).__name__}: {exc}")
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validation errors (bad hookimpl signature, duplicate name)
            reason = " ".join(str(exc).split())  # pluggy's messages span several lines
            self.problems.append(f"plugin {name!r} ({origin}) rejected: {reason}")
            return False
        misspelt = [c.name for c in self.pm.get_hookcallers(plugin) or [] if not c.has_spec()]
        if misspelt:
            self.pm.unregister(plugin)
            valid = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("register_")))
            self.problems.append(
                f"plugin {name!r} ({origin}) implements unknown hook(s) {', '.join(misspelt)}; valid: {valid}"
            )
            return False
        info = PluginInfo(name, origin, describe_plugin(plugin, summary))
        self.plugins.append(info)
        self._collect(plugin, info)
        if self.loaded:
            self.added[name] = (plugin, origin)
        return True

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and forget everything it registered (used by tests)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.plugins = [p for p in self.plugins if p.name != name]
        self.added.pop(name, None)
        for table in (self.models, self.datasets, self.metrics, self.figures, self.executors):
            for key in [k for k, e in table.items() if e.plugin.name == name]:
                del table[key]

    def _collect(self, plugin: object, info: PluginInfo) -> None:
        hooks: list[tuple[str, dict[str, Entry[Any]], type, str]] = [
            ("register_models", self.models, GenerativeModel, "model"),
            ("register_datasets", self.datasets, Dataset, "dataset"),
            ("register_metrics", self.metrics, Metric, "metric"),
            ("register_figures", self.figures, Figure, "figure"),
            ("register_executors", self.executors, Executor, "executor"),
        ]
        for hook_name, table, base, kind in hooks:
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                register = self._registrar(table, base, kind, info)
                try:
                    impl.function(register=register)
                except Exception as exc:
                    self.problems.append(
                        f"plugin {info.name!r} ({info.origin}) raised in {hook_name}: {type(exc).__name__}: {exc}"
                    )

    def _registrar(
        self, table: dict[str, Entry[Any]], base: type, kind: str, info: PluginInfo
    ) -> Callable[[type[Any]], None]:
        def register(cls: type[Any]) -> None:
            where = f"plugin {info.name!r} ({info.origin})"
            if not (isinstance(cls, type) and issubclass(cls, base)):
                self.problems.append(f"{where} registered {cls!r}, which is not a {base.__name__} subclass")
                return
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                self.problems.append(f"{where} registered {cls.__name__} without a 'name'")
                return
            if name in table:
                other = table[name].plugin
                self.problems.append(
                    f"{where}: {kind} {name!r} is already registered by {other.name!r} ({other.origin}); ignored"
                )
                return
            defect = _defect(cls)
            if defect:
                self.problems.append(f"{where}: {kind} {name!r} {defect}; ignored")
                return
            table[name] = Entry(name, cls, info)

        return register

    # -- lookup ----------------------------------------------------------------------------
    def model(self, name: str) -> type[GenerativeModel]:
        return _lookup(self.models, "model", name)

    def dataset(self, name: str) -> type[Dataset]:
        return _lookup(self.datasets, "dataset", name)

    def metric(self, name: str) -> type[Metric]:
        return _lookup(self.metrics, "metric", name)

    def figure(self, name: str) -> type[Figure]:
        return _lookup(self.figures, "figure", name)

    def executor(self, name: str) -> type[Executor]:
        return _lookup(self.executors, "executor", name)


def _defect(cls: type[Any]) -> str | None:
    """What makes a registered class unusable (checked once, so later code can trust it), or None."""
    if issubclass(cls, GenerativeModel):
        hyper = cls.Hyper
        if not (isinstance(hyper, type) and issubclass(hyper, BaseHyper)):
            return "has a Hyper that does not extend genbench.Hyper"
        if "__dataclass_fields__" not in vars(hyper):
            return f"has Hyper class {hyper.__name__} without @dataclass"
        try:
            field_types(hyper)
            hyper()
        except Exception as exc:
            return f"has unusable hyper-parameters ({type(exc).__name__}: {exc})"
        for kind, values in hyper.kind_defaults.items():
            if kind not in DATA_KINDS:
                return f"has kind_defaults for unknown data kind {kind!r}; valid: {', '.join(DATA_KINDS)}"
            try:
                build(hyper, dict(values), "kind_defaults", kind)
            except GenbenchError as exc:
                return f"has unusable kind_defaults[{kind!r}] ({exc})"
        clash = sorted(RESERVED_HYPER & set(hyper.__dataclass_fields__))
        if clash:
            return f"uses reserved hyper-parameter name {clash[0]!r}"
        if not cls.capabilities <= set(Capability):
            return f"declares unknown capabilities; valid: {', '.join(c.value for c in Capability)}"
    if issubclass(cls, Executor) and not cls.uses <= set(EXECUTOR_OPTIONS):
        return f"uses unknown options {sorted(cls.uses - set(EXECUTOR_OPTIONS))}; valid: {', '.join(EXECUTOR_OPTIONS)}"
    if issubclass(cls, Dataset):
        shape = getattr(cls, "shape", None)
        if not (isinstance(shape, tuple) and shape and all(isinstance(s, int) and s > 0 for s in shape)):
            return "has no valid 'shape' (a tuple of positive ints, e.g. (1, 28, 28))"
        if cls.kind not in DATA_KINDS:
            return f"has kind {cls.kind!r}; valid: {', '.join(repr(k) for k in DATA_KINDS)}"
        if cls.kind == "image" and len(shape) != 3:
            return f"is an image dataset with shape {shape}; images are (C, H, W)"
    if issubclass(cls, Figure):
        if not FIGURE_NAME.fullmatch(cls.name):
            return "has a name that is not a file name (lower-case letters, digits and _, 40 at most)"
        if cls.name in RESERVED_FIGURES:
            return f"uses a name of a file every cell writes; reserved: {', '.join(sorted(RESERVED_FIGURES))}"
        if not cls.requires <= set(Capability):
            return f"requires unknown capabilities; valid: {', '.join(c.value for c in Capability)}"
        if not cls.data_kinds <= set(DATA_KINDS):
            return f"has data_kinds outside {', '.join(DATA_KINDS)}"
    return None


def _lookup(table: dict[str, Entry[T]], kind: str, name: str) -> T:
    if name not in table:
        raise unknown(kind, name, table)
    return table[name].cls


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    return pm


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def _origin(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    return f"{dist.name} {dist.version}" if dist is not None else "entry point"


def _summary(ep: metadata.EntryPoint) -> str:
    dist = ep.dist
    try:
        return str(dist.metadata["Summary"] or "") if dist is not None else ""
    except Exception:  # a distribution with broken metadata still loads; it just has no summary
        return ""


def load_registry(
    entry_points: Iterable[metadata.EntryPoint] | None = None,
    disabled: Iterable[str] | None = None,
) -> Registry:
    """Build a registry from the default plugins and the ``genbench`` entry points."""
    registry = Registry()
    for module in DEFAULT_PLUGINS:
        registry.add_plugin(module, functools.partial(importlib.import_module, module), BUILTIN)
    if disabled is None:
        disabled = [s.strip() for s in os.environ.get("GENBENCH_DISABLE_PLUGINS", "").split(",") if s.strip()]
    blocked = set(disabled)
    seen: dict[str, str] = {}  # entry-point name -> origin
    for ep in entry_points if entry_points is not None else _entry_points():
        origin = _origin(ep)
        if ep.name in blocked:
            continue
        if ep.name in seen:
            if seen[ep.name] != origin:  # the same distribution twice on sys.path is harmless
                registry.problems.append(
                    f"plugin {ep.name!r} ({origin}): the name is already used by a plugin from {seen[ep.name]}; ignored"
                )
            continue
        seen[ep.name] = origin
        registry.add_plugin(ep.name, ep.load, origin, _summary(ep))
    registry.loaded = True
    return registry


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use (importing genbench loads no plugin)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def reset_registry() -> None:
    """Forget the loaded registry so the next :func:`get_registry` reloads plugins."""
    global _REGISTRY
    _REGISTRY = None
