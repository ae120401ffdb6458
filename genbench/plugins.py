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
from genbench.datasets.base import Dataset
from genbench.errors import unknown
from genbench.metrics.base import Metric
from genbench.models.base import GenerativeModel

ENTRY_POINT_GROUP = "genbench"
BUILTIN = "built-in"
DEFAULT_PLUGINS = (
    "genbench.models.builtin",
    "genbench.datasets.builtin",
    "genbench.metrics.builtin",
)
# Hyper-parameter names that would collide with the identity columns of results.csv.
RESERVED_HYPER = frozenset({"model", "dataset", "seed", "cell", "status", "error", "params", "device"})

T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: its name and where it came from (``built-in`` or ``package version``)."""

    name: str
    origin: str


@dataclass(frozen=True)
class Entry(Generic[T]):
    """A registered class and the plugin that contributed it."""

    name: str
    cls: T
    plugin: PluginInfo


@dataclass
class Registry:
    """Models, datasets and metrics from every plugin, plus the problems met loading them."""

    pm: pluggy.PluginManager = field(default_factory=lambda: _new_manager())
    plugins: list[PluginInfo] = field(default_factory=list)
    models: dict[str, Entry[type[GenerativeModel]]] = field(default_factory=dict)
    datasets: dict[str, Entry[type[Dataset]]] = field(default_factory=dict)
    metrics: dict[str, Entry[type[Metric]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    # -- loading ---------------------------------------------------------------------------
    def add_plugin(self, name: str, load: Callable[[], object], origin: str) -> bool:
        """Import (via ``load``), register and collect one plugin. Return False if it was rejected."""
        try:
            plugin = load()
        except Exception as exc:  # any import error must be reported, not fatal
            self.problems.append(f"plugin {name!r} ({origin}) failed to load: {type(exc).__name__}: {exc}")
            return False
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy validation errors (bad hookimpl signature, duplicate name)
            self.problems.append(f"plugin {name!r} ({origin}) rejected: {exc}")
            return False
        misspelt = [c.name for c in self.pm.get_hookcallers(plugin) or [] if not c.has_spec()]
        if misspelt:
            self.pm.unregister(plugin)
            valid = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("register_")))
            self.problems.append(
                f"plugin {name!r} ({origin}) implements unknown hook(s) {', '.join(misspelt)}; valid: {valid}"
            )
            return False
        info = PluginInfo(name, origin)
        self.plugins.append(info)
        self._collect(plugin, info)
        return True

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and forget everything it registered (used by tests)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.plugins = [p for p in self.plugins if p.name != name]
        for table in (self.models, self.datasets, self.metrics):
            for key in [k for k, e in table.items() if e.plugin.name == name]:
                del table[key]

    def _collect(self, plugin: object, info: PluginInfo) -> None:
        hooks: list[tuple[str, dict[str, Entry[Any]], type, str]] = [
            ("register_models", self.models, GenerativeModel, "model"),
            ("register_datasets", self.datasets, Dataset, "dataset"),
            ("register_metrics", self.metrics, Metric, "metric"),
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
            if issubclass(cls, GenerativeModel):
                clash = sorted(RESERVED_HYPER & set(cls.Hyper.__dataclass_fields__))
                if clash:
                    self.problems.append(f"{where}: model {name!r} uses reserved hyper-parameter {clash[0]!r}")
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
    seen: set[str] = set()
    for ep in entry_points if entry_points is not None else _entry_points():
        if ep.name in blocked or ep.name in seen:
            continue  # the same distribution can appear twice on sys.path (editable + site)
        seen.add(ep.name)
        registry.add_plugin(ep.name, ep.load, _origin(ep))
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
