"""genbench: benchmark generative image models with one command.

The public API is re-exported here; importing genbench loads no plugin (the
registry is built on first use by :func:`genbench.plugins.get_registry`) and not
torch either: the names below are imported on first access, so ``genbench --help``
starts in a fraction of a second and the CLI can configure the OpenMP runtime
(:func:`genbench.threads.prefer_passive_wait`) before torch loads it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genbench.datasets.base import DataInfo, Dataset, LoadedData, LoadOptions, Split
    from genbench.errors import GenbenchError
    from genbench.hookspecs import hookimpl
    from genbench.hyper import Hyper, hp, positive
    from genbench.metrics.base import EvalContext, Metric
    from genbench.models.adversarial import AdversarialHyper
    from genbench.models.base import Capability, GenerativeModel, balanced_labels, draw_noise
    from genbench.protocol import CellRecord, CellSpec, Protocol
    from genbench.reporting.figures.base import Animation, Figure, FigureContext, FigureSkipped

__version__ = "0.1.0"

_EXPORTS = {
    "AdversarialHyper": "genbench.models.adversarial",
    "Animation": "genbench.reporting.figures.base",
    "Figure": "genbench.reporting.figures.base",
    "FigureContext": "genbench.reporting.figures.base",
    "FigureSkipped": "genbench.reporting.figures.base",
    "Capability": "genbench.models.base",
    "CellRecord": "genbench.protocol",
    "CellSpec": "genbench.protocol",
    "DataInfo": "genbench.datasets.base",
    "Dataset": "genbench.datasets.base",
    "EvalContext": "genbench.metrics.base",
    "GenbenchError": "genbench.errors",
    "GenerativeModel": "genbench.models.base",
    "balanced_labels": "genbench.models.base",
    "draw_noise": "genbench.models.base",
    "Hyper": "genbench.hyper",
    "LoadOptions": "genbench.datasets.base",
    "LoadedData": "genbench.datasets.base",
    "Metric": "genbench.metrics.base",
    "Protocol": "genbench.protocol",
    "Split": "genbench.datasets.base",
    "hookimpl": "genbench.hookspecs",
    "hp": "genbench.hyper",
    "positive": "genbench.hyper",
}

__all__ = [
    "AdversarialHyper",
    "Animation",
    "Capability",
    "CellRecord",
    "CellSpec",
    "DataInfo",
    "Dataset",
    "EvalContext",
    "Figure",
    "FigureContext",
    "FigureSkipped",
    "GenbenchError",
    "GenerativeModel",
    "Hyper",
    "LoadOptions",
    "LoadedData",
    "Metric",
    "Protocol",
    "Split",
    "__version__",
    "balanced_labels",
    "draw_noise",
    "hookimpl",
    "hp",
    "positive",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first access (PEP 562) and keep it, so later lookups are plain attributes."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'genbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
