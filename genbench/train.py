"""The harness's training loop: the same for every model.

Mini-batches are drawn by indexing tensors that live on the device (no
DataLoader workers, no host-to-device copy per step), the per-step scalars stay
on the device and are read once per epoch, so the loop costs about what a plain
hand-written PyTorch loop costs (see ``benchmarks/bench_overhead.py``).

Two finer views come at no extra device read: the loss curves get up to
``POINTS_PER_EPOCH`` points an epoch (``TrainResult.steps``: means over every
``ceil(steps / POINTS_PER_EPOCH)`` steps, computed from the same stacked
per-step values as the epoch means), and ``on_step`` says how far an epoch has
got, at most every ``STEP_REPORT_S`` seconds (a clock read per step, no sync).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from genbench.datasets.base import Split
from genbench.models.base import GenerativeModel

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[int, int, int], None]  # (epoch, steps done in it, steps per epoch)
POINTS_PER_EPOCH = 10  # loss-curve points per epoch (the history keeps one mean per epoch)
STEP_REPORT_S = 0.5  # on_step is called at most this often


class Diverged(Exception):
    """A loss became NaN or infinite; training stops and the cell is marked ``diverged``."""

    def __init__(self, epoch: int, key: str, value: float) -> None:
        super().__init__(f"loss {key!r} became {value} in epoch {epoch}")
        self.epoch = epoch


@dataclass
class TrainResult:
    history: list[dict[str, float]] = field(default_factory=list)
    images_seen: int = 0
    # Finer loss log for the curves: {"step": optimiser steps so far, "epoch": fractional epoch, key: mean, ...}
    steps: list[dict[str, float]] = field(default_factory=list)


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
    on_step: StepCallback | None = None,
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
    next_report = time.monotonic() + STEP_REPORT_S
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(n, generator=g).to(data.x.device, non_blocking=True)
        logs: list[dict[str, torch.Tensor]] = []
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            y = data.y[idx] if data.y is not None else None
            logs.append(dict(model.train_step(data.x[idx], y)))
            if on_step is not None and time.monotonic() >= next_report:
                on_step(epoch, i + 1, steps)
                next_report = time.monotonic() + STEP_REPORT_S
        means, points = epoch_log(logs)
        result.images_seen += steps * bs
        for key, value in means.items():
            if not math.isfinite(value):
                raise Diverged(epoch, key, value)
        result.history.append(means)
        result.steps += [
            {"step": (epoch - 1) * steps + end, "epoch": epoch - 1 + end / steps, **values} for end, values in points
        ]
        if on_epoch is not None:
            on_epoch(epoch, means)
    return result


def epoch_means(logs: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Average each logged scalar over the epoch with one device read per key."""
    return epoch_log(logs)[0]


def epoch_log(
    logs: list[dict[str, torch.Tensor]], points: int = POINTS_PER_EPOCH
) -> tuple[dict[str, float], list[tuple[int, dict[str, float]]]]:
    """The epoch mean of each logged scalar, and its means over consecutive runs of steps.

    The runs are ``ceil(steps / points)`` steps long (the last may be shorter); each is
    given as (steps done at its end, {key: mean}). One device read per key.
    """
    if not logs:
        return {}, []
    size = math.ceil(len(logs) / points)
    ends = [min(len(logs), start + size) for start in range(0, len(logs), size)]
    means: dict[str, float] = {}
    chunks: list[dict[str, float]] = [{} for _ in ends]
    for key in logs[0]:
        values = torch.stack([torch.as_tensor(s[key]) for s in logs]).float()
        parts = [values[start:end].mean() for start, end in zip([0, *ends[:-1]], ends, strict=True)]
        read = torch.stack([values.mean(), *parts]).tolist()  # the one read from the device
        means[key] = float(read[0])
        for chunk, value in zip(chunks, read[1:], strict=True):
            chunk[key] = float(value)
    return means, list(zip(ends, chunks, strict=True))
