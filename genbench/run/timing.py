"""Phase timing: wall clock, CUDA-synchronised, the process's CPU time, and peak memory."""

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
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        synchronize(device)
        other = excluded() if excluded is not None else 0.0
        timing.seconds = time.perf_counter() - start - other
        # the other phase's work is taken out of the CPU time too, at its wall time (figures run on one core)
        timing.cpu_seconds = max(0.0, time.process_time() - cpu_start - other)
        timing.peak_mem_mb = peak_memory_mb(device)


def resolve_device(requested: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; a device this machine lacks is a one-line error.

    torch accepts names of devices it was not built for, or that are not here (``mps`` on Linux,
    ``cuda:3`` with one GPU, ``meta`` that holds no data): every cell would fail on them, so they are
    refused before any work.
    """
    from genbench.errors import GenbenchError, choices

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise GenbenchError(f"--device {requested!r} is not a device; valid: {choices(available_devices())}") from None
    here = f"valid here: {choices(available_devices())}"
    if device.type == "cpu":
        return device
    if device.type not in ("cuda", "mps", "xpu"):
        raise GenbenchError(f"--device {requested}: genbench cannot train on it; {here}")
    name = device.type.upper() if device.type != "cuda" else "CUDA"
    count = _device_count(device.type)
    if count == 0:
        raise GenbenchError(f"--device {requested}: no {name} device is available here; {here}")
    if device.index is not None and device.index >= count:
        raise GenbenchError(f"--device {requested}: this machine has {count} {name} device(s); {here}")
    return device


def _device_count(kind: str) -> int:
    """How many devices of ``kind`` (cuda, mps, xpu) this process can use."""
    if kind == "cuda":
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    if kind == "mps":
        return int(torch.backends.mps.is_available())
    xpu = getattr(torch, "xpu", None)
    return int(xpu.device_count()) if xpu is not None and xpu.is_available() else 0


def available_devices() -> list[str]:
    """``auto``, ``cpu`` and every accelerator here (``cuda``, ``cuda:0``, ..., ``mps``, ``xpu``)."""
    out = ["auto", "cpu"]
    for kind in ("cuda", "xpu"):
        count = _device_count(kind)
        out += [kind, *(f"{kind}:{i}" for i in range(count))] if count else []
    return out + (["mps"] if _device_count("mps") else [])
