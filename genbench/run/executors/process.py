"""The ``process`` executor: a pool of local worker processes, optionally packed onto GPUs.

* **How many.** ``--workers N`` (default: the CPU cores this process may use; more is
  refused). With ``--gpus 0,1 --cells-per-gpu K`` there are K workers per GPU, each seeing
  only its GPU (``CUDA_VISIBLE_DEVICES``), so K cells share each GPU at once.
* **Threads.** Each worker gets ``max(1, cores // workers)`` torch threads, at most
  ``$OMP_NUM_THREADS`` when set, or ``--threads`` when that fits
  (:mod:`genbench.run.executors.resources`), through the ``OMP/MKL/OPENBLAS_NUM_THREADS``
  variables it starts with and each cell's ``CellSpec.threads`` (recorded with the reason);
  as many ``--compile`` compile workers (``TORCHINDUCTOR_COMPILE_THREADS``).
* **Start.** Workers are fresh interpreters (the ``spawn`` context: no fork of a process
  holding threads or a CUDA context). Each builds its registry from the default plugins
  and entry points, adds the plugins added to the driver's registry
  (:attr:`genbench.plugins.Registry.added`), says it is ready and waits for cells. A plugin
  module workers cannot import by name is refused before any work; one a worker cannot add
  stops the run with the reason.
* **Files.** A worker runs a cell in a private temporary folder and sends back its record
  and files (:func:`genbench.run.executors.remote.run_packed`); the driver writes them.
  Workers never touch ``--out`` and need no shared filesystem. Each worker's temporary
  folders live in a scratch folder of its own, which the worker removes when it ends and
  the driver removes when the worker dies without a chance to (SIGKILL, out of memory); a
  pool that starts removes those a driver killed with its workers left (:func:`remove_orphaned_scratch`).
* **Progress.** Each worker has its own pipe to the driver: it sends the cell's phase and
  epoch events as they happen, then the result.
* **A worker that dies** (killed, out of memory, a crash in native code) fails the cell it
  was running with the reason (``worker process 1234 died: killed by SIGKILL (e.g. the
  out-of-memory killer)``); no retry (``--resume`` runs it again). A new worker takes its
  place and the grid goes on.
* **A full disk** (``--out``, or a worker's scratch folder) stops the grid as on ``serial``:
  the worker reports :class:`~genbench.errors.DiskFull` naming the folder, the driver raises it
  and stops the other workers; the cells finished so far stay.
* **Stopping.** Workers ignore SIGINT: a Ctrl-C reaches the driver, which stops them
  (SIGTERM, then SIGKILL). On Linux a worker also gets SIGTERM when the driver dies (even
  by ``kill -9``), and removes its temporary folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import hashlib
import multiprocessing
import os
import pickle
import re
import shutil
import signal
import socket
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing import util as mp_util
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from genbench.errors import DiskFull, GenbenchError
from genbench.protocol import CellSpec, RunRequest
from genbench.run.events import CellProgress, CellStarted, EventCallback
from genbench.run.executors.base import CellResult, Executor
from genbench.run.executors.remote import (
    PluginNotInstalled,
    ShippedPlugin,
    failed_cell,
    install_plugins,
    run_packed,
    shipped_plugins,
    worker_disk_full,
)
from genbench.run.executors.resources import (
    THREAD_VARIABLES,
    check_cpu_workers,
    check_gpus,
    cpu_cores,
    plan_threads,
    visible_gpu,
)

STOP_SECONDS = 10.0  # how long a stopping worker may take to clean up before it is killed
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, with how many threads each (and why), on which GPU (None: the CPU or --device's GPU)."""

    threads: int
    gpus: tuple[int | None, ...]
    reason: str = ""  # why ``threads``: recorded in every cell's environment

    @property
    def workers(self) -> int:
        return len(self.gpus)


def plan_workers(request: RunRequest) -> WorkerPlan:
    """The pool ``request`` asks for; raises GenbenchError (one line) for options that do not fit."""
    cores = cpu_cores()
    per_gpu = request.cells_per_gpu
    if request.gpus:
        check_gpus(request.gpus, request.protocol.device)
        k = per_gpu or 1
        total = len(request.gpus) * k
        if request.workers is not None and request.workers != total:
            shown = ",".join(str(g) for g in request.gpus)
            raise GenbenchError(
                f"--workers {request.workers} with --gpus {shown} --cells-per-gpu {k}: the GPUs take "
                f"{len(request.gpus)} x {k} = {total} workers; leave --workers out or make them agree"
            )
        threads, reason = plan_threads(request.threads, total, "process", cores)
        return WorkerPlan(threads, tuple(g for g in request.gpus for _ in range(k)), reason)
    if per_gpu is not None:
        raise GenbenchError(
            f"--cells-per-gpu {per_gpu}: packs cells on the GPUs given with --gpus; add --gpus (e.g. --gpus 0)"
        )
    workers = request.workers or cores
    check_cpu_workers(workers, cores)
    threads, reason = plan_threads(request.threads, workers, "process", cores, default_workers=request.workers is None)
    return WorkerPlan(threads, (None,) * workers, reason)


# -- the worker process ------------------------------------------------------------------------------
class WorkerStopped(BaseException):
    """SIGTERM in a worker: leave the cell (its temporary folder is removed) and exit."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise WorkerStopped


def _die_with_parent() -> None:
    """Linux: SIGTERM this process when the driver dies, even by ``kill -9`` (best effort elsewhere)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_main(conn: Connection, threads: int, plugins: list[ShippedPlugin], parent: int, scratch: Path) -> None:
    """A worker's life: get ready, then run the cells the driver sends until it sends None or goes away.

    It ends with ``os._exit``: it wrote nothing that needs flushing (its temporary folders are gone),
    and tearing down torch and friends at interpreter exit took seconds per worker.
    """
    code = 0
    try:
        _serve(conn, threads, plugins, parent, scratch)
    except WorkerStopped:  # SIGTERM (the driver stops it, or died) before it got to serve
        pass
    except BaseException:  # a bug in genbench itself: say it (the driver fails the cell it was running)
        traceback.print_exc()
        code = 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _release_semaphores()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _release_semaphores() -> None:
    """Unlink the named semaphores this worker made (tqdm's lock, for torch-fidelity's progress bars).

    ``os._exit`` skips multiprocessing's exit hooks, which do it, and the driver's resource tracker then
    warned of "leaked semaphore objects" at the end of every run.
    """
    finalize = getattr(mp_util, "_run_finalizers", None)  # private, but there since Python 2.6
    if finalize is not None:
        with contextlib.suppress(Exception):
            finalize(0)


def _serve(conn: Connection, threads: int, plugins: list[ShippedPlugin], parent: int, scratch: Path) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the user's Ctrl-C is the driver's to handle
    signal.signal(signal.SIGTERM, _on_sigterm)
    _die_with_parent()
    if os.getppid() != parent:  # the driver died before the line above took effect
        return
    import torch

    torch.set_num_threads(threads)
    try:
        try:
            install_plugins(plugins)
        except PluginNotInstalled as exc:  # one line for the driver, which stops the run
            conn.send(("refused", str(exc)))
            return
        conn.send(("ready", os.getpid()))
        while True:
            spec = conn.recv()
            if spec is None:
                return
            try:
                result: CellResult = run_packed(
                    spec, lambda cid, kind, detail: conn.send(("event", cid, kind, detail)), scratch
                )
            except Exception as exc:  # genbench's own failure around the cell (run_cell records the cell's)
                full = worker_disk_full(exc, scratch)
                if full is not None:  # every later cell would fail the same way: the driver stops the grid
                    conn.send(("disk_full", str(full.folder)))
                    continue
                result = failed_cell(spec, f"worker error: {type(exc).__name__}: {exc}")
            conn.send(("done", result))
    except (WorkerStopped, EOFError, BrokenPipeError, ConnectionResetError):
        return  # stopped, or the driver went away


# -- the driver side ---------------------------------------------------------------------------------
@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    gpu: int | None
    scratch: Path  # the worker's temporary folders live here
    ready: bool = False
    spec: CellSpec | None = None  # the cell it is running
    messages: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a child started inside the block (spawn copies the environment)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def death(process: BaseProcess) -> str:
    """Why a worker process ended: ``killed by SIGKILL (e.g. the out-of-memory killer)``, ``exit code 1``."""
    code = process.exitcode
    if code is None:
        return "no longer answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}" + (" (e.g. the out-of-memory killer)" if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def scratch_prefix(pid: int | None = None) -> str:
    """``genbench-worker-<host digest>-<driver pid>-``: whose scratch folder it is, for
    :func:`remove_orphaned_scratch`."""
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    return f"genbench-worker-{host}-{os.getpid() if pid is None else pid}-"


def remove_orphaned_scratch(folder: Path | None = None) -> None:
    """Remove the scratch folders of workers whose driver (on this host) is gone.

    A worker removes its own when it ends, and the driver those of workers that die; a SIGKILL
    of the whole process group (``timeout -s KILL``, a cancelled CI job) leaves them in the
    temporary folder with a cell's half-written files. Only this user's, of dead drivers.
    """
    root = Path(tempfile.gettempdir()) if folder is None else folder
    ours = re.compile(re.escape(scratch_prefix(0)[: -len("0-")]) + r"(\d+)-[A-Za-z0-9_]+")
    for path in root.glob("genbench-worker-*"):
        match = ours.fullmatch(path.name)
        with contextlib.suppress(OSError):
            if match is None or path.is_symlink() or not path.is_dir() or path.stat().st_uid != os.getuid():
                continue
            if not _alive(int(match.group(1))):
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process, or not a pid: leave it
    return True


class ProcessExecutor(Executor):
    """Cells on a pool of local worker processes (see the module docstring)."""

    name = "process"
    description = "a pool of local worker processes (--workers N), or K cells per GPU (--gpus, --cells-per-gpu)"
    uses = frozenset({"workers", "gpus", "cells_per_gpu"})

    def __init__(self, request: RunRequest) -> None:
        super().__init__(request)
        self._workers: list[_Worker] = []
        self._plan: WorkerPlan | None = None
        self._plugins: list[ShippedPlugin] = []
        self._context = multiprocessing.get_context("spawn")

    @classmethod
    def check(cls, request: RunRequest) -> None:
        plan_workers(request)
        shipped_plugins()  # a plugin module the workers cannot import is refused before any work

    # -- pool ------------------------------------------------------------------------------------
    def __enter__(self) -> ProcessExecutor:
        self._plan = plan_workers(self.request)
        remove_orphaned_scratch()
        self._plugins = shipped_plugins()
        for plugin in self._plugins:
            try:
                pickle.dumps(plugin)
            except Exception as exc:
                raise GenbenchError(
                    f"plugin {plugin.name!r} was added in this process and cannot be sent to worker processes "
                    f"({type(exc).__name__}: {exc}); install it as a package with an entry point"
                ) from None
        try:
            for gpu in self._plan.gpus:
                self._workers.append(self._start(gpu))
        except BaseException:
            self._stop(kill=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop(kill=kind is not None)

    def _start(self, gpu: int | None) -> _Worker:
        assert self._plan is not None
        threads = self._plan.threads
        env = {name: str(threads) for name in THREAD_VARIABLES}
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible_gpu(gpu)
        ours, theirs = self._context.Pipe(duplex=True)
        scratch = Path(tempfile.mkdtemp(prefix=scratch_prefix()))
        process = self._context.Process(
            target=worker_main,
            args=(theirs, threads, self._plugins, os.getpid(), scratch),
            name=f"genbench-worker-{len(self._workers)}",
            daemon=True,
        )
        try:
            with _environment(env):
                process.start()
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        theirs.close()  # the child holds its end: EOF here means the child is gone
        return _Worker(process, ours, gpu, scratch)

    def _stop(self, kill: bool) -> None:
        workers, self._workers = self._workers, []
        for w in workers:
            with contextlib.suppress(OSError, ValueError):
                if kill or w.spec is not None:
                    w.process.terminate()
                else:
                    w.conn.send(None)
        for w in workers:
            w.process.join(STOP_SECONDS)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
            shutil.rmtree(w.scratch, ignore_errors=True)

    # -- cells -----------------------------------------------------------------------------------
    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellResult]:
        if self._plan is None:
            raise RuntimeError("ProcessExecutor.run outside its `with` block")
        todo = deque(specs)
        started = 0
        while todo or any(w.spec is not None for w in self._workers):
            for w in self._workers:
                if w.ready and w.spec is None and todo:
                    w.spec = todo.popleft()
                    sent = dataclasses.replace(w.spec, threads=self._plan.threads, threads_reason=self._plan.reason)
                    with contextlib.suppress(OSError):  # a dead worker is noticed below
                        w.conn.send(sent)
                    on_event(CellStarted(started, len(specs), w.spec))
                    started += 1
            ready = set(wait([w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]))
            full: DiskFull | None = None
            for w in list(self._workers):
                ended = w.process.sentinel in ready
                if (w.conn in ready or ended) and not self._receive(w):
                    ended = True
                for kind, *detail in w.messages:
                    if kind == "ready":
                        w.ready = True
                    elif kind == "event":
                        on_event(CellProgress(*detail))
                    elif kind == "done" and w.spec is not None:
                        w.spec = None
                        yield detail[0]
                    elif kind == "disk_full" and w.spec is not None:
                        w.spec = None
                        full = full or DiskFull(detail[0])
                    elif kind == "refused":  # a plugin the worker could not add (genbench.run.executors.remote)
                        raise GenbenchError(f"a worker process could not start: {detail[0]}")
                w.messages.clear()
                if ended:
                    yield from self._replace(w, bool(todo))
            if full is not None:  # as on serial: the grid stops, the cells finished so far are kept
                raise full

    def _replace(self, w: _Worker, needed: bool) -> Iterator[CellResult]:
        """A worker ended: fail the cell it was running, and start another in its place if cells remain."""
        w.process.join(STOP_SECONDS)
        w.conn.close()
        shutil.rmtree(w.scratch, ignore_errors=True)  # what a killed worker could not remove
        i = self._workers.index(w)
        if not w.ready:
            raise GenbenchError(f"a worker process exited while starting ({death(w.process)}); see its messages above")
        if needed:
            self._workers[i] = self._start(w.gpu)
        else:
            del self._workers[i]
        if w.spec is not None:
            yield failed_cell(w.spec, f"worker process {w.process.pid} died: {death(w.process)}")

    def _receive(self, w: _Worker) -> bool:
        """Read every message waiting from ``w`` into ``w.messages``; False when its pipe is closed."""
        try:
            while w.conn.poll():
                w.messages.append(w.conn.recv())
        except (EOFError, OSError, pickle.UnpicklingError):
            return False
        return True
