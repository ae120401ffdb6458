"""Built-in metrics, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.metrics.fidelity import FID
from genbench.metrics.reconstruction import ELBO, ReconstructionError


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    for cls in (FID, ReconstructionError, ELBO):
        register(cls)
