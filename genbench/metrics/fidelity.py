"""torch-fidelity's metrics as genbench plugins: FID, KID, Inception Score, precision/recall.

Every value is computed by torch-fidelity's own functions (``kid_features_to_metric``,
``isc_features_to_metric``, ``prc_features_to_metric``) on features its extractors produce
(:mod:`genbench.metrics.features`), once per backbone of the protocol: keys end in the
backbone name (``fid_domain``, ``kid_inception``). FID is torch-fidelity's formula
(``fid_statistics_to_metric``, the same numpy operations) with genbench's guards
(:func:`genbench.metrics.frechet.frechet_distance`: float64, an imaginary matrix square
root is an error instead of being dropped).

torch-fidelity (and torchvision with it) is imported when a metric is prepared or
computed, not with this module: ``genbench list`` needs the classes, not the library.
"""

from __future__ import annotations

from typing import Literal

from genbench.datasets.base import DataInfo, LoadedData
from genbench.errors import GenbenchError
from genbench.metrics.base import EvalContext, Metric
from genbench.metrics.frechet import frechet_distance
from genbench.protocol import Protocol

RNG_SEED = 2020  # torch-fidelity's default subset/shuffle seed: numbers match a direct torch-fidelity call
STD_SUFFIX = "_std"  # spread over KID subsets / IS splits: informational, never ranked


class FidelityMetric(Metric):
    """Shared part: validate backbones and layers before training, rank ``*_std`` keys as informational."""

    def backbones(self, protocol: Protocol) -> tuple[str, ...]:
        return protocol.backbones

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        from genbench.metrics.backbones import resolve_backbone
        from genbench.metrics.features import layers_for

        facts: dict[str, object] = {}
        for name in protocol.backbones:
            backbone = resolve_backbone(name, protocol, dataset)
            layers_for(backbone, protocol)  # an unknown --feature-layer fails here, before training
            facts.update(backbone.facts)
        return facts

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        return None if key.endswith(STD_SUFFIX) else super().better(key)

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (0.0, None) if key.endswith(STD_SUFFIX) else self.value_bounds

    value_bounds: tuple[float | None, float | None] = (None, None)  # of the keys that are not a spread


class FID(FidelityMetric):
    """Fréchet distance between generated and reference features (lower is better)."""

    name = "fid"
    description = "Frechet distance per backbone (torch-fidelity's formula, float64, guarded): fid_<backbone>"
    higher_is_better = False
    value_bounds = (0.0, None)  # a distance

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        facts = super().prepare(protocol, dataset)
        if protocol.reference_stats is not None and len(protocol.backbones) != 1:
            raise GenbenchError("--reference-stats: give exactly one --backbone (the statistics' feature space)")
        if protocol.reference_stats is not None:  # a broken file fails here, before training
            from genbench.metrics.refcache import load_user_stats

            load_user_stats(protocol.reference_stats, None)
        return facts

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from genbench.metrics.features import backbone_features
        from genbench.metrics.refcache import load_user_stats, statistics

        out = {}
        for name in ctx.protocol.backbones:
            f = backbone_features(ctx, name)
            generated = f.generated[f.main_layer]
            mu, sigma = statistics(generated)
            ref = f.reference[f.main_layer]
            ref_mu, ref_sigma = ref.mu, ref.sigma
            if ctx.protocol.reference_stats is not None:
                ref_mu, ref_sigma = load_user_stats(ctx.protocol.reference_stats, generated.shape[1])
            out[f"fid_{name}"] = frechet_distance(mu, sigma, ref_mu, ref_sigma, f"fid_{name}")
        return out


class KID(FidelityMetric):
    """Kernel distance (unbiased MMD² with a cubic polynomial kernel) averaged over random subsets."""

    name = "kid"
    description = "kernel distance per backbone (torch-fidelity): kid_<backbone>, spread kid_<backbone>_std"
    higher_is_better = False
    value_bounds = (None, None)  # the unbiased MMD² estimate is negative when the two sets are close

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        n_ref = protocol.n_reference(len(dataset.split(protocol.reference_split)))
        size = protocol.kid_subset(n_ref)
        if size > min(protocol.eval_samples, n_ref):
            raise GenbenchError(
                f"--kid-subset-size {size} is larger than the samples compared ({protocol.eval_samples} generated, "
                f"{n_ref} reference); use at most {min(protocol.eval_samples, n_ref)} or raise --eval-samples"
            )
        if size < 2:
            raise GenbenchError(f"--kid-subset-size {size}: KID needs subsets of at least 2 samples")
        return super().prepare(protocol, dataset)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

        from genbench.metrics.features import backbone_features

        out = {}
        n_ref = len(ctx.reference)
        for name in ctx.protocol.backbones:
            f = backbone_features(ctx, name)
            generated, reference = f.generated[f.main_layer], f.reference[f.main_layer].features
            size = ctx.protocol.kid_subset(n_ref)
            # Subsets are drawn without replacement: when they are as large as both sample sets, every
            # subset holds every sample and gives the same MMD. One is then exact and 100x cheaper, and
            # the spread over subsets is truly 0 (torch-fidelity would report float32 rounding noise).
            exhaustive = size == len(generated) == len(reference)
            subsets = 1 if exhaustive else ctx.protocol.kid_subsets
            result = kid_features_to_metric(
                generated, reference, kid_subsets=subsets, kid_subset_size=size, rng_seed=RNG_SEED, verbose=False
            )
            out[f"kid_{name}"] = float(result[KEY_METRIC_KID_MEAN])
            out[f"kid_{name}{STD_SUFFIX}"] = float(result[KEY_METRIC_KID_STD])
        return out


class InceptionScore(FidelityMetric):
    """Inception Score on a backbone's class logits: Inception's, or the domain classifier's (classifier IS)."""

    name = "isc"
    description = "Inception Score on class logits (torch-fidelity): isc_inception, or isc_domain (classifier IS)"
    higher_is_better = True
    value_bounds = (1.0, None)  # exp(mean KL divergence), KL >= 0 (at most the number of classes)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

        from genbench.metrics.features import backbone_features

        out = {}
        for name in ctx.protocol.backbones:
            f = backbone_features(ctx, name)
            if f.logits is None:
                continue  # e.g. VGG16, CLIP, DINOv2 features have no classes
            result = isc_features_to_metric(
                f.logits[0], splits=ctx.protocol.isc_splits, shuffle=True, rng_seed=RNG_SEED
            )
            out[f"isc_{name}"] = float(result[KEY_METRIC_ISC_MEAN])
            out[f"isc_{name}{STD_SUFFIX}"] = float(result[KEY_METRIC_ISC_STD])
        if not out:
            got = ", ".join(ctx.protocol.backbones)
            raise GenbenchError(f"IS needs a backbone with class logits ('domain' or 'inception'); got {got}")
        return out


class PrecisionRecall(FidelityMetric):
    """Improved precision and recall (Kynkäänniemi et al. 2019) and their F-score, k nearest neighbours.

    Precision: share of generated samples inside the real data's manifold (quality).
    Recall: share of real samples inside the generated manifold (coverage).
    """

    name = "prc"
    description = "precision, recall and F-score per backbone (torch-fidelity): precision_<backbone>, ..."
    higher_is_better = True
    value_bounds = (0.0, 1.0)  # shares of samples

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        n_ref = protocol.n_reference(len(dataset.split(protocol.reference_split)))
        n = min(protocol.eval_samples, n_ref)
        if protocol.prc_neighborhood >= n:  # the k-th neighbour of a sample among the others needs k < n
            raise GenbenchError(
                f"--prc-neighborhood {protocol.prc_neighborhood}: must be smaller than the samples compared "
                f"({protocol.eval_samples} generated, {n_ref} reference); use at most {n - 1}"
            )
        return super().prepare(protocol, dataset)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from torch_fidelity.metric_prc import (
            KEY_METRIC_F_SCORE,
            KEY_METRIC_PRECISION,
            KEY_METRIC_RECALL,
            prc_features_to_metric,
        )

        from genbench.metrics.features import backbone_features

        out = {}
        for name in ctx.protocol.backbones:
            f = backbone_features(ctx, name)
            result = prc_features_to_metric(
                f.generated[f.main_layer], f.reference[f.main_layer].features,  # generated first, then real
                prc_neighborhood=ctx.protocol.prc_neighborhood, prc_batch_size=10000, save_cpu_ram=True,
                verbose=False,
            )  # fmt: skip
            out[f"precision_{name}"] = float(result[KEY_METRIC_PRECISION])
            out[f"recall_{name}"] = float(result[KEY_METRIC_RECALL])
            out[f"f_score_{name}"] = float(result[KEY_METRIC_F_SCORE])
        return out
