"""Metrics that tell more than FID: density and coverage, FD∞, the Vendi score.

One FID mixes fidelity (are the samples like the data?) with diversity (do they cover
it?) and is biased by the sample count. These three read the features genbench has
already extracted for the cell (:func:`genbench.metrics.features.backbone_features`,
memoised in ``ctx.memo``: no second feature pass), once per backbone of the protocol:

* ``density_coverage`` (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
  Generative Models", k = 5). Around every reference feature, a ball reaching its k-th
  nearest reference neighbour. ``density_<b>``: how many reference balls hold each
  sample, over k (about 1 when the samples are distributed like the data; above 1 when
  they crowd into dense regions): fidelity, robust to real outliers where precision is
  not. ``coverage_<b>``: the share of reference balls that hold at least one sample:
  diversity, robust to fake outliers where recall is not, in [0, 1]. Higher is better for both.
* ``fd_inf`` (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score and
  where to find them"): FD of 15 nested random subsets of the samples (the first 20% to
  100% of them in a random order) against the whole reference, a least-squares line in
  1/N, and its value at 1/N = 0, ``fd_inf_<b>``: FID with the sample-count bias removed, so cells evaluated on
  different numbers of samples compare. ``fd_inf_<b>_residual`` (informational): the
  RMS distance of the 15 FDs to the line; large next to the FD∞ itself, the line does
  not describe the bias and the extrapolation should not be trusted.
* ``vendi`` (Friedman & Dieng 2023, "The Vendi Score"): ``exp`` of the entropy of the
  eigenvalues of the samples' cosine-similarity matrix over n, the "effective number of
  distinct samples" (1 when all are alike, n when all are orthogonal). ``vendi_<b>``:
  higher is more diverse; ``vendi_<b>_reference`` (informational) is the same score of
  the reference examples, the diversity of the data itself to compare against.

What depends only on the reference (its k-NN radii, ``sqrt(S_ref)``, its Vendi score) is
computed once per process and reference cache entry and reused by every cell.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal

import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError
from genbench.metrics.base import EvalContext
from genbench.metrics.fidelity import FidelityMetric
from genbench.metrics.frechet import ReferenceSide, fd_infinity
from genbench.metrics.refcache import ReferenceStats, load_user_stats

NEAREST_K = 5  # Naeem et al.'s recommended k for density and coverage
CHUNK = 1024  # rows of a distance matrix computed at once (memory stays O(CHUNK * n))
RESIDUAL_SUFFIX = "_residual"
REFERENCE_SUFFIX = "_reference"

_REFERENCE_MEMO: dict[tuple[Any, ...], Any] = {}  # per process: (entry, what) -> value
_REFERENCE_MEMO_SIZE = 32


def reference_memo(stats: ReferenceStats, what: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` once per reference cache entry (its file, size and time) and ``what``."""
    if stats.path is None or not stats.path.exists():
        return compute()
    st = stats.path.stat()
    key = (str(stats.path), st.st_size, st.st_mtime_ns, what)
    if key not in _REFERENCE_MEMO:
        if len(_REFERENCE_MEMO) >= _REFERENCE_MEMO_SIZE:
            _REFERENCE_MEMO.pop(next(iter(_REFERENCE_MEMO)))
        _REFERENCE_MEMO[key] = compute()
    return _REFERENCE_MEMO[key]


def _main(ctx: EvalContext, backbone: str) -> tuple[torch.Tensor, ReferenceStats]:
    """The generated features and reference statistics of ``backbone``'s main layer, extracted once per cell.

    genbench.metrics.features imports torch-fidelity, so it is imported here, not with the module
    (``genbench list metrics`` needs the classes, not the library)."""
    from genbench.metrics.features import backbone_features

    f = backbone_features(ctx, backbone)
    return f.generated[f.main_layer], f.reference[f.main_layer]


# -- density and coverage -----------------------------------------------------------------------------
def kth_neighbour_radii(real: torch.Tensor, k: int = NEAREST_K) -> torch.Tensor:
    """Distance of every row of ``real`` to its ``k``-th nearest other row (float64)."""
    x = real.double()
    if x.shape[0] <= k:
        raise GenbenchError(f"density/coverage with k={k} needs more than {k} reference samples, got {x.shape[0]}")
    out = []
    for i in range(0, x.shape[0], CHUNK):
        d = torch.cdist(x[i : i + CHUNK], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # the row itself (distance 0) is the smallest
    return torch.cat(out)


def density_coverage(
    real: torch.Tensor, fake: torch.Tensor, radii: torch.Tensor, k: int = NEAREST_K
) -> tuple[float, float]:
    """Naeem et al. (2020), eqs. 5 and 6: density and coverage of ``fake`` against ``real`` with k-NN ``radii``."""
    x, y = real.double(), fake.double()
    y_norms = y.pow(2).sum(1)
    inside = 0.0
    covered = torch.zeros(x.shape[0], dtype=torch.bool)
    for i in range(0, x.shape[0], CHUNK):
        xi, r2 = x[i : i + CHUNK], radii[i : i + CHUNK, None].pow(2)
        # squared distances |x|^2 + |y|^2 - 2 x.y in float64 (one matrix product; what cdist does, without
        # its square roots): d < r exactly when d^2 < r^2
        d2 = torch.addmm(xi.pow(2).sum(1)[:, None] + y_norms[None, :], xi, y.T, alpha=-2)
        within = d2 < r2  # a rounding-negative d^2 is a distance of about 0: within any ball
        inside += float(within.sum())
        covered[i : i + CHUNK] = within.any(dim=1)
    return inside / (k * y.shape[0]), float(covered.double().mean())


class DensityCoverage(FidelityMetric):
    """Naeem et al. (2020) density (fidelity) and coverage (diversity), k = 5, per backbone."""

    name = "density_coverage"
    description = (
        "density (fidelity: reference k-NN balls holding each sample, ~1 like the data) and coverage "
        "(diversity: share of reference balls holding a sample), Naeem et al. 2020, k=5: density_<b>, coverage_<b>"
    )
    higher_is_better = True

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (0.0, 1.0) if key.startswith("coverage_") else (0.0, None)  # a share; a mean count over k

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        out = {}
        for name in ctx.protocol.backbones:
            generated, ref = _main(ctx, name)
            radii = reference_memo(ref, f"radii{NEAREST_K}", functools.partial(kth_neighbour_radii, ref.features))
            density, coverage = density_coverage(ref.features, generated, radii)
            out[f"density_{name}"] = density
            out[f"coverage_{name}"] = coverage
        return out


# -- FD∞ --------------------------------------------------------------------------------------------
class FDInfinity(FidelityMetric):
    """Chong & Forsyth (2020): FID extrapolated to infinitely many samples, and the fit's residual."""

    name = "fd_inf"
    description = (
        "FID extrapolated to infinite samples (Chong & Forsyth 2020: 15 subsets, line in 1/N), comparable "
        "across sample counts: fd_inf_<b>; the fit's RMS residual fd_inf_<b>_residual"
    )
    higher_is_better = False

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        return None if key.endswith(RESIDUAL_SUFFIX) else "lower"

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        # an RMS is >= 0; the line's intercept is not a distance: it falls below 0 when the bias dominates
        return (0.0, None) if key.endswith(RESIDUAL_SUFFIX) else (None, None)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        out = {}
        for name in ctx.protocol.backbones:
            generated, ref = _main(ctx, name)
            if ctx.protocol.reference_stats is not None:
                mu, sigma = load_user_stats(ctx.protocol.reference_stats, generated.shape[1])
                side = ReferenceSide.of(mu, sigma)
            else:
                side = reference_memo(ref, "sqrt_sigma", functools.partial(ReferenceSide.of, ref.mu, ref.sigma))
            fit = fd_infinity(generated.double().numpy(), side, f"fd_inf_{name}")
            out[f"fd_inf_{name}"] = fit.value
            out[f"fd_inf_{name}{RESIDUAL_SUFFIX}"] = fit.residual
        return out


# -- Vendi ------------------------------------------------------------------------------------------
def vendi_score(features: torch.Tensor) -> float:
    """Friedman & Dieng (2023), order 1, cosine kernel: ``exp(-sum l log l)`` over the eigenvalues ``l`` of
    ``K / n``, computed from the d x d dual ``X^T X / n`` of the row-normalised features (same non-zero
    eigenvalues, cheaper when n > d)."""
    x = features.double()
    norms = x.norm(dim=1, keepdim=True)
    x = x / norms.clamp_min(1e-12)  # an all-zero feature row stays zero (sklearn's normalize does the same)
    n = x.shape[0]
    gram = (x.T @ x) / n if n > x.shape[1] else (x @ x.T) / n
    eig = torch.linalg.eigvalsh(gram)
    eig = eig[eig > 0]
    return float(math.exp(float(-(eig * eig.log()).sum())))


class Vendi(FidelityMetric):
    """The Vendi score of the samples' features (diversity), with the reference's for comparison."""

    name = "vendi"
    description = (
        "Vendi score (Friedman & Dieng 2023): effective number of distinct samples on the features, cosine "
        "kernel; higher is more diverse: vendi_<b>, the data's own vendi_<b>_reference"
    )
    higher_is_better = True

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        return None if key.endswith(REFERENCE_SUFFIX) else "higher"

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (1.0, None)  # exp of an entropy: 1 when every sample is alike (at most n)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        out = {}
        for name in ctx.protocol.backbones:
            generated, ref = _main(ctx, name)
            out[f"vendi_{name}"] = vendi_score(generated)
            out[f"vendi_{name}{REFERENCE_SUFFIX}"] = reference_memo(
                ref, "vendi", functools.partial(vendi_score, ref.features)
            )
        return out


BEYOND_FID = (DensityCoverage, FDInfinity, Vendi)
__all__ = ["BEYOND_FID", "DensityCoverage", "FDInfinity", "Vendi", "density_coverage", "vendi_score"]
