"""Metrics read off the domain classifier: class coverage (mode collapse) and conditional accuracy.

Both classify generated samples with the dataset's domain classifier (the
``domain`` backbone, trained once per dataset, see :mod:`genbench.metrics.backbones`),
whatever ``--backbone`` the FID uses. Its test accuracy is recorded with the
results: a metric is only as good as the classifier behind it.
"""

from __future__ import annotations

from typing import Literal

import torch

from genbench.datasets.base import DataInfo, LoadedData
from genbench.metrics.base import EvalContext, Metric
from genbench.models.base import Capability, GenerativeModel
from genbench.protocol import Protocol

# A class counts as covered when the samples hold at least this fraction of the share
# the reference data holds (0.1: a tenth of its expected share), so one stray
# misclassified sample does not count as covering a class.
COVERED_FRACTION = 0.1
EPS = 1e-6  # smoothing of empty histogram bins in the KL divergence


def histogram(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Share of examples predicted as each of the ``k`` classes."""
    return torch.bincount(logits.argmax(1), minlength=k).double() / logits.shape[0]


class DomainMetric(Metric):
    """Needs labelled images (a domain classifier exists only for those)."""

    def not_applicable(self, model: type[GenerativeModel], data: DataInfo) -> str | None:
        if data.kind == "image" and not data.num_classes:
            return f"{self.name} needs a labelled dataset; {data.name} has no classes"
        return super().not_applicable(model, data)

    def backbones(self, protocol: Protocol) -> tuple[str, ...]:
        return ("domain",)

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        from genbench.metrics.backbones import resolve_backbone  # torch-fidelity: imported when needed

        return dict(resolve_backbone("domain", protocol, dataset).facts)


class ClassCoverage(DomainMetric):
    """How many classes the samples cover, and the KL divergence of their class histogram to the data's.

    Mode collapse shows as few classes covered and a large ``class_kl``. Both
    histograms are the domain classifier's predictions (generated samples vs the
    reference split), so classifier errors affect both sides alike.
    """

    name = "coverage"
    description = "classes covered by the samples and KL(sample classes || data classes), domain classifier"
    higher_is_better = True

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        if key == "classes_covered":
            return "higher"
        return "lower" if key == "class_kl" else None  # classes_total is informational

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        if key in ("classes_covered", "classes_total"):
            return (0.0, float(data.num_classes or 0))
        return (0.0, None) if key == "class_kl" else (None, None)

    def integer(self, key: str) -> bool:
        return key in ("classes_covered", "classes_total")

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        from genbench.metrics.features import backbone_features

        f = backbone_features(ctx, "domain")
        assert f.logits is not None
        k = int(ctx.data.num_classes or 0)
        p_gen, p_ref = histogram(f.logits[0], k), histogram(f.logits[1], k)
        covered = int((p_gen >= COVERED_FRACTION * p_ref).logical_and(p_ref > 0).sum())
        q, p = p_ref.clamp_min(EPS), p_gen.clamp_min(EPS)
        kl = float((p * (p / q).log()).sum())
        return {"classes_covered": float(covered), "class_kl": kl, "classes_total": float(k)}


class ConditionalAccuracy(DomainMetric):
    """Share of samples that the domain classifier assigns to the class they were generated for."""

    name = "cond_acc"
    description = "conditional models: share of samples classified as the requested class"
    higher_is_better = True
    requires = frozenset({Capability.SAMPLE, Capability.CONDITIONAL})

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (0.0, 1.0)  # a share of samples

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        if ctx.sample_labels is None:
            raise ValueError("the samples carry no requested labels")
        from genbench.metrics.features import backbone_features

        f = backbone_features(ctx, "domain")
        assert f.logits is not None
        predicted = f.logits[0].argmax(1)
        return {"conditional_accuracy": float((predicted == ctx.sample_labels).double().mean())}
