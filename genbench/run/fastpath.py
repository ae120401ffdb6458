"""The fast path: mixed precision, torch.compile and channels_last, opt-in and recorded.

Tiny networks on a GPU are bound by kernel launches and host round trips, not arithmetic.
What genbench always does: the training split is resident on the device and batches are
drawn there by indexing (no per-step host-to-device copy), per-step losses stay on the
device and are read once per epoch (no host synchronisation inside the loop; see
:mod:`genbench.run.train`). What these options add (``Protocol.precision``, ``compile``,
``channels_last``; every record carries them because each can change the numbers):

* ``--precision bf16|fp16`` runs ``train_step`` and ``sample`` under ``torch.autocast``
  (weights and optimiser state stay fp32; metrics are computed in fp32 on fp32 samples).
  fp16 needs loss scaling: the harness gives the model a ``torch.amp.GradScaler``, which
  :meth:`genbench.models.GenerativeModel.update` applies (every built-in model but
  ``vaegan`` updates through it). A model that calls ``loss.backward()`` itself trains in
  fp16 without loss scaling, and its record is flagged ``fp16_unscaled``. The scaler reads
  one value per optimiser step to skip steps with overflowed gradients: that is a host
  synchronisation per step, which bf16 (no scaler) does not have.
* ``--compile`` compiles each top-level network of the model (``module.compile()``, so
  checkpoints keep their keys). The first steps of each shape pay for compiling (seconds
  to a minute; cached on disk by PyTorch). torch.compile cannot differentiate twice, so a
  cell whose model does (an R1 penalty, ``r1 > 0``; WGAN-GP's gradient penalty: see
  :meth:`genbench.models.GenerativeModel.double_backward`) would fail every step; genbench
  refuses it before training. On a CPU, compiling needs a C++ compiler; without one
  genbench stops before training and says so.
* ``--channels-last`` stores 4-D weights and the training images channels-last, which
  lets cuDNN use its faster convolution kernels on recent GPUs (no effect on MLPs).

CUDA graphs (``torch.compile(mode="reduce-overhead")``) are not used: a GAN step calls its
networks several times and keeps outputs across calls, which CUDA graph replays overwrite.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch

from genbench.datasets.base import DataKind, Split
from genbench.errors import GenbenchError, choices
from genbench.hyper import build
from genbench.models.base import GenerativeModel
from genbench.protocol import CellSpec, Protocol

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
UNSCALED_FLAG = "fp16_unscaled: the model's train_step does not update through GenerativeModel.update (no loss scaling)"


def supported_precisions(device: torch.device) -> tuple[str, ...]:
    """The ``--precision`` values ``device`` can run: fp32 always, bf16/fp16 where autocast has them."""
    out = ["fp32"]
    if device.type == "cuda":
        try:
            bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # older torch: no including_emulation
            bf16 = torch.cuda.is_bf16_supported()
        out += ["bf16"] if bf16 else []
        out.append("fp16")
    elif device.type == "cpu":
        out += ["bf16", "fp16"]  # CPU autocast runs both (bf16 fast only with AVX512-BF16/AMX)
    return tuple(out)


def check_fast_path(protocol: Protocol, device: torch.device) -> None:
    """Refuse, before any work, a precision the device lacks or a compile that cannot work here."""
    valid = supported_precisions(device)
    if protocol.precision not in valid:
        raise GenbenchError(
            f"--precision {protocol.precision}: not supported on {device} here; valid: {choices(valid)}"
        )
    if protocol.compile and device.type == "cpu" and not any(shutil.which(cc) for cc in ("c++", "g++", "clang++")):
        raise GenbenchError(
            "--compile on the CPU needs a C++ compiler (g++ or clang++) for torch.compile; install one "
            "or leave --compile out"
        )


def check_compile_cells(
    cells: Iterable[CellSpec], model_class: Callable[[str], type[GenerativeModel]], kind: DataKind
) -> None:
    """Under ``--compile``, refuse the first cell whose model differentiates a gradient with its
    hyper-parameters (torch.compile cannot: every step would fail with torch's "double backward")."""
    for cell in cells:
        if not cell.protocol.compile:
            continue
        cls = model_class(cell.model)
        why = cls.double_backward(build(cls.Hyper, dict(cell.hyper), f"model {cell.model!r}", kind))
        if why:
            raise GenbenchError(
                f"--compile: model {cell.model!r} takes a gradient of a gradient ({why}), which torch.compile "
                "cannot differentiate; leave --compile out"
            )


def autocast(protocol: Protocol, device: torch.device) -> Callable[[], AbstractContextManager[Any]]:
    """A factory of the context that ``train_step`` and ``sample`` run in: autocast, or nothing for fp32."""
    dtype = DTYPES.get(protocol.precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def prepare_model(model: GenerativeModel, protocol: Protocol, device: torch.device) -> None:
    """Apply the fast path to a model that is already on ``device``: memory format, loss scaling, compile."""
    if protocol.channels_last:
        model.to(memory_format=torch.channels_last)
    if protocol.precision == "fp16":
        model.grad_scaler = torch.amp.GradScaler(device.type)
    if protocol.compile:
        for child in model.children():
            if any(True for _ in child.parameters()):
                child.compile()


def prepare_split(split: Split, protocol: Protocol) -> Split:
    """The training split in the memory format the model expects (images channels-last with --channels-last)."""
    if protocol.channels_last and split.x.dim() == 4:
        return Split(split.x.contiguous(memory_format=torch.channels_last), split.y)
    return split


def fast_path_flags(model: GenerativeModel, protocol: Protocol) -> list[str]:
    """``fp16_unscaled`` when fp16 trained a model that never updated through the scaler."""
    if protocol.precision == "fp16" and model.grad_scaler is not None and not model.scaled_updates:
        return [UNSCALED_FLAG]
    return []
