"""The harness's training loop: the same for every model.

Mini-batches are drawn by indexing tensors that live on the device (no
DataLoader workers, no host-to-device copy per step), the per-step scalars stay
on the device and are read once per epoch, so the loop costs about what a plain
hand-written PyTorch loop costs (see ``benchmarks/bench_overhead.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from genbench.datasets.base import Split
from genbench.models.base import GenerativeModel

EpochCallback = Callable[[int, dict[str, float]], None]


class Diverged(Exception):
    """A loss became NaN or infinite; training stops and the cell is marked ``diverged``."""

    def __init__(self, epoch: int, key: str, value: float) -> None:
        super().__init__(f"loss {key!r} became {value} in epoch {epoch}")
        self.epoch = epoch


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    images_seen: int = 0


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Full batches only (batch-norm misbehaves on a last batch of one); at least one."""
    return max(1, n // batch_size)


def train(
    model: GenerativeModel,
    data: Split,
    epochs: int,
    batch_size: int,
    seed: int,
    on_epoch: EpochCallback | None = None,
    result: TrainResult | None = None,
) -> TrainResult:
    """Train ``model`` for ``epochs`` on ``data`` (already on the model's device).

    ``result`` may be passed in so that, if training raises (divergence, a plugin
    bug), the caller still holds the history of the epochs that finished.
    """
    result = result if result is not None else TrainResult()
    g = torch.Generator().manual_seed(seed)  # the batch order depends on the seed only
    n = len(data)
    bs = min(batch_size, n)
    steps = batches_per_epoch(n, bs)
    model.train()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g).to(data.x.device, non_blocking=True)
        logs: list[dict[str, torch.Tensor]] = []
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            y = data.y[idx] if data.y is not None else None
            logs.append(dict(model.train_step(data.x[idx], y)))
        means = epoch_means(logs)
        result.images_seen += steps * bs
        for key, value in means.items():
            if not math.isfinite(value):
                raise Diverged(epoch, key, value)
        result.history.append(means)
        if on_epoch is not None:
            on_epoch(epoch, means)
    return result


def epoch_means(logs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Average each logged scalar over the epoch with one device read per key."""
    if not logs:
        return {}
    return {key: float(torch.stack([torch.as_tensor(s[key]) for s in logs]).float().mean()) for key in logs[0]}
