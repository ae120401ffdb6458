"""Is a difference between two sets of seeds real? Tests, multiple-comparison control, seeds needed.

Pure functions on plain numbers, used by :mod:`genbench.reporting.compare`.

* :func:`difference_test`: the two-sided p-value that two groups of per-seed values have
  different means. Welch's t-test (unequal variances) for metrics, because the seeds of a
  regressed model rarely scatter like the baseline's (a collapsed GAN covers one class in
  every seed). Student's pooled t-test for speed (on the logarithm of the throughput): the
  spread there is the machine's, the same on both sides, and with 3-5 seeds a side the
  pooled test's 4-8 degrees of freedom, against Welch's 2-4 when the two sample variances
  happen to differ, are the difference between catching a 25% slowdown and not (measured:
  8 of 10 against 6 of 10 at 3 seeds, ``benchmarks/README.md``). asv uses Mann-Whitney instead; with 3 seeds a side its
  smallest two-sided p-value is 0.1, so it could never reach a CI-grade level. With one value
  on one side and two or more on the other, the single value is tested against the other
  side's spread (a t prediction interval: ``(x - mean) / (s * sqrt(1 + 1/n))``, ``n - 1``
  degrees of freedom). With one value a side there is no spread to test against: no p-value,
  and the caller decides on the tolerance alone (and says so). Groups without spread (every
  seed gave the same value, as a class count often does) differ with p = 0 when their values
  differ and p = 1 when they are equal.
* :func:`adjust`: Benjamini-Hochberg adjusted p-values (q-values) over the figures of one
  comparison. A check tests tens of figures (every metric and speed figure of every cell); at
  a plain 0.05 a third of A/A checks of 8 figures would alarm somewhere. BH keeps the chance
  of any false alarm at alpha when nothing changed (under the complete null it controls the
  family-wise rate) while a real regression, which moves several figures at once, passes far
  more easily than under Bonferroni.
* :func:`seeds_for_power`: seeds per side for an 80% chance that a two-sample t-test at level
  ``alpha`` detects a true difference ``delta`` at spread ``sd`` (noncentral t, equal groups).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as _st

POWER = 0.8
MAX_SEEDS = 1000  # beyond this the answer is "more than a thousand": the spread swamps the tolerance


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _var(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def difference_test(a: Sequence[float], b: Sequence[float], equal_var: bool = False) -> tuple[float | None, str]:
    """``(p, test)``: the two-sided p-value that ``a`` and ``b`` differ in mean, and the test used.

    Welch's test by default; ``equal_var`` pools the two variances (Student's test), for values
    whose spread is the same on both sides by construction. ``p`` is None when both sides have
    one value (no test is possible).
    """
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise ValueError("both groups need at least one value")
    diff = _mean(b) - _mean(a)
    if na == 1 and nb == 1:
        return None, "1 seed a side: tolerance only"
    if na == 1 or nb == 1:
        single, group = (a[0], b) if na == 1 else (b[0], a)
        sd = math.sqrt(_var(group))
        test = "one seed vs the other side's spread"
        if sd == 0:
            return (0.0 if single != _mean(group) else 1.0), test
        t = (single - _mean(group)) / (sd * math.sqrt(1 + 1 / len(group)))
        return float(2 * _st.t.sf(abs(t), len(group) - 1)), test
    if equal_var:
        pooled = pooled_sd(a, b) or 0.0
        se, name = pooled * math.sqrt(1 / na + 1 / nb), "Student t"
        if se == 0:
            return (0.0 if diff != 0 else 1.0), name
        return float(2 * _st.t.sf(abs(diff) / se, na + nb - 2)), name
    va, vb = _var(a) / na, _var(b) / nb
    se = math.sqrt(va + vb)
    if se == 0:
        return (0.0 if diff != 0 else 1.0), "Welch t"
    df = (va + vb) ** 2 / ((va**2 / (na - 1) if va else 0.0) + (vb**2 / (nb - 1) if vb else 0.0))
    return float(2 * _st.t.sf(abs(diff) / se, df)), "Welch t"


def adjust(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values; None stays None and does not count as a test."""
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    out: list[float | None] = [None] * len(pvalues)
    running = 1.0
    for rank in range(m, 0, -1):  # from the largest p down: q_i = min over j >= i of p_j * m / j
        p, i = tested[rank - 1]
        running = min(running, p * m / rank)
        out[i] = running
    return out


def pooled_sd(a: Sequence[float], b: Sequence[float]) -> float | None:
    """The pooled standard deviation of two groups (None when neither has two values)."""
    parts = [(len(x) - 1, _var(x)) for x in (a, b) if len(x) >= 2]
    dof = sum(d for d, _ in parts)
    return math.sqrt(sum(d * v for d, v in parts) / dof) if dof else None


def seeds_for_power(sd: float, delta: float, alpha: float, power: float = POWER) -> int | None:
    """Seeds per side for ``power`` to detect a true difference ``delta`` at spread ``sd`` (two-sided t-test).

    2 when there is no spread; None when ``delta`` is not positive (nothing to detect) or
    more than :data:`MAX_SEEDS` would be needed.
    """
    if not delta > 0 or not math.isfinite(delta) or not math.isfinite(sd):
        return None
    if sd <= 0:
        return 2
    # The normal approximation gives the start; the noncentral t finishes it (exact for small n).
    z = _st.norm.ppf(1 - alpha / 2) + _st.norm.ppf(power)
    n = max(2, math.floor(2 * (z * sd / delta) ** 2))
    if n > MAX_SEEDS:
        return None
    while n <= MAX_SEEDS:
        df = 2 * n - 2
        crit = _st.t.ppf(1 - alpha / 2, df)
        ncp = delta / (sd * math.sqrt(2 / n))
        if _st.nct.sf(crit, df, ncp) + _st.nct.cdf(-crit, df, ncp) >= power:
            return n
        n += 1
    return None
