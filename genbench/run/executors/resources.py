"""CPU cores, threads per worker and GPUs: the numbers executors plan with, and their checks.

PyTorch's intra-op threads spin-wait for each other, so two workers with two threads each
on two cores made a cell dozens of times slower than one worker with one. The rule here:
``workers x threads <= cores``, with ``threads = max(1, cores // workers)``, lowered to
``$OMP_NUM_THREADS`` when that is set, and no more CPU workers than cores. ``--threads N``
(:mod:`genbench.threads`) sets each worker's threads when it fits that rule and is refused
when it does not. The executor hands its choice and the reason to each cell
(``CellSpec.threads``, ``threads_reason``), which records them like a serial cell's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from genbench.errors import GenbenchError
from genbench.threads import env_threads, usable_cores

# Set in a worker's environment before it imports torch (and numpy/scipy's BLAS), to its torch threads.
# TORCHINDUCTOR_COMPILE_THREADS: --compile's pool of C++/Triton compile workers, one per core by default
# in EVERY process, so two workers on two cores ran three g++ at once; 1 compiles in the worker itself.
COMPILE_THREADS = "TORCHINDUCTOR_COMPILE_THREADS"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", COMPILE_THREADS)


def limit_compile_threads(threads: int) -> None:
    """Give torch.compile ``threads`` compile workers in this process, for a worker that imported torch
    before it knew its share of the cores (a reused Ray worker): the environment variable for a config
    not read yet, the config itself when torch's inductor already read it."""
    os.environ[COMPILE_THREADS] = str(threads)
    config: Any = sys.modules.get("torch._inductor.config")
    if config is not None:
        config.compile_threads = threads


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's share)."""
    return usable_cores()


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """``max(1, cores // workers)``, at most ``$OMP_NUM_THREADS``: workers x threads never exceed the cores."""
    threads = max(1, (cores or cpu_cores()) // max(1, workers))
    cap = env_threads()
    return min(threads, cap) if cap else threads


def plan_threads(
    requested: int | None, workers: int, who: str, cores: int | None = None, default_workers: bool = False
) -> tuple[int, str]:
    """Torch threads for each of ``workers`` workers of executor ``who``, and the reason the records keep.

    ``requested`` (``--threads``) is taken when ``workers x requested`` fits the cores (or is 1:
    a worker cannot have fewer); otherwise a one-line GenbenchError names the largest that fits
    (and, with ``default_workers``, that the workers are the default count: the user gave no --workers).
    """
    cores = cores or cpu_cores()
    fits = max(1, cores // max(1, workers))
    if requested is not None:
        if requested > fits:
            default = " (the default: one per core)" if default_workers else ""
            raise GenbenchError(
                f"--threads {requested} with {workers} {who} worker{'s' * (workers != 1)}{default}: "
                f"{workers * requested} "
                f"threads on {cores} CPU core(s) would oversubscribe them; valid: 1 to {fits} (or leave --threads out)"
            )
        return requested, f"--threads {requested}"
    threads = threads_per_worker(workers, cores)
    cap = env_threads()
    capped = f", OMP_NUM_THREADS={cap}" if cap is not None and cap < fits else ""
    return threads, f"{who}: {workers} workers on {cores} cores{capped}"


def check_cpu_workers(workers: int, cores: int | None = None) -> None:
    """Refuse more CPU worker processes than cores (each needs one to itself)."""
    cores = cores or cpu_cores()
    if workers > cores:
        raise GenbenchError(
            f"--workers {workers}: more workers than the {cores} CPU core(s) here would oversubscribe them "
            f"(each worker needs a core); valid: 1 to {cores}, or GPU cells with --gpus"
        )


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_gpus(gpus: tuple[int, ...], device: str) -> None:
    """Every index in ``--gpus`` names a GPU of this machine, and the cells may run on a GPU."""
    count = gpu_count()
    shown = ",".join(str(g) for g in gpus)
    if count == 0:
        raise GenbenchError(f"--gpus {shown}: this machine has no CUDA GPU; leave --gpus out to run on the CPU")
    for g in gpus:
        if not 0 <= g < count:
            raise GenbenchError(f"--gpus {shown}: there is no GPU {g}; valid: 0 to {count - 1} ({count} GPU(s) here)")
    if len(set(gpus)) != len(gpus):
        raise GenbenchError(f"--gpus {shown}: a GPU is given twice; use --cells-per-gpu to put several cells on one")
    if device == "cpu" or (device.startswith("cuda:") and device != "cuda"):
        raise GenbenchError(f"--gpus {shown} with --device {device}: use --device auto or cuda with --gpus")


def visible_gpu(index: int) -> str:
    """The ``CUDA_VISIBLE_DEVICES`` entry of GPU ``index`` as this process numbers it (its own
    ``CUDA_VISIBLE_DEVICES`` maps indices to devices when it is set)."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    return visible[index] if "CUDA_VISIBLE_DEVICES" in os.environ and index < len(visible) else str(index)
