"""The ``serial`` executor: one cell after the other, in this process, in the results folder (the default)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from genbench.protocol import CellRecord, CellSpec, RunRequest
from genbench.run.events import CellProgress, CellStarted, EventCallback
from genbench.run.executors.base import CellResult, Executor


class SerialExecutor(Executor):
    """Runs cells one after the other in this process; each writes its files in place.

    A Ctrl-C stops the grid at once (the cell in progress is recorded as ``failed: interrupted``).
    """

    name = "serial"
    description = "one cell after the other in this process (the default)"

    def __init__(self, request: RunRequest | None = None) -> None:  # it needs no option: SerialExecutor() works
        if request is not None:
            super().__init__(request)

    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellResult]:
        for i, spec in enumerate(specs):
            on_event(CellStarted(i, len(specs), spec))
            yield run_reported(spec, on_event)


def run_reported(spec: CellSpec, on_event: EventCallback) -> CellRecord:
    """``run_cell`` with its progress as events: phases, epochs, steps, and long work inside (features...)."""
    from genbench.run.cell import run_cell  # here: the registry imports executors, and a cell imports much

    return run_cell(spec, lambda cid, kind, detail: on_event(CellProgress(cid, kind, detail)))
