"""Training-loop overhead: genbench's ``train()`` against plain PyTorch loops, side by side.

Every variant trains a fresh copy of the same built-in model (same seed, so the same
initial weights), on the same in-memory tensors, with the same batch order and the
same number of full batches per epoch. Only the loop around the model differs:

``harness``
    ``genbench.run.train.train(model, split, epochs, batch_size, seed)``: what
    ``genbench run`` does (per-epoch loss means, NaN check, history).
``plain``
    what a user writes around the same model API: ``torch.randperm`` from a seeded
    generator each epoch, slice full batches, call ``model.train_step(x, y)``. It
    logs nothing and never reads a value back from the device.
``plain-gan`` (``gan`` and ``dcgan`` with their default BCE recipe)
    a notebook GAN loop: the D and G updates written out with the model's own
    ``generator``, ``discriminator``, ``opt_d`` and ``opt_g`` (non-saturating BCE, tanh on
    G's images, the R1 penalty when ``r1 > 0``), without ``train_step`` and without its
    D(x)/D(G(z)) diagnostics.

Every round checks that all variants end with the same weights (bit for bit on a CPU): a
variant that does other work makes every ratio meaningless, so the script stops with exit
status 1 and says by how much they differ (this caught ``plain-gan`` after R1 became ``gan``'s
default: "differ by up to 276").

A warm-up round runs every variant once (not recorded); then ``--repeats`` rounds
each run every variant once, in alternating order (A B C, then C B A, ...) so
that slow drifts of a shared, noisy machine fall on every variant alike. Each run
is timed on its own, CUDA-synchronised before the clock is read on GPU; model
construction and the move to the device are outside the clock.

Reported per variant: median images/s; per round, the paired ratio of the
harness's throughput to the plain loop's (>1 means the harness was faster in that
round), summarised by its median, min and max. Nothing here asserts on time.

    python benchmarks/bench_overhead.py                       # gan on mnist5k, CPU or GPU
    python benchmarks/bench_overhead.py --models gan,dcgan --json overhead.json
    tox -e bench -- --models gan,dcgan,vae --device cuda
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import cpu_name, summary

from genbench.datasets.base import DataInfo, Split
from genbench.errors import GenbenchError
from genbench.hyper import build
from genbench.models.adversarial import AdversarialModel, BinaryGAN
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry
from genbench.run.data import load_data
from genbench.run.timing import resolve_device, synchronize
from genbench.run.train import batches_per_epoch, train

GOAL = 0.97  # harness/plain throughput the harness aims to stay above

Loop = Callable[[GenerativeModel, Split, int, int, int], int]  # returns the number of images trained on


# -- the loops under test ------------------------------------------------------------------


def harness_loop(model: GenerativeModel, data: Split, epochs: int, batch_size: int, seed: int) -> int:
    return train(model, data, epochs, batch_size, seed).images_seen


def plain_loop(model: GenerativeModel, data: Split, epochs: int, batch_size: int, seed: int) -> int:
    """A hand-written loop around ``train_step``: no logging, no device reads."""
    x_all, y_all = data.x, data.y
    n = x_all.shape[0]
    bs = min(batch_size, n)
    steps = max(1, n // bs)  # full batches only, as the harness does
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(x_all.device)
        for i in range(steps):
            idx = perm[i * bs : (i + 1) * bs]
            model.train_step(x_all[idx], None if y_all is None else y_all[idx])
    return epochs * steps * bs


def plain_gan_loop(model: GenerativeModel, data: Split, epochs: int, batch_size: int, seed: int) -> int:
    """A notebook GAN loop written against the model's networks and optimisers, not ``train_step``.

    It does the arithmetic of ``BinaryGAN.train_step`` with ``loss="bce"``, one D and one G update
    per batch and normal noise (the defaults; :func:`bench_model` offers it only then), in the same
    order: images mapped to [-1, 1], G's output through tanh, D on real then fake, the R1 penalty
    ``r1/2 * E||grad_x D(x)||^2`` on real data when ``r1 > 0``, then G's update on D(fake).
    """
    assert isinstance(model, AdversarialModel)
    G, D, opt_g, opt_d = model.generator, model.discriminator, model.opt_g, model.opt_d
    z_dim = model.hp.z_dim
    r1 = float(getattr(model.hp, "r1", 0.0))
    x_all = data.x
    device = x_all.device
    image = model.data.kind == "image"
    n = x_all.shape[0]
    bs = min(batch_size, n)
    steps = max(1, n // bs)
    ones = torch.ones(bs, device=device)
    zeros = torch.zeros(bs, device=device)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(device)
        for i in range(steps):
            real = x_all[perm[i * bs : (i + 1) * bs]]
            if image:
                real = real * 2 - 1  # generators emit [-1, 1]
            fake = G(torch.randn(bs, z_dim, device=device))
            if image:
                fake = torch.tanh(fake)  # D sees what sample() returns
            if r1:
                real = real.detach().requires_grad_(True)

            d_real = D(real)
            loss_d = F.binary_cross_entropy_with_logits(d_real, ones) + F.binary_cross_entropy_with_logits(
                D(fake.detach()), zeros
            )
            if r1:
                (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
                loss_d = loss_d + r1 / 2 * grad.pow(2).flatten(1).sum(1).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()

            loss_g = F.binary_cross_entropy_with_logits(D(fake), ones)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
    return epochs * steps * bs


class Diverged(Exception):
    """The variants of a round ended with different weights: they did not do the same work."""


class NullModel(GenerativeModel):
    """A model whose ``train_step`` costs nothing: timing a loop around it measures the loop alone."""

    name = "null"

    def __init__(self, info: DataInfo) -> None:
        super().__init__(build(GenerativeModel.Hyper, {}, "null"), info)
        self.weight = torch.nn.Parameter(torch.zeros(()))
        zero = torch.zeros(())
        self.out = {"loss_d": zero, "loss_g": zero, "d_x": zero, "d_g_z": zero}  # the four scalars a GAN returns

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return self.out

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


def loop_cost_us(
    data: Split, info: DataInfo, batch_size: int, device: torch.device, reps: int = 15
) -> dict[str, float]:
    """Microseconds per step of the harness loop and of the plain loop around :class:`NullModel` (best of ``reps``).

    The best of several runs estimates a fixed cost on a noisy machine; the difference between the two is
    what the harness adds to every training step, whatever the model.
    """
    model = NullModel(info).to(device)
    model.out = {k: v.to(device) for k, v in model.out.items()}
    bs = min(batch_size, len(data))
    epochs = 5
    steps = epochs * batches_per_epoch(len(data), bs)
    best = {"harness": float("inf"), "plain": float("inf")}
    loops: dict[str, Loop] = {"harness": harness_loop, "plain": plain_loop}
    for rep in range(reps + 1):
        for variant, loop in list(loops.items())[:: 1 if rep % 2 else -1]:
            synchronize(device)
            start = time.perf_counter()
            loop(model, data, epochs, bs, 0)
            synchronize(device)
            if rep:  # rep 0 warms up
                best[variant] = min(best[variant], (time.perf_counter() - start) / steps * 1e6)
    return best


# -- measurement ---------------------------------------------------------------------------


@dataclass
class Run:
    variant: str
    seconds: float
    cpu_seconds: float  # this process's CPU time (all threads) during the run
    images: int
    checksum: float  # sum of all trained parameters: equal across variants when they do the same work
    scale: float = 0.0  # sum of their absolute values: what a difference is measured against

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds


@dataclass
class ModelFigures:
    model: str
    dataset: str
    batch_size: int
    steps_per_epoch: int
    variants: list[str]
    rounds: list[dict[str, Run]] = field(default_factory=list)
    loop_us: dict[str, float] = field(default_factory=dict)  # per-step cost of each loop around NullModel

    def median_step_ms(self, variant: str) -> float:
        return statistics.median(r[variant].seconds / (r[variant].images / self.batch_size) for r in self.rounds) * 1e3

    def median_ips(self, variant: str) -> float:
        return statistics.median(r[variant].images_per_s for r in self.rounds)

    def ratios(self, variant: str, baseline: str) -> list[float]:
        return [r[variant].images_per_s / r[baseline].images_per_s for r in self.rounds]

    def max_checksum_diff(self) -> float:
        return max(abs(run.checksum - r[self.variants[0]].checksum) for r in self.rounds for run in r.values())


def fresh_model(
    cls: type[GenerativeModel], hyper: Any, info: DataInfo, seed: int, device: torch.device
) -> GenerativeModel:
    torch.manual_seed(seed)  # seeds CUDA too: every variant starts from the same weights and noise stream
    return cls(hyper, info).to(device)


def time_one(
    variant: str,
    loop: Loop,
    make: Callable[[], GenerativeModel],
    data: Split,
    epochs: int,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> Run:
    model = make()
    gc.collect()
    synchronize(device)
    cpu0 = time.process_time()
    start = time.perf_counter()
    images = loop(model, data, epochs, batch_size, seed)
    synchronize(device)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu0
    with torch.no_grad():
        checksum = float(sum(p.double().sum() for p in model.parameters()))
        scale = float(sum(p.double().abs().sum() for p in model.parameters()))
    return Run(variant, seconds, cpu_seconds, images, checksum, scale)


def diverged(runs: dict[str, Run], device: torch.device) -> str | None:
    """Why the variants of one round did not do the same work, or None.

    On a CPU the same arithmetic gives the same bits: any difference in the final weights means a
    loop does other work, and every ratio it gives is meaningless. On a GPU non-deterministic
    kernels may differ in the last bits: more than 1e-4 of the weights' absolute sum is divergence.
    """
    first = next(iter(runs.values()))
    allowed = 0.0 if device.type == "cpu" else 1e-4 * first.scale
    worst = max(runs.values(), key=lambda r: abs(r.checksum - first.checksum))
    diff = abs(worst.checksum - first.checksum)
    if diff <= allowed:
        return None
    return (
        f"final weights of {worst.variant!r} and {first.variant!r} differ by {diff:.3g} (allowed {allowed:.3g}): "
        "the loops do not do the same work, so their speed ratio means nothing; make the variants agree"
    )


def bench_model(
    name: str, dataset: str, split: Split, info: DataInfo, args: argparse.Namespace, device: torch.device
) -> ModelFigures:
    cls = get_registry().model(name)
    values: dict[str, Any] = {"epochs": args.epochs}
    if args.batch_size is not None:
        values["batch_size"] = args.batch_size
    hyper = build(cls.Hyper, values, name)
    bs = min(int(hyper.batch_size), len(split))
    loops: dict[str, Loop] = {"harness": harness_loop, "plain": plain_loop}
    same_recipe = (getattr(hyper, k, None) for k in ("loss", "d_steps", "g_steps", "noise"))
    if issubclass(cls, BinaryGAN) and tuple(same_recipe) == ("bce", 1, 1, "normal"):
        loops["plain-gan"] = plain_gan_loop
    figures = ModelFigures(name, dataset, bs, batches_per_epoch(len(split), bs), list(loops))

    def make() -> GenerativeModel:
        return fresh_model(cls, hyper, info, args.seed, device)

    order = list(loops)
    for rnd in range(args.repeats + 1):  # round 0 is the warm-up
        runs = {v: time_one(v, loops[v], make, split, args.epochs, bs, args.seed, device) for v in order}
        label = "warm-up" if rnd == 0 else f"round {rnd}"
        cells = "  ".join(f"{v} {runs[v].images_per_s:8.0f} img/s" for v in loops)
        ratio = runs["harness"].images_per_s / runs["plain"].images_per_s
        print(f"  {name:6s} {label:9s} {cells}  harness/plain {ratio:.3f}", flush=True)
        problem = diverged(runs, device)
        if problem:  # loudly, and before minutes of timing that would mean nothing
            raise Diverged(f"{name} {label}: {problem}")
        if rnd > 0:
            figures.rounds.append(runs)
        order.reverse()
    figures.loop_us = loop_cost_us(split, info, bs, device)
    return figures


# -- report --------------------------------------------------------------------------------


def report(all_figures: list[ModelFigures], device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    print()
    print(f"{'model':8s} {'variant':10s} {'median img/s':>12s} {'vs plain: median':>17s} {'min':>6s} {'max':>6s}")
    for f in all_figures:
        for v in f.variants:
            r = summary(f.ratios(v, "plain"))
            print(f"{f.model:8s} {v:10s} {f.median_ips(v):12.0f} {r['median']:17.3f} {r['min']:6.3f} {r['max']:6.3f}")
    print()
    for f in all_figures:
        diff = f.max_checksum_diff()
        same = "identical" if diff == 0 else f"differ by up to {diff:.3g}"
        print(f"{f.model}: final weights of all variants {same} (same work in every loop)")
    for f in all_figures:
        added = f.loop_us["harness"] - f.loop_us["plain"]
        step_us = f.median_step_ms("plain") * 1e3
        print(
            f"{f.model}: loop cost per step around a no-op model: harness {f.loop_us['harness']:.1f} us, "
            f"plain {f.loop_us['plain']:.1f} us; the harness adds {added:+.1f} us to a {step_us / 1e3:.2f} ms "
            f"{f.model} step (expected ratio {step_us / (step_us + added):.4f})"
        )
    for f in all_figures:
        r = summary(f.ratios("harness", "plain"))
        print(
            f"{f.model}: ratio harness/plain (median of {len(f.rounds)} paired rounds): "
            f"{r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}); goal >= {GOAL}"
        )
        if "plain-gan" in f.variants:
            r = summary(f.ratios("harness", "plain-gan"))
            print(
                f"{f.model}: ratio harness/plain-gan (median of {len(f.rounds)} paired rounds): "
                f"{r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f})"
            )
    return {
        "benchmark": "bench_overhead",
        "goal": GOAL,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "seed": args.seed,
        "models": [
            {
                "model": f.model,
                "dataset": f.dataset,
                "batch_size": f.batch_size,
                "steps_per_epoch": f.steps_per_epoch,
                "median_images_per_s": {v: f.median_ips(v) for v in f.variants},
                "median_step_ms": {v: f.median_step_ms(v) for v in f.variants},
                "loop_cost_us_per_step_null_model": f.loop_us,
                "ratio_vs_plain": {v: summary(f.ratios(v, "plain")) for v in f.variants if v != "plain"},
                "harness_over_plain": f.ratios("harness", "plain"),
                "harness_over_plain_gan": f.ratios("harness", "plain-gan") if "plain-gan" in f.variants else None,
                "max_checksum_diff": f.max_checksum_diff(),
                "rounds": [{v: asdict(run) for v, run in r.items()} for r in f.rounds],
            }
            for f in all_figures
        ],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--models", default="gan", help="comma-separated built-in models (gan, dcgan, vae, ...)")
    p.add_argument("--dataset", default="mnist5k", choices=["mnist5k", "digits"], help="packaged dataset")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GENBENCH_DATA", "data")))
    p.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds after the warm-up round")
    p.add_argument("--batch-size", type=int, default=None, help="default: the model's own batch_size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1:
        p.error("--epochs and --repeats must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except GenbenchError as exc:  # unknown model or dataset, no CUDA device, bad hyper-parameter
        print(f"bench_overhead: {exc}", file=sys.stderr)
        return 2
    except Diverged as exc:
        print(f"bench_overhead: FAILED: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    loaded = load_data(args.dataset, args.data_dir)
    train_split = loaded.splits["train"]
    split = Split(train_split.x.to(device), None if train_split.y is None else train_split.y.to(device))
    print(
        f"bench_overhead: {args.dataset} train ({len(split)} images), device {device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{args.epochs} epoch(s) per run, 1 warm-up + {args.repeats} rounds",
        flush=True,
    )
    all_figures = [
        bench_model(m.strip(), args.dataset, split, loaded.info, args, device) for m in args.models.split(",") if m
    ]
    out = report(all_figures, device, args)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
