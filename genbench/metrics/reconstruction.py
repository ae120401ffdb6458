"""Model-specific figures: reconstruction error (AE, VAE) and ELBO (VAE), on the reference split."""

from __future__ import annotations

from collections.abc import Callable

import torch

from genbench.datasets.base import DataInfo
from genbench.metrics.base import EvalContext, Metric
from genbench.models.base import Capability

BATCH = 500


def batched_mean(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, device: torch.device) -> float:
    """Mean over examples of a per-example quantity, computed in batches on ``device``."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, x.shape[0], BATCH):
            total += float(fn(x[i : i + BATCH].to(device)).double().sum())
    return total / x.shape[0]


class ReconstructionError(Metric):
    """Mean squared error per value between reference examples and their reconstructions."""

    name = "recon_mse"
    description = "mean squared reconstruction error on the reference split (AE, VAE)"
    higher_is_better = False
    requires = frozenset({Capability.RECONSTRUCT})
    data_kinds = frozenset({"image", "points"})

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        return (0.0, None)  # a mean of squares (the ELBO has no bound that holds for every likelihood)

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        def per_example(x: torch.Tensor) -> torch.Tensor:
            return (ctx.model.reconstruct(x) - x).pow(2).flatten(1).mean(1)

        return {self.name: batched_mean(per_example, ctx.reference.x, ctx.device)}


class ELBO(Metric):
    """Mean evidence lower bound per example in nats (one reparameterised sample)."""

    name = "elbo"
    description = "mean ELBO per example on the reference split, nats (VAE)"
    higher_is_better = True
    requires = frozenset({Capability.ELBO})
    data_kinds = frozenset({"image", "points"})

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        return {self.name: batched_mean(ctx.model.elbo, ctx.reference.x, ctx.device)}
