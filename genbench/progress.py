"""How far a long step has got, for steps that have no event of their own.

Training the domain classifier or extracting features of a few thousand images
takes seconds on a GPU and minutes on a CPU, deep inside a metric's ``prepare``
or ``compute``. Rather than threading a callback through every plugin API, such
code calls :func:`report` (a no-op when nobody listens) and whoever runs it (the
grid runner, an executor) listens with :func:`reporting`. The listener lives in a
context variable, so it follows the code that runs and needs no global state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# (what is being done, how much is done, out of how much or None when unknown)
Listener = Callable[[str, int, int | None], None]

_LISTENER: ContextVar[Listener | None] = ContextVar("genbench_progress", default=None)


@contextmanager
def reporting(listener: Listener) -> Iterator[None]:
    """Send the :func:`report` calls made inside the ``with`` block to ``listener``."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)


def report(what: str, done: int, total: int | None = None) -> None:
    """Say that ``done`` of ``total`` units of ``what`` are done (cheap; call it per batch or per epoch)."""
    listener = _LISTENER.get()
    if listener is not None:
        listener(what, done, total)
