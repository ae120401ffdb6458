"""2-D toy metrics: mode coverage (VEEGAN), histogram KL/JS, MMD and energy distance.

Each metric must score held-out real data as (near) perfect, rank a collapsed or
misplaced generator far worse, be deterministic, and decline data it cannot read.
The toy datasets' declared modes must be the ones their points are drawn from.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

import genbench
from genbench.datasets.base import DataInfo, LoadedData, Split
from genbench.datasets.toy2d import Grid, Ring, RingNamed, Spiral, Toy2D
from genbench.hyper import build
from genbench.metrics.base import EvalContext, Metric
from genbench.metrics.toy import Histogram2D, ModeCoverage, SampleDistance, two_sample_statistics
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, Protocol
from genbench.run.cell import evaluate
from genbench.run.data import load_data

N = 1000  # generated and reference points per evaluation (the protocol's default eval_samples)
METRICS: tuple[Metric, ...] = (ModeCoverage(), Histogram2D(), SampleDistance())


# -- helpers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gan() -> GenerativeModel:
    cls = get_registry().model("gan")
    return cls(build(cls.Hyper, {}, "gan"), DataInfo("toy2d", (2,), "points", 8))


def data(name: str = "toy2d") -> LoadedData:
    return load_data(name, Path("unused"))


def context(
    model: GenerativeModel, samples: torch.Tensor, name: str = "toy2d", seed: int = 0, reference: Split | None = None
) -> EvalContext:
    """``samples`` against ``reference`` (default: the first N test points), as the harness evaluates them."""
    loaded = data(name)
    protocol = Protocol(name, tuple(m.name for m in METRICS), eval_samples=N)
    reference = reference if reference is not None else loaded.split("test").head(N)
    return EvalContext(model, loaded, samples, reference, protocol, torch.device("cpu"), seed)


def scores(ctx: EvalContext) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in METRICS:
        if metric.not_applicable(type(ctx.model), ctx.data) is None:
            out.update(metric.compute(ctx))
    return out


def held_out(name: str = "toy2d") -> torch.Tensor:
    """Real points the reference never saw (the train split)."""
    return data(name).split("train").x[:N]


def one_mode(name: str = "toy2d") -> torch.Tensor:
    """A perfectly collapsed generator: N real points, all from mode 0."""
    train = data(name).split("train")
    assert train.y is not None
    return train.x[train.y == 0][:N]


# -- the datasets ----------------------------------------------------------------------------------
def test_mixtures_declare_the_modes_their_points_come_from() -> None:
    for cls, k, std in ((Ring, 8, 0.02), (RingNamed, 8, 0.02), (Grid, 25, 0.05)):
        modes = cls.modes()
        assert modes is not None
        centres, declared_std = modes
        assert centres.shape == (k, 2) and declared_std == std and cls.num_classes == k
        train = data(cls.name).split("train")
        assert train.y is not None
        for label in range(k):  # row i is the centre of label i
            points = train.x[train.y == label]
            assert torch.allclose(points.mean(0), centres[label], atol=4 * std / math.sqrt(len(points)) + 1e-6)
            assert points.std(0).mean() == pytest.approx(std, rel=0.1)
    assert Spiral.modes() is None and Toy2D.modes() is None


# -- real data scores (near) perfectly ------------------------------------------------------------
def test_held_out_real_ring_points_score_near_perfect(gan: GenerativeModel) -> None:
    s = scores(context(gan, held_out()))
    assert s["modes_covered"] == s["modes_total"] == 8
    # 2-D Gaussian: P(within 3 std) = 1 - exp(-4.5) = 0.989
    assert s["high_quality"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert s["kl_hist"] < 0.15 and s["js_hist"] < 0.03
    assert abs(s["mmd"]) < 2e-3 and abs(s["energy"]) < 1e-2


def test_held_out_real_grid_points_cover_all_25_modes(gan: GenerativeModel) -> None:
    s = scores(context(gan, held_out("toy2d-grid"), "toy2d-grid"))
    assert s["modes_covered"] == s["modes_total"] == 25 and s["high_quality"] > 0.97
    assert s["kl_hist"] < 0.3 and s["js_hist"] < 0.06


# -- failures are ranked worse ---------------------------------------------------------------------
def test_a_collapsed_generator_covers_one_mode_and_every_distance_sees_it(gan: GenerativeModel) -> None:
    real, collapsed = scores(context(gan, held_out())), scores(context(gan, one_mode()))
    assert collapsed["modes_covered"] == 1
    assert collapsed["high_quality"] > 0.97  # its points are real ones: quality alone cannot see collapse
    assert collapsed["kl_hist"] > 5  # 7/8 of the real mass is missing
    # JS(p, q) with q = mode 0 only: ½[⅛ ln(2/9) + ⅞ ln 2] + ½ ln(16/9) nats = 0.717 bits
    expected_js = (0.5 * (math.log(2 / 9) / 8 + 7 / 8 * math.log(2)) + 0.5 * math.log(16 / 9)) / math.log(2)
    assert collapsed["js_hist"] == pytest.approx(expected_js, abs=0.03)
    for key in ("kl_hist", "js_hist", "mmd", "energy"):
        assert collapsed[key] > 10 * max(real[key], 1e-3), key


def test_a_generator_spread_over_a_big_square_has_few_high_quality_samples(gan: GenerativeModel) -> None:
    uniform = torch.rand(N, 2, generator=torch.Generator().manual_seed(1)) * 12 - 6
    s, real = scores(context(gan, uniform)), scores(context(gan, held_out()))
    assert s["high_quality"] < 0.02  # 8 discs of radius 0.06 cover 0.06% of the square
    for key in ("kl_hist", "js_hist", "mmd", "energy"):
        assert s[key] > 10 * max(real[key], 1e-3), key


def test_points_far_from_every_mode_capture_nothing_and_fall_off_the_histogram(gan: GenerativeModel) -> None:
    s = scores(context(gan, torch.full((N, 2), 50.0)))
    assert s["modes_covered"] == 0 and s["high_quality"] == 0
    assert s["js_hist"] == pytest.approx(1.0)  # every generated point is in the overflow cell: disjoint
    assert s["kl_hist"] > 8
    assert s["energy"] > 100  # energy grows with the distance (2 x 70.7 - 2.6 here); MMD saturates below 2
    assert 0.5 < s["mmd"] < 2


def test_mass_off_the_grid_counts_as_lost(gan: GenerativeModel) -> None:
    ref = data().split("test").x[:N]
    half_lost = torch.cat([ref, torch.full_like(ref, 50.0)])  # the reference itself plus as many points off the box
    s = Histogram2D().compute(context(gan, half_lost))
    assert s["kl_hist"] == pytest.approx(math.log(2), rel=0.01)  # KL(p || p/2 + overflow/2) = ln 2
    # JS(p, q = p/2 + overflow/2) with m = 3p/4 + overflow/4: ½ ln(4/3) + ½(½ ln(2/3) + ½ ln 2) nats, in bits
    expected = (0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2)) / math.log(2)
    assert s["js_hist"] == pytest.approx(expected, rel=1e-9)


def test_kl_is_real_given_generated_so_dropping_modes_costs_more_than_extra_mass(gan: GenerativeModel) -> None:
    train = data().split("train")
    assert train.y is not None
    half_the_modes = train.x[train.y < 4][:N]
    noise = torch.rand(N // 2, 2, generator=torch.Generator().manual_seed(2)) * 4 - 2
    all_modes_plus_noise = torch.cat([held_out()[: N // 2], noise])
    dropped, spread = (
        Histogram2D().compute(context(gan, half_the_modes)),
        Histogram2D().compute(context(gan, all_modes_plus_noise)),
    )
    assert dropped["kl_hist"] > 3 * spread["kl_hist"]


# -- properties of the estimators ------------------------------------------------------------------
def test_mmd_and_energy_are_symmetric_and_near_zero_only_for_equal_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(500, 2, generator=g, dtype=torch.float64) for _ in range(3))
    ab, ba = two_sample_statistics(a, b), two_sample_statistics(b, a)
    assert ab["energy"] == pytest.approx(ba["energy"], abs=1e-12) and ab["mmd"] == pytest.approx(ba["mmd"], abs=1e-12)
    shifted = two_sample_statistics(a, c + 1.0)
    assert abs(ab["mmd"]) < 5e-3 and abs(ab["energy"]) < 2e-2  # unbiased: can be slightly negative
    assert shifted["mmd"] > 0.05 and shifted["energy"] > 0.5
    # the energy distance of N(0, I) and N(mu, I) grows with |mu|
    assert two_sample_statistics(a, c + 2.0)["energy"] > shifted["energy"]


def test_mmd_is_not_negative_beyond_estimator_noise_over_many_real_splits(gan: GenerativeModel) -> None:
    train = data().split("train").x
    values = [SampleDistance().compute(context(gan, train[i * N : (i + 1) * N]))["mmd"] for i in range(3)]
    assert all(v > -2e-3 for v in values) and abs(sum(values) / len(values)) < 1e-3


def test_every_metric_gives_the_same_numbers_twice(gan: GenerativeModel, monkeypatch: pytest.MonkeyPatch) -> None:
    for samples in (held_out(), one_mode()):
        assert scores(context(gan, samples, seed=7)) == scores(context(gan, samples.clone(), seed=7))
    monkeypatch.setattr(SampleDistance, "MAX_POINTS", 300)  # subsample both sides: the draw follows the seed
    first = SampleDistance().compute(context(gan, held_out(), seed=7))
    assert first == SampleDistance().compute(context(gan, held_out(), seed=7))
    assert first != SampleDistance().compute(context(gan, held_out(), seed=8))


# -- applicability and registration ---------------------------------------------------------------
def test_mode_coverage_needs_declared_modes_and_every_toy_metric_needs_points() -> None:
    gan_cls = get_registry().model("gan")
    spiral = data("toy2d-spiral").info
    reason = ModeCoverage().not_applicable(gan_cls, spiral)
    assert reason is not None and "toy2d-spiral" in reason and "modes" in reason
    assert Histogram2D().not_applicable(gan_cls, spiral) is None
    assert SampleDistance().not_applicable(gan_cls, spiral) is None
    assert ModeCoverage().not_applicable(gan_cls, DataInfo("my-points", (2,), "points")) is not None  # unregistered
    image = DataInfo("digits", (1, 8, 8), "image", 10)
    for metric in METRICS:
        reason = metric.not_applicable(gan_cls, image)
        assert reason is not None and "points" in reason, metric.name


class ToyMetrics:
    @genbench.hookimpl
    def register_metrics(self, register: Callable[[type[Any]], None]) -> None:
        for cls in (ModeCoverage, Histogram2D, SampleDistance):
            register(cls)


def test_metrics_run_through_the_harness_with_their_directions(
    gan: GenerativeModel, use_plugin: Callable[[object, str], None]
) -> None:
    if "modes" not in get_registry().metrics:
        use_plugin(ToyMetrics(), "test-toy-metrics")
    record = CellRecord("c", "gan", "toy2d-spiral", 0, {})
    evaluate(context(gan, held_out("toy2d-spiral"), "toy2d-spiral"), ("modes", "hist2d", "mmd"), record)
    assert record.metric_notes["modes"].startswith("not applicable")
    assert set(record.metrics) == {"kl_hist", "js_hist", "mmd", "energy"}
    assert set(record.metric_better.values()) == {"lower"}
    record = CellRecord("c", "gan", "toy2d", 0, {})
    evaluate(context(gan, held_out()), ("modes",), record)
    assert record.metrics["modes_covered"] == 8 and "modes_total" in record.metrics
    assert record.metric_better == {"modes_covered": "higher", "high_quality": "higher"}  # modes_total: informational
