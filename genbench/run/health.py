"""Training-health flags: what a careful reader of the loss curves and samples would notice.

A cell can finish ``ok`` and still be useless. Two failure modes of GANs are
flagged in the record (``flags``), in ``results.csv`` and in the table's status
column, so they are not mistaken for results:

- ``d_wins``: the discriminator wins outright, its loss near zero over a whole
  epoch, so the generator gets no useful gradient (Arjovsky & Bottou 2017). It reads
  the logged ``loss_d`` (epoch mean below 0.01) of models whose discriminator loss
  is >= 0 and near 0 only when D wins: see :func:`d_wins_applies` and
  ``GenerativeModel.d_wins_flag``.
- ``collapse``: the samples cover far fewer classes (or 2-D modes) than the data.

Divergence is not a flag: it stops the cell, marked ``diverged`` with the reason.
:func:`loss_problem` is the rule for losses, checked after every epoch: an epoch mean
of any logged value that is NaN, infinite, or above :data:`LOSS_LIMIT` (1e6) in
magnitude. The limit is conservative: the largest loss genbench's models log when
healthy is a VAE's summed per-example BCE, about 2,100 nats at the start on CIFAR-10
(3,072 values), while a learning rate a thousand times too large gives epoch means of
1e7 to 1e15 in its first epoch (``gan`` with ``lr=10`` on digits: ``loss_d`` 3e7). A
plugin must therefore not log counters that can pass 1e6. The training loop also
stops when a weight (parameter or floating-point buffer) becomes NaN or infinite, and
the cell stops ``diverged`` when its samples are not finite or a sampler or metric
fails numerically (a failed Cholesky factorisation, a NaN or complex FID).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

D_WINS_LOSS = 0.01  # an epoch-mean discriminator loss below this: D separates real from fake perfectly
COLLAPSE_FRACTION = 0.5  # covering fewer than half of the data's classes or modes is collapse
SATURATING_LOSSES = ("bce", "hinge")  # losses bounded below by 0, where "near zero" means D has won
LOSS_LIMIT = 1e6  # an epoch mean beyond this in magnitude: the loss exploded


def loss_problem(epoch: int, means: Mapping[str, float]) -> str | None:
    """Why an epoch's logged means show divergence (NaN, infinite, or beyond LOSS_LIMIT), or None."""
    for key, value in means.items():
        if not math.isfinite(value):
            return f"loss {key!r} became {value} in epoch {epoch}"
    exploded = ", ".join(f"{key} {value:.3g}" for key, value in means.items() if abs(value) > LOSS_LIMIT)
    if exploded:
        return f"losses exploded in epoch {epoch} (limit: |epoch mean| <= {LOSS_LIMIT:g}): {exploded}"
    return None


def d_wins_applies(history: Sequence[Mapping[str, float]], hyper: Mapping[str, Any], declared: bool | None) -> bool:
    """Whether ``loss_d`` near zero means D won: the model's declaration (``GenerativeModel.d_wins_flag``),
    else its ``loss`` hyper-parameter (bce or hinge), else the history (a loss that went negative is no
    saturating loss: a Wasserstein critic's)."""
    if declared is not None:
        return declared
    if "loss" in hyper:
        return str(hyper["loss"]) in SATURATING_LOSSES
    return all(h.get("loss_d", 0.0) >= 0 for h in history)


def training_flags(
    history: Sequence[Mapping[str, float]], hyper: Mapping[str, Any], declared: bool | None = None
) -> list[str]:
    """Flags read off the per-epoch loss history; ``declared`` is the model's ``d_wins_flag``."""
    if not d_wins_applies(history, hyper, declared):
        return []  # e.g. a Wasserstein critic's loss is unbounded: "near zero" means nothing there
    epochs = [i for i, h in enumerate(history, 1) if "loss_d" in h and abs(h["loss_d"]) < D_WINS_LOSS]
    if not epochs:
        return []
    span = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]} ({len(epochs)})"
    return [f"d_wins: discriminator loss < {D_WINS_LOSS} over {span}"]


def evaluation_flags(metrics: Mapping[str, float]) -> list[str]:
    """Flags read off the metrics: classes (domain classifier) or 2-D modes covered."""
    flags = []
    for covered, total, what in (
        ("classes_covered", "classes_total", "classes"),
        ("modes_covered", "modes_total", "modes"),
    ):
        if covered in metrics and metrics.get(total, 0) > 0 and metrics[covered] < COLLAPSE_FRACTION * metrics[total]:
            flags.append(f"collapse: {metrics[covered]:.0f}/{metrics[total]:.0f} {what} covered")
    return flags
