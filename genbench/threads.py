"""How many threads torch computes with, and why genbench does not take torch's default.

torch's default is one intra-op thread per core, and the OpenMP runtime its CPU
wheels use (libgomp) lets idle threads spin at every barrier. On a quiet machine
that is the fastest setting. On a busy one it collapses: when another process holds
a core, one of our threads is descheduled and the others spin until it comes back,
step after step. Measured on a shared 2-core machine at load ~7, a 1-epoch DCGAN
took 46.6 s with two threads and 1.3 s with one; beside a single other two-thread
torch process a whole run was 1.4x slower (``benchmarks/bench_threads.py`` repeats
the comparison, see ``benchmarks/README.md``).

So genbench chooses, for every cell (load changes during a grid):

* ``--threads N`` when given (:class:`genbench.run.runner.RunRequest` ``threads``);
* in a worker of a parallel executor (``--executor process`` or ``ray``), the share of
  the cores the executor gave each worker (``max(1, cores // workers)``, see
  :mod:`genbench.run.executors.resources`), so that workers x threads never exceed the cores;
* else ``$OMP_NUM_THREADS`` when the user set it (torch honours it too);
* else the cores this process may run on, less the cores that *other* processes kept busy since the last choice (read
  from ``/proc/stat`` minus this process's own CPU time; ``os.getloadavg`` where
  there is no ``/proc``), and at least 1. A machine kept busy by someone else
  therefore trains on one thread: never the collapse above, at most the speed of
  one core lost on a quiet machine that suddenly became busy.

The ``genbench`` command also sets ``OMP_WAIT_POLICY=PASSIVE`` (unless it is set)
before torch loads (:func:`prefer_passive_wait`): waiting threads then sleep
instead of spinning, which bounds the damage when load arrives in the middle of a
cell. It must be set before the OpenMP runtime starts, so a library user who wants
it sets it in the environment (``import torch`` reads it once).

torch is imported lazily here: the CLI calls :func:`prefer_passive_wait` before
anything loads torch.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass

from genbench.errors import GenbenchError

WAIT_POLICY = "OMP_WAIT_POLICY"
SLACK = 0.25  # background activity (a shell, an editor) below a quarter core does not cost a thread
MIN_WINDOW_S = 1.0  # a choice made within a second of the last measurement reuses it
FIRST_SAMPLE_S = 0.25  # the first choice of a process measures the machine for this long


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count of a cell and why: recorded in every record's ``environment``."""

    threads: int
    reason: str  # "--threads 2", "OMP_NUM_THREADS=1", "auto: 2 cores, 1.3 busy elsewhere"


@dataclass(frozen=True)
class CpuSample:
    """System-wide busy CPU seconds (over the cores we may use), our own CPU seconds, and the wall clock."""

    wall: float
    busy: float | None  # None where /proc/stat cannot be read
    own: float


def check_threads(threads: int | None) -> None:
    """``--threads`` must be None (automatic) or an integer >= 1."""
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise GenbenchError(f"--threads {threads}: must be an integer >= 1 (or leave it out for the automatic choice)")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _proc_stat_busy() -> float | None:
    """Busy CPU seconds since boot, summed over the cores in our affinity (None without /proc/stat)."""
    try:
        lines = open("/proc/stat", encoding="ascii").read().splitlines()  # noqa: SIM115 (a pseudo-file, read whole)
        cpus = os.sched_getaffinity(0)
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, AttributeError, ValueError):
        return None
    busy = 0
    seen = False
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
            continue
        # user nice system idle iowait irq softirq steal [guest guest_nice, already inside user/nice]
        values = [int(v) for v in fields[:8]]
        busy += sum(values) - values[3] - values[4]
        seen = True
    return busy / tick if seen else None


def sample() -> CpuSample:
    t = os.times()
    return CpuSample(time.monotonic(), _proc_stat_busy(), t.user + t.system)


def busy_between(a: CpuSample, b: CpuSample) -> float | None:
    """Cores that other processes kept busy between two samples (None when it cannot be told)."""
    span = b.wall - a.wall
    if a.busy is None or b.busy is None or span <= 0:
        return None
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / span)


class _Meter:
    """Measures how busy the rest of the machine is, over the time since the previous measurement."""

    def __init__(self) -> None:
        self.last: CpuSample | None = None
        self.busy: float = 0.0

    def busy_elsewhere(self) -> float:
        now = sample()
        if now.busy is None:  # no /proc/stat (macOS): the load average, ours included, is the best there is
            try:
                return max(0.0, os.getloadavg()[0] - 1.0)  # minus this process, which is about to compute
            except (AttributeError, OSError):
                return 0.0
        if self.last is None:
            time.sleep(FIRST_SAMPLE_S)
            self.last, now = now, sample()
        elif now.wall - self.last.wall < MIN_WINDOW_S:
            return self.busy
        measured = busy_between(self.last, now)
        self.last = now
        self.busy = measured if measured is not None else 0.0
        return self.busy


_METER = _Meter()


def auto_threads(cores: int, busy: float) -> int:
    """Threads for a process on ``cores`` cores while others keep ``busy`` cores busy."""
    return max(1, min(cores, math.floor(cores - busy + SLACK)))


def env_threads() -> int | None:
    """``$OMP_NUM_THREADS`` as a positive integer, or None when it is not set (or not one)."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def decide(requested: int | None, reason: str = "") -> ThreadChoice:
    """The thread count for the next cell, with the reason (see the module docstring for the policy).

    ``reason`` says why ``requested`` was chosen when it did not come from ``--threads`` (a parallel
    executor's share of the cores for each worker, :mod:`genbench.run.executors.resources`).
    """
    check_threads(requested)
    if requested is not None:
        return ThreadChoice(requested, reason or f"--threads {requested}")
    env = env_threads()
    if env is not None:
        return ThreadChoice(env, f"OMP_NUM_THREADS={env}")
    cores = usable_cores()
    busy = _METER.busy_elsewhere()
    return ThreadChoice(auto_threads(cores, busy), f"auto: {cores} cores, {busy:.1f} busy elsewhere")


def choose_threads(requested: int | None) -> int:
    """The thread count for the next cell: ``requested`` if given, else the automatic choice."""
    return decide(requested).threads


def apply_threads(n: int) -> int:
    """Make torch compute with ``n`` intra-op threads; return the count torch reports."""
    import torch

    check_threads(n)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return int(torch.get_num_threads())


def prefer_passive_wait() -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy; True if it can still take effect.

    The OpenMP runtime reads the variable once, when torch loads it: after ``import torch``
    this only reaches child processes.
    """
    os.environ.setdefault(WAIT_POLICY, "PASSIVE")
    return "torch" not in sys.modules
