"""Phase timing: wall clock, CUDA-synchronised, with peak memory."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from genbench.protocol import PhaseTiming


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so the clock measures it (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: peak allocated since the last reset. CPU: the process's peak resident set size."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@contextmanager
def timed(device: torch.device, excluded: Callable[[], float] | None = None) -> Iterator[PhaseTiming]:
    """Time the body; the yielded PhaseTiming is filled in on exit (set ``.items`` inside).

    ``excluded()``, read on exit, is the time inside the body that belongs to another phase
    (figures and the quality curve drawn between epochs): it is left out of this one.
    """
    timing = PhaseTiming(seconds=0.0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    start = time.perf_counter()
    try:
        yield timing
    finally:
        synchronize(device)
        timing.seconds = time.perf_counter() - start - (excluded() if excluded is not None else 0.0)
        timing.peak_mem_mb = peak_memory_mb(device)


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is an error."""
    from genbench.errors import GenbenchError

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise GenbenchError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    try:
        return torch.device(requested)
    except RuntimeError:
        raise GenbenchError(f"--device {requested!r} is not a device; valid: 'auto', 'cpu', 'cuda'") from None
