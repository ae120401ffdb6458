"""The sample contract: what ``GenerativeModel.sample`` must return, checked before any metric sees it.

Metrics trust the samples they are given. FID converts images to 8-bit pixels, clamping
to [0, 1] first, so a model whose "images" lie in [-25, 25] would be scored as if it
drew saturated black-and-white images, and was once scored better than a correct
model. Every cell's samples are therefore checked here, right after sampling:

1. ``sample(m, labels)`` returns a ``torch.Tensor`` of exactly ``m`` samples, the count
   asked for (for a conditional model: one sample per label given);
2. of shape ``(m, *data.shape)``;
3. with a floating dtype (converted to float32 for the metrics);
4. every value finite;
5. images: every value in [0, 1], within :data:`IMAGE_TOLERANCE` (1e-3). Points (kind
   ``points``) are unbounded reals, with no range.

A violation of rules 1-3 or 5 is a bug in the model: the cell is ``failed`` with the
rule and the values seen (``samples out of range [0, 1] (tolerance 1e-3): min -25.0,
max 25.0``). A violation of rule 4 is divergence, as a NaN loss is: NaN or infinite
samples come from a model whose numbers blew up, and the cell is ``diverged``.

The tolerance admits the float error of the usual output layers (a sigmoid, ``(tanh +
1) / 2``, ``x * std + mean``), a few units of 1e-7 in float32, and is a quarter of one
8-bit grey level (1/255), so clamping a value within it changes no pixel FID sees.
Values within the tolerance are passed to the metrics as the model returned them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError
from genbench.models.base import GenerativeModel
from genbench.run.train import Diverged

IMAGE_TOLERANCE = 1e-3


class ContractError(Exception):
    """A model's samples break the sample contract; the cell is ``failed`` with this message."""


def check_batch(out: object, m: int, info: DataInfo, conditional: bool = False) -> torch.Tensor:
    """Rules 1-3 for one call ``sample(m)``: a floating tensor of shape ``(m, *info.shape)``."""
    call = f"sample({m}{', labels' if conditional else ''})"
    if not isinstance(out, torch.Tensor):
        raise ContractError(f"samples: {call} returned {type(out).__name__}, not a torch.Tensor")
    if out.ndim == 0 or out.shape[0] != m:
        got = "a 0-dim tensor" if out.ndim == 0 else f"{out.shape[0]} samples"
        per_label = " (one per label given)" if conditional else ""
        raise ContractError(f"samples: {call} returned {got}; expected {m}{per_label}")
    expected = (m, *info.shape)
    if tuple(out.shape) != expected:
        raise ContractError(f"samples of shape {tuple(out.shape)}; expected {expected} (n, *shape of {info.name!r})")
    if not out.is_floating_point():
        raise ContractError(f"samples of dtype {out.dtype}; expected a floating dtype")
    return out


def check_values(samples: torch.Tensor, info: DataInfo) -> None:
    """Rules 4 and 5 over all of a cell's samples: finite, and images in [0, 1]."""
    finite = torch.isfinite(samples)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise Diverged(f"samples: {bad} of {samples.numel()} values are NaN or infinite")
    if info.kind == "image" and samples.numel():
        lo, hi = float(samples.min()), float(samples.max())
        if lo < -IMAGE_TOLERANCE or hi > 1 + IMAGE_TOLERANCE:
            raise ContractError(
                f"samples out of range [0, 1] (tolerance {IMAGE_TOLERANCE:g}): min {round(lo, 6)}, max {round(hi, 6)}"
            )


SAMPLE_BATCH = 500  # samples per sample() call when drawing many


def draw_samples(
    model: GenerativeModel,
    n: int,
    labels: torch.Tensor | None,
    info: DataInfo,
    check: Callable[[], None] | None = None,
) -> torch.Tensor:
    """``n`` samples on the CPU, drawn in batches in eval mode and held to the sample contract.

    ``check`` is called before every batch (the cell's time limit).
    """
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, n, SAMPLE_BATCH):
            if check is not None:
                check()
            m = min(SAMPLE_BATCH, n - i)
            lab = None if labels is None else labels[i : i + m].to(model.device)
            batch = check_batch(model.sample(m, lab), m, info, conditional=lab is not None)
            out.append(batch.float().cpu())
    samples = torch.cat(out)
    check_values(samples, info)
    return samples


def one_line(exc: BaseException) -> str:
    """An exception as one line for a record: its type and first line (a GenbenchError: its text alone;
    one without a message: its type alone)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, GenbenchError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
