"""Metrics that tell more than FID, and the guards on every Fréchet distance.

Conformance: density/coverage, FD∞ and the Vendi score equal straightforward independent
computations on fixed fixtures (and the authors' packages ``prdc`` and ``vendi-score`` when
they are installed: the ``test`` extra); FID equals torch-fidelity's formula and the
pytorch-fid definition. Guards: an imaginary matrix square root is an error that makes the
cell ``diverged`` (torch-fidelity 0.4 keeps the real part), and fewer samples than feature
dimensions is flagged in the record and the table. The new metrics read the features the
cell extracted once (no second pass).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch_fidelity.metric_fid import fid_statistics_to_metric

from genbench.datasets.base import LoadedData
from genbench.metrics import features as features_module
from genbench.metrics.beyond_fid import (
    DensityCoverage,
    FDInfinity,
    Vendi,
    density_coverage,
    kth_neighbour_radii,
    vendi_score,
)
from genbench.metrics.frechet import (
    ReferenceSide,
    fd_infinity,
    frechet_distance,
    frechet_to_reference,
    statistics64,
    subset_sizes,
)
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.table import load_table
from genbench.run.cell import evaluate
from genbench.run.data import load_data
from genbench.run.runner import RunRequest, run_grid

from .test_metrics import context, near_real, protocol


def gaussian(n: int, d: int, seed: int, scale: float = 1.0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * scale + shift


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data("digits", Path("unused"))


# -- independent references ---------------------------------------------------------------------------
def reference_fd(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """pytorch-fid's definition: scipy's matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. (2020), eqs. 5-6, with plain loops over numpy distances."""
    real_real = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    radii = np.array([np.sort(row)[k] for row in real_real])  # index 0 is the point itself
    real_fake = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    density = sum(int((real_fake[:, j] < radii).sum()) for j in range(len(fake))) / (k * len(fake))
    coverage = float(np.mean([real_fake[i].min() < radii[i] for i in range(len(real))]))
    return density, coverage


def reference_vendi(x: np.ndarray) -> float:
    """exp(entropy) of the eigenvalues of K / n, K the n x n cosine-similarity matrix (the primal form)."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    eig = np.linalg.eigvalsh(x @ x.T / len(x))
    eig = eig[eig > 1e-15]
    return float(np.exp(-(eig * np.log(eig)).sum()))


def reference_fd_inf(gen: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[float, float]:
    """Chong & Forsyth's recipe with scipy's sqrtm, np.cov and numpy's least squares, on the same subsets
    (the first N of one permutation seeded 2020)."""
    shuffled = gen[np.random.default_rng(2020).permutation(len(gen))]
    fds = []
    sizes = subset_sizes(len(gen))
    for size in sizes:
        sub = shuffled[:size]
        fds.append(reference_fd(sub.mean(0), np.cov(sub, rowvar=False), mu, sigma))
    design = np.stack([1 / np.asarray(sizes, float), np.ones(len(sizes))], 1)
    (slope, intercept), *_ = np.linalg.lstsq(design, np.asarray(fds), rcond=None)
    residual = float(np.sqrt(np.mean((np.asarray(fds) - design @ np.array([slope, intercept])) ** 2)))
    return float(intercept), residual


# -- Fréchet distance ---------------------------------------------------------------------------------
def test_frechet_distance_is_torch_fidelitys_formula_and_the_definition() -> None:
    a, b = gaussian(400, 12, 0), gaussian(300, 12, 1, scale=1.5, shift=0.3)
    (mu1, s1), (mu2, s2) = statistics64(a), statistics64(b)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)[
        "frechet_inception_distance"], rel=1e-12)  # fmt: skip
    assert ours == pytest.approx(reference_fd(mu1, s1, mu2, s2), rel=1e-8)
    assert frechet_to_reference(mu1, s1, ReferenceSide.of(mu2, s2), "x") == pytest.approx(ours, rel=1e-8)


def test_statistics_are_float64_whatever_the_features() -> None:
    a = gaussian(500, 8, 2).astype(np.float32)
    mu, sigma = statistics64(a)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    mu32, sigma32 = a.mean(0), np.cov(a, rowvar=False, dtype=np.float32)
    assert frechet_distance(mu32, sigma32, mu, sigma) == pytest.approx(
        frechet_distance(mu32.astype(np.float64), sigma32.astype(np.float64), mu, sigma), rel=1e-12
    )


def test_an_imaginary_square_root_is_an_error_not_dropped() -> None:
    mu = np.zeros(4)
    broken = np.diag([1.0, 1.0, 1.0, -0.5])  # a covariance with a negative eigenvalue: sqrt(S1 S2) is complex
    # torch-fidelity keeps the real part and returns a number:
    assert math.isfinite(fid_statistics_to_metric({"mu": mu, "sigma": np.eye(4)}, {"mu": mu, "sigma": broken}, False)[
        "frechet_inception_distance"])  # fmt: skip
    with pytest.raises(FloatingPointError, match=r"fid_x: the matrix square root has an imaginary part of 0\.707"):
        frechet_distance(mu, np.eye(4), mu, broken, "fid_x")
    with pytest.raises(FloatingPointError, match="imaginary part"):
        frechet_to_reference(mu, broken, ReferenceSide.of(mu, np.eye(4)), "fd")
    tiny = np.diag([1.0, 1.0, 1.0, -1e-9])  # rounding-sized: sqrt 3e-5, under the tolerance
    assert math.isfinite(frechet_distance(mu, np.eye(4), mu, tiny))


@pytest.mark.slow
def test_a_failed_square_root_makes_the_cell_diverged(tiny_models: None, tmp_path: Path, cache_dir: Path) -> None:
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.zeros(128), sigma=-np.eye(128))  # reads fine, but no covariance
    p = Protocol("digits", ("fid", "kid"), eval_samples=200, cache_dir=cache_dir, reference_stats=stats)
    (record,) = run_grid(RunRequest(("tiny",), p, tmp_path / "out")).records
    assert record.status == "diverged"
    assert record.error.startswith(
        "metric fid: FloatingPointError: fid_domain: the matrix square root has an imaginary"
    )
    assert "kid_domain" in record.metrics and "fid_domain" not in record.metrics  # the other metrics are kept


@pytest.mark.slow
def test_fewer_samples_than_dimensions_is_flagged_in_record_and_table(
    tiny_models: None, tmp_path: Path, cache_dir: Path
) -> None:
    p = Protocol("digits", ("fid",), eval_samples=100, cache_dir=cache_dir)  # domain features have 128 dimensions
    (record,) = run_grid(RunRequest(("tiny",), p, tmp_path / "few")).records
    assert record.status == "ok"
    assert [f for f in record.flags if f.startswith("few_samples")] == [
        "few_samples: 100 generated and 100 reference samples for 128 feature dimensions (domain): singular "
        "covariance, FID biased upwards (compare fd_inf, or raise --eval-samples)"
    ]
    assert "few_samples" in load_table(tmp_path / "few").rows[0][-1]
    p = Protocol("digits", ("fid",), eval_samples=200, cache_dir=cache_dir)
    (record,) = run_grid(RunRequest(("tiny",), p, tmp_path / "enough")).records
    assert not [f for f in record.flags if f.startswith("few_samples")]


# -- FD∞ ----------------------------------------------------------------------------------------------
def test_fd_infinity_equals_an_independent_fit() -> None:
    gen, ref = gaussian(600, 10, 3), gaussian(2000, 10, 4, scale=1.2)
    mu, sigma = statistics64(ref)
    fit = fd_infinity(gen, ReferenceSide.of(mu, sigma))
    value, residual = reference_fd_inf(gen, mu, sigma)
    assert fit.value == pytest.approx(value, rel=1e-7)
    assert fit.residual == pytest.approx(residual, rel=1e-6)
    assert fit.sizes[0] == 120 and fit.sizes[-1] == 600 and len(fit.sizes) == 15


def test_fd_infinity_removes_the_sample_count_bias() -> None:
    """Same distribution on both sides: FD at n is biased upwards (about d^2 / n here); FD∞ is near 0,
    and stays put when the sample count changes while FID at n does not."""
    d = 16
    mu, sigma = np.zeros(d), np.eye(d)  # the true statistics of the reference distribution
    side = ReferenceSide.of(mu, sigma)
    values = {}
    for n in (500, 2000):
        gen = gaussian(n, d, 5)
        fid_n = frechet_distance(*statistics64(gen), mu, sigma)
        values[n] = (fid_n, fd_infinity(gen, side).value)
    assert values[500][0] > 3 * values[2000][0] > 0  # FID at n falls with n: a bias, not a distance
    assert abs(values[500][1]) < values[500][0] / 5 and abs(values[2000][1]) < values[2000][0] / 2
    assert abs(values[500][1] - values[2000][1]) < (values[500][0] - values[2000][0]) / 2


# -- density and coverage -----------------------------------------------------------------------------
def test_density_and_coverage_equal_an_independent_computation() -> None:
    real, fake = gaussian(150, 6, 6), gaussian(120, 6, 7, scale=0.8, shift=0.4)
    radii = kth_neighbour_radii(torch.from_numpy(real), 5)
    ours = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), radii, 5)
    assert ours == pytest.approx(reference_density_coverage(real, fake, 5), rel=1e-12)


def test_density_and_coverage_equal_the_authors_package() -> None:
    prdc = pytest.importorskip("prdc")  # the test extra installs it
    real, fake = gaussian(300, 8, 8), gaussian(250, 8, 9, shift=0.5)
    radii = kth_neighbour_radii(torch.from_numpy(real), 5)
    density, coverage = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), radii, 5)
    theirs = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
    assert density == pytest.approx(theirs["density"], rel=1e-9)
    assert coverage == pytest.approx(theirs["coverage"], rel=1e-9)


def test_coverage_falls_with_mode_collapse_and_density_with_outliers() -> None:
    real = torch.from_numpy(gaussian(400, 4, 10))
    radii = kth_neighbour_radii(real, 5)
    like = torch.from_numpy(gaussian(400, 4, 11))
    collapsed = like * 0.05  # every sample near the mean
    outliers = like + 20.0
    d_like, c_like = density_coverage(real, like, radii)
    _, c_collapsed = density_coverage(real, collapsed, radii)
    d_out, c_out = density_coverage(real, outliers, radii)
    assert 0.7 < d_like < 1.3 and c_like > 0.9
    assert c_collapsed < 0.2 < c_like
    assert d_out == 0 and c_out == 0


# -- Vendi --------------------------------------------------------------------------------------------
def test_vendi_equals_an_independent_computation_and_its_bounds() -> None:
    x = gaussian(200, 12, 12)
    assert vendi_score(torch.from_numpy(x)) == pytest.approx(reference_vendi(x), rel=1e-9)
    small = gaussian(5, 12, 13)  # fewer samples than dimensions: the primal branch
    assert vendi_score(torch.from_numpy(small)) == pytest.approx(reference_vendi(small), rel=1e-9)
    same = torch.ones(50, 7)
    assert vendi_score(same) == pytest.approx(1.0)  # all alike: one distinct sample
    assert vendi_score(torch.eye(6)) == pytest.approx(6.0)  # orthogonal: all distinct


def test_vendi_equals_the_authors_package() -> None:
    vendi = pytest.importorskip("vendi_score.vendi")  # the test extra installs vendi-score
    x = gaussian(300, 16, 14)
    assert vendi_score(torch.from_numpy(x)) == pytest.approx(float(vendi.score_dual(x)), rel=1e-9)


# -- on a cell's features -----------------------------------------------------------------------------
def test_new_metrics_read_the_features_extracted_once(
    digits: LoadedData, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proto = protocol(cache_dir)
    calls = []
    real_extract = features_module.extract

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[1].shape[0])
        return real_extract(*args, **kwargs)

    ctx = context(digits, proto, near_real(digits))
    FDInfinity().compute(ctx)  # the reference statistics are cached before counting
    ctx = context(digits, proto, near_real(digits))
    monkeypatch.setattr(features_module, "extract", counting)
    record = CellRecord("c", "tiny", "digits", 0, {})
    evaluate(ctx, ("fid", "density_coverage", "fd_inf", "vendi", "prc", "kid"), record)
    assert calls == [300]  # one pass over the generated samples, for every metric
    assert {"density_domain", "coverage_domain", "fd_inf_domain", "fd_inf_domain_residual", "vendi_domain",
            "vendi_domain_reference"} <= set(record.metrics)  # fmt: skip
    assert record.metric_better["fd_inf_domain"] == "lower" and "fd_inf_domain_residual" not in record.metric_better
    assert record.metric_better["vendi_domain"] == "higher" and "vendi_domain_reference" not in record.metric_better
    assert record.metric_better["density_domain"] == record.metric_better["coverage_domain"] == "higher"


def test_new_metrics_on_digits_agree_with_the_references(digits: LoadedData, cache_dir: Path) -> None:
    ctx = context(digits, protocol(cache_dir), near_real(digits))
    out = {**DensityCoverage().compute(ctx), **FDInfinity().compute(ctx), **Vendi().compute(ctx)}
    f = ctx.memo["features:domain"]
    gen = f.generated["penultimate"].double().numpy()
    ref = f.reference["penultimate"]
    assert (out["density_domain"], out["coverage_domain"]) == pytest.approx(
        reference_density_coverage(ref.features.double().numpy(), gen, 5), rel=1e-9
    )
    assert out["fd_inf_domain"] == pytest.approx(reference_fd_inf(gen, ref.mu, ref.sigma)[0], rel=1e-6)
    assert out["vendi_domain"] == pytest.approx(reference_vendi(gen), rel=1e-8)
    assert out["vendi_domain_reference"] == pytest.approx(reference_vendi(ref.features.double().numpy()), rel=1e-8)


def test_list_metrics_describes_the_new_metrics() -> None:
    metrics = get_registry().metrics
    for name, words in (("density_coverage", "Naeem"), ("fd_inf", "Chong & Forsyth"), ("vendi", "Friedman")):
        assert words in metrics[name].cls.description
