"""Built-in metrics, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.metrics.domain import ClassCoverage, ConditionalAccuracy
from genbench.metrics.fidelity import FID, KID, InceptionScore, PrecisionRecall
from genbench.metrics.reconstruction import ELBO, ReconstructionError


@hookimpl
def register_metrics(register: Callable[[type[Any]], None]) -> None:
    for cls in (
        FID,
        KID,
        PrecisionRecall,
        InceptionScore,
        ClassCoverage,
        ConditionalAccuracy,
        ReconstructionError,
        ELBO,
    ):
        register(cls)
