"""Statistics over training seeds: mean, sample std, t confidence interval, ranking with ties.

Pure functions on plain numbers (no pandas, no I/O), used by the comparison
tables in :mod:`genbench.reporting.table`.

* :func:`summarize` turns the values of one metric over a cell's successful seeds
  into a :class:`Summary`: ``n``, the mean, the sample standard deviation
  (``ddof=1``) and the two-sided confidence interval of the mean from Student's t
  distribution, ``mean ± t.ppf((1 + confidence) / 2, n - 1) * std / sqrt(n)``.
  With one value the std is NaN and there is no interval (``ci_low``/``ci_high``
  are None); with none the mean is NaN too.
* The t interval assumes values on the whole real line. With two or three seeds
  it is wide, and for a bounded metric it runs past what the metric can take
  (``classes covered [-12.6, 25.6]`` out of 10, precision up to 1.25). Given the
  metric's ``bounds`` (declared by its plugin, :meth:`genbench.Metric.bounds`),
  :func:`summarize` clips the interval to them: ``[max(lo, low), min(hi, high)]``.
  The mean of the metric lies in its range, so the clipped interval covers it
  exactly as often as the t interval does; it only drops values that cannot
  occur. The mean itself is never clipped, and stays inside its interval.
* :func:`rank` marks the best summary for a metric direction: ``"best"`` when the
  best mean's interval overlaps no other summary's interval, else ``"tie"`` for
  the best and every summary whose interval overlaps the best's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
Direction = Literal["lower", "higher"]
Mark = Literal["best", "tie"]


@dataclass(frozen=True)
class Summary:
    """One metric over seeds: count, mean, sample std and the confidence interval of the mean."""

    n: int
    mean: float  # NaN when n == 0
    std: float  # sample standard deviation (ddof=1); NaN when n < 2
    ci_low: float | None = None  # None when n < 2: one value gives no interval
    ci_high: float | None = None

    @property
    def interval(self) -> tuple[float, float] | None:
        """``(ci_low, ci_high)``, or None when there is no interval (fewer than two values)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return (self.ci_low, self.ci_high)

    def overlaps(self, other: Summary) -> bool:
        """Whether the two (closed) intervals share a point.

        A summary without an interval (one value) cannot be told apart from any
        other, so it overlaps everything.
        """
        a, b = self.interval, other.interval
        if a is None or b is None:
            return True
        return a[0] <= b[1] and b[0] <= a[1]


def t_halfwidth(std: float, n: int, confidence: float = CONFIDENCE) -> float:
    """Half the width of the t confidence interval of a mean of ``n`` values with sample std ``std``."""
    if n < 2:
        raise ValueError(f"a confidence interval needs at least two values, got {n}")
    return float(_scipy_stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)


Bounds = tuple[float | None, float | None]  # (low, high) a metric can take; None: unbounded on that side


def clip_interval(low: float, high: float, mean: float, bounds: Bounds) -> tuple[float, float]:
    """``[low, high]`` cut to ``bounds``, never so far that it leaves out ``mean``."""
    lo_bound, hi_bound = bounds
    if lo_bound is not None:
        low = min(max(low, lo_bound), mean)
    if hi_bound is not None:
        high = max(min(high, hi_bound), mean)
    return low, high


def summarize(
    values: Iterable[float | int | None], confidence: float = CONFIDENCE, bounds: Bounds = (None, None)
) -> Summary:
    """Mean, sample std and t confidence interval of the finite ``values`` (None and NaN are skipped).

    ``bounds`` are the values the metric can take: the interval is clipped to them.
    """
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(xs)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    mean = math.fsum(xs) / n
    if n == 1:
        return Summary(1, mean, math.nan)
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_halfwidth(std, n, confidence)
    low, high = clip_interval(mean - half, mean + half, mean, bounds)
    return Summary(n, mean, std, low, high)


def rank(summaries: Sequence[Summary | None], better: Direction) -> dict[int, Mark]:
    """Which summaries (by position) are the best for a metric where ``better`` is lower or higher.

    Only summaries with at least one value compete. When none of them has an
    interval (every cell ran one seed), the best mean is ``"best"`` (equal means
    all are). Otherwise the best mean is ``"best"`` only if its interval overlaps
    no other's; if it overlaps, it and every summary overlapping it are ``"tie"``.
    A summary with one value has no interval and overlaps everything (it cannot
    be separated from anything).
    """
    if better not in ("lower", "higher"):
        raise ValueError(f"better must be 'lower' or 'higher', got {better!r}")
    candidates = {i: s for i, s in enumerate(summaries) if s is not None and s.n >= 1 and math.isfinite(s.mean)}
    if not candidates:
        return {}
    pick = min if better == "lower" else max
    target = pick(s.mean for s in candidates.values())
    top = [i for i, s in candidates.items() if s.mean == target]
    if all(s.interval is None for s in candidates.values()):
        return dict.fromkeys(top, "best")
    best = candidates[top[0]]
    tied = [i for i, s in candidates.items() if i == top[0] or best.overlaps(s)]
    if len(tied) == 1:
        return {top[0]: "best"}
    return dict.fromkeys(tied, "tie")
