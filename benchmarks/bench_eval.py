"""Evaluation cost: genbench's metrics against one direct torch-fidelity call, and what the reference cache saves.

Two figures, measured in one process:

(a) ``genbench/direct``: the time genbench takes to evaluate one cell, over the time a
    single direct ``torch_fidelity.calculate_metrics`` call takes on the same inputs.
    Both see the same generated samples (``--eval-samples`` training digits plus a little
    noise: real-looking images, no training needed), the same reference (the protocol's
    reference split cut to ``--eval-samples``), the same metrics (FID, KID,
    precision/recall, Inception Score), the same backbone (``domain``, offline: the
    ``genbench-domain`` extractor and its weights file), the same feature layers, batch
    size, KID subsets, IS splits and PRC neighbourhood, and the same device.

    ``genbench``
        build an :class:`~genbench.metrics.base.EvalContext` and run
        :func:`genbench.run.cell.evaluate` (what every cell of ``genbench run`` does), with the
        reference statistics already in genbench's cache (warm, as for every cell after
        the first).
    ``direct``
        one ``torch_fidelity.calculate_metrics(input1=..., input2=..., fid=True, kid=True,
        prc=True, isc=True, feature_extractor="genbench-domain", ...)`` with an
        ``input2_cache_name`` whose torch-fidelity cache is warm too (the call is made once
        before timing). It converts the samples to uint8 itself, as a user must.

    Both caches are filled first (the cold times are printed for information), then a
    warm-up round runs both once (not recorded), then ``--repeats`` rounds run both in
    alternating order (A B, B A, ...). Reported: the median, min and max of the per-round
    ratio genbench/direct (goal: at most 1.05), and the largest relative difference between
    the two result sets (they must agree: same functions, same features).

(b) ``second/first``: the evaluate time of the second cell of a grid over the first's,
    from ``record.timings["evaluate"].seconds`` of a two-cell grid run through
    :func:`genbench.run.runner.run_grid` (``--grid-model gan --grid z_dim=32,64``, ``--grid-epochs``
    1, the same four metrics, backbone ``domain``). Each of ``--grid-repeats`` runs starts
    from a fresh cache folder that holds the trained domain classifier (``backbones/``,
    copied in) and an empty ``reference/``: the first cell extracts the reference features
    and writes their statistics, the second reads them (goal: at most 0.6). The domain
    classifier is trained by ``metric.prepare`` in ``run_grid`` before any cell runs, so it
    is never part of a cell's evaluate time either way; copying it only avoids retraining
    it for every repeat.

(c) ``all/fid``: the whole metric set against FID alone, on the README's quick-start grid
    (``gan,vae,ae,dcgan`` x ``z_dim=32,64``, ``--c-epochs`` 5, trained once with FID only).
    For every cell the model is rebuilt from its checkpoint and its samples drawn as the
    cell drew them; then ``evaluate`` runs with ``("fid",)`` and with every registered
    metric (what ``--metrics all`` gives: the new density/coverage, FD-infinity and Vendi
    included), each time on a fresh ``EvalContext`` (the features extracted again, the
    reference from the warm cache), in alternating order, ``--c-repeats`` times after a
    warm-up. The figure is the sum over cells of the median "all" time over the sum of the
    median "fid" time (goal: at most 1.3); each metric's own cost is printed for one cell.

Also printed: each part of a warm cell's evaluation timed alone (feature extraction, each metric), the
reference extraction a cold cache adds, and, when KID's subset size equals both sample counts, KID with one
subset (every subset then holds all samples). The domain classifier is trained once into ``--backbone-cache``
(genbench's cache by default) and copied from there; every other cache lives in a temporary folder.

Nothing here asserts on time.

    python benchmarks/bench_eval.py                          # mnist5k, 1000 samples, device auto
    python benchmarks/bench_eval.py --dataset digits --repeats 9 --json eval.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from common import cpu_name, summary
from torch_fidelity.metric_kid import kid_features_to_metric

from genbench.datasets.base import LoadedData, Split
from genbench.errors import GenbenchError
from genbench.hyper import build
from genbench.metrics.backbones import BackboneConfig, resolve_backbone
from genbench.metrics.base import EvalContext
from genbench.metrics.features import ImageBytes, backbone_features, extract, layers_for
from genbench.metrics.fidelity import RNG_SEED
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, Protocol, default_cache_dir
from genbench.run.cell import evaluate
from genbench.run.data import load_data
from genbench.run.runner import RunRequest, run_grid
from genbench.run.timing import resolve_device, synchronize

GOAL_A = 1.05  # genbench/direct evaluation time, warm reference caches on both sides
GOAL_B = 0.6  # second cell's evaluate time over the first's (the first fills the reference cache)
AGREE = 1e-5  # largest relative difference between the two variants' numbers (measured: 8.9e-8 on mnist5k, CPU)
GOAL_C = 1.3  # every metric over FID alone, summed over the README grid's cells
README_MODELS = ("gan", "vae", "ae", "dcgan")  # the quick-start command of README.md
README_GRID = ("z_dim=32,64",)
METRICS = ("fid", "kid", "prc", "isc")
BACKBONE = "domain"
# genbench key -> torch-fidelity key
PAIRS = {
    "fid_domain": "frechet_inception_distance",
    "kid_domain": "kernel_inception_distance_mean",
    "kid_domain_std": "kernel_inception_distance_std",
    "precision_domain": "precision",
    "recall_domain": "recall",
    "f_score_domain": "f_score",
    "isc_domain": "inception_score_mean",
    "isc_domain_std": "inception_score_std",
}


# -- the two evaluations under test --------------------------------------------------------


def as_uint8(x: torch.Tensor, rgb: bool) -> torch.Tensor:
    out = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    return (out.expand(-1, 3, -1, -1) if rgb and out.shape[1] == 1 else out).contiguous()


@dataclass
class Setup:
    """Everything both evaluations share, built once outside the clocks."""

    data: LoadedData
    protocol: Protocol
    backbone: BackboneConfig
    model: GenerativeModel  # only for metric applicability: the samples do not come from it
    samples: torch.Tensor  # [0, 1] floats, dataset shape, CPU
    reference: Split  # full reference split; both sides cut it to n_reference
    device: torch.device
    fidelity_cache: Path
    input2: ImageBytes  # the direct call's reference input (its features come from the warm cache)

    @property
    def n_reference(self) -> int:
        return self.protocol.n_reference(len(self.reference))

    def fidelity_kwargs(self) -> dict[str, Any]:
        p = self.protocol
        layers = layers_for(self.backbone, p)
        return {
            "fid": True,
            "kid": True,
            "prc": True,
            "isc": True,
            "feature_extractor": self.backbone.extractor,
            "feature_extractor_weights_path": self.backbone.weights_path,
            "feature_layer_fid": layers[0],
            "feature_layer_kid": layers[0],
            "feature_layer_prc": layers[0],
            "feature_layer_isc": self.backbone.logits_layer,
            "batch_size": p.eval_batch_size,
            "kid_subsets": p.kid_subsets,
            "kid_subset_size": p.kid_subset(self.n_reference),
            "isc_splits": p.isc_splits,
            "prc_neighborhood": p.prc_neighborhood,
            "input2_cache_name": f"bench-eval-{p.dataset}-{p.reference_split}-n{self.n_reference}-{self.backbone.tag}",
            "cache_root": str(self.fidelity_cache),
            "cuda": self.device.type == "cuda",
            "verbose": False,
            "save_cpu_ram": True,
        }


def genbench_eval(s: Setup) -> dict[str, float]:
    """What ``run_cell`` does after sampling: an EvalContext and ``evaluate`` (reference from genbench's cache)."""
    reference = s.reference.head(s.n_reference)
    ctx = EvalContext(s.model, s.data, s.samples, reference, s.protocol, s.device, 0)
    record = CellRecord("bench", s.model.name, s.protocol.dataset, 0, {})
    evaluate(ctx, s.protocol.metrics, record)
    if record.metric_notes:
        raise GenbenchError(f"genbench evaluation: {record.metric_notes}")
    return record.metrics


def direct_eval(s: Setup) -> dict[str, float]:
    """One torch-fidelity call on the same samples (its input2 features from its own warm cache)."""
    input1 = ImageBytes(as_uint8(s.samples, s.backbone.rgb))
    out = torch_fidelity.calculate_metrics(input1=input1, input2=s.input2, **s.fidelity_kwargs())
    return {k: float(v) for k, v in out.items()}


# -- measurement ---------------------------------------------------------------------------


@dataclass
class Run:
    variant: str
    seconds: float
    cpu_seconds: float  # this process's CPU time (all threads) during the run
    metrics: dict[str, float]


@dataclass
class FigureA:
    dataset: str
    n_generated: int
    n_reference: int
    cold: dict[str, float] = field(default_factory=dict)  # first call of each, caches empty
    rounds: list[dict[str, Run]] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [r["genbench"].seconds / r["direct"].seconds for r in self.rounds]

    def cpu_ratios(self) -> list[float]:
        return [r["genbench"].cpu_seconds / r["direct"].cpu_seconds for r in self.rounds]

    def median_s(self, variant: str) -> float:
        return statistics.median(r[variant].seconds for r in self.rounds)

    def median_cpu_s(self, variant: str) -> float:
        return statistics.median(r[variant].cpu_seconds for r in self.rounds)

    def max_rel_diff(self) -> tuple[float, str]:
        """The largest relative difference between genbench's and torch-fidelity's numbers, over all rounds."""
        worst, where = 0.0, ""
        for r in self.rounds:
            ours, theirs = r["genbench"].metrics, r["direct"].metrics
            for k_ours, k_tf in PAIRS.items():
                a, b = ours[k_ours], theirs[k_tf]
                # a spread (``*_std``) is measured against its metric: with every KID subset holding all the
                # samples genbench computes one subset (std 0) where torch-fidelity's 100 equal ones give ~1e-6
                scale = max(abs(b), abs(ours[k_ours.removesuffix("_std")]) if k_ours.endswith("_std") else 0.0)
                diff = abs(a - b) / max(scale, 1e-12) if a != b else 0.0
                if diff >= worst:
                    worst, where = diff, k_ours
        return worst, where


@dataclass
class GridRun:
    first_s: float
    second_s: float
    first_cell: str
    second_cell: str
    train_s: list[float]
    prepare_s: float  # run_grid's time before the first cell (dataset, metric.prepare: backbone load)

    @property
    def ratio(self) -> float:
        return self.second_s / self.first_s


def time_one(variant: str, fn: Callable[[Setup], dict[str, float]], s: Setup) -> Run:
    gc.collect()
    synchronize(s.device)
    cpu0 = time.process_time()
    start = time.perf_counter()
    metrics = fn(s)
    synchronize(s.device)
    return Run(variant, time.perf_counter() - start, time.process_time() - cpu0, metrics)


def near_real(data: LoadedData, n: int) -> torch.Tensor:
    """A stand-in generator: ``n`` training images (repeated if the split is smaller) plus a little noise."""
    train = data.split("train").x
    g = torch.Generator().manual_seed(1)
    x = train[torch.arange(n) % len(train)]
    return (x + 0.1 * torch.rand(x.shape, generator=g)).clamp(0, 1).contiguous()


def bench_a(s: Setup, repeats: int) -> FigureA:
    fig = FigureA(s.protocol.dataset, int(s.samples.shape[0]), s.n_reference)
    variants: dict[str, Callable[[Setup], dict[str, float]]] = {"genbench": genbench_eval, "direct": direct_eval}
    for v, fn in variants.items():  # fills genbench's reference cache and torch-fidelity's input2 cache
        fig.cold[v] = time_one(v, fn, s).seconds
    print(
        f"  (a) first calls, caches empty (not recorded): genbench {fig.cold['genbench']:.3f} s, "
        f"direct {fig.cold['direct']:.3f} s",
        flush=True,
    )
    order = list(variants)
    for rnd in range(repeats + 1):  # round 0 is the warm-up
        runs = {v: time_one(v, variants[v], s) for v in order}
        label = "warm-up" if rnd == 0 else f"round {rnd}"
        ratio = runs["genbench"].seconds / runs["direct"].seconds
        cells = "  ".join(f"{v} {runs[v].seconds:7.3f} s" for v in variants)
        print(f"  (a) {label:9s} {cells}  genbench/direct {ratio:.3f}  (order {' '.join(order)})", flush=True)
        if rnd > 0:
            fig.rounds.append(runs)
        order.reverse()
    return fig


def bench_parts(s: Setup, reps: int = 3) -> tuple[dict[str, float], dict[str, float] | None]:
    """Median seconds of each part of a warm cell's evaluation, and of the reference extraction the cache saves.

    ``features`` is the generated samples' extraction plus the cached reference read; each metric is then
    timed on those shared features. ``reference extraction`` is what the first cell of a cold cache pays
    on top (same images count, same extractor), before the statistics and the ``.npz`` write.

    Also, when KID's subset size equals both sample counts (genbench's default up to 1,000 samples), every
    subset torch-fidelity draws without replacement holds all samples: the second value returned times KID
    with one subset instead of ``kid_subsets`` and gives its relative difference from the full computation.
    """
    registry = get_registry()
    parts: dict[str, list[float]] = {}

    def clock(name: str, fn: Callable[..., object], *fn_args: Any) -> None:
        synchronize(s.device)
        start = time.perf_counter()
        fn(*fn_args)
        synchronize(s.device)
        parts.setdefault(name, []).append(time.perf_counter() - start)

    layers = layers_for(s.backbone, s.protocol)
    reference = s.reference.head(s.n_reference)
    for _ in range(reps):
        gc.collect()
        ctx = EvalContext(s.model, s.data, s.samples, reference, s.protocol, s.device, 0)
        clock("features (generated + cached reference)", backbone_features, ctx, BACKBONE)
        for name in METRICS:
            clock(f"{name} compute", registry.metric(name)().compute, ctx)
        bs = s.protocol.eval_batch_size
        clock("reference extraction (cold only)", extract, s.backbone, reference.x, layers, s.device, bs)
    medians = {k: statistics.median(v) for k, v in parts.items()}
    p, f = s.protocol, backbone_features(ctx, BACKBONE)
    gen, ref = f.generated[f.main_layer], f.reference[f.main_layer].features
    size = p.kid_subset(s.n_reference)
    if not size == len(gen) == len(ref):
        return medians, None
    values = {}
    for subsets in (p.kid_subsets, 1):
        start = time.perf_counter()
        out = kid_features_to_metric(
            gen, ref, kid_subsets=subsets, kid_subset_size=size, rng_seed=RNG_SEED, verbose=False
        )  # fmt: skip
        values[f"seconds_{subsets}"] = time.perf_counter() - start
        values[f"kid_{subsets}"] = float(out["kernel_inception_distance_mean"])
    full, one = values[f"kid_{p.kid_subsets}"], values["kid_1"]
    values["rel_diff"] = abs(one - full) / abs(full) if full else abs(one)
    return medians, values


def bench_b(args: argparse.Namespace, seed_cache: Path, work: Path) -> list[GridRun]:
    runs: list[GridRun] = []
    for rep in range(args.grid_repeats):
        root = work / f"grid-{rep}"
        cache = root / "cache"
        shutil.copytree(seed_cache / "backbones", cache / "backbones")  # trained classifier; no reference/
        protocol = Protocol(
            args.dataset, METRICS, backbones=(BACKBONE,), eval_samples=args.eval_samples, epochs=args.grid_epochs,
            device=args.device, data_dir=args.data_dir, cache_dir=cache, download=False,
        )  # fmt: skip
        request = RunRequest((args.grid_model,), protocol, root / "out", grid=(args.grid,))
        started: list[float] = []

        def on_event(event: object, started: list[float] = started) -> None:
            if type(event).__name__ == "CellStarted" and not started:
                started.append(time.perf_counter())

        gc.collect()
        t0 = time.perf_counter()
        result = run_grid(request, on_event)
        records = result.records
        if len(records) < 2:
            raise GenbenchError(f"--grid {args.grid}: expected at least two cells, got {len(records)}")
        bad = [r for r in records if r.status != "ok"]
        if bad:
            raise GenbenchError(f"cell {bad[0].cell_id} {bad[0].status}: {bad[0].error}")
        if any(r.metric_notes for r in records):
            raise GenbenchError(f"cell metrics not computed: {[r.metric_notes for r in records]}")
        if not list((cache / "reference").glob("*.npz")):
            raise GenbenchError("the grid wrote no reference statistics: nothing was cold")
        first, second = records[0], records[1]  # the serial executor runs cells in grid order
        run = GridRun(
            first.timings["evaluate"].seconds, second.timings["evaluate"].seconds, first.cell_id, second.cell_id,
            [r.timings["train"].seconds for r in records], (started[0] if started else t0) - t0,
        )  # fmt: skip
        runs.append(run)
        print(
            f"  (b) run {rep + 1}: evaluate {first.cell_id} {run.first_s:.3f} s (cold reference), "
            f"{second.cell_id} {run.second_s:.3f} s (warm)  second/first {run.ratio:.3f}",
            flush=True,
        )
    return runs


@dataclass
class CellCost:
    cell: str
    fid_s: float  # median evaluate seconds with ("fid",)
    all_s: float  # median evaluate seconds with every registered metric
    metrics: int  # values the full set returned


def bench_c(args: argparse.Namespace, seed_cache: Path, work: Path) -> tuple[list[CellCost], dict[str, float]]:
    """(c): every metric against FID alone on the README grid's trained cells (see the module docstring)."""
    from genbench.run.cell import SAMPLING_SEED_OFFSET, conditional_labels, draw_samples, seed_everything
    from genbench.run.export import load_cell

    cache = work / "cache-c"
    shutil.copytree(seed_cache / "backbones", cache / "backbones")
    device = resolve_device(args.device)
    protocol = Protocol(
        args.dataset, ("fid",), backbones=(BACKBONE,), eval_samples=args.eval_samples, epochs=args.c_epochs,
        device=args.device, data_dir=args.data_dir, cache_dir=cache, download=False,
    )  # fmt: skip
    out = work / "c-out"
    result = run_grid(RunRequest(README_MODELS, protocol, out, grid=README_GRID))
    bad = [r for r in result.records if r.status != "ok"]
    if bad:
        raise GenbenchError(f"cell {bad[0].cell_id} {bad[0].status}: {bad[0].error}")
    everything = tuple(get_registry().metrics)
    full = dataclasses.replace(protocol, metrics=everything)
    data = load_data(args.dataset, args.data_dir, download=False)
    reference = data.split(full.reference_split).head(full.n_reference(len(data.split(full.reference_split))))
    costs: list[CellCost] = []
    per_metric: dict[str, float] = {}
    for record in result.records:
        cell = load_cell(out / "cells" / record.cell_id)
        model = cell.model.to(device)
        seed_everything(record.seed + SAMPLING_SEED_OFFSET)
        labels = conditional_labels(type(model), data.info, full.eval_samples)
        samples = draw_samples(model, full.eval_samples, labels, data.info)

        def once(metrics: tuple[str, ...], cell_model: Any = model, drawn: Any = samples, y: Any = labels,
                 rec: CellRecord = record) -> tuple[float, CellRecord]:  # fmt: skip
            gc.collect()
            ctx = EvalContext(cell_model, data, drawn, reference, full, device, rec.seed, y)
            out = CellRecord(rec.cell_id, rec.model, full.dataset, rec.seed, {})
            synchronize(device)
            start = time.perf_counter()
            evaluate(ctx, metrics, out)
            synchronize(device)
            return time.perf_counter() - start, out

        _, warm = once(everything)  # warm-up: reference-side caches of every metric
        times: dict[str, list[float]] = {"fid": [], "all": []}
        order = ["fid", "all"]
        for _ in range(args.c_repeats):
            for variant in order:
                times[variant].append(once(("fid",) if variant == "fid" else everything)[0])
            order.reverse()
        cost = CellCost(record.cell_id, statistics.median(times["fid"]), statistics.median(times["all"]),
                        len(warm.metrics))  # fmt: skip
        costs.append(cost)
        print(f"  (c) {cost.cell}: fid {cost.fid_s:.3f} s, all {cost.all_s:.3f} s ({cost.metrics} values), "
              f"all/fid {cost.all_s / cost.fid_s:.3f}", flush=True)  # fmt: skip
        if record.model == "dcgan" and not per_metric:  # each metric's compute on the shared features
            registry = get_registry()
            ctx = EvalContext(model, data, samples, reference, full, device, record.seed, labels)
            start = time.perf_counter()
            backbone_features(ctx, BACKBONE)
            per_metric["features (generated + cached reference)"] = time.perf_counter() - start
            for name in everything:
                metric = registry.metric(name)()
                if metric.not_applicable(type(model), data.info) is None:
                    start = time.perf_counter()
                    metric.compute(ctx)
                    per_metric[f"{name} compute"] = time.perf_counter() - start
    return costs, per_metric


# -- report --------------------------------------------------------------------------------


def report(
    a: FigureA | None,
    parts: dict[str, float],
    kid_one: dict[str, float] | None,
    b: list[GridRun],
    c: tuple[list[CellCost], dict[str, float]],
    s: Setup,
    classifier_s: float,
    load: list[tuple[float, float, float]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "bench_eval",
        "goals": {"a_genbench_over_direct": GOAL_A, "b_second_over_first": GOAL_B, "c_all_over_fid": GOAL_C},
        "device": str(s.device),
        "device_name": torch.cuda.get_device_name(s.device) if s.device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "torch_fidelity": torch_fidelity.__version__,
        "python": platform.python_version(),
        "dataset": args.dataset,
        "eval_samples": args.eval_samples,
        "metrics": list(METRICS),
        "backbone": BACKBONE,
        "domain_classifier_train_s": classifier_s,  # 0 when it was already in --backbone-cache
        "load_average_start_end": load,
        "domain_accuracy": s.backbone.facts.get("domain_accuracy"),
    }
    print()
    if a is not None:
        r = summary(a.ratios())
        diff, where = a.max_rel_diff()
        print(f"(a) {a.dataset}: {a.n_generated} generated vs {a.n_reference} reference images, backbone {BACKBONE}")
        print(f"{'variant':10s} {'median s':>9s} {'median cpu s':>13s} {'cold s':>8s}")
        for v in ("genbench", "direct"):
            print(f"{v:10s} {a.median_s(v):9.3f} {a.median_cpu_s(v):13.3f} {a.cold[v]:8.3f}")
        cpu = summary(a.cpu_ratios())
        print(
            f"(a) CPU time genbench/direct (median of {len(a.rounds)} paired rounds): {cpu['median']:.3f} "
            f"(min {cpu['min']:.3f}, max {cpu['max']:.3f})"
        )
        print(f"(a) numbers agree: max relative difference genbench vs torch-fidelity {diff:.2g} ({where})")
        if diff > AGREE:  # loudly: a timing of two computations that differ means nothing
            raise Disagree(
                f"genbench and torch-fidelity disagree by {diff:.3g} (relative, {where}; allowed {AGREE:g}): "
                "the two variants do not compute the same numbers, so their time ratio means nothing"
            )
        out["a"] = {
            "n_generated": a.n_generated,
            "n_reference": a.n_reference,
            "repeats": len(a.rounds),
            "cold_s": a.cold,
            "median_s": {v: a.median_s(v) for v in ("genbench", "direct")},
            "median_cpu_s": {v: a.median_cpu_s(v) for v in ("genbench", "direct")},
            "genbench_over_direct": r,
            "ratios": a.ratios(),
            "cpu_genbench_over_direct": summary(a.cpu_ratios()),
            "cpu_ratios": a.cpu_ratios(),
            "max_rel_diff": diff,
            "max_rel_diff_key": where,
            "fidelity_kwargs": {k: str(v) for k, v in s.fidelity_kwargs().items()},
            "rounds": [{v: asdict(run) for v, run in rr.items()} for rr in a.rounds],
        }
    if parts:
        warm = sum(secs for part, secs in parts.items() if not part.startswith("reference"))
        ref = parts["reference extraction (cold only)"]
        print()
        print("where a warm cell's evaluation goes (median of 3, each part timed alone)")
        print(f"{'part':42s} {'seconds':>8s} {'share':>6s}")
        for part, secs in parts.items():
            share = f"{secs / warm:6.0%}" if not part.startswith("reference") else "   +  "
            print(f"{part:42s} {secs:8.3f} {share}")
        expected = warm / (warm + ref)
        print(f"(b) expected from these parts (warm / (warm + reference extraction)): {expected:.3f}")
        out["parts_s"] = parts
        out["b_expected_from_parts"] = expected
    if kid_one is not None:
        n = s.protocol.kid_subsets
        print(
            f"KID subset size = both sample counts ({s.n_reference}): every subset is all the samples; "
            f"{n} subsets {kid_one[f'seconds_{n}']:.3f} s, 1 subset {kid_one['seconds_1']:.3f} s, "
            f"relative difference {kid_one['rel_diff']:.1g}"
        )
        out["kid_one_subset"] = kid_one
    if b:
        print()
        print(f"(b) {args.grid_model} --grid {args.grid}, {args.grid_epochs} epoch(s), evaluate seconds per cell")
        print(f"{'run':4s} {'first (cold ref)':>17s} {'second (warm)':>14s} {'second/first':>13s} {'train s':>14s}")
        for i, g in enumerate(b, 1):
            train = "/".join(f"{t:.1f}" for t in g.train_s)
            print(f"{i:<4d} {g.first_s:17.3f} {g.second_s:14.3f} {g.ratio:13.3f} {train:>14s}")
        out["b"] = {
            "model": args.grid_model,
            "grid": args.grid,
            "epochs": args.grid_epochs,
            "second_over_first": summary([g.ratio for g in b]),
            "runs": [{**asdict(g), "ratio": g.ratio} for g in b],
            "cold": "reference/ empty (reference features, statistics, .npz write; the torch-fidelity extractor "
            "object for the new weights path); backbones/ copied in (classifier trained beforehand)",
        }
    costs, per_metric = c
    if costs:
        print()
        print(
            f"(c) README grid ({','.join(README_MODELS)} x {README_GRID[0]}, {args.c_epochs} epochs): evaluate seconds"
        )
        print(f"{'cell':40s} {'fid':>7s} {'all':>7s} {'all/fid':>8s}")
        for cost in costs:
            print(f"{cost.cell[:40]:40s} {cost.fid_s:7.3f} {cost.all_s:7.3f} {cost.all_s / cost.fid_s:8.3f}")
        for part, secs in per_metric.items():
            print(f"  one dcgan cell, {part}: {secs:.4f} s")
        ratio = sum(x.all_s for x in costs) / sum(x.fid_s for x in costs)
        out["c"] = {"cells": [asdict(x) for x in costs], "all_over_fid": ratio, "per_metric_s": per_metric,
                    "epochs": args.c_epochs, "repeats": args.c_repeats}  # fmt: skip
    print()
    trained = f"trained in {classifier_s:.1f} s" if classifier_s else f"found in {args.backbone_cache}"
    print(
        f"domain classifier: {trained}, before any timing (accuracy "
        f"{s.backbone.facts.get('domain_accuracy', float('nan')):.3f}); in (b) run_grid's metric.prepare loads it "
        f"before the cells, so no cell's evaluate time includes it"
    )
    print(f"load average (1, 5, 15 min) at start {load[0]}, at end {load[-1]}; {os.cpu_count()} CPUs")
    if a is not None:
        r = out["a"]["genbench_over_direct"]
        print(
            f"(a) eval genbench/direct torch-fidelity (median of {len(a.rounds)} paired rounds): "
            f"{r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}); goal <= {GOAL_A}"
        )
    if b:
        r = out["b"]["second_over_first"]
        print(
            f"(b) second cell / first cell evaluate time (median of {len(b)}): "
            f"{r['median']:.3f} (min {r['min']:.3f}, max {r['max']:.3f}); goal <= {GOAL_B}"
        )
    if costs:
        print(
            f"(c) every metric / FID alone, README grid ({len(costs)} cells, medians of {args.c_repeats}): "
            f"{out['c']['all_over_fid']:.3f}; goal <= {GOAL_C}"
        )
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--dataset", default="mnist5k", choices=["mnist5k", "digits"], help="packaged dataset")
    p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("GENBENCH_DATA", "data")))
    p.add_argument("--eval-samples", type=int, default=1000, help="generated samples (and reference size)")
    p.add_argument("--repeats", type=int, default=7, help="(a) paired rounds after the warm-up round")
    p.add_argument("--grid-repeats", type=int, default=3, help="(b) two-cell grids, each with a fresh cache")
    p.add_argument("--grid-model", default="gan", help="(b) built-in model")
    p.add_argument("--grid", default="z_dim=32,64", help="(b) grid axis giving (at least) two cells")
    p.add_argument("--grid-epochs", type=int, default=1, help="(b) training epochs per cell")
    p.add_argument("--only", choices=["a", "b", "c"], default=None, help="measure one figure only")
    p.add_argument("--c-epochs", type=int, default=5, help="(c) epochs of the README grid (its quick start: 5)")
    p.add_argument("--c-repeats", type=int, default=3, help="(c) paired fid/all evaluations per cell")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's own)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.add_argument(
        "--backbone-cache", type=Path, default=default_cache_dir(),
        help="where the trained domain classifier is kept between runs (genbench's cache; trained there if "
        "missing); only its backbones/ folder is read, copied into the temporary caches",
    )  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temporary cache and output folders")
    args = p.parse_args(argv)
    if min(args.repeats, args.grid_repeats, args.grid_epochs, args.c_epochs, args.c_repeats) < 1:
        p.error("--repeats, --grid-repeats, --grid-epochs, --c-epochs and --c-repeats must be >= 1")
    if args.eval_samples < 2:
        p.error("--eval-samples must be >= 2")
    return args


class Disagree(Exception):
    """genbench's numbers and torch-fidelity's differ: the two variants did not do the same work."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(parse_args(argv))
    except GenbenchError as exc:  # unknown dataset, no CUDA device, a failed cell
        print(f"bench_eval: {exc}", file=sys.stderr)
        return 2
    except Disagree as exc:
        print(f"bench_eval: FAILED: {exc}", file=sys.stderr)
        return 1


def rounded_load() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def seed_backbone(args: argparse.Namespace, data: LoadedData, cache: Path) -> float:
    """Copy the trained domain classifier from ``--backbone-cache`` into ``cache`` (training it there if missing).

    Returns the seconds spent training (0 when it was already there). Nothing else of that cache is read.
    """
    proto = Protocol(args.dataset, METRICS, cache_dir=args.backbone_cache, data_dir=args.data_dir, download=False)
    before = set((args.backbone_cache / "backbones").glob("*.pt"))
    t0 = time.perf_counter()
    config = resolve_backbone(BACKBONE, proto, data)
    seconds = time.perf_counter() - t0 if Path(str(config.weights_path)) not in before else 0.0
    target = cache / "backbones" / Path(str(config.weights_path)).name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(str(config.weights_path), target)
    return seconds


def run(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = load_data(args.dataset, args.data_dir, download=False)
    work = Path(tempfile.mkdtemp(prefix="bench_eval-"))
    try:
        protocol = Protocol(
            args.dataset, METRICS, backbones=(BACKBONE,), eval_samples=args.eval_samples, device=args.device,
            data_dir=args.data_dir, cache_dir=work / "cache-a", download=False,
        )  # fmt: skip
        print(
            f"bench_eval: {args.dataset}, {args.eval_samples} samples, metrics {','.join(METRICS)}, backbone "
            f"{BACKBONE}, device {device}, torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}, "
            f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs, work folder {work}",
            flush=True,
        )
        load = [rounded_load()]
        classifier_s = seed_backbone(args, data, work / "cache-a")
        backbone = resolve_backbone(BACKBONE, protocol, data)
        cls = get_registry().model("gan")
        reference = data.split(protocol.reference_split)
        n_ref = protocol.n_reference(len(reference))
        s = Setup(
            data, protocol, backbone, cls(build(cls.Hyper, {}, "gan"), data.info), near_real(data, args.eval_samples),
            reference, device, work / "fidelity-cache", ImageBytes(as_uint8(reference.x[:n_ref], backbone.rgb)),
        )  # fmt: skip
        a = bench_a(s, args.repeats) if args.only in (None, "a") else None
        parts, kid_one = bench_parts(s) if args.only in (None, "a") else ({}, None)
        b = bench_b(args, work / "cache-a", work) if args.only in (None, "b") else []
        c = bench_c(args, work / "cache-a", work) if args.only in (None, "c") else ([], {})
        load.append(rounded_load())
        out = report(a, parts, kid_one, b, c, s, classifier_s, load, args)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
