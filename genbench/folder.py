"""A run folder's integrity: one writer at a time, no silent overwrite, nothing read or written outside it.

* **One writer.** :class:`RunFolder` (``with RunFolder(out_dir): ...``) holds an
  exclusive ``flock`` on ``<out>/.genbench.lock`` for the whole run. The file
  names the holder (pid, host, start time, command) so a second run refuses
  with a line naming it. The kernel drops the lock when its process dies, so a
  lock file left by a killed run never blocks: only a live holder counts, not
  the file's existence. The lock is per folder and per run: the driver that
  plans the grid and writes ``results.csv`` takes it once; cells run by an
  executor (other processes, other machines sharing the folder) write only under
  ``cells/<id>/`` of the locked folder and take no lock of their own.
* **No overwrite.** :meth:`RunFolder.require_fresh` refuses a folder that
  already holds results unless the run resumes it.
* **Nothing escapes.** Paths read back from a folder (``record.json`` artifacts,
  the ``samples_png`` column) are checked like user input with
  :func:`safe_relative`, and opened with :func:`genbench.results.open_inside`, which
  follows no symbolic link; :func:`cell_folder` refuses to write through a linked
  ``cells/<id>``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import re
import socket
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

from genbench.errors import GenbenchError
from genbench.protocol import CellRecord, CellSpec
from genbench.results import RECORD_JSON, RESULTS_CSV, RUN_JSON, matches

LOCK_NAME = ".genbench.lock"
CELLS = "cells"
# What a path read back from a run folder may look like: the characters of cell ids
# (genbench.run.grid.cell_id) and file names, "/" between parts; nothing that a Markdown
# link, a shell or a URL would read differently.
_SAFE_PATH = re.compile(r"[A-Za-z0-9_.=\-]+(/[A-Za-z0-9_.=\-]+)*")
_MAX_PATH = 1024
# A temporary file of genbench.results.atomic_path: tempfile.mkstemp(prefix=".<name>.", suffix=<name's suffix>).
_TEMPORARY = re.compile(r"\.(?P<name>[^/]+)\.[a-z0-9_]{8}(?P<suffix>\.[A-Za-z0-9]+)?")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


# -- the lock ---------------------------------------------------------------------------------------
def _describe_holder(text: str) -> str:
    """``pid 1234 on host, started 2025-05-01 12:03:01`` from a lock file's JSON, or a vaguer line."""
    try:
        info = json.loads(text)
        pid, host, started = info["pid"], info["host"], info["started"]
        if not (isinstance(pid, int) and isinstance(host, str) and isinstance(started, str)):
            raise TypeError
    except (ValueError, TypeError, KeyError, RecursionError):
        return "details unknown"
    return f"pid {pid} on {host[:64]}, started {started[:32]}"


class RunFolder:
    """Exclusive use of ``out_dir`` by one run, from ``__enter__`` to ``__exit__``.

    Entering creates the folder if needed and takes the lock, or raises
    :class:`GenbenchError` naming the run that holds it; nothing waits. Leaving
    releases it (the lock file stays, empty, as a harmless marker; deleting it
    would let two runs lock two different files of the same name).
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir)
        self.lock_path = self.path / LOCK_NAME
        self._fd: int | None = None
        self._writable = False

    def __enter__(self) -> RunFolder:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    @property
    def locked(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise GenbenchError(f"--out {self.path}: not a folder; give a folder for the results") from None
        except OSError as exc:
            raise GenbenchError(f"--out {self.path}: cannot create the folder ({exc.strerror})") from None
        writable = True
        try:
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC, 0o666)
            except PermissionError:  # a teammate's lock file (umask 022): flock needs no write access
                fd, writable = os.open(self.lock_path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC), False
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise GenbenchError(f"{self.lock_path} is a symbolic link; genbench will not follow it") from None
            raise GenbenchError(f"{self.lock_path}: cannot open the lock file ({exc.strerror})") from None
        if not _try_lock(fd):
            holder = _describe_holder(os.pread(fd, 65536, 0).decode("utf-8", "replace"))
            os.close(fd)
            raise GenbenchError(
                f"{self.path} is in use by another genbench run ({holder}); wait for it or use another --out"
            )
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %z").strip(),
            "command": sys.argv,
        }
        if writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info, default=str) + "\n").encode(), 0)
        self._fd, self._writable = fd, writable

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if self._writable:
                os.ftruncate(fd, 0)  # says nobody, in case someone reads it while no run holds it
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def require_fresh(self) -> None:
        """Refuse a folder that holds results of an earlier run (``--resume`` continues one instead)."""
        found = [name for name in (RESULTS_CSV, RUN_JSON) if os.path.lexists(self.path / name)]
        cells = self.path / CELLS
        if cells.is_dir() and not cells.is_symlink():
            found += [f"{CELLS}/{p.parent.name}/{RECORD_JSON}" for p in sorted(cells.glob(f"*/{RECORD_JSON}"))][:1]
        if found:
            raise GenbenchError(
                f"{self.path} already holds results ({found[0]}); use --resume to continue that run "
                "or another --out for a new one"
            )

    def check_cells(self, specs: Iterable[CellSpec]) -> None:
        """Refuse, before any work, a ``cells`` or ``cells/<id>`` that is a symbolic link or not a folder."""
        for spec in specs:
            check_cell_folder(spec.out_dir)

    def remove_leftovers(self, specs: Iterable[CellSpec]) -> list[Path]:
        """Remove the temporary files a run killed while writing left behind; return what was removed.

        Every file is written to ``.<name>.<8 random characters><suffix>`` beside its final name and
        renamed into place (:func:`genbench.results.atomic_path`), so a run killed with ``kill -9``
        can leave one such file per folder it was writing. While this run holds the lock no other
        run writes here, so they are removed from the folder and the planned cells' folders (only
        plain files of that exact pattern; nothing that is a link).
        """
        if self._fd is None:
            raise RuntimeError("remove_leftovers needs the folder's lock")
        removed = []
        for folder in [self.path, *(spec.out_dir for spec in specs)]:
            if not folder.is_dir() or folder.is_symlink():
                continue
            for entry in os.scandir(folder):
                m = _TEMPORARY.fullmatch(entry.name)
                if m and m["name"].endswith(m["suffix"] or "") and entry.is_file(follow_symlinks=False):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(Path(entry.path))
        return removed


def _try_lock(fd: int) -> bool:
    """Take the exclusive flock on ``fd`` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        raise GenbenchError("locking a results folder needs a POSIX system (fcntl.flock)") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def lock_run_folder(out_dir: Path) -> Iterator[RunFolder]:
    """``with lock_run_folder(out): ...``: the same as ``with RunFolder(out)``, for drivers that prefer a function."""
    with RunFolder(out_dir) as folder:
        yield folder


# -- paths read back from a folder -----------------------------------------------------------------
def safe_relative(text: object, under: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The parts of ``text`` if it is a plain relative path below ``under``, else None.

    Plain: a string of at most 1024 characters, ``/``-separated parts of letters,
    digits and ``_ . = -``; no part empty, ``.`` or ``..``; not absolute.
    """
    if not isinstance(text, str) or len(text) > _MAX_PATH or not _SAFE_PATH.fullmatch(text):
        return None
    parts = tuple(text.split("/"))
    if any(p in (".", "..") for p in parts) or parts[: len(under)] != under or len(parts) <= len(under):
        return None
    return parts


# Artifacts an ok cell always writes (genbench.run.cell.run_cell); a record without them is not a finished attempt.
REQUIRED_ARTIFACTS = ("samples", "checkpoint")


def intact(root: Path, record: CellRecord) -> bool:
    """Whether ``record``'s files are the ones its attempt wrote: every artifact listed with a digest,
    below ``cells/<cell_id>``, reached without links, of the recorded size and sha256."""
    if not record.attempt or set(record.artifacts) != set(record.checksums):
        return False
    if not set(REQUIRED_ARTIFACTS) <= set(record.artifacts):
        return False
    for name, rel in record.artifacts.items():
        parts = safe_relative(rel, (CELLS, record.cell_id))
        if parts is None or not matches(root, parts, record.checksums[name]):
            return False
    return True


def check_cell_folder(path: Path) -> None:
    """Refuse a cell folder that is, or sits in, a symbolic link, or is not a folder.

    Writing through a linked ``cells`` or ``cells/<id>`` would put files outside the run folder,
    so genbench stops with a line saying what to remove instead of following it.
    """
    for p in (path.parent, path):
        if p.is_symlink():
            raise GenbenchError(
                f"{p} is a symbolic link; genbench writes only inside its run folder: remove the link "
                "or use another --out"
            )
        if p.exists() and not p.is_dir():
            raise GenbenchError(f"{p} is not a folder; remove it or use another --out")


def cell_folder(path: Path) -> Path:
    """Check ``path`` (a cell's folder) with :func:`check_cell_folder`, create it if needed, return it."""
    check_cell_folder(path)
    path.mkdir(parents=True, exist_ok=True)
    return path
