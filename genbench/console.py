"""Rich progress for ``genbench run``: turns runner events into a grid bar and one bar per running cell.

With a parallel executor several cells run at once: each has its own bar from its start
to its end, so the display shows what runs side by side.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from genbench.run.runner import CellFinished, CellProgress, CellStarted, Event, Planned, Preparing


class ProgressReporter:
    """A context manager whose ``__call__`` is the runner's ``on_event`` callback."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            transient=False,
        )
        self.grid_task = self.progress.add_task("grid", total=None, info="")
        self.cell_task = self.progress.add_task("cell", total=None, info="", visible=False)  # preparing
        self.cells: dict[str, TaskID] = {}  # a bar per running cell

    def __enter__(self) -> ProgressReporter:
        return self  # the display starts at the first event: nothing is drawn if validation fails

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.progress.live.is_started:
            self.progress.stop()

    def __call__(self, event: Event) -> None:
        p = self.progress
        if not p.live.is_started:
            p.start()
        if isinstance(event, Planned):
            reused = len(event.cells) - event.to_run
            info = f"{reused} reused from a previous run" if reused else ""
            p.update(self.grid_task, total=event.to_run, description="grid", info=info)
        elif isinstance(event, Preparing):
            p.update(self.cell_task, visible=True, description=event.what, total=None, completed=0, info="")
        elif isinstance(event, CellStarted):
            p.update(self.cell_task, visible=False)
            cid = event.spec.cell_id
            if cid not in self.cells:
                self.cells[cid] = p.add_task(cid, total=None, info="")
        elif isinstance(event, CellProgress):
            task = self.cells.get(event.cell_id)
            if task is None:
                return
            if event.kind == "phase":
                p.update(task, info=event.detail)
            elif event.kind == "epoch":
                epoch, epochs, means = event.detail
                losses = " ".join(f"{k}={v:.3g}" for k, v in means.items())
                p.update(task, total=epochs, completed=epoch, info=f"epoch {epoch}/{epochs} {losses}")
        elif isinstance(event, CellFinished):
            r = event.record
            task = self.cells.pop(r.cell_id, None)
            if task is not None:
                p.remove_task(task)
            if r.status != "ok":
                self.console.print(f"[red]{r.cell_id}: {r.status}[/] {r.error or ''}")
            p.advance(self.grid_task)
