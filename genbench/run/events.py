"""What a run tells its caller as it goes: the runner's events (the CLI draws them as progress bars).

Executors emit :class:`CellStarted` and :class:`CellProgress` for the cells they run, in
this process or from worker processes and Ray tasks (forwarded to the driver); the
runner emits the others. Several cells may be running at once: events of different
cells interleave, and :class:`CellProgress` names its cell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from genbench.protocol import CellRecord, CellSpec


@dataclass(frozen=True)
class Planned:
    cells: tuple[CellSpec, ...]
    to_run: int  # cells that will run (the others are reused with --resume)


@dataclass(frozen=True)
class Preparing:
    what: str
    done: int | None = None  # how far a long step is (genbench.progress.report), when it says
    total: int | None = None


@dataclass(frozen=True)
class CellStarted:
    index: int  # position among the cells that run, in the order they started
    total: int
    spec: CellSpec


@dataclass(frozen=True)
class CellProgress:
    cell_id: str
    kind: str  # "phase", "epoch", "step" or "work"
    # phase name; (epoch, epochs, {loss: mean}); (epoch, epochs, steps done, steps per epoch); (what, done, total)
    detail: Any


@dataclass(frozen=True)
class CellFinished:
    index: int  # how many cells had finished before this one
    total: int
    record: CellRecord


Event = Planned | Preparing | CellStarted | CellProgress | CellFinished
EventCallback = Callable[[Event], None]
