"""Guards around one cell: plugin code cannot stop the grid, and a cell cannot run for ever.

Two exceptions escape a plugin's ``except Exception`` and genbench's own: ``SystemExit``
(``sys.exit()`` in a model or metric) and ``KeyboardInterrupt``. The first is always the
plugin's doing. The second is either the user's Ctrl-C, which must stop the grid, or
plugin code raising it, which must only fail its cell. :class:`CellGuard` tells them
apart: for the duration of the cell, and only in the main thread (the only one Python
delivers signals to), it installs a SIGINT handler that notes that a real SIGINT
arrived before handing it to the previous handler (Python's, which raises
KeyboardInterrupt). A KeyboardInterrupt with no SIGINT seen was raised by code.

The cell timeout (``RunRequest.cell_timeout``) is enforced two ways:

- in the main thread, ``signal.setitimer(ITIMER_REAL)`` and a SIGALRM handler raise
  :class:`CellTimeout` wherever Python code is running. A single long C call (one giant
  torch op) is interrupted only when it returns to Python;
- in every thread, the training loop, the sampler and the evaluator call
  :meth:`CellGuard.check` between steps, batches and metrics. This is the only
  mechanism outside the main thread, and it also stops a cell whose plugin code
  swallowed the alarm's exception.

When the cell ends, the previous SIGINT and SIGALRM handlers are restored, and so is an
interval timer that was running before (e.g. pytest-timeout's), less the time spent.
"""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType, TracebackType
from typing import Any


class CellTimeout(BaseException):
    """The cell ran past its time limit.

    A BaseException, like KeyboardInterrupt, so that ``except Exception`` in plugin
    code, or around a metric, cannot swallow it and carry on.
    """


def raised_by_plugin(exc: KeyboardInterrupt | SystemExit) -> str:
    """The error of a cell whose code raised SystemExit or KeyboardInterrupt (no SIGINT)."""
    detail = exc.code if isinstance(exc, SystemExit) else (exc.args[0] if exc.args else None)
    return f"{type(exc).__name__} raised by plugin code" + ("" if detail is None else f": {detail}")


class CellGuard:
    """The SIGINT watch and the time limit of one cell; use as a context manager around it.

    ``phase`` and ``detail`` say where the cell is (set by the cell as it goes), so that
    a timeout can say it: ``timed out after 30 s in phase train (epoch 3/10)``.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout
        self.phase = "setup"
        self.detail = ""
        self.sigint_seen = False
        self._active = False
        self._deadline: float | None = None
        self._prev_sigint: Any = None
        self._alarm_installed = False
        self._prev_alarm: Any = None
        self._prev_timer: tuple[float, float] = (0.0, 0.0)
        self._timer_since = 0.0

    def where(self) -> str:
        return f"{self.phase} ({self.detail})" if self.detail else self.phase

    def enter(self, phase: str, detail: str = "") -> None:
        """The cell moved on to ``phase``; a deadline already passed is reported here."""
        self.check()
        self.phase, self.detail = phase, detail

    def check(self) -> None:
        """Raise :class:`CellTimeout` if the deadline has passed (cheap: one clock read)."""
        if self._active and self._deadline is not None and time.monotonic() > self._deadline:
            raise self._timeout()

    def _timeout(self) -> CellTimeout:
        return CellTimeout(f"timed out after {self.timeout:g} s in phase {self.where()}")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.sigint_seen = True
        self._prev_sigint(signum, frame)  # Python's default handler raises KeyboardInterrupt

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._active:
            raise self._timeout()

    def __enter__(self) -> CellGuard:
        now = time.monotonic()
        self._deadline = None if self.timeout is None else now + self.timeout
        self._active = True
        if threading.current_thread() is not threading.main_thread():
            return self  # no signals here: check() alone enforces the deadline
        previous = signal.getsignal(signal.SIGINT)
        if callable(previous):  # SIG_IGN / SIG_DFL: no KeyboardInterrupt can come from a SIGINT
            self._prev_sigint = previous
            signal.signal(signal.SIGINT, self._on_sigint)
        if self.timeout is not None and hasattr(signal, "setitimer"):
            self._prev_alarm = signal.signal(signal.SIGALRM, self._on_alarm)
            self._alarm_installed = True
            self._timer_since = now
            self._prev_timer = signal.setitimer(signal.ITIMER_REAL, self.timeout)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._active = False
        try:
            if self._alarm_installed:
                signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            if self._alarm_installed:
                # None: a handler installed outside Python, which cannot be put back; the default then
                signal.signal(signal.SIGALRM, signal.SIG_DFL if self._prev_alarm is None else self._prev_alarm)
                delay, interval = self._prev_timer
                if delay > 0:  # give a timer that was running its remaining time (fire now if it is due)
                    left = max(delay - (time.monotonic() - self._timer_since), 1e-6)
                    signal.setitimer(signal.ITIMER_REAL, left, interval)
                self._alarm_installed = False
            if self._prev_sigint is not None:
                signal.signal(signal.SIGINT, self._prev_sigint)
                self._prev_sigint = None
