"""Conformance: genbench's numbers equal torch-fidelity's and independent computations, and behave as metrics should."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import torch_fidelity

from genbench.datasets.base import DataInfo, LoadedData
from genbench.errors import GenbenchError
from genbench.hyper import build
from genbench.metrics import backbones
from genbench.metrics.backbones import DomainFeatureExtractor, resolve_backbone
from genbench.metrics.base import EvalContext
from genbench.metrics.domain import ClassCoverage, ConditionalAccuracy
from genbench.metrics.features import ImageBytes, to_uint8
from genbench.metrics.fidelity import FID, KID, RNG_SEED, InceptionScore, PrecisionRecall
from genbench.metrics.reconstruction import ELBO, ReconstructionError
from genbench.models.base import Capability
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.data import load_data

from .conftest import TinyModel

N = 300


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data("digits", Path("unused"))


def protocol(cache_dir: Path, **kw: object) -> Protocol:
    return Protocol("digits", ("fid",), **{"eval_samples": N, "cache_dir": cache_dir, **kw})  # type: ignore[arg-type]


def context(digits: LoadedData, proto: Protocol, samples: torch.Tensor, model=None, labels=None) -> EvalContext:  # type: ignore[no-untyped-def]
    model = model or TinyModel(build(TinyModel.Hyper, {}, "tiny"), digits.info)
    ref = digits.split("test").head(proto.n_reference(len(digits.split("test"))))
    return EvalContext(model, digits, samples, ref, proto, torch.device("cpu"), 0, labels)


def near_real(digits: LoadedData, n: int = N) -> torch.Tensor:
    """A stand-in generator: real training digits with a little noise."""
    g = torch.Generator().manual_seed(1)
    x = digits.split("train").x[:n]
    return (x + 0.1 * torch.rand(x.shape, generator=g)).clamp(0, 1)


def domain_features(proto: Protocol, digits: LoadedData, images: torch.Tensor, layer: str) -> np.ndarray:
    backbone = resolve_backbone("domain", proto, digits)
    net = DomainFeatureExtractor("genbench-domain", [layer], backbone.weights_path).eval()
    with torch.no_grad():
        (features,) = net(to_uint8(images, rgb=False))
    return features.double().numpy()


def reference_fid(a: np.ndarray, b: np.ndarray) -> float:
    """FID from its definition with scipy's matrix square root (independent of torch-fidelity)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def reference_kid(a: np.ndarray, b: np.ndarray, subsets: int, size: int) -> float:
    """Unbiased MMD² with k(x, y) = (x.y / d + 1)^3, averaged over subsets drawn like torch-fidelity draws them."""
    rng = np.random.RandomState(RNG_SEED)
    d = a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), size, replace=False)]
        y = b[rng.choice(len(b), size, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3), ((y @ y.T / d + 1) ** 3), ((x @ y.T / d + 1) ** 3)
        m = size
        values.append(
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
        )
    return float(np.mean(values))


def test_fid_and_kid_equal_independent_computations(digits: LoadedData, cache_dir: Path) -> None:
    proto = protocol(cache_dir, kid_subsets=20, kid_subset_size=100)
    samples = near_real(digits)
    ctx = context(digits, proto, samples)
    fid = FID().compute(ctx)["fid_domain"]
    kid = KID().compute(ctx)["kid_domain"]
    a = domain_features(proto, digits, samples, "penultimate")
    b = domain_features(proto, digits, ctx.reference.x, "penultimate")
    assert fid == pytest.approx(reference_fid(a, b), rel=1e-6)
    # torch-fidelity evaluates the KID kernel in float32 (as genbench, identical to a direct call, does):
    # against this float64 reference, agreement is to float32 precision.
    assert kid == pytest.approx(reference_kid(a, b, 20, 100), rel=1e-4)


def test_every_metric_equals_a_direct_torch_fidelity_call(digits: LoadedData, cache_dir: Path) -> None:
    proto = protocol(cache_dir, kid_subsets=20, kid_subset_size=100, isc_splits=5)
    samples = near_real(digits)
    ctx = context(digits, proto, samples)
    ours = {}
    for metric in (FID(), KID(), PrecisionRecall(), InceptionScore()):
        ours.update(metric.compute(ctx))
    backbone = resolve_backbone("domain", proto, digits)
    direct = torch_fidelity.calculate_metrics(
        input1=ImageBytes(to_uint8(samples, False)), input2=ImageBytes(to_uint8(ctx.reference.x, False)),
        fid=True, kid=True, prc=True, isc=True, feature_extractor="genbench-domain",
        feature_extractor_weights_path=backbone.weights_path, feature_layer_fid="penultimate",
        feature_layer_kid="penultimate", feature_layer_prc="penultimate", feature_layer_isc="logits",
        kid_subsets=20, kid_subset_size=100, isc_splits=5, cuda=False, cache=False, verbose=False, save_cpu_ram=True,
    )  # fmt: skip
    pairs = {
        "fid_domain": "frechet_inception_distance",
        "kid_domain": "kernel_inception_distance_mean",
        "kid_domain_std": "kernel_inception_distance_std",
        "precision_domain": "precision",
        "recall_domain": "recall",
        "f_score_domain": "f_score",
        "isc_domain": "inception_score_mean",
        "isc_domain_std": "inception_score_std",
    }
    for ours_key, tf_key in pairs.items():
        assert ours[ours_key] == pytest.approx(direct[tf_key], rel=1e-6), ours_key


def test_metrics_do_not_depend_on_the_extraction_batch_size(digits: LoadedData, cache_dir: Path) -> None:
    import shutil

    samples = near_real(digits)
    results = []
    for batch in (7, 256):
        shutil.rmtree(cache_dir / "reference", ignore_errors=True)  # the reference is extracted again too
        proto = protocol(cache_dir, eval_batch_size=batch, kid_subsets=10, kid_subset_size=100)
        ctx = context(digits, proto, samples)
        values = {}
        for metric in (FID(), KID(), PrecisionRecall(), InceptionScore()):
            values.update(metric.compute(ctx))
        results.append(values)
    for key in results[0]:
        # Features agree to float32 rounding; KID (float32 kernel, near zero) gets an absolute tolerance.
        tolerance = {"abs": 1e-4} if key.startswith("kid") else {"rel": 1e-5, "abs": 1e-9}
        assert results[0][key] == pytest.approx(results[1][key], **tolerance), key


def test_precision_and_recall_are_not_swapped(digits: LoadedData, cache_dir: Path) -> None:
    """Samples that are real zeros and ones only: all of them look real (high precision), most data is missed."""
    train = digits.split("train")
    assert train.y is not None
    partial = train.x[(train.y == 0) | (train.y == 1)][:N]
    values = PrecisionRecall().compute(context(digits, protocol(cache_dir), partial))
    assert values["precision_domain"] > 0.8
    assert values["recall_domain"] < 0.5


def test_fid_orders_real_data_before_noise(digits: LoadedData, cache_dir: Path) -> None:
    proto = protocol(cache_dir)
    real = FID().compute(context(digits, proto, digits.split("train").x[:N]))["fid_domain"]
    noise = FID().compute(context(digits, proto, torch.rand(N, 1, 8, 8)))["fid_domain"]
    assert 0 <= real < noise / 10


def test_class_coverage_detects_mode_collapse(digits: LoadedData, cache_dir: Path) -> None:
    proto = protocol(cache_dir)
    train = digits.split("train")
    assert train.y is not None
    full = ClassCoverage().compute(context(digits, proto, train.x[:N]))
    sevens = ClassCoverage().compute(context(digits, proto, train.x[train.y == 7][:N]))
    assert full["classes_covered"] == 10 and full["class_kl"] < 0.05
    assert sevens["classes_covered"] == 1 and sevens["class_kl"] > 1.5  # about log(10)
    assert ClassCoverage().better("class_kl") == "lower" and ClassCoverage().better("classes_total") is None


def test_conditional_accuracy_and_its_applicability(digits: LoadedData, cache_dir: Path) -> None:
    train = digits.split("train")
    assert train.y is not None
    labels = train.y[:N]
    good = ConditionalAccuracy().compute(context(digits, protocol(cache_dir), train.x[:N], labels=labels))
    shuffled = ConditionalAccuracy().compute(context(digits, protocol(cache_dir), train.x[:N], labels=labels.roll(1)))
    assert good["conditional_accuracy"] > 0.9 and shuffled["conditional_accuracy"] < 0.3
    reason = ConditionalAccuracy().not_applicable(get_registry().model("gan"), digits.info)
    assert reason is not None and "conditional" in reason
    assert Capability.CONDITIONAL not in get_registry().model("gan").capabilities


def test_a_cached_domain_classifier_without_this_recipe_is_trained_again(
    digits: LoadedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry an older genbench cached (no recipe) is replaced; a given file has no recipe, only its hash."""
    trained: list[int] = []

    def train(dataset: LoadedData, seed: int = 0) -> tuple[backbones.DomainClassifier, float]:
        trained.append(seed)
        return backbones.DomainClassifier(1, 10), 0.5

    monkeypatch.setattr(backbones, "train_domain_classifier", train)
    path = backbones.domain_weights_path(tmp_path, "digits", digits.fingerprint)
    old = backbones.DomainClassifier(1, 10)
    backbones.atomic_torch_save({"config": old.config, "state_dict": old.state_dict(), "accuracy": 0.9}, path)
    proto = protocol(tmp_path)
    fresh = backbones.DomainBackbone().resolve(proto, digits)
    assert trained == [0] and fresh.facts["domain_accuracy"] == 0.5
    assert fresh.recipe == backbones.domain_recipe(digits) and fresh.recipe["data"] == digits.fingerprint
    assert torch.load(path, weights_only=True)["recipe"] == fresh.recipe
    assert backbones.DomainBackbone().resolve(proto, digits).tag == fresh.tag and trained == [0]  # reused now
    given = backbones.DomainBackbone().resolve(protocol(tmp_path, backbone_weights=(("domain", path),)), digits)
    assert given.recipe is None and given.tag == fresh.tag


def test_applicability_of_metrics() -> None:
    points = DataInfo("toy2d", (2,), "points", 8)
    gan, vae = get_registry().model("gan"), get_registry().model("vae")
    assert "image" in (FID().not_applicable(gan, points) or "")
    assert ReconstructionError().not_applicable(gan, DataInfo("d", (1, 8, 8), "image"))
    assert ELBO().not_applicable(vae, DataInfo("d", (1, 8, 8), "image")) is None
    assert "labelled" in (ClassCoverage().not_applicable(gan, DataInfo("u", (1, 8, 8), "image", None)) or "")


def test_feature_layer_is_explicit_and_validated(digits: LoadedData, cache_dir: Path) -> None:
    samples = near_real(digits)
    default = FID().compute(context(digits, protocol(cache_dir), samples))["fid_domain"]
    logits = FID().compute(context(digits, protocol(cache_dir, feature_layer="logits"), samples))["fid_domain"]
    assert default != pytest.approx(logits, rel=1e-3)  # the layer changes the number: it must be recorded
    with pytest.raises(GenbenchError, match=r"--feature-layer 'pool3': backbone 'domain' has no such layer; valid:"):
        FID().prepare(protocol(cache_dir, feature_layer="pool3"), digits)


def test_kid_subset_larger_than_the_samples_is_refused(digits: LoadedData, cache_dir: Path) -> None:
    with pytest.raises(GenbenchError, match=r"--kid-subset-size 500 is larger than the samples compared"):
        KID().prepare(protocol(cache_dir, kid_subset_size=500), digits)
    assert protocol(cache_dir).kid_subset(300) == 300  # default: torch-fidelity's 1000, capped


def test_user_reference_statistics(digits: LoadedData, cache_dir: Path, tmp_path: Path) -> None:
    samples = near_real(digits)
    ctx = context(digits, protocol(cache_dir), samples)
    cached = FID().compute(ctx)["fid_domain"]
    ref = next(iter(ctx.memo.values())).reference["penultimate"]
    np.savez(tmp_path / "stats.npz", mu=ref.mu, sigma=ref.sigma)
    ctx2 = context(digits, protocol(cache_dir, reference_stats=tmp_path / "stats.npz"), samples)
    assert FID().compute(ctx2)["fid_domain"] == pytest.approx(cached, rel=1e-9)
    np.savez(tmp_path / "bad.npz", mu=np.zeros(5), sigma=np.eye(5))
    ctx3 = context(digits, protocol(cache_dir, reference_stats=tmp_path / "bad.npz"), samples)
    with pytest.raises(GenbenchError, match="statistics have dimension 5, the features have 128"):
        FID().compute(ctx3)


def test_reconstruction_error_matches_a_direct_computation(digits: LoadedData, cache_dir: Path) -> None:
    cls = get_registry().model("ae")
    torch.manual_seed(0)
    model = cls(build(cls.Hyper, {}, "ae"), digits.info).eval()
    ctx = context(digits, protocol(cache_dir), torch.rand(10, 1, 8, 8), model)
    value = ReconstructionError().compute(ctx)["recon_mse"]
    with torch.no_grad():
        expected = float((model.reconstruct(ctx.reference.x) - ctx.reference.x).pow(2).mean())
    assert value == pytest.approx(expected, rel=1e-5)


def test_inception_backbone_offline_fails_before_training_with_how_to(
    digits: LoadedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    class Offline:
        INPUT_IMAGE_SIZE = 299

        def __init__(self, *args: object, **kwargs: object) -> None:
            raise urllib.error.URLError("no network")

        @staticmethod
        def get_default_feature_layer_for_metric(metric: str) -> str:
            return "2048"

    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "inception-v3-compat", Offline)
    proto = Protocol("digits", ("fid",), backbones=("inception",), cache_dir=tmp_path)
    with pytest.raises(GenbenchError) as info:
        FID().prepare(proto, digits)
    message = str(info.value)
    assert "\n" not in message and "--backbone-weights inception=PATH" in message
    assert "'domain' backbone works offline" in message
    missing = Protocol("digits", ("fid",), backbones=("inception",), backbone_weights=(("inception", tmp_path / "x"),))
    with pytest.raises(GenbenchError, match=r"--backbone-weights inception=.*: no such file"):
        FID().prepare(missing, digits)


def test_kid_with_subsets_as_large_as_both_sets_is_computed_once_and_exactly(
    digits: LoadedData, cache_dir: Path
) -> None:
    """Subsets of all 300 samples are all the same set: one is exact, the spread is 0 (not rounding noise)."""
    proto = protocol(cache_dir)  # default subset size: min(1000, 300, 300) = 300
    samples = near_real(digits)
    ctx = context(digits, proto, samples)
    values = KID().compute(ctx)
    backbone = resolve_backbone("domain", proto, digits)
    direct = torch_fidelity.calculate_metrics(
        input1=ImageBytes(to_uint8(samples, False)), input2=ImageBytes(to_uint8(ctx.reference.x, False)),
        kid=True, feature_extractor="genbench-domain", feature_extractor_weights_path=backbone.weights_path,
        feature_layer_kid="penultimate", kid_subset_size=300, cuda=False, cache=False, verbose=False,
        save_cpu_ram=True,
    )  # fmt: skip
    # torch-fidelity's 100 "subsets" are permutations of the same set: they differ by float32 summation order.
    assert values["kid_domain"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-4)
    assert direct["kernel_inception_distance_std"] < 1e-4 * abs(direct["kernel_inception_distance_mean"])
    assert values["kid_domain_std"] == 0.0
