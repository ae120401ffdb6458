"""User-facing errors.

Anything a user can get wrong (an unknown model, a malformed ``--grid``, a dataset
that cannot be found) raises :class:`GenbenchError` with a one-line message that
names the problem and the valid choices. The CLI prints it without a traceback
and exits with status 2 (74 for :class:`DiskFull`); library callers can catch it like any exception.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from pathlib import Path


class GenbenchError(Exception):
    """A problem in the user's input or environment, explained in one line."""

    exit_code = 2  # what the CLI exits with


class DiskFull(GenbenchError):
    """The disk (or quota) filled up while a run was writing: the grid stops, finished cells stay.

    Not bad input, so the CLI exits with its own status, 74 (``EX_IOERR`` of sysexits.h),
    and a script can tell "free space and rerun with --resume" from "fix the command".
    """

    exit_code = 74

    def __init__(self, folder: Path | str, note: str = "") -> None:
        self.folder = Path(folder)
        self.note = note
        super().__init__(f"no space left on device writing {folder}" + (f"; {note}" if note else ""))

    def __reduce__(self) -> tuple[type[DiskFull], tuple[Path, str]]:
        """Pickled as its arguments: a Ray task's DiskFull reaches the driver with its folder and one message."""
        return type(self), (self.folder, self.note)


DISK_FULL = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)


def is_disk_full(exc: BaseException | None) -> bool:
    """An OSError saying the disk or the user's quota is full, raised itself or wrapped by a library.

    torch's checkpoint writer, for one, reports a failed write as a RuntimeError whose
    context is the OSError, so the chain of causes is followed.
    """
    return disk_full_error(exc) is not None


def disk_full_error(exc: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT OSError in ``exc``'s chain of causes, if there is one."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def first_line(exc: BaseException, limit: int = 120) -> str:
    """The first line of ``exc``'s message, cut at ``limit`` characters, or its type's name when it has none:
    the reason a one-line error quotes from a library's exception."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


def choices(values: Iterable[str]) -> str:
    """Format valid choices for an error message: ``'a', 'b', 'c'``."""
    items = sorted(values)
    return ", ".join(repr(v) for v in items) if items else "(none)"


def unknown(kind: str, name: str, valid: Iterable[str]) -> GenbenchError:
    """The standard error for a name that is not registered."""
    return GenbenchError(f"unknown {kind} {name!r}; valid: {choices(valid)}")
