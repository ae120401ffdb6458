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

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from genbench.datasets.base import Split
from genbench.models.base import GenerativeModel
from genbench.run.health import loss_problem

EpochCallback = Callable[[int, dict[str, float]], None]
StepCallback = Callable[[int, int, int], None]  # (epoch, steps done in it, steps per epoch)
POINTS_PER_EPOCH = 10  # loss-curve points per epoch (the history keeps one mean per epoch)
STEP_REPORT_S = 0.5  # on_step is called at most this often
# Exceptions that mean the numbers blew up rather than that the code is wrong: a Cholesky
# factorisation or an eigen-solver that fails on a matrix of huge or degenerate values
# (numpy's class is scipy.linalg's too), a float overflow. Raised while sampling or by a
# metric, they make the cell ``diverged`` with the reason, not ``failed``.
NUMERICAL_ERRORS: tuple[type[Exception], ...] = (
    torch.linalg.LinAlgError,
    np.linalg.LinAlgError,
    FloatingPointError,
    OverflowError,
)


class Diverged(Exception):
    """Training or evaluation blew up numerically; the cell is marked ``diverged`` with this reason.

    See :mod:`genbench.run.health` for the rules: a NaN, infinite or exploded loss, a
    non-finite weight, non-finite samples, a numerical failure in a sampler or metric.
    """


def numerical_reason(exc: BaseException) -> str:
    """One line for a numerical failure (torch's LinAlgError class is called ``_LinAlgError``)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, Diverged):
        return text
    name = "LinAlgError" if isinstance(exc, torch.linalg.LinAlgError) else type(exc).__name__
    return f"{name}: {text}" if text else name


def nonfinite_weight(model: torch.nn.Module) -> str | None:
    """The first parameter or floating-point buffer holding a NaN or infinity, or None (one device read)."""
    named = [
        (f"{kind} {name!r}", t)
        for kind, (name, t) in itertools.chain(
            (("parameter", x) for x in model.named_parameters()), (("buffer", x) for x in model.named_buffers())
        )
        if t.is_floating_point()
    ]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t).all() for _, t in named]).cpu()
    return None if bool(finite.all()) else named[int((~finite).nonzero()[0, 0])][0]


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
    check: Callable[[], None] | None = None,
    on_step: StepCallback | None = None,
    autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    step: Callable[[torch.Tensor, torch.Tensor | None], Mapping[str, torch.Tensor]] | None = None,
) -> TrainResult:
    """Train ``model`` for ``epochs`` on ``data`` (already on the model's device).

    ``result`` may be passed in so that, if training raises (divergence, a plugin
    bug), the caller still holds the history of the epochs that finished.
    ``check`` is called before every step and may raise to stop training (the
    cell's time limit). After every epoch training stops with :class:`Diverged`
    when a logged mean breaks :func:`genbench.run.health.loss_problem` or a weight is
    no longer finite; an epoch whose means are finite is kept in the history.
    Each step runs inside ``autocast()`` (``--precision``, :mod:`genbench.run.fastpath`) and calls
    ``step`` (``model.train_step`` unless given: ``--cuda-graphs`` gives a replayed CUDA graph of it).
    """
    result = result if result is not None else TrainResult()
    step = step if step is not None else model.train_step
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
            if check is not None:
                check()
            idx = perm[i * bs : (i + 1) * bs]
            y = data.y[idx] if data.y is not None else None
            with autocast():
                logs.append(dict(step(data.x[idx], y)))
            if on_step is not None and time.monotonic() >= next_report:
                on_step(epoch, i + 1, steps)
                next_report = time.monotonic() + STEP_REPORT_S
        means, points = epoch_log(logs)
        result.images_seen += steps * bs
        if all(math.isfinite(v) for v in means.values()):
            result.history.append(means)  # an exploded epoch is kept (curves.png shows it), a NaN one is not
            result.steps += [
                {"step": (epoch - 1) * steps + end, "epoch": epoch - 1 + end / steps, **values}
                for end, values in points
            ]
        problem = loss_problem(epoch, means)
        if problem is not None:
            raise Diverged(problem)
        weight = nonfinite_weight(model)
        if weight is not None:
            raise Diverged(f"{weight} became NaN or infinite in epoch {epoch}")
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
