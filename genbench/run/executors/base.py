"""The executor interface: one road for running cells, whatever runs them.

An executor is a class registered through the plugin hook ``register_executors`` and
chosen with ``genbench run --executor NAME`` (or ``executor = "NAME"`` in a suite). The
runner (:func:`genbench.run.runner.run_grid`) uses it like this::

    refuse_unused(...)                 # in validate(), before any work: options not in `uses`
    Executor.check(request)            # then the executor's own checks: one-line GenbenchError
    with ExecutorClass(request) as ex: # start workers / connect to a cluster (GenbenchError if not)
        for result in ex.run(specs, on_event):
            ...                        # the driver writes the cell's files, results.csv, run.json

The driver is the one writer of the results folder: it holds the folder's lock
(:class:`genbench.folder.RunFolder`) and writes ``results.csv`` and ``run.json`` as
results arrive, in grid order. An executor never writes those files and never takes
the lock. For each spec it yields exactly one result, in any order:

* a :class:`~genbench.protocol.CellRecord` whose files are already in ``spec.out_dir``
  (the cell ran where the results folder is, as ``serial`` does), or
* a :class:`PackedCell`: the record and the bytes of its files, from a worker that ran
  the cell in a private folder (:func:`genbench.run.executors.packing.run_packed`); the
  driver writes them under ``--out``, checking every file against the record's digest.
  Workers then need no shared filesystem.

An executor emits :class:`~genbench.run.events.CellStarted` when a cell starts and
:class:`~genbench.run.events.CellProgress` as it goes (forwarded from its workers);
the runner emits ``CellFinished`` once the cell's files are written.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from genbench.errors import GenbenchError
from genbench.protocol import CellRecord, CellSpec, RunRequest, run_options
from genbench.run.events import EventCallback


@dataclass(frozen=True)
class PackedCell:
    """A cell that ran away from the results folder: its record and its files' bytes by file name.

    ``files`` holds the artifacts the record lists (``samples.png``, ``checkpoint.pt``, ...),
    whose size and sha256 are in ``record.checksums``; ``record.json`` is written by the driver.
    """

    record: CellRecord
    files: dict[str, bytes]


CellResult = CellRecord | PackedCell


class Executor(abc.ABC):
    """Base class of every executor plugin (see the module docstring for the contract).

    Class attributes: ``name`` (what ``--executor`` takes) and ``description``
    (shown by ``genbench list executors``).
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    # RunRequest fields this executor reads (besides models, grid, seeds, ...); giving one of the
    # executor options it does not read is an error naming the executors that do.
    uses: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, request: RunRequest) -> None:
        self.request = request

    @classmethod  # noqa: B027 - optional: most executors need no check of their own
    def check(cls, request: RunRequest) -> None:
        """Check the options that involve this executor, before any work; raise GenbenchError in one line.

        The runner has already refused the executor options this executor does not read
        (:attr:`uses`, :func:`refuse_unused`); the default checks nothing more.
        """

    def __enter__(self) -> Executor:
        """Start what the cells need (worker processes, a connection); raise GenbenchError if it cannot."""
        return self

    def __exit__(  # noqa: B027 - optional: executors that start nothing need no teardown
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop everything started by ``__enter__`` (also after Ctrl-C or an error)."""

    @abc.abstractmethod
    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellResult]:
        """Run every spec; yield one result per spec as each finishes (any order)."""


# The RunRequest fields that steer executors; an executor lists the ones it reads in ``uses``.
EXECUTOR_OPTIONS = ("workers", "gpus", "cells_per_gpu", "ray_address")


def given(request: RunRequest, name: str) -> bool:
    """Whether an executor option was set (None and () mean "not given")."""
    return getattr(request, name) not in (None, ())


def refuse_unused(cls: type[Executor], request: RunRequest, executors: Iterable[type[Executor]]) -> None:
    """``--workers 2: the 'serial' executor does not use it; it is for --executor process or ray``.

    ``executors`` are the registered ones (the runner passes the registry's), named as the
    executors that do read an option.
    """
    flags = {o.name: o.flag for o in run_options()}
    known = list(executors)
    for name in EXECUTOR_OPTIONS:
        if name in cls.uses or not given(request, name):
            continue
        users = sorted(e.name for e in known if name in e.uses)
        shown = describe(getattr(request, name))
        where = f"it is for --executor {' or '.join(users)}" if users else "no installed executor uses it"
        raise GenbenchError(f"{flags[name]} {shown}: the {cls.name!r} executor does not use it; {where}")


def describe(value: Any) -> str:
    """A short text of an option value for messages."""
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
