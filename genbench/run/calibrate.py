"""Speed calibration: a fixed plain PyTorch workload, timed in the cell's process on the cell's device.

Absolute images per second mean nothing across machines: a CI runner is not the laptop a
baseline was made on. Every cell therefore times this one fixed workload as it starts (before
its time limit runs), on the same device and with the same torch threads (in the cell's own
process, so also when an executor runs cells elsewhere), and records it as the ``calibrate`` timing
(``calibrate_s``, ``calibrate_items_per_s`` in ``results.csv``). ``genbench check`` against a
baseline divides a side's speed figures by the median of its cells' calibrations
(:meth:`genbench.reporting.cellset.CellSet.calibration`): a ratio that travels between
machines far better than images per second. One timing is short and noisy (+-15% from cell
to cell on our busy 2-core machine, even in CPU time); the median over a run's cells is
stable to a few percent (``benchmarks/README.md``).

The workload is the same kind of loop as ``benchmarks/bench_overhead.py``'s plain loop: a
784-256-256-10 MLP with ReLU, cross-entropy and Adam, batches of 64 random inputs, forward,
backward and step, written against plain tensors so that no genbench code is in it. Its
weights and data come from a private generator (the global random streams that seed the
cells are not touched), a few warm-up steps are not timed, and the device is synchronised
before each clock read (:func:`genbench.run.timing.timed`). About 0.2-0.3 s on one CPU
thread; milliseconds on a GPU. Changing any constant below changes every ratio: bump
:data:`VERSION` (it is recorded, and ratios of different versions are never compared).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from genbench.protocol import PhaseTiming
from genbench.run.timing import timed

VERSION = 1  # of the workload below
WIDTHS = (784, 256, 256, 10)  # an MNIST-sized MLP classifier
BATCH = 64
WARMUP_STEPS = 4  # first steps allocate and pick kernels: not timed
STEPS = 64  # timed steps: 4,096 examples
# Recorded as ``environment["calibration"]`` in run.json and every record: ratios to different workloads never meet.
WORKLOAD = f"v{VERSION}: mlp {'-'.join(map(str, WIDTHS))} relu, adam, batch {BATCH}, {STEPS} steps"


def calibrate(device: torch.device) -> PhaseTiming:
    """Time the fixed workload on ``device``; ``items`` is the number of examples trained on."""
    g = torch.Generator().manual_seed(0)
    weights = [
        (torch.randn(a, b, generator=g) / a**0.5).to(device).requires_grad_() for a, b in itertools.pairwise(WIDTHS)
    ]
    batches = 8  # distinct batches, cycled: enough that no cache holds one step's input for the next
    x = torch.randn(batches, BATCH, WIDTHS[0], generator=g).to(device)
    y = torch.randint(0, WIDTHS[-1], (batches, BATCH), generator=g).to(device)
    opt = torch.optim.Adam(weights, lr=1e-3)

    def step(i: int) -> None:
        h = x[i % batches]
        for w in weights[:-1]:
            h = torch.relu(h @ w)
        loss = F.cross_entropy(h @ weights[-1], y[i % batches])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for i in range(WARMUP_STEPS):
        step(i)
    with timed(device) as t:
        for i in range(STEPS):
            step(i)
        t.items = STEPS * BATCH
    return t
