"""User-facing errors.

Anything a user can get wrong (an unknown model, a malformed ``--grid``, a dataset
that cannot be found) raises :class:`GenbenchError` with a one-line message that
names the problem and the valid choices. The CLI prints it without a traceback
and exits with status 2; library callers can catch it like any exception.
"""

from __future__ import annotations

from collections.abc import Iterable


class GenbenchError(Exception):
    """A problem in the user's input or environment, explained in one line."""


def choices(values: Iterable[str]) -> str:
    """Format valid choices for an error message: ``'a', 'b', 'c'``."""
    items = sorted(values)
    return ", ".join(repr(v) for v in items) if items else "(none)"


def unknown(kind: str, name: str, valid: Iterable[str]) -> GenbenchError:
    """The standard error for a name that is not registered."""
    return GenbenchError(f"unknown {kind} {name!r}; valid: {choices(valid)}")
