"""Helpers shared by the benchmark scripts (they run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Sequence
from pathlib import Path


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max: the figures every benchmark here reports."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def cpu_name() -> str:
    """The processor's model name, for the figures' caption."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
