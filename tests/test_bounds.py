"""Honest intervals: each metric declares the values it can take, and intervals stay inside them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, kid_features_to_metric

from genbench.datasets.base import DataInfo
from genbench.metrics.base import EvalContext, Metric
from genbench.metrics.beyond_fid import DensityCoverage, FDInfinity, Vendi
from genbench.metrics.domain import ClassCoverage, ConditionalAccuracy
from genbench.metrics.fidelity import FID, KID, InceptionScore, PrecisionRecall
from genbench.metrics.reconstruction import ELBO, ReconstructionError
from genbench.metrics.toy import Histogram2D, ModeCoverage, SampleDistance
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.stats import clip_interval, summarize
from genbench.reporting.table import comparison
from genbench.results import read_record, records_frame
from genbench.run.runner import RunRequest, run_grid

DIGITS = DataInfo("digits", (1, 8, 8), "image", 10)
RING = DataInfo("toy2d", (2,), "points", 8)


def test_two_seeds_of_a_count_out_of_ten_stay_within_zero_and_ten() -> None:
    """The issue's example: classes covered 3 and 10 gave [-12.6, 25.6] out of 10."""
    raw = summarize([3.0, 10.0])
    assert raw.ci_low is not None and raw.ci_low < -12 and raw.ci_high is not None and raw.ci_high > 25
    s = summarize([3.0, 10.0], bounds=(0.0, 10.0))
    assert (s.ci_low, s.ci_high) == (0.0, 10.0) and (s.mean, s.std) == (raw.mean, raw.std)
    p = summarize([0.9, 0.99], bounds=(0.0, 1.0))
    assert p.ci_high == 1.0 and p.ci_low is not None and 0.0 <= p.ci_low < 0.9
    free = summarize([0.9, 0.99])
    assert free.ci_high is not None and free.ci_high > 1.0  # no bounds given: the plain t interval


def test_clipping_never_leaves_out_the_mean() -> None:
    assert clip_interval(-1.0, 3.0, 1.0, (0.0, 2.0)) == (0.0, 2.0)
    assert clip_interval(-1e-5, 0.2, -1e-6, (0.0, None)) == (-1e-6, 0.2)  # a value just below a bound
    assert clip_interval(-1.0, 3.0, 1.0, (None, None)) == (-1.0, 3.0)


@pytest.mark.parametrize(
    ("metric", "key", "data", "bounds", "integer"),
    [
        (FID(), "fid_domain", DIGITS, (0.0, None), False),
        (KID(), "kid_domain", DIGITS, (None, None), False),  # unbiased: negative when sets are close
        (KID(), "kid_domain_std", DIGITS, (0.0, None), False),
        (InceptionScore(), "isc_domain", DIGITS, (1.0, None), False),
        (PrecisionRecall(), "precision_inception", DIGITS, (0.0, 1.0), False),
        (PrecisionRecall(), "f_score_domain", DIGITS, (0.0, 1.0), False),
        (ClassCoverage(), "classes_covered", DIGITS, (0.0, 10.0), True),
        (ClassCoverage(), "class_kl", DIGITS, (0.0, None), False),
        (ConditionalAccuracy(), "conditional_accuracy", DIGITS, (0.0, 1.0), False),
        (ReconstructionError(), "recon_mse", DIGITS, (0.0, None), False),
        (ELBO(), "elbo", DIGITS, (None, None), False),
        (ModeCoverage(), "modes_covered", RING, (0.0, 8.0), True),
        (ModeCoverage(), "high_quality", RING, (0.0, 1.0), False),
        (Histogram2D(), "js_hist", RING, (0.0, 1.0), False),
        (Histogram2D(), "kl_hist", RING, (0.0, None), False),
        (SampleDistance(), "mmd", RING, (None, None), False),  # unbiased too
        (DensityCoverage(), "density_domain", DIGITS, (0.0, None), False),
        (DensityCoverage(), "coverage_domain", DIGITS, (0.0, 1.0), False),
        (FDInfinity(), "fd_inf_domain", DIGITS, (None, None), False),  # an extrapolation: may fall below 0
        (FDInfinity(), "fd_inf_domain_residual", DIGITS, (0.0, None), False),
        (Vendi(), "vendi_domain", DIGITS, (1.0, None), False),
        (Vendi(), "vendi_domain_reference", DIGITS, (1.0, None), False),
    ],
)
def test_builtin_metrics_declare_their_range(
    metric: Metric, key: str, data: DataInfo, bounds: tuple[float | None, float | None], integer: bool
) -> None:
    assert metric.bounds(key, data) == bounds
    assert metric.integer(key) is integer


def test_a_plugin_metric_is_unbounded_unless_it_says_otherwise() -> None:
    class Plain(Metric):
        name = "plain"

        def compute(self, ctx: EvalContext) -> dict[str, float]:
            return {}

    assert Plain().bounds("plain", DIGITS) == (None, None) and not Plain().integer("plain")


def test_kid_can_come_out_negative_so_it_has_no_lower_bound() -> None:
    g = torch.Generator().manual_seed(0)
    values = []
    for seed in range(5):
        a, b = torch.randn(200, 16, generator=g), torch.randn(200, 16, generator=g)
        result = kid_features_to_metric(a, b, kid_subsets=10, kid_subset_size=100, rng_seed=seed, verbose=False)
        values.append(float(result[KEY_METRIC_KID_MEAN]))
    assert min(values) < 0  # same distribution: the unbiased estimate scatters around 0


def test_bounds_travel_from_the_run_to_the_table(tmp_path: Path, cache_dir: Path) -> None:
    protocol = Protocol("toy2d", ("modes", "hist2d", "mmd"), eval_samples=200, epochs=1, cache_dir=cache_dir)
    run_grid(RunRequest(("gan",), protocol, tmp_path, seeds=(0, 1)))
    manifest = json.loads((tmp_path / "run.json").read_text())
    bounds = manifest["metric_bounds"]
    assert bounds["modes_covered"] == {"low": 0.0, "high": 8.0, "integer": True}
    assert bounds["js_hist"] == {"low": 0.0, "high": 1.0, "integer": False}
    assert "mmd" not in bounds and "energy" not in bounds  # unbounded: nothing to store
    (folder, _) = sorted((tmp_path / "cells").glob("gan_*"))  # seeds 0 and 1; ids carry a hyper-parameter digest
    record = json.loads((folder / "record.json").read_text())
    assert record["metric_bounds"]["high_quality"] == {"low": 0.0, "high": 1.0, "integer": False}
    run_grid(RunRequest(("gan",), protocol, tmp_path, seeds=(0, 1), resume=True))  # every cell reused
    assert json.loads((tmp_path / "run.json").read_text())["metric_bounds"] == bounds  # read back from the records
    reused = read_record(folder)
    assert reused is not None and reused.metric_bounds == record["metric_bounds"]
    assert reused.step_history == record["step_history"] != []  # the loss curve's finer points too


def test_the_table_clips_each_metric_to_its_manifest_bounds() -> None:
    records = []
    for seed, (covered, precision) in enumerate([(3.0, 0.9), (10.0, 0.99)]):
        r = CellRecord(f"gan_s{seed}", "gan", "digits", seed, {"z_dim": 8})
        r.metrics.update(classes_covered=covered, precision_domain=precision, fid_domain=1.0 + 5 * seed)
        records.append(r)
    manifest = {
        "metric_better": {"classes_covered": "higher", "precision_domain": "higher", "fid_domain": "lower"},
        "metric_bounds": {
            "classes_covered": {"low": 0.0, "high": 10.0, "integer": True},
            "precision_domain": {"low": 0.0, "high": 1.0, "integer": False},
        },
        "protocol": {"dataset": "digits", "metrics": ["coverage", "prc", "fid"], "backbones": ["domain"]},
    }
    table = comparison(records_frame(records), manifest)
    covered, precision = table.headers.index("classes covered"), table.headers.index("precision (domain)")
    assert table.intervals[(0, covered)] == "[0.000, 10.000]"  # was [-37.97, 50.97]
    assert table.summaries[(0, precision)].ci_high == 1.0
    fid = table.summaries[(0, table.headers.index("FID (domain)"))]
    assert fid.ci_low is not None and fid.ci_low < 0  # no declared bound in this manifest: not clipped
    assert "intervals clipped to each metric's range" in table.legend[0]
    old = comparison(records_frame(records), {k: v for k, v in manifest.items() if k != "metric_bounds"})
    assert old.summaries[(0, covered)].ci_low is not None and old.summaries[(0, covered)].ci_low < 0
    assert not math.isnan(old.summaries[(0, covered)].mean)
