"""Metrics for 2-D point data (the GAN-Lab-style toy sets): mode coverage, histogram divergences, MMD.

These read the generated points directly (no feature network), so on 2-D data they
measure what FID would measure on images, without a backbone in the way:

- :class:`ModeCoverage` (``modes``): VEEGAN's mode count and share of high-quality
  samples, for mixtures whose components are known (:meth:`Toy2D.modes`).
- :class:`Histogram2D` (``hist2d``): KL and JS divergence between 2-D histograms of
  the reference and generated points on a fixed grid.
- :class:`SampleDistance` (``mmd``): the unbiased MMD² with a Gaussian kernel and
  the energy distance, two-sample statistics that need no binning.

Every computation is in float64 on the CPU and deterministic for a given input.

References:
    Srivastava, Valkov, Russell, Gutmann, Sutton (2017). VEEGAN: Reducing mode collapse
    in GANs using implicit variational learning. NeurIPS. Section 5.1.
    Lin, Khetan, Fanti, Oh (2018). PacGAN: The power of two samples in generative
    adversarial networks. NeurIPS (same metrics; github.com/fjxmlzn/PacGAN).
    Metz, Poole, Pfau, Sohl-Dickstein (2017). Unrolled generative adversarial networks. ICLR
    (the ring and grid mixtures).
    Gretton, Borgwardt, Rasch, Schölkopf, Smola (2012). A kernel two-sample test. JMLR 13,
    Lemma 6 (unbiased MMD²) and Section 8 (median heuristic).
    Székely, Rizzo (2013). Energy statistics: a class of statistics based on distances.
    J. Statistical Planning and Inference 143(8), 1249-1272.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError
from genbench.metrics.base import EvalContext, Metric
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry


def _points(x: torch.Tensor) -> torch.Tensor:
    """``x`` as an (n, 2) float64 CPU tensor."""
    return x.detach().reshape(x.shape[0], -1).to("cpu", torch.float64)


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (len(a), len(b)), computed pairwise (no matmul shortcut: exact and reproducible)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def dataset_modes(name: str) -> tuple[torch.Tensor, float] | None:
    """The component centres (k, 2) and per-component std of the registered dataset ``name``, or None.

    A dataset declares its modes with a ``modes()`` classmethod (see
    :meth:`genbench.datasets.toy2d.Toy2D.modes`); unknown datasets and datasets
    without one have none.
    """
    try:
        cls = get_registry().dataset(name)
    except GenbenchError:
        return None
    modes = getattr(cls, "modes", None)
    found = modes() if callable(modes) else None
    if found is None:
        return None
    centres, std = found
    return torch.as_tensor(centres, dtype=torch.float64).reshape(-1, 2), float(std)


class ModeCoverage(Metric):
    """VEEGAN's mode coverage on a mixture of Gaussians with known centres (Srivastava et al. 2017, §5.1).

    A generated sample is *high quality* if it lies within ``QUALITY_STDS`` (3)
    standard deviations of the nearest mode centre ("within three standard
    deviations of the nearest mode"). A mode is *captured* if it is the nearest
    mode of at least ``MIN_SAMPLES_PER_MODE`` (1) high-quality samples ("the number
    of mixture components whose mean is nearest to at least one high quality
    sample"). PacGAN (Lin et al. 2018) reports the same two numbers with the same
    rule in its released code (a mode counts with one sample under the 3-std
    distance). The toy components are isotropic with one common std, so "nearest"
    in Euclidean and in standardised distance agree.

    Keys: ``modes_covered`` (count, higher is better), ``high_quality`` (share of
    samples in [0, 1], higher is better) and ``modes_total`` (the number of
    components, informational). Real data does not score ``high_quality`` = 1: the
    distance of a 2-D isotropic Gaussian point to its centre, in stds, is Rayleigh
    distributed, and P(r < 3) = 1 - exp(-9/2) ≈ 0.989.
    """

    name = "modes"
    description = "modes captured and share of high-quality samples (within 3 std of a mode), VEEGAN; 2-D mixtures"
    higher_is_better = True
    data_kinds = frozenset({"points"})

    QUALITY_STDS: ClassVar[float] = 3.0  # VEEGAN/PacGAN: "within three standard deviations"
    # VEEGAN/PacGAN count a mode captured with a single high-quality sample. With
    # eval_samples in the thousands a stray sample can therefore "capture" a mode;
    # raise this (e.g. to a small share of eval_samples / modes) for a stricter count,
    # but say so when comparing with published numbers.
    MIN_SAMPLES_PER_MODE: ClassVar[int] = 1

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        return None if key == "modes_total" else "higher"

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        if key == "high_quality":
            return (0.0, 1.0)
        found = dataset_modes(data.name)
        return (0.0, float(len(found[0])) if found is not None else None)

    def integer(self, key: str) -> bool:
        return key in ("modes_covered", "modes_total")

    def not_applicable(self, model: type[GenerativeModel], data: DataInfo) -> str | None:
        reason = super().not_applicable(model, data)
        if reason is None and dataset_modes(data.name) is None:
            reason = (
                f"{self.name} needs a dataset with known mixture modes (e.g. toy2d, toy2d-grid); {data.name} has none"
            )
        return reason

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        found = dataset_modes(ctx.data.name)
        if found is None:
            raise GenbenchError(f"{self.name}: dataset {ctx.data.name!r} has no known modes")
        centres, std = found
        samples = _points(ctx.samples)
        distance, nearest = _distances(samples, centres).min(dim=1)
        good = distance < self.QUALITY_STDS * std
        per_mode = torch.bincount(nearest[good], minlength=len(centres))
        return {
            "modes_covered": float((per_mode >= self.MIN_SAMPLES_PER_MODE).sum()),
            "high_quality": float(good.double().mean()) if len(samples) else 0.0,
            "modes_total": float(len(centres)),
        }


class Histogram2D(Metric):
    """KL and JS divergence between 2-D histograms of the reference and the generated points.

    The grid is fixed by the reference: ``BINS`` x ``BINS`` (50 x 50) equal cells
    over the reference points' bounding box, widened by ``PAD`` (10%) of its extent
    on every side, so the real data never touches the edge. The generator cannot
    move the grid. A generated point outside the box lands in one extra *overflow*
    cell, which holds no reference mass: both histograms are divided by their full
    sample count, so mass a generator puts off the box is mass missing from the
    real cells (KL grows by about -ln(1 - lost share)) and counts fully against JS.

    ``kl_hist`` is KL(real || generated) in nats. Where the generator left a cell
    empty that real points occupy, KL is infinite, so both histograms get ``EPS``
    (1e-6) of probability added to every cell and are renormalised: an empty cell
    holding real mass p then costs p·ln(p / EPS) instead of infinity (KL of a fully
    collapsed 8-mode ring is about 10 nats). ``js_hist`` is the Jensen-Shannon
    divergence in **bits** (base 2), on the unsmoothed histograms (JS is finite
    without smoothing), so it lies in [0, 1]: 0 for equal histograms, 1 for disjoint
    ones. Both are plug-in estimates with a positive small-sample bias (real vs
    held-out real is not 0), so compare them only at equal sample counts, as the
    protocol ensures. Lower is better for both.

    Definitions: KL as in Cover and Thomas, Elements of Information Theory (2nd ed.,
    2006), Section 2.3; JS as in Lin (1991), Divergence measures based on the Shannon
    entropy, IEEE Trans. Inf. Theory 37(1). PacGAN's released code reports the JS
    divergence of the per-mode histogram; this is the same plug-in estimate on a
    spatial grid, so it also applies to data without modes (the spiral).
    """

    name = "hist2d"
    description = "KL(real||gen) in nats and JS in bits between 50x50 histograms on the reference's padded box"
    higher_is_better = False
    data_kinds = frozenset({"points"})

    BINS: ClassVar[int] = 50
    PAD: ClassVar[float] = 0.10  # of the reference box's extent, on each side
    EPS: ClassVar[float] = 1e-6  # probability added to every cell before KL (then renormalised)

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (0.0, 1.0) if key == "js_hist" else (0.0, None)  # JS in bits; KL of two proper distributions

    def histogram(self, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
        """Probabilities of ``BINS``² grid cells (row-major) plus one overflow cell, summing to 1."""
        u = (x - lo) / (hi - lo) * self.BINS  # grid coordinates; decided in floating point (inf/NaN are outside)
        inside = ((u >= 0) & (u < self.BINS)).all(dim=1)
        cell = u.nan_to_num(0.0).clamp(0, self.BINS - 1).floor().long()
        index = torch.where(inside, cell[:, 0] * self.BINS + cell[:, 1], self.BINS * self.BINS)
        counts = torch.bincount(index, minlength=self.BINS * self.BINS + 1).double()
        return counts / max(len(x), 1)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        real, fake = _points(ctx.reference.x), _points(ctx.samples)
        lo, hi = real.min(dim=0).values, real.max(dim=0).values
        pad = (hi - lo).clamp_min(1e-6) * self.PAD
        lo, hi = lo - pad, hi + pad
        p, q = self.histogram(real, lo, hi), self.histogram(fake, lo, hi)
        return {"kl_hist": kl_divergence(smooth(p, self.EPS), smooth(q, self.EPS)), "js_hist": js_divergence_bits(p, q)}


def smooth(p: torch.Tensor, eps: float) -> torch.Tensor:
    """``p`` with ``eps`` added to every cell, renormalised to sum to 1."""
    return (p + eps) / (1 + eps * len(p))


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) in nats; cells where p is 0 contribute 0; q must be positive where p is."""
    mask = p > 0
    return float((p[mask] * (p[mask] / q[mask]).log()).sum())


def js_divergence_bits(p: torch.Tensor, q: torch.Tensor) -> float:
    """Jensen-Shannon divergence ½KL(p||m) + ½KL(q||m), m = ½(p+q), in bits (in [0, 1])."""
    m = (p + q) / 2
    return (kl_divergence(p, m) + kl_divergence(q, m)) / (2 * math.log(2))


class SampleDistance(Metric):
    """Unbiased MMD² with a Gaussian kernel and the energy distance between generated and reference points.

    ``mmd`` is the unbiased estimate MMD²_u of Gretton et al. (2012, Lemma 6)
    with k(x, y) = exp(-‖x - y‖² / (2 s²)); the bandwidth s is the median heuristic (ibid.,
    Section 8): the median Euclidean distance between distinct points of the pooled
    sample (generated and reference together, so the bandwidth is the same for
    both arguments and the statistic symmetric). ``energy`` is the energy distance
    of Székely and Rizzo (2013), E = 2·E‖X - Y‖ - E‖X - X'‖ - E‖Y - Y'‖ (not its
    square root), with the within-sample means over distinct pairs (U-statistics),
    which makes it unbiased too. Both are 0 in expectation for equal distributions
    and can then come out slightly negative; both are symmetric; lower is better.

    At most ``MAX_POINTS`` (2000) points per side are used, drawn without
    replacement by a generator seeded with the cell's seed, so the cost is bounded
    (a 4000 x 4000 distance matrix) and the result deterministic.
    """

    name = "mmd"
    description = "unbiased MMD² (Gaussian kernel, median-heuristic bandwidth) and energy distance; 2-D points"
    higher_is_better = False
    data_kinds = frozenset({"points"})

    MAX_POINTS: ClassVar[int] = 2000
    # No bounds (the default): both are unbiased estimates, negative when the samples match the data closely.

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        g = torch.Generator().manual_seed(ctx.seed)
        x = subsample(_points(ctx.samples), self.MAX_POINTS, g)
        y = subsample(_points(ctx.reference.x), self.MAX_POINTS, g)
        if len(x) < 2 or len(y) < 2:
            raise GenbenchError(f"{self.name} needs at least 2 generated and 2 reference points")
        return two_sample_statistics(x, y)


def subsample(x: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """At most ``n`` rows of ``x``, drawn without replacement with ``g`` (all of ``x``, in order, if it is small)."""
    if len(x) <= n:
        return x
    return x[torch.randperm(len(x), generator=g)[:n]]


def two_sample_statistics(x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``{"mmd": MMD²_u, "energy": energy distance}`` of point sets ``x`` (m, d) and ``y`` (n, d), m, n >= 2."""
    m, n = len(x), len(y)
    pooled = torch.cat([x, y])
    d = _distances(pooled, pooled)
    k = m + n
    pairs = d.flatten()[1:].view(k - 1, k + 1)[:, :-1]  # the off-diagonal entries (each pair twice)
    sigma = float(pairs.median())  # the lower median; duplicating every pair leaves it unchanged
    if sigma <= 0:  # over half the pairs coincide: fall back to the typical non-zero distance
        positive = pairs[pairs > 0]
        sigma = float(positive.median()) if len(positive) else 1.0
    dxx, dyy, dxy = d[:m, :m], d[m:, m:], d[:m, m:]

    def off_diagonal_mean(a: torch.Tensor) -> torch.Tensor:
        k = len(a)
        return (a.sum() - a.diagonal().sum()) / (k * (k - 1))

    def kernel(a: torch.Tensor) -> torch.Tensor:
        return torch.exp(-a.square() / (2 * sigma**2))

    mmd = off_diagonal_mean(kernel(dxx)) + off_diagonal_mean(kernel(dyy)) - 2 * kernel(dxy).mean()
    energy = 2 * dxy.mean() - off_diagonal_mean(dxx) - off_diagonal_mean(dyy)
    return {"mmd": float(mmd), "energy": float(energy)}
