"""The grid runner: validate everything, prepare shared resources, run cells, save as it goes.

The runner never prints. Progress goes to an ``on_event`` callback (the CLI
turns events into Rich progress bars) and the result is returned as a
:class:`RunResult`. ``results.csv`` and ``run.json`` are rewritten atomically
after every cell, so stopping a grid keeps every finished cell.

The whole run holds the folder's lock (:class:`genbench.folder.RunFolder`): a
second run into the same ``out_dir`` refuses before any work, and so does a run
without ``resume`` into a folder that already holds results. With ``resume`` a
cell is reused only if its record and its files are those of one finished
attempt (:func:`genbench.folder.intact`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.checks import (
    check_backbone_options,
    check_folders,
    check_memory,
    check_reference_stats,
    check_seeds,
    check_sizes,
)
from genbench.datasets.base import DataInfo
from genbench.errors import DiskFull, GenbenchError, choices, disk_full_error
from genbench.folder import RunFolder, intact
from genbench.metrics.backbones import BACKBONES
from genbench.models.base import Capability
from genbench.options import check_values
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, CellSpec, RunRequest, run_options
from genbench.results import RESULTS_CSV, RUN_JSON, atomic_write_json, read_record, write_results
from genbench.run.data import load_data
from genbench.run.eval_folder import check_evaluated, evaluated_records
from genbench.run.events import (
    CellFinished,
    CellProgress,
    CellStarted,
    Event,
    EventCallback,
    Planned,
    Preparing,
)
from genbench.run.executors.base import CellResult, Executor, refuse_unused
from genbench.run.executors.remote import failed_cell, land
from genbench.run.executors.serial import SerialExecutor, run_reported
from genbench.run.fastpath import check_compile_cells, check_fast_path
from genbench.run.grid import parse_axis, plan_cells
from genbench.run.preparation import prepare_metrics, run_manifest
from genbench.run.timing import resolve_device
from genbench.threads import apply_threads, choose_threads

ALL_METRICS = "all"  # every registered metric; the ones that do not apply to a model are noted, not run

# Events and executors live in their own modules; the names stay importable from here.
__all__ = [
    "CellFinished",
    "CellProgress",
    "CellStarted",
    "Event",
    "EventCallback",
    "Executor",
    "Planned",
    "Preparing",
    "RunRequest",
    "RunResult",
    "SerialExecutor",
    "run_grid",
    "run_reported",
    "validate",
]


@dataclass
class RunResult:
    out_dir: Path
    records: list[CellRecord] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    saved: int = 0  # records written to results.csv so far (what a stopped run keeps)


def validate(request: RunRequest) -> list[CellSpec]:
    """Check every name and value and expand the grid; raises GenbenchError before any training.

    Nothing here loads the dataset: names, values, folders, the device and the memory each
    cell's parameters take are all checked first (:mod:`genbench.checks`).
    """
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
    check_seeds(request.seeds)
    _check_metrics(request, info)
    if not p.backbones:
        raise GenbenchError(f"--backbone: none given; valid: {choices(BACKBONES)}")
    for name in p.backbones:
        if name not in BACKBONES:
            raise GenbenchError(f"unknown backbone {name!r}; valid: {choices(BACKBONES)}")
    check_backbone_options(p)
    check_values(run_options(), p, request)  # ranges and choices of every declared option (genbench.options)
    if p.isc_splits > p.eval_samples:
        raise GenbenchError(f"--isc-splits {p.isc_splits}: more splits than the {p.eval_samples} samples")
    check_sizes(p)
    check_reference_stats(p, info)
    device = resolve_device(p.device)
    check_fast_path(p, device)  # --precision supported by the device, --compile has what it needs
    executor = registry.executor(request.executor)  # workers, GPUs, Ray: before any work
    refuse_unused(executor, request, (e.cls for e in registry.executors.values()))  # options it does not read
    executor.check(request)
    check_folders(request.out_dir, p)
    axes = [parse_axis(g) for g in request.grid]
    cells = plan_cells(registry, request.models, axes, request.seeds, p, request.out_dir)
    check_compile_cells(cells, registry.model, info.kind)  # --compile and an R1 / gradient penalty
    check_memory(cells, p, info, device)
    return [dataclasses.replace(c, cell_timeout=request.cell_timeout, threads=request.threads) for c in cells]


def _check_metrics(request: RunRequest, info: DataInfo) -> None:
    """Known metrics, at least one, and at least one that applies to some model (else nothing is measured)."""
    registry = get_registry()
    metrics = request.protocol.metrics
    if not metrics:  # a library call that only trains (the command line refuses `--metrics ''`)
        return
    if ALL_METRICS in metrics and len(metrics) > 1:
        raise GenbenchError(f"--metrics {','.join(metrics)}: {ALL_METRICS!r} stands alone (--metrics all)")
    for name in metrics:
        registry.metric(name)
    models = [registry.model(m) for m in request.models]
    applies = [n for n, e in registry.metrics.items() if any(e.cls().not_applicable(m, info) is None for m in models)]
    if not set(metrics) & set(applies):
        raise GenbenchError(
            f"--metrics {','.join(metrics)}: applies to none of the models ({', '.join(request.models)}) "
            f"on {info.name!r}; these do: {choices(applies)}"
        )


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _reusable(spec: CellSpec, out_dir: Path) -> CellRecord | None:
    """A finished record of the same cell (same hyper-parameters and protocol), if one is on disk
    and its files are those its attempt wrote; anything malformed or foreign means "run it again"."""
    old = read_record(spec.out_dir)
    if old is None or old.status != "ok":
        return None
    if (old.cell_id, old.model, old.dataset, old.seed) != (spec.cell_id, spec.model, spec.protocol.dataset, spec.seed):
        return None  # a record copied from another cell's folder
    if old.model not in get_registry().models:
        return None
    try:
        same = _as_json([old.hyper, old.protocol]) == _as_json([spec.hyper, spec.protocol.manifest()])
    except (ValueError, RecursionError):  # nested too deep to compare: not ours
        return None
    return old if same and intact(out_dir, old) else None


def run_grid(
    request: RunRequest,
    on_event: EventCallback | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run every cell of ``request``; return all records (also written under ``out_dir``).

    The cells run on ``executor``, else on the one ``request.executor`` names (an instance of
    :class:`genbench.run.executors.Executor`; any object with its ``run`` method will do). It is
    started (``with executor:``) before the dataset is loaded, so a pool or cluster that cannot
    start stops the run before any training; when ``resume`` reuses every cell it is not started.

    Raises GenbenchError before any work for bad input, for a folder that another run
    holds, and for a folder that holds results when ``request.resume`` is False. A full
    disk (ENOSPC, or EDQUOT: a quota) stops the grid with :class:`~genbench.errors.DiskFull`
    instead of failing every remaining cell the same way; what results.csv already holds stays.
    """
    emit: EventCallback = on_event or (lambda _e: None)
    cells = validate(request)
    runner = executor if executor is not None else get_registry().executor(request.executor)(request)
    with RunFolder(request.out_dir) as folder, contextlib.ExitStack() as started:
        if not request.resume:
            folder.require_fresh()
        folder.check_cells(cells)
        if request.resume:
            folder.remove_leftovers(cells)  # temporary files of a run that was killed while writing
            if cells:
                check_evaluated(request.out_dir, cells[0].protocol, {c.cell_id for c in cells})
        result = RunResult(request.out_dir)
        try:
            _run(request, cells, emit, runner, started, result)
        except DiskFull as exc:
            raise DiskFull(exc.folder, _kept(result)) from None
        except Exception as exc:
            full = disk_full_error(exc)
            if full is None:
                raise
            where = Path(full.filename).parent if full.filename else request.out_dir
            raise DiskFull(where, _kept(result)) from None
        return result


def _kept(result: RunResult) -> str:
    path = result.out_dir / RESULTS_CSV
    n = result.saved
    kept = (
        f"no finished cell is in {path} yet"
        if n == 0
        else f"{n} finished cell{'s are' if n > 1 else ' is'} kept in {path}"
    )
    return f"{kept}; free some space and rerun the same command with --resume"


def _run(
    request: RunRequest,
    cells: list[CellSpec],
    emit: EventCallback,
    runner: Executor,
    started: contextlib.ExitStack,
    result: RunResult,
) -> None:
    reused = {c.cell_id: r for c in cells if request.resume and (r := _reusable(c, request.out_dir)) is not None}
    todo = [c for c in cells if c.cell_id not in reused]
    emit(Planned(tuple(cells), len(todo)))
    if todo and hasattr(runner, "__enter__"):
        started.enter_context(runner)  # workers start (or Ray connects) while the data loads
    p = request.protocol
    registry = get_registry()

    apply_threads(choose_threads(request.threads))  # preparing (the domain classifier) computes too
    emit(Preparing(f"loading dataset {p.dataset!r}"))
    data = load_data(p.dataset, Path(p.data_dir), p.download)
    models = [registry.model(m) for m in request.models]
    prepared = prepare_metrics(
        p,
        data,
        lambda metric: any(metric.not_applicable(m, data.info) is None for m in models),
        lambda what, done, total: emit(Preparing(what, done, total)),
    )

    out = request.out_dir
    out.mkdir(parents=True, exist_ok=True)
    result.manifest = run_manifest(
        p,
        data,
        prepared,
        models=list(request.models),
        grid=list(request.grid),
        seeds=list(request.seeds),
        cells=len(cells),
        cell_timeout=request.cell_timeout,
        executor={"name": getattr(runner, "name", type(runner).__name__), "workers": request.workers},
    )
    position = {c.cell_id: i for i, c in enumerate(cells)}
    # Rows `genbench eval` added to this folder are kept after the grid's (genbench.run.eval_folder).
    for i, old in enumerate(evaluated_records(out, set(position)) if request.resume else []):
        position[old.cell_id] = len(cells) + i
        reused[old.cell_id] = old
        result.manifest.setdefault("evaluated", []).append(old.cell_id)
    for old in reused.values():
        result.records.append(old)
        result.manifest["metric_better"].update(old.metric_better)
        result.manifest["metric_bounds"].update(old.metric_bounds)
    atomic_write_json(out / RUN_JSON, result.manifest)  # with the reused cells' directions and ranges
    waiting = {c.cell_id: c for c in todo}
    name = getattr(runner, "name", type(runner).__name__)

    def finish(index: int, outcome: CellResult) -> None:
        cell_id = outcome.cell_id if isinstance(outcome, CellRecord) else outcome.record.cell_id
        spec = waiting.pop(cell_id, None)
        if spec is None:
            raise GenbenchError(f"executor {name!r} returned cell {cell_id!r}, which it was not given or gave twice")
        record = land(outcome, spec)  # a worker's files and record, written here (the one writer)
        result.records.append(record)
        result.records.sort(key=lambda r: position[r.cell_id])  # grid order, reused cells included
        result.manifest["metric_better"].update(record.metric_better)
        result.manifest["metric_bounds"].update(record.metric_bounds)
        write_results(out, result.records)
        result.saved = len(result.records)
        atomic_write_json(out / RUN_JSON, result.manifest)
        emit(CellFinished(index, len(todo), record))

    # An executor is started only when cells remain (above); one not started is not asked to run.
    for index, outcome in enumerate(runner.run(todo, emit) if todo else ()):
        finish(index, outcome)
    for spec in list(waiting.values()):  # an executor that ended without a result for every cell
        finish(len(todo) - len(waiting), failed_cell(spec, f"executor {name!r} returned no result"))
    if not todo:
        write_results(out, result.records)
        result.saved = len(result.records)
        atomic_write_json(out / RUN_JSON, result.manifest)
