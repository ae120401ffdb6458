"""Built-in metrics, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.metrics.domain import ClassCoverage, ConditionalAccuracy
from genbench.metrics.fidelity import FID, KID, InceptionScore, PrecisionRecall
from genbench.metrics.reconstruction import ELBO, ReconstructionError
from genbench.metrics.toy import Histogram2D, ModeCoverage, SampleDistance

FIDELITY = (FID, KID, PrecisionRecall, InceptionScore)  # torch-fidelity, per feature backbone
DOMAIN = (ClassCoverage, ConditionalAccuracy)  # the domain classifier, labelled images
MODEL_SPECIFIC = (ReconstructionError, ELBO)
TOY_2D = (ModeCoverage, Histogram2D, SampleDistance)  # 2-D points


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    for cls in (*FIDELITY, *DOMAIN, *MODEL_SPECIFIC, *TOY_2D):
        register(cls)
