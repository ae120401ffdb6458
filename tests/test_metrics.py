"""Metrics: FID through torch-fidelity equals an independent computation; model-specific figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from genbench.data import load_data
from genbench.errors import GenbenchError
from genbench.hyper import build
from genbench.metrics.backbones import DomainFeatureExtractor, resolve_backbone
from genbench.metrics.base import EvalContext
from genbench.metrics.fidelity import FID, to_uint8
from genbench.metrics.reconstruction import ELBO, ReconstructionError
from genbench.plugins import get_registry
from genbench.protocol import Protocol

from .conftest import TinyModel


@pytest.fixture(scope="module")
def digits():  # type: ignore[no-untyped-def]
    return load_data("digits", Path("unused"))


def context(digits, cache_dir: Path, samples: torch.Tensor, model=None) -> EvalContext:  # type: ignore[no-untyped-def]
    protocol = Protocol("digits", ("fid",), eval_samples=300, cache_dir=cache_dir)
    model = model or TinyModel(build(TinyModel.Hyper, {}, "tiny"), digits.info)
    return EvalContext(model, digits, samples, digits.split("test").head(300), protocol, torch.device("cpu"), 0)


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID from its definition with scipy's matrix square root (independent of torch-fidelity)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_fid_equals_independent_computation_on_the_same_features(digits, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    train = digits.split("train")
    samples = (train.x[:400] + 0.1 * torch.rand_like(train.x[:400])).clamp(0, 1)  # a near-real "generator"
    ctx = context(digits, cache_dir, samples)
    value = FID().compute(ctx)["fid_domain"]

    backbone = resolve_backbone("domain", ctx.protocol, digits)
    extractor = DomainFeatureExtractor("genbench-domain", ["penultimate"], backbone.weights_path).eval()
    with torch.no_grad():
        (fa,) = extractor(to_uint8(samples, rgb=False))
        (fb,) = extractor(to_uint8(ctx.reference.x, rgb=False))
    expected = reference_fid(fa.double().numpy(), fb.double().numpy())
    assert value == pytest.approx(expected, rel=1e-6)
    assert backbone.facts["domain_accuracy"] > 0.9


def test_fid_orders_real_data_before_noise_and_reuses_reference_stats(digits, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    real = FID().compute(context(digits, cache_dir, digits.split("train").x[:300]))["fid_domain"]
    noise = FID().compute(context(digits, cache_dir, torch.rand(300, 1, 8, 8)))["fid_domain"]
    assert 0 <= real < noise / 10
    cached = list((cache_dir / "fidelity").glob("genbench-digits-*"))
    assert cached, "reference statistics were not cached on disk"


def test_fid_does_not_apply_to_points_or_models_that_cannot_sample() -> None:
    from genbench.datasets.base import DataInfo

    reason = FID().not_applicable(get_registry().model("gan"), DataInfo("toy2d", (2,), "points", 8))
    assert reason is not None and "image" in reason
    assert ReconstructionError().not_applicable(get_registry().model("gan"), DataInfo("d", (1, 8, 8), "image"))
    assert ELBO().not_applicable(get_registry().model("vae"), DataInfo("d", (1, 8, 8), "image")) is None


def test_reconstruction_error_matches_a_direct_computation(digits, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cls = get_registry().model("ae")
    torch.manual_seed(0)
    model = cls(build(cls.Hyper, {}, "ae"), digits.info).eval()
    ctx = context(digits, cache_dir, torch.rand(10, 1, 8, 8), model)
    value = ReconstructionError().compute(ctx)["recon_mse"]
    with torch.no_grad():
        expected = float((model.reconstruct(ctx.reference.x) - ctx.reference.x).pow(2).mean())
    assert value == pytest.approx(expected, rel=1e-5)


def test_inception_backbone_offline_fails_before_training_with_how_to(
    digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import urllib.error

    import torch_fidelity

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch_fidelity, "FeatureExtractorInceptionV3", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    protocol = Protocol("digits", ("fid",), backbones=("inception",), cache_dir=tmp_path)
    with pytest.raises(GenbenchError) as info:
        FID().prepare(protocol, digits)
    message = str(info.value)
    assert "\n" not in message and "--inception-weights" in message and "'domain' backbone works offline" in message
    missing = Protocol("digits", ("fid",), backbones=("inception",), inception_weights=tmp_path / "nope.pth")
    with pytest.raises(GenbenchError, match=r"nope\.pth does not exist"):
        FID().prepare(missing, digits)
