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
  to a minute; cached on disk by PyTorch). torch.compile cannot differentiate twice, so
  models that do (an R1 penalty, ``r1 > 0``; WGAN-GP's gradient penalty) fail with
  ``--compile`` (torch's message says "double backward"). On a CPU, compiling needs a C++
  compiler; without one genbench stops before training and says so.
* ``--channels-last`` stores 4-D weights and the training images channels-last, which
  lets cuDNN use its faster convolution kernels on recent GPUs (no effect on MLPs).
* ``--cuda-graphs`` captures the WHOLE training step (``model.train_step(x, y)``: every
  forward, backward and optimiser step of every network) as one CUDA graph and replays it
  for each mini-batch: one launch instead of hundreds, which is what a tiny, launch-bound
  network needs (:class:`GraphedStep`, PyTorch's "whole network capture"). Graphing each
  network call instead (``torch.compile(mode="reduce-overhead")``,
  ``make_graphed_callables``) does not fit a GAN step, which calls its networks several
  times and keeps outputs across calls that a replay of the same graph overwrites; one
  graph of the whole step has no such reuse. The first :data:`WARM_UP_STEPS` steps run
  eagerly on a side stream (they are real steps: the number of optimiser steps is the eager
  loop's), then the step is captured and every later step copies its batch into the
  graph's input buffers, replays, and keeps a copy of the logged scalars (still no host
  synchronisation). Each optimiser is made ``capturable`` (its step count lives on the
  device). Only for models that declare :attr:`GenerativeModel.graph_safe` (the same device
  work on every call), on CUDA, with fp32 or bf16: fp16's loss scaling reads a value per
  step and skips steps, which a graph cannot, and ``--compile`` cannot run inside a capture.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any
from typing import Protocol as Interface

import torch

from genbench.datasets.base import Split
from genbench.errors import GenbenchError, choices
from genbench.models.base import GenerativeModel
from genbench.protocol import Protocol

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


def check_fast_path(protocol: Protocol, device: torch.device, models: Sequence[type[GenerativeModel]] = ()) -> None:
    """Refuse, before any work, a precision the device lacks, a compile that cannot work here, or
    ``--cuda-graphs`` where it cannot work (``models``: the classes of the models to train)."""
    if protocol.cuda_graphs:
        check_cuda_graphs(protocol, device, models)
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


def check_cuda_graphs(protocol: Protocol, device: torch.device, models: Sequence[type[GenerativeModel]]) -> None:
    """``--cuda-graphs``: the options it cannot go with first (known whatever the machine), then the models, then
    the device."""
    if protocol.precision == "fp16":
        raise GenbenchError(
            "--cuda-graphs with --precision fp16: fp16's loss scaling (GradScaler) reads a value and may skip the "
            "optimiser step every step, which a CUDA graph cannot replay; use --precision bf16 or fp32"
        )
    if protocol.compile:
        raise GenbenchError(
            "--cuda-graphs with --compile: torch.compile cannot compile inside a CUDA graph capture; use "
            "--cuda-graphs (the whole step as one graph: tiny, launch-bound nets) or --compile, not both"
        )
    unsafe = [m.name for m in models if not m.graph_safe]
    if unsafe:
        from genbench.plugins import get_registry  # here: the registry imports the run package

        safe = [name for name, entry in get_registry().models.items() if entry.cls.graph_safe]
        raise GenbenchError(
            f"--cuda-graphs: model {unsafe[0]!r} is not graph-safe (its class does not declare graph_safe = True, "
            f"see docs/plugins.md); graph-safe: {choices(safe)}"
        )
    if device.type != "cuda":
        raise GenbenchError(
            f"--cuda-graphs needs a CUDA device; --device {protocol.device} is {device.type} here "
            "(use --device cuda on a machine with a GPU, or leave --cuda-graphs out)"
        )


def autocast(protocol: Protocol, device: torch.device, cache: bool = True) -> Callable[[], AbstractContextManager[Any]]:
    """A factory of the context that ``train_step`` and ``sample`` run in: autocast, or nothing for fp32.

    ``cache=False`` for a CUDA graph capture: autocast's cache of cast weights must not outlive it."""
    dtype = DTYPES.get(protocol.precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype, cache_enabled=cache)


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


# -- --cuda-graphs: the whole training step as one CUDA graph --------------------------------------------------
Logs = Mapping[str, torch.Tensor]
Step = Callable[[torch.Tensor, torch.Tensor | None], Logs]
WARM_UP_STEPS = 3  # eager steps before the capture (autograd, cuDNN and the optimisers' state get set up)


class GraphBackend(Interface):
    """The CUDA calls :class:`GraphedStep` makes; tests pass a stand-in that runs on a CPU."""

    def warm_up(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Run ``fn`` eagerly (on a side stream, as PyTorch asks before a capture) and return its outputs."""
        ...

    def capture(self, fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        """Record ``fn`` as a graph (running nothing); return its replay and its outputs, which each replay rewrites."""
        ...


class CudaGraphs:
    """:class:`GraphBackend` on CUDA: ``torch.cuda.graph`` and a side stream for the warm-up."""

    def __init__(self) -> None:
        self.stream: torch.cuda.Stream | None = None

    def warm_up(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        self.stream = self.stream or torch.cuda.Stream()
        self.stream.wait_stream(torch.cuda.current_stream())  # the batch copied on the current stream
        with torch.cuda.stream(self.stream):
            out = fn()
        torch.cuda.current_stream().wait_stream(self.stream)  # the loop reads the logs on the current stream
        return out

    def capture(self, fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = fn()
        return graph.replay, out


def model_optimizers(model: torch.nn.Module) -> Iterator[tuple[str, torch.optim.Optimizer]]:
    """Every optimiser the model holds, with the attribute that holds it: attributes of the model and of its
    sub-modules, directly or in a list, tuple or dict (each optimiser once)."""
    seen: set[int] = set()
    for prefix, module in model.named_modules():
        for name, value in vars(module).items():
            held = value.values() if isinstance(value, dict) else value if isinstance(value, list | tuple) else [value]
            for item in held:
                if isinstance(item, torch.optim.Optimizer) and id(item) not in seen:
                    seen.add(id(item))
                    yield (f"{prefix}.{name}" if prefix else name), item


def make_capturable(model: GenerativeModel) -> list[torch.optim.Optimizer]:
    """Set ``capturable=True`` on every optimiser of ``model`` (its step count then lives on the device, which a
    captured step can advance); refuse an optimiser class that has no such option."""
    optimizers = []
    for name, optimizer in model_optimizers(model):
        if not all("capturable" in group for group in optimizer.param_groups):
            raise GenbenchError(
                f"--cuda-graphs: model {model.name!r} optimises with {type(optimizer).__name__} (attribute {name!r}), "
                "which cannot be captured in a CUDA graph (no capturable option; Adam, AdamW, RMSprop, ... have "
                "one); leave --cuda-graphs out for this model"
            )
        for group in optimizer.param_groups:
            group["capturable"] = True
        optimizers.append(optimizer)
    return optimizers


class GraphedStep:
    """``model.train_step`` run eagerly :data:`WARM_UP_STEPS` times, then captured once and replayed.

    Called like ``train_step``: each call copies the batch into the graph's input buffers (device to
    device), replays, and returns copies of the logged scalars (a later replay rewrites the graph's own
    outputs). The capture itself runs nothing: the step that captures also replays, so the number of
    optimiser steps is the number of calls, as in the eager loop. ``autocast`` must not cache
    (:func:`autocast` with ``cache=False``).
    """

    def __init__(
        self,
        model: GenerativeModel,
        autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
        backend: GraphBackend | None = None,
        warm_up_steps: int = WARM_UP_STEPS,
    ) -> None:
        self.model, self.autocast = model, autocast
        self.backend = backend if backend is not None else CudaGraphs()
        self.warm_up_steps = warm_up_steps
        self.optimizers = make_capturable(model)  # before the first step creates their state
        self.calls = 0
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.replay: Callable[[], None] | None = None
        self.logs: dict[str, torch.Tensor] = {}

    def _step(self) -> dict[str, torch.Tensor]:
        assert self.x is not None  # the input buffers exist from the first call on
        with self.autocast():
            return dict(self.model.train_step(self.x, self.y))

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> Logs:
        if self.x is None:
            self.x, self.y = torch.empty_like(x), None if y is None else torch.empty_like(y)  # keeps channels_last
        static_x, static_y = self.x, self.y
        if (x.shape, None if y is None else y.shape) != (static_x.shape, None if static_y is None else static_y.shape):
            raise ValueError(
                f"--cuda-graphs replays one batch shape; got {tuple(x.shape)} after {tuple(static_x.shape)}"
            )
        static_x.copy_(x)
        if y is not None and static_y is not None:
            static_y.copy_(y)
        self.calls += 1
        if self.calls <= self.warm_up_steps:
            return self.backend.warm_up(self._step)
        if self.replay is None:
            for optimizer in self.optimizers:  # the gradients the capture makes come from the graph's memory pool
                optimizer.zero_grad(set_to_none=True)
            self.model.zero_grad(set_to_none=True)
            self.replay, self.logs = self.backend.capture(self._step)
        self.replay()
        return {k: v.clone() for k, v in self.logs.items()}


def training_step(
    model: GenerativeModel, protocol: Protocol, device: torch.device
) -> tuple[Step, Callable[[], AbstractContextManager[Any]]]:
    """The step the training loop calls and the context it calls it in: ``model.train_step`` under
    :func:`autocast`, or with ``--cuda-graphs`` a :class:`GraphedStep` (which applies autocast itself, while
    it warms up and captures; a replay needs none)."""
    if not protocol.cuda_graphs:
        return model.train_step, autocast(protocol, device)
    return GraphedStep(model, autocast(protocol, device, cache=False)), contextlib.nullcontext
