"""The ``ray`` executor: each cell is a Ray task, on a local Ray instance or an existing cluster.

Ray core tasks, not Ray Tune trials: a cell is one function call with no intermediate
checkpoints to report and no search to steer, and genbench already owns resume, results
and the table; a task keeps the grid a plain map with ``ray.wait`` streaming results back.

* **Where.** ``--ray-address`` (or ``$RAY_ADDRESS``) joins an existing cluster
  (``host:port``, ``ray://host:10001`` or ``auto``); genbench first checks that something
  answers there (5 s), so an unreachable address is one line before any work. Without an
  address (or with Ray's ``local``) genbench starts a local Ray instance (no dashboard) and
  shuts it down at the end; a Ray session already started in this process (``ray.init()``) is used as it is.
* **Resources** (logical, as Ray counts them). A CPU cell asks for ``num_cpus`` = its torch
  threads (``--threads`` when given and it fits, else ``max(1, cores // workers)`` on a
  local instance and 1 on a cluster; recorded with the reason). When the
  cells run on GPUs (``--device`` not ``cpu`` and the cluster has GPUs) each also asks for
  ``num_gpus = 1 / --cells-per-gpu``: K cells share a GPU. A share does not cap memory.
  Each task asks for no more CPUs than the largest live node has (a task runs on one node).
  ``--workers`` (optional) caps the cells in flight; a local instance gets the cores here.
* **Files.** A task runs its cell in a private temporary folder on its node and returns
  the record and the files' bytes (:func:`genbench.run.executors.remote.run_packed`); the
  driver writes them under ``--out``. Nodes need no shared filesystem for results; each
  node reads the dataset and fills its own ``--cache-dir`` (the record's backbone weights
  hash shows which backbone scored it).
* **Progress.** Tasks send their start, phase and epoch events through a Ray queue actor;
  the driver forwards them to the progress bars.
* **Failures.** ``max_retries=0``: a task whose worker dies (killed, out of memory) fails
  its cell with Ray's reason (``WorkerCrashedError: ...``) and the grid goes on;
  ``--resume`` runs it again. A full disk (:class:`~genbench.errors.DiskFull` in a task)
  stops the grid as on ``serial``, and so does a plugin a task cannot add. A task on the
  driver's host runs its cell inside the driver's scratch folder (named by host and driver
  pid, as the process executor's), which the driver removes at the end and the next pool
  removes if the driver was killed; a task killed outright on another node leaves its
  ``genbench-cell-*`` temporary folder there.
* **Plugins.** Workers import genbench and plugins as installed packages; plugins added to
  the driver's registry in-process are sent along with the tasks (a module by its name: one
  that cannot be imported by name is refused before any work).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from genbench.errors import DiskFull, GenbenchError
from genbench.protocol import CellSpec, RunRequest
from genbench.run.events import CellProgress, CellStarted, EventCallback
from genbench.run.executors.base import CellResult, Executor
from genbench.run.executors.process import remove_orphaned_scratch, scratch_prefix
from genbench.run.executors.remote import (
    PluginNotInstalled,
    ShippedPlugin,
    failed_cell,
    install_plugins,
    run_packed,
    shipped_plugins,
    worker_disk_full,
)
from genbench.run.executors.resources import check_cpu_workers, cpu_cores, limit_compile_threads, plan_threads

INSTALL = "pip install 'genbench[ray]'"
CONNECT_SECONDS = 5.0
POLL_SECONDS = 0.2  # how often the driver looks for progress events while cells run


def import_ray() -> Any:
    """The ``ray`` module, or a one-line GenbenchError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise GenbenchError(f"--executor ray: Ray is not installed; install it with {INSTALL}") from None
    return ray


def ray_address(request: RunRequest) -> tuple[str | None, str]:
    """The cluster to join (``--ray-address``, else ``$RAY_ADDRESS``; None: start a local one) and its name."""
    given, where = request.ray_address, "--ray-address"
    if not given:
        given, where = os.environ.get("RAY_ADDRESS", "").strip(), "RAY_ADDRESS"
    return (None if given in ("", "local") else given), where  # Ray's "local": start a new local instance


def check_reachable(address: str, where: str, timeout: float = CONNECT_SECONDS) -> None:
    """Something accepts a TCP connection at ``host:port`` within ``timeout`` seconds (``auto``: skipped)."""
    if address == "auto":
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise GenbenchError(f"{where} {address!r}: expected host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise GenbenchError(
            f"{where} {address}: no Ray cluster answers there ({reason}); check the address, "
            "or leave it out to start a local Ray"
        ) from None


def ray_cell(
    spec: CellSpec, plugins: list[ShippedPlugin], events: Any, threads: int, scratch: tuple[str, str] | None = None
) -> CellResult:
    """One cell as a Ray task: run it in a private folder and return its record and files.

    ``scratch`` is the driver's (host, folder): on that host the private folder goes inside it,
    so that a task killed outright leaves nothing the driver does not remove.
    """
    import torch

    torch.set_num_threads(threads)
    limit_compile_threads(threads)  # Ray reuses worker processes: what THREAD_VARIABLES sets for the process executor
    install_plugins(plugins)

    def send(kind: str, cell_id: str, detail: Any) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; it never fails a cell
            events.put((kind, cell_id, detail))

    send("start", spec.cell_id, None)
    here = Path(scratch[1]) if scratch and scratch[0] == socket.gethostname() and Path(scratch[1]).is_dir() else None
    try:
        return run_packed(spec, lambda cid, kind, detail: send(kind, cid, detail), here)
    except Exception as exc:
        full = worker_disk_full(exc, here)
        if full is None:
            raise
        raise full from None  # the driver stops the grid (task_error)


def task_error(exc: BaseException) -> GenbenchError | None:
    """What stops the grid in the driver, from what ``ray.get`` raised (a RayTaskError whose ``cause`` is the
    task's exception; Ray may also raise an instance of both classes): a full disk, as on ``serial``, or a
    plugin a task could not add (every cell would fail the same way). None: only the cell fails."""
    for candidate in (getattr(exc, "cause", None), exc):
        if isinstance(candidate, DiskFull):
            return DiskFull(candidate.folder)
        if isinstance(candidate, PluginNotInstalled):
            return GenbenchError(f"a Ray task could not start: {candidate.args[0] if candidate.args else candidate}")
    return None


def ray_failure(exc: BaseException, what: str = "Ray task failed: ") -> str:
    """One line for a task that brought no result back (``Ray task failed: WorkerCrashedError: ...``), or with
    ``what=""`` for Ray itself failing (``ConnectionError: ...``)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{what}{type(exc).__name__}" + (f": {lines[0][:300]}" if lines else "")


def largest_node_cpus(ray: Any) -> int:
    """The CPUs of the largest live node (the session's total where Ray lists no nodes)."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if not nodes:
        return int(ray.cluster_resources().get("CPU", 0))
    return max(int(n.get("Resources", {}).get("CPU", 0)) for n in nodes)


class ProgressRelay:
    """The tasks' start and progress events, from the Ray queue to the progress display.

    Best effort, as the tasks' puts are: if the queue's actor is lost (killed, its node gone), progress stops
    and the cells go on; their results come back through ``ray.wait``, not through the queue.
    """

    def __init__(self, events: Any, specs: Sequence[CellSpec], on_event: EventCallback) -> None:
        self.events: Any = events
        self.by_id = {s.cell_id: s for s in specs}
        self.on_event = on_event
        self.started: set[str] = set()

    def forward(self) -> None:
        if self.events is None:
            return
        try:
            size = self.events.size()
            batch = self.events.get_nowait_batch(size) if size else []
        except Exception:  # the actor died: no more progress from it
            self.events = None
            return
        for kind, cell_id, detail in batch:
            if kind == "start" and cell_id in self.by_id and cell_id not in self.started:
                self.on_event(CellStarted(len(self.started), len(self.by_id), self.by_id[cell_id]))
                self.started.add(cell_id)
            elif kind in ("phase", "epoch", "step", "work"):
                self.on_event(CellProgress(cell_id, kind, detail))


class RayExecutor(Executor):
    """Cells as Ray tasks (see the module docstring)."""

    name = "ray"
    description = "each cell a Ray task: a local Ray instance, or a cluster (--ray-address / RAY_ADDRESS)"
    uses = frozenset({"workers", "cells_per_gpu", "ray_address"})

    def __init__(self, request: RunRequest) -> None:
        super().__init__(request)
        self._ray: Any = None
        self._started = False  # whether this executor started the Ray session (and so shuts it down)
        self._pending: dict[Any, CellSpec] = {}
        self._resources = (1.0, 0.0, 1)  # (num_cpus, num_gpus, torch threads) of a cell's task
        self._reason = ""  # why those threads (recorded in each cell's environment)
        self._scratch: Path | None = None  # the tasks' temporary folders on this host live here

    @classmethod
    def check(cls, request: RunRequest) -> None:
        if request.cells_per_gpu is not None and request.protocol.device == "cpu":
            raise GenbenchError(
                f"--cells-per-gpu {request.cells_per_gpu} with --device cpu: no cell runs on a GPU; leave "
                "--cells-per-gpu out, or use --device auto or cuda"
            )
        import_ray()
        address, where = ray_address(request)
        if address is None:
            if request.workers is not None:
                check_cpu_workers(request.workers)
            plan_threads(
                request.threads, request.workers or cpu_cores(), "ray", default_workers=request.workers is None
            )
        if address is not None:
            check_reachable(address, where)
        shipped_plugins()  # a plugin module the workers cannot import is refused before any work

    def __enter__(self) -> RayExecutor:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            self._start(ray)
        remove_orphaned_scratch()  # of drivers killed with their tasks (process or ray)
        self._scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix()))
        try:
            self._resources = self._task_resources()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self, ray: Any) -> None:
        address, where = ray_address(self.request)
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
        if address is None:
            options["num_cpus"] = cpu_cores()  # --workers caps the tasks in flight, each asks for its threads
        try:
            ray.init(address=address, **options)
        except Exception as exc:
            raise GenbenchError(
                f"{where if address else '--executor ray'}: cannot start or join Ray: {ray_failure(exc, '')}"
            ) from None
        self._started = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        ray, pending, self._pending = self._ray, self._pending, {}
        if ray is None:
            return
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
        if self._started:
            self._started = False
            ray.shutdown()
        if self._scratch is not None:  # after the tasks stopped: what a killed one left
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def _task_resources(self) -> tuple[float, float, int]:
        """(num_cpus, num_gpus, torch threads) of one cell's task; a GPU device the cluster lacks is an error."""
        ray = self._ray
        available = ray.cluster_resources()
        local = ray_address(self.request)[0] is None
        if local:
            workers, default = self.request.workers or cpu_cores(), self.request.workers is None
            threads, self._reason = plan_threads(self.request.threads, workers, "ray", default_workers=default)
        else:
            threads = self.request.threads or 1
            self._reason = f"--threads {threads}" if self.request.threads else "ray: 1 CPU per task on a cluster"
        largest = largest_node_cpus(ray)  # a task runs on one node: it must fit one, not the cluster's sum
        if largest < 1:
            raise GenbenchError("--executor ray: no node of the Ray cluster has a CPU to run a cell on")
        if largest < threads:
            threads, self._reason = largest, f"ray: {largest} CPUs on the largest node"
        gpus = 0.0
        if self.request.protocol.device != "cpu" and available.get("GPU", 0) > 0:
            gpus = 1.0 / (self.request.cells_per_gpu or 1)
        elif self.request.protocol.device.startswith("cuda"):
            raise GenbenchError(f"--device {self.request.protocol.device}: the Ray cluster has no GPU")
        return float(threads), gpus, threads

    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellResult]:
        ray = self._ray
        if ray is None:
            raise RuntimeError("RayExecutor.run outside its `with` block")
        from ray.util.queue import Queue

        cpus, gpus, threads = self._resources
        task = ray.remote(ray_cell).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        events = Queue(actor_options={"num_cpus": 0})
        plugins = ray.put(shipped_plugins())
        todo = deque(specs)
        limit = self.request.workers or len(specs)
        scratch = (socket.gethostname(), str(self._scratch)) if self._scratch is not None else None
        relay = ProgressRelay(events, specs, on_event)

        try:
            while todo or self._pending:
                while todo and len(self._pending) < limit:
                    spec = todo.popleft()
                    sent = dataclasses.replace(spec, threads=threads, threads_reason=self._reason)
                    self._pending[task.remote(sent, plugins, events, threads, scratch)] = spec
                done, _ = ray.wait(list(self._pending), num_returns=1, timeout=POLL_SECONDS)
                relay.forward()
                for ref in done:
                    spec = self._pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # the task's worker died, or Ray lost it
                        stop = task_error(exc)
                        if stop is not None:  # as on serial: the grid stops, the cells finished so far are kept
                            raise stop from None
                        result = failed_cell(spec, ray_failure(exc))
                    relay.forward()
                    yield result
        finally:
            with contextlib.suppress(Exception):
                ray.kill(events.actor)
