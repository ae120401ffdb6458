"""Built-in figures, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.reporting.figures.latent import Interpolations, LatentMap, Reconstructions
from genbench.reporting.figures.training import GanLab, SamplesOverTraining


@hookimpl
def register_figures(register: Callable[[type[Any]], None]) -> None:
    for cls in (SamplesOverTraining, Reconstructions, Interpolations, LatentMap, GanLab):
        register(cls)
