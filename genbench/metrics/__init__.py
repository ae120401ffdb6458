"""Metric plugins: the interface and the built-ins."""

from genbench.metrics.base import EvalContext, Metric

__all__ = ["EvalContext", "Metric"]
