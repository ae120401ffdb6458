"""Executors: how the cells of a grid run (one after the other, in worker processes, on Ray).

The interface is :class:`genbench.run.executors.base.Executor`; the built-in ones
(``serial``, ``process``, ``ray``) are registered by the default plugin
:mod:`genbench.run.executors.builtin`, through the same hook as third-party ones
(``register_executors``). This package imports nothing heavy: the registry imports it.
"""

from genbench.run.executors.base import CellResult, Executor, PackedCell

__all__ = ["CellResult", "Executor", "PackedCell"]
