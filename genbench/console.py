"""Progress for ``genbench run``: turns runner events into bars in a terminal, and into lines in a log.

In a terminal: a grid bar (cells done, elapsed, an ETA from the cells done so
far), a bar for a preparation step, and one bar per running cell (epochs, with
the steps of a long epoch; its own elapsed time; the last losses, cut to the
width left so they never squeeze the bars). With a parallel executor several
cells run at once: each has its own bar from its start to its end, so the
display shows what runs side by side.

When stderr is not a terminal (a CI log, ``2> log``, ``| tee``), Rich would
draw nothing until the end; the reporter writes plain lines instead: one when a
cell starts and one when it ends (status, time, ETA of the grid), and in
between at most one every ``interval`` seconds (epoch and losses, steps of a long
epoch, what a long preparation step is doing and how far it is). Every line
names its cell, so the lines of cells running side by side stay readable.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from types import TracebackType

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Column

from genbench.run.runner import CellFinished, CellProgress, CellStarted, Event, Planned, Preparing

PLAIN_INTERVAL_S = 5.0  # at most one progress line this often in a log (cell start and end lines always)
NAME_WIDTH = 30  # the cell id column of the bars (longer ids are cut with …)
BAR_WIDTH = 20  # the bars keep this width whatever the text beside them (the losses are cut instead)


def duration(seconds: float) -> str:
    """``45s``, ``3m20s``, ``1h02m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def eta(durations: Sequence[float], remaining: int, parallel: int = 1) -> float | None:
    """Seconds left for ``remaining`` cells, ``parallel`` at a time, from the median time of the cells done
    (None before the first)."""
    if not durations:
        return None
    return statistics.median(durations) * math.ceil(remaining / max(1, parallel))


def losses(means: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3g}" for k, v in means.items())


class ProgressReporter:
    """A context manager whose ``__call__`` is the runner's ``on_event`` callback.

    ``plain``: write lines rather than bars (default: when ``console`` is not a terminal).
    """

    def __init__(
        self,
        console: Console,
        plain: bool | None = None,
        interval: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.plain = (not console.is_terminal) if plain is None else plain
        self.interval = interval
        self.clock = clock
        self.to_run = 0
        self.done = 0
        self.durations: list[float] = []
        self.started: dict[str, float] = {}
        self.parallel = 1  # the most cells seen running at once (a parallel executor's width)
        self.position: dict[str, str] = {}  # cell id -> "[3/8]"
        self.last_line = -float("inf")
        self.last_what = ""
        self.progress = Progress(
            TextColumn(
                "{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", max_width=NAME_WIDTH)
            ),
            BarColumn(bar_width=BAR_WIDTH),
            TextColumn("{task.fields[count]}", table_column=Column(no_wrap=True)),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
            console=console,
            transient=False,
            expand=True,
            get_time=clock,
        )
        self.grid_task = self.progress.add_task("grid", total=None, info="", count="")
        self.cell_task = self.progress.add_task("cell", total=None, info="", count="", visible=False)  # preparing
        self.cells: dict[str, TaskID] = {}  # a bar per running cell

    def __enter__(self) -> ProgressReporter:
        return self  # the display starts at the first event: nothing is drawn if validation fails

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    # -- shared bookkeeping ------------------------------------------------------------------------
    def eta_text(self) -> str:
        left = eta(self.durations, self.to_run - self.done, self.parallel)
        if left is None:
            return "ETA after the first cell" if self.to_run > 1 else ""
        return f"ETA {duration(left)}" if self.done < self.to_run else ""

    def __call__(self, event: Event) -> None:
        if isinstance(event, Planned):
            self.to_run = event.to_run
        elif isinstance(event, CellStarted):
            self.started[event.spec.cell_id] = self.clock()
            self.parallel = max(self.parallel, len(self.started))
            self.position[event.spec.cell_id] = f"[{event.index + 1}/{event.total}]"
        elif isinstance(event, CellFinished):
            start = self.started.pop(event.record.cell_id, None)
            if start is not None:
                self.durations.append(self.clock() - start)
            self.done += 1
        if self.plain:
            self.line(event)
        else:
            self.bars(event)

    # -- a log: plain lines ------------------------------------------------------------------------
    def say(self, text: str, always: bool = False) -> None:
        now = self.clock()
        if always or now - self.last_line >= self.interval:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
            self.last_line = now

    def line(self, event: Event) -> None:
        if isinstance(event, Planned):
            reused = len(event.cells) - event.to_run
            self.say(f"genbench: {event.to_run} cells to run" + (f", {reused} reused" if reused else ""), True)
        elif isinstance(event, Preparing):
            how_far = "" if event.done is None else f" {event.done}/{event.total if event.total else '?'}"
            new = event.done is None or event.what != self.last_what  # what it is doing: always said
            self.last_what = event.what
            self.say(f"preparing: {event.what}{how_far}", always=new)
        elif isinstance(event, CellStarted):
            self.say(f"{self.position[event.spec.cell_id]} {event.spec.cell_id}: started", True)
        elif isinstance(event, CellProgress):
            where = f"{self.position.get(event.cell_id, '')} {event.cell_id}"
            took = self.clock() - self.started.get(event.cell_id, self.clock())
            text = self.detail(event)
            if text:
                self.say(f"{where}: {text} ({duration(took)})")
        elif isinstance(event, CellFinished):
            r = event.record
            took = self.durations[-1] if self.durations else 0.0
            status = r.status if r.status == "ok" else f"{r.status}: {r.error or ''}"
            eta_text = self.eta_text()
            tail = f"; grid {self.done}/{self.to_run}" + (f", {eta_text}" if eta_text else "")
            self.say(f"{self.position.get(r.cell_id, '')} {r.cell_id}: {status} in {duration(took)}{tail}", True)

    @staticmethod
    def detail(event: CellProgress) -> str:
        if event.kind == "phase":
            return str(event.detail)
        if event.kind == "epoch":
            epoch, epochs, means = event.detail
            return f"epoch {epoch}/{epochs} {losses(means)}".rstrip()
        if event.kind == "step":
            epoch, epochs, step, steps = event.detail
            return f"epoch {epoch}/{epochs}, step {step}/{steps}"
        if event.kind == "work":
            what, done, total = event.detail
            return f"{what} {done}/{total if total else '?'}"
        return ""

    # -- a terminal: bars --------------------------------------------------------------------------
    def restart(self, description: str, total: float | None) -> None:
        """The preparation bar for a new step: its own clock (an update alone would keep the first one's)."""
        self.progress.reset(self.cell_task, visible=True, description=escape(description), count="", info="")
        self.cell().total = total  # None: no bar length yet (update cannot unset a total)

    def cell(self) -> Task:
        """The preparation bar."""
        return next(t for t in self.progress.tasks if t.id == self.cell_task)

    def bar(self, cell_id: str) -> Task:
        """The bar of running cell ``cell_id``."""
        return next(t for t in self.progress.tasks if t.id == self.cells[cell_id])

    def bars(self, event: Event) -> None:
        p = self.progress
        if not p.live.is_started:
            p.start()
        if isinstance(event, Planned):
            reused = len(event.cells) - event.to_run
            info = f"{reused} reused from a previous run" if reused else ""
            p.update(self.grid_task, total=event.to_run, description="grid", count=f"0/{event.to_run}", info=info)
        elif isinstance(event, Preparing):
            count = "" if event.done is None else f"{event.done}/{event.total if event.total else '?'}"
            if event.done is None or event.done == 0 or self.cell().description != escape(event.what):
                self.restart(event.what, event.total)
            p.update(self.cell_task, completed=event.done or 0, total=event.total, count=count)
        elif isinstance(event, CellStarted):
            p.update(self.cell_task, visible=False)  # preparing is over
            cid = event.spec.cell_id
            if cid not in self.cells:  # its own bar, with its own clock, until it finishes
                self.cells[cid] = p.add_task(escape(cid), total=None, info="", count="")
            p.update(self.grid_task, info=self.eta_text())
        elif isinstance(event, CellProgress):
            task = self.cells.get(event.cell_id)
            if task is None:
                return
            if event.kind == "epoch":
                epoch, epochs, means = event.detail
                p.update(task, total=epochs, completed=epoch, count=f"{epoch}/{epochs}",
                         info=escape(f"epoch {epoch}/{epochs} {losses(means)}"))  # fmt: skip
            elif event.kind == "step":
                epoch, epochs, step, steps = event.detail
                p.update(task, total=epochs, completed=epoch - 1 + step / steps, count=f"{epoch - 1}/{epochs}")
            elif event.kind in ("phase", "work"):
                p.update(task, info=escape(self.detail(event)))
        elif isinstance(event, CellFinished):
            r = event.record
            task = self.cells.pop(r.cell_id, None)
            if task is not None:
                p.remove_task(task)
            if r.status != "ok":
                self.console.print(f"[red]{escape(r.cell_id)}: {r.status}[/] {escape(r.error or '')}")
            p.advance(self.grid_task)
            p.update(self.grid_task, count=f"{self.done}/{self.to_run}", info=self.eta_text())
