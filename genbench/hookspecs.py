"""The hooks a genbench plugin implements.

Every hook receives a ``register`` callback; a plugin calls it once per class it
contributes. genbench does the bookkeeping (names, duplicates, which package a
class came from). Mark implementations with :data:`hookimpl`::

    from genbench import hookimpl

    @hookimpl
    def register_models(register):
        register(MyModel)

Hook results are ignored (all implementations are called; none is
``firstresult``). A misspelt hook name marked with ``@hookimpl`` is reported by
``genbench list`` and the plugin is not loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "genbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(register: Callable[[type[Any]], None]) -> None:
    """Contribute model classes.

    :param register: call ``register(cls)`` with a subclass of
        :class:`genbench.models.GenerativeModel` whose ``name`` is unique.
    """


@hookspec
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    """Contribute dataset classes.

    :param register: call ``register(cls)`` with a subclass of
        :class:`genbench.datasets.Dataset` whose ``name`` is unique.
    """


@hookspec
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    """Contribute metric classes.

    :param register: call ``register(cls)`` with a subclass of
        :class:`genbench.metrics.Metric` whose ``name`` is unique.
    """


@hookspec
def register_figures(register: Callable[[type[Any]], None]) -> None:
    """Contribute figure classes: pictures every cell saves when its model has what they need.

    :param register: call ``register(cls)`` with a subclass of
        :class:`genbench.reporting.figures.Figure` whose ``name`` is unique (lower-case
        letters, digits and ``_``: it names the figure's files).
    """


@hookspec
def register_executors(register: Callable[[type[Any]], None]) -> None:
    """Contribute executors: how the cells of a grid run (``genbench run --executor NAME``).

    :param register: call ``register(cls)`` with a subclass of
        :class:`genbench.run.executors.Executor` whose ``name`` is unique.
    """
