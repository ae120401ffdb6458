"""The grid runner: validate everything, prepare shared resources, run cells, save as it goes.

The runner never prints. Progress goes to an ``on_event`` callback (the CLI
turns events into Rich progress bars) and the result is returned as a
:class:`RunResult`. ``results.csv`` and ``run.json`` are rewritten atomically
after every cell, so stopping a grid keeps every finished cell.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

from genbench.cell import environment, run_cell
from genbench.data import load_data
from genbench.errors import GenbenchError, choices
from genbench.grid import parse_axis, plan_cells
from genbench.metrics.backbones import BACKBONES
from genbench.metrics.features import evaluation_manifest
from genbench.models.base import Capability
from genbench.plugins import get_registry
from genbench.progress import reporting
from genbench.protocol import CellRecord, CellSpec, Protocol
from genbench.results import RUN_JSON, atomic_write_json, read_record, write_results
from genbench.threads import apply_threads, check_threads, choose_threads
from genbench.timing import resolve_device

ALL_METRICS = "all"  # every registered metric; the ones that do not apply to a model are noted, not run


@dataclass(frozen=True)
class RunRequest:
    """What ``genbench run`` asks for, as a library call."""

    models: tuple[str, ...]
    protocol: Protocol
    out_dir: Path
    grid: tuple[str, ...] = ()  # "key=v1,v2" or "model.key=v1,v2"
    seeds: tuple[int, ...] = (0,)
    resume: bool = False  # reuse finished cells found in out_dir with the same spec
    threads: int | None = None  # torch threads per cell (>= 1); None: chosen per cell by genbench.threads


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Planned:
    cells: tuple[CellSpec, ...]
    to_run: int  # cells that will run (the others are reused with --resume)


@dataclass(frozen=True)
class Preparing:
    what: str
    done: int | None = None  # how far a long step is (genbench.progress.report), when it says
    total: int | None = None


@dataclass(frozen=True)
class CellStarted:
    index: int  # position among the cells that run
    total: int
    spec: CellSpec


@dataclass(frozen=True)
class CellProgress:
    cell_id: str
    kind: str  # "phase", "epoch", "step" or "work"
    # phase name; (epoch, epochs, {loss: mean}); (epoch, epochs, steps done, steps per epoch); (what, done, total)
    detail: Any


@dataclass(frozen=True)
class CellFinished:
    index: int
    total: int
    record: CellRecord


Event = Planned | Preparing | CellStarted | CellProgress | CellFinished
EventCallback = Callable[[Event], None]


@dataclass
class RunResult:
    out_dir: Path
    records: list[CellRecord] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


class Executor(TypingProtocol):
    """Runs cell specs and yields their records in order. Cells share nothing, so an
    executor may run them in processes or on other machines."""

    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellRecord]: ...


class SerialExecutor:
    """Runs cells one after the other in this process (the default)."""

    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[CellRecord]:
        for i, spec in enumerate(specs):
            on_event(CellStarted(i, len(specs), spec))
            yield run_reported(spec, on_event)


def run_reported(spec: CellSpec, on_event: EventCallback) -> CellRecord:
    """``run_cell`` with its progress as events: phases, epochs, steps, and long work inside (features...)."""

    def work(what: str, done: int, total: int | None) -> None:
        on_event(CellProgress(spec.cell_id, "work", (what, done, total)))

    with reporting(work):
        return run_cell(spec, lambda cid, kind, detail: on_event(CellProgress(cid, kind, detail)))


def validate(request: RunRequest) -> list[CellSpec]:
    """Check every name and value and expand the grid; raises GenbenchError before any training."""
    registry = get_registry()
    p = request.protocol
    if not request.models:
        raise GenbenchError(f"--models: no model given; valid: {choices(registry.models)}")
    info = registry.dataset(p.dataset).info()
    for name in request.models:
        model = registry.model(name)
        if Capability.CONDITIONAL in model.capabilities and not info.num_classes:
            labelled = [n for n, e in registry.datasets.items() if e.cls.num_classes]
            raise GenbenchError(
                f"model {name!r} is conditional and needs a labelled dataset; {p.dataset!r} has no classes; "
                f"labelled: {choices(labelled)}"
            )
        if info.kind not in model.data_kinds:
            raise GenbenchError(
                f"model {name!r} cannot train on {info.kind} data ({p.dataset!r}); "
                f"it supports {'/'.join(sorted(model.data_kinds))}"
            )
    for name in p.metrics:
        registry.metric(name)
    if not p.backbones:
        raise GenbenchError(f"--backbone: none given; valid: {choices(BACKBONES)}")
    for name in p.backbones:
        if name not in BACKBONES:
            raise GenbenchError(f"unknown backbone {name!r}; valid: {choices(BACKBONES)}")
    if p.epochs is not None and p.epochs < 1:
        raise GenbenchError(f"--epochs {p.epochs}: must be an integer >= 1")
    if p.reference_split not in ("train", "test"):
        raise GenbenchError(f"--reference-split {p.reference_split!r}; valid: 'test', 'train'")
    if p.eval_samples < 2:
        raise GenbenchError(f"--eval-samples {p.eval_samples}: must be >= 2 (FID needs a covariance)")
    for option, value in (("--eval-batch-size", p.eval_batch_size), ("--kid-subsets", p.kid_subsets),
                          ("--isc-splits", p.isc_splits), ("--prc-neighborhood", p.prc_neighborhood)):  # fmt: skip
        if value < 1:
            raise GenbenchError(f"{option} {value}: must be >= 1")
    if p.isc_splits > p.eval_samples:
        raise GenbenchError(f"--isc-splits {p.isc_splits}: more splits than the {p.eval_samples} samples")
    if p.reference_stats is not None and not Path(p.reference_stats).is_file():
        raise GenbenchError(f"--reference-stats {p.reference_stats}: no such file")
    resolve_device(p.device)
    check_threads(request.threads)
    axes = [parse_axis(g) for g in request.grid]
    cells = plan_cells(registry, request.models, axes, request.seeds, p, request.out_dir)
    return [dataclasses.replace(c, threads=request.threads) for c in cells]


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _reusable(spec: CellSpec) -> CellRecord | None:
    """A finished record of the same cell (same hyper-parameters and protocol), if one is on disk."""
    old = read_record(spec.out_dir)
    if old is None or old.status != "ok":
        return None
    same = _as_json([old.hyper, old.protocol]) == _as_json([spec.hyper, spec.protocol.manifest()])
    return old if same else None


def run_grid(
    request: RunRequest,
    on_event: EventCallback | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run every cell of ``request``; return all records (also written under ``out_dir``)."""
    emit: EventCallback = on_event or (lambda _e: None)
    cells = validate(request)
    reused = {c.cell_id: r for c in cells if request.resume and (r := _reusable(c)) is not None}
    todo = [c for c in cells if c.cell_id not in reused]
    emit(Planned(tuple(cells), len(todo)))
    p = request.protocol
    registry = get_registry()

    apply_threads(choose_threads(request.threads))  # preparing (the domain classifier) computes too
    emit(Preparing(f"loading dataset {p.dataset!r}"))
    data = load_data(p.dataset, Path(p.data_dir), p.download)
    facts: dict[str, Any] = {}
    used_backbones: dict[str, None] = {}
    for name in p.metrics:
        metric = registry.metric(name)()
        if any(metric.not_applicable(registry.model(m), data.info) is None for m in request.models):
            emit(Preparing(f"preparing metric {name!r}"))
            with reporting(lambda what, done, total: emit(Preparing(what, done, total))):
                facts.update(metric.prepare(p, data))
            used_backbones.update(dict.fromkeys(metric.backbones(p)))

    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    result = RunResult(out)
    result.manifest = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "models": list(request.models),
        "grid": list(request.grid),
        "seeds": list(request.seeds),
        "protocol": p.manifest(),
        "n_reference": min(p.eval_samples, len(data.split(p.reference_split))),
        "dataset_fingerprint": data.fingerprint,
        "facts": facts,
        "evaluation": evaluation_manifest(p, data, tuple(used_backbones)),
        "environment": environment(resolve_device(p.device)),
        "plugins": [dataclasses.asdict(x) for x in registry.plugins],
        "plugin_problems": list(registry.problems),
        "metric_better": {},
        "metric_bounds": {},  # key -> {low, high, integer}: the tables clip intervals to these
        "cells": len(cells),
    }
    atomic_write_json(out / RUN_JSON, result.manifest)

    position = {c.cell_id: i for i, c in enumerate(cells)}
    for old in reused.values():
        result.records.append(old)
        result.manifest["metric_better"].update(old.metric_better)
        result.manifest["metric_bounds"].update(old.metric_bounds)
    runner = executor or SerialExecutor()
    for index, record in enumerate(runner.run(todo, emit)):
        result.records.append(record)
        result.records.sort(key=lambda r: position[r.cell_id])  # grid order, reused cells included
        result.manifest["metric_better"].update(record.metric_better)
        result.manifest["metric_bounds"].update(record.metric_bounds)
        write_results(out, result.records)
        atomic_write_json(out / RUN_JSON, result.manifest)
        emit(CellFinished(index, len(todo), record))
    if not todo:
        write_results(out, result.records)
    return result
