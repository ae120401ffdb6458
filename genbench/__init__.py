"""genbench: benchmark generative image models with one command.

The public API is re-exported here; importing genbench loads no plugin (the
registry is built on first use by :func:`genbench.plugins.get_registry`).
"""

from genbench.datasets.base import DataInfo, Dataset, LoadedData, LoadOptions, Split
from genbench.errors import GenbenchError
from genbench.hookspecs import hookimpl
from genbench.hyper import Hyper, hp, positive
from genbench.metrics.base import EvalContext, Metric
from genbench.models.adversarial import AdversarialHyper
from genbench.models.base import Capability, GenerativeModel
from genbench.protocol import CellRecord, CellSpec, Protocol

__version__ = "0.1.0"

__all__ = [
    "AdversarialHyper",
    "Capability",
    "CellRecord",
    "CellSpec",
    "DataInfo",
    "Dataset",
    "EvalContext",
    "GenbenchError",
    "GenerativeModel",
    "Hyper",
    "LoadOptions",
    "LoadedData",
    "Metric",
    "Protocol",
    "Split",
    "__version__",
    "hookimpl",
    "hp",
    "positive",
]
