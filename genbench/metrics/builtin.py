"""Built-in metrics, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.metrics.beyond_fid import BEYOND_FID
from genbench.metrics.domain import ClassCoverage, ConditionalAccuracy
from genbench.metrics.fidelity import FID, KID, InceptionScore, PrecisionRecall
from genbench.metrics.reconstruction import ELBO, ReconstructionError
from genbench.metrics.toy import Histogram2D, ModeCoverage, SampleDistance

# What `genbench list plugins` says of this plugin (genbench.plugins.describe_plugin).
GENBENCH_DESCRIPTION = (
    "FID, KID, precision/recall, IS (torch-fidelity); density/coverage, FD-infinity, Vendi; "
    "class coverage; ELBO, reconstruction; 2-D modes"
)

FIDELITY = (FID, KID, PrecisionRecall, InceptionScore)  # torch-fidelity, per feature backbone
# BEYOND_FID: density/coverage, FD-infinity, Vendi: on the same features, per feature backbone
DOMAIN = (ClassCoverage, ConditionalAccuracy)  # the domain classifier, labelled images
MODEL_SPECIFIC = (ReconstructionError, ELBO)
TOY_2D = (ModeCoverage, Histogram2D, SampleDistance)  # 2-D points


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    for cls in (*FIDELITY, *BEYOND_FID, *DOMAIN, *MODEL_SPECIFIC, *TOY_2D):
        register(cls)
