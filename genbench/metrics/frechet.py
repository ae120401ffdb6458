"""Fréchet distances with guards, and FD∞ (Chong & Forsyth 2020).

Every Fréchet distance genbench reports (``fid_<backbone>`` and each point of the
FD∞ fit) goes through this module, with three guards (pytorch-fid's and clean-fid's
lessons, see STYLE "Metric correctness"):

* **float64.** Means and covariances are float64 (features are cast before the
  statistics are taken); float32 covariances of 2,048 Inception features lose
  several digits of FID.
* **An imaginary square root is an error, not dropped.** ``tr sqrt(S1 S2)`` is the sum
  of the square roots of the eigenvalues of ``S1 S2``, which are real and >= 0 in exact
  arithmetic. When a root has an imaginary part above :data:`IMAGINARY_TOLERANCE`
  (1e-3, pytorch-fid's tolerance on ``sqrtm``), the factorisation failed numerically:
  :class:`FloatingPointError` is raised and the cell becomes ``diverged`` with the
  reason (torch-fidelity 0.4 keeps the real part silently, clean-fid drops it).
* **Too few samples is flagged.** With fewer samples than feature dimensions the
  covariance is singular and FID is biased upwards (it falls as the sample count
  grows); :func:`sample_flags` adds a ``few_samples`` flag to the record and the table.

:func:`frechet_distance` computes exactly torch-fidelity's
``fid_statistics_to_metric`` (same numpy operations, so the same bits) plus the guard.
FD∞ fits many subset FDs; for speed it takes ``sqrt(S_ref)`` once and the eigenvalues
of the symmetric ``sqrt(S_ref) S_gen sqrt(S_ref)`` per subset (the same eigenvalues as
``S_ref S_gen``), with the same guard, on nested subsets (see :func:`fd_infinity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from genbench.metrics.base import EvalContext

IMAGINARY_TOLERANCE = 1e-3  # |Im sqrt(eigenvalue)| above this: the matrix square root failed
FD_INF_POINTS = 15  # subset sizes of the FD∞ fit (Chong & Forsyth: 15 from 5k to 50k)
FD_INF_SMALLEST = 0.2  # the smallest subset, as a fraction of the samples (theirs: 5k of 50k = 0.1)
FD_INF_SEED = 2020  # subsets are drawn with a fixed seed: the same features give the same FD∞


def _check(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> None:
    if mu1.ndim != 1 or mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"Fréchet distance of mu {mu1.shape}, sigma {sigma1.shape} and mu {mu2.shape}, {sigma2.shape}")


def _imaginary_error(what: str, imaginary: float) -> FloatingPointError:
    return FloatingPointError(
        f"{what}: the matrix square root has an imaginary part of {imaginary:.3g} (> {IMAGINARY_TOLERANCE:g}): "
        "a numerical failure of the covariances, not a distance"
    )


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, what: str = "Fréchet distance"
) -> float:
    """``|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2)`` in float64, torch-fidelity's formula, guarded.

    Raises FloatingPointError when a square root of an eigenvalue of ``S1 S2`` has an
    imaginary part above :data:`IMAGINARY_TOLERANCE`.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    _check(mu1, sigma1, mu2, sigma2)
    diff = mu1 - mu2
    roots = np.sqrt(np.linalg.eigvals(sigma1.dot(sigma2)).astype("complex128"))
    imaginary = float(np.abs(roots.imag).max()) if roots.size else 0.0
    if imaginary > IMAGINARY_TOLERANCE:
        raise _imaginary_error(what, imaginary)
    tr_covmean = np.sum(roots.real)
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def statistics64(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``np.cov``, n - 1) of ``(n, d)`` features, in float64."""
    x = np.asarray(features, np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    """The symmetric square root of a covariance (negative rounding-error eigenvalues set to 0)."""
    w, v = np.linalg.eigh(np.asarray(sigma, np.float64))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


@dataclass(frozen=True)
class ReferenceSide:
    """What every subset's FD needs from the reference: mean, trace and square root of the covariance."""

    mu: np.ndarray
    trace: float
    root: np.ndarray  # sqrt(S_ref)

    @classmethod
    def of(cls, mu: np.ndarray, sigma: np.ndarray) -> ReferenceSide:
        sigma = np.asarray(sigma, np.float64)
        return cls(np.asarray(mu, np.float64), float(np.trace(sigma)), sqrt_psd(sigma))


def frechet_to_reference(mu: np.ndarray, sigma: np.ndarray, ref: ReferenceSide, what: str) -> float:
    """The Fréchet distance to ``ref``, via the eigenvalues of the symmetric ``sqrt(S_ref) S sqrt(S_ref)``."""
    return _to_reference(mu, float(np.trace(sigma)), ref.root @ sigma @ ref.root, ref, what)


def _to_reference(mu: np.ndarray, trace: float, product: np.ndarray, ref: ReferenceSide, what: str) -> float:
    """The Fréchet distance from ``mu``, ``tr S`` and ``sqrt(S_ref) S sqrt(S_ref)``, with the guard."""
    eig = np.linalg.eigvalsh(product)
    lowest = float(eig.min()) if eig.size else 0.0
    if lowest < 0 and np.sqrt(-lowest) > IMAGINARY_TOLERANCE:
        raise _imaginary_error(what, float(np.sqrt(-lowest)))
    diff = mu - ref.mu
    return float(diff.dot(diff) + trace + ref.trace - 2 * np.sqrt(np.clip(eig, 0.0, None)).sum())


@dataclass(frozen=True)
class FDInfinityFit:
    """FD∞ and how it was fitted: subset sizes, their FDs, the fit's slope and RMS residual."""

    value: float  # the intercept at 1/N = 0
    slope: float
    residual: float  # root mean square of (FD_N - fit), in FD units
    sizes: tuple[int, ...]
    distances: tuple[float, ...]


def subset_sizes(n: int, points: int = FD_INF_POINTS, smallest: float = FD_INF_SMALLEST) -> tuple[int, ...]:
    """``points`` subset sizes evenly spaced from ``smallest * n`` (at least 2) to ``n``, distinct."""
    low = max(2, int(smallest * n))
    return tuple(int(s) for s in dict.fromkeys(np.linspace(low, n, points).astype(int).tolist()))


def fd_infinity(features: np.ndarray, ref: ReferenceSide, what: str = "FD∞", seed: int = FD_INF_SEED) -> FDInfinityFit:
    """Chong & Forsyth (2020): FD of random subsets of the generated ``features`` against the whole
    reference, a least-squares line in ``1/N``, its value at 0.

    The subsets are the first N samples of one random permutation (nested), so the 15 sizes cost one
    pass over the samples: the moments are accumulated block by block. Chong & Forsyth reshuffle for
    every N, which costs the sum of the sizes (9x one pass here, the most expensive metric of a cell);
    each FD_N has the same expectation either way, so the line and its intercept estimate the same FD∞.
    """
    x = np.asarray(features, np.float64)
    n, d = x.shape
    sizes = subset_sizes(n)
    if len(sizes) < 2:
        raise ValueError(f"{what}: needs at least 3 generated samples, got {n}")
    x = x[np.random.default_rng(seed).permutation(n)]
    shift = x.mean(axis=0)  # moments of shifted data: no cancellation when the features' mean is large
    x0 = x - shift
    y0 = x0 @ ref.root  # sqrt(S_ref) S sqrt(S_ref) is the covariance of x sqrt(S_ref)
    sum_x, sum_y, sum_yy, sum_xx = np.zeros(d), np.zeros(d), np.zeros((d, d)), 0.0
    distances, done = [], 0
    for size in sizes:
        bx, by = x0[done:size], y0[done:size]
        sum_x += bx.sum(axis=0)
        sum_y += by.sum(axis=0)
        sum_yy += by.T @ by
        sum_xx += float(np.einsum("ij,ij->", bx, bx))
        done = size
        mean_x, mean_y = sum_x / size, sum_y / size
        trace = (sum_xx - size * mean_x.dot(mean_x)) / (size - 1)
        product = (sum_yy - size * np.outer(mean_y, mean_y)) / (size - 1)
        distances.append(_to_reference(mean_x + shift, trace, product, ref, f"{what} (first {size} samples)"))
    inv = 1.0 / np.asarray(sizes, np.float64)
    y = np.asarray(distances)
    slope, intercept = np.polyfit(inv, y, 1)
    residual = float(np.sqrt(np.mean((y - (slope * inv + intercept)) ** 2)))
    return FDInfinityFit(float(intercept), float(slope), residual, sizes, tuple(float(d) for d in y))


# -- the few-samples flag -----------------------------------------------------------------------------
FEW_SAMPLES = "few_samples"


def sample_flags(ctx: EvalContext, metrics: dict[str, float]) -> list[str]:
    """``few_samples`` for every backbone whose Fréchet distance was computed on fewer samples than it has
    feature dimensions (generated or reference): the covariance is singular, the distance biased upwards."""
    from genbench.metrics.features import BackboneFeatures

    flags = []
    for key, value in ctx.memo.items():
        if not (key.startswith("features:") and isinstance(value, BackboneFeatures)):
            continue
        name = key.split(":", 1)[1]
        if not any(m in metrics for m in (f"fid_{name}", f"fd_inf_{name}")):
            continue
        generated = value.generated[value.main_layer]
        dim, n_gen = int(generated.shape[1]), int(generated.shape[0])
        n_ref = int(value.reference[value.main_layer].features.shape[0])
        if min(n_gen, n_ref) < dim:
            flags.append(
                f"{FEW_SAMPLES}: {n_gen} generated and {n_ref} reference samples for {dim} feature dimensions "
                f"({name}): singular covariance, FID biased upwards (compare fd_inf, or raise --eval-samples)"
            )
    return flags
