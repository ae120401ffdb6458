"""One grid cell, start to finish: a :class:`CellSpec` in, a :class:`CellRecord` out.

The cell loads what it needs itself (the registry and datasets are cached per
process, never passed in), so the same function runs in a worker process or on
another machine. Whatever happens, a record comes back: a plugin that raises
(even ``SystemExit`` or ``KeyboardInterrupt``), breaks the sample contract
(:mod:`genbench.run.contract`) or runs past the cell's time limit gives ``failed``
with its error; a NaN or exploded loss, a non-finite weight or sample, or a
numerical failure in a sampler or metric gives ``diverged`` with the reason
(:mod:`genbench.run.health`). Only the user's Ctrl-C propagates, so the user can stop a
grid (:mod:`genbench.run.guard` tells it from a KeyboardInterrupt raised by code), and
:class:`~genbench.errors.DiskFull`, since every later cell would fail the same way.

Each call is an *attempt* with a random id. It first removes the cell's old
``record.json`` (so an attempt that is killed leaves no record that --resume
could pair with its half-written files), and its final record lists every
file it wrote with the size and sha256 of the bytes written.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import platform
import random
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench.datasets.base import DataInfo, Split
from genbench.errors import DiskFull, GenbenchError, is_disk_full
from genbench.folder import cell_folder
from genbench.hyper import build, to_dict
from genbench.metrics.base import EvalContext
from genbench.metrics.features import evaluation_manifest
from genbench.metrics.frechet import sample_flags
from genbench.models.base import Capability, GenerativeModel, balanced_labels
from genbench.plugins import get_registry
from genbench.progress import reporting
from genbench.protocol import CellRecord, CellSpec, FileDigest
from genbench.reporting import images
from genbench.results import (
    RECORD_JSON,
    atomic_path,
    atomic_save_image,
    atomic_write_json,
    atomic_write_text,
    csv_text,
    file_digest,
    recording_writes,
)
from genbench.run.calibrate import WORKLOAD as CALIBRATION_WORKLOAD
from genbench.run.calibrate import calibrate
from genbench.run.contract import ContractError, draw_samples, one_line
from genbench.run.data import load_data
from genbench.run.fastpath import autocast, fast_path_flags, prepare_model, prepare_split, training_step
from genbench.run.guard import CellGuard, CellTimeout, raised_by_plugin
from genbench.run.health import evaluation_flags, training_flags
from genbench.run.timing import resolve_device, timed
from genbench.run.train import NUMERICAL_ERRORS, Diverged, TrainResult, numerical_reason, train
from genbench.run.watch import Watch
from genbench.threads import ThreadChoice, apply_threads, decide

# (cell_id, event, detail): "phase" with the phase name, "epoch" with (epoch, epochs, means), "step" with
# (epoch, epochs, steps done in the epoch, steps per epoch), "work" with (what, done, total) from genbench.progress.
CellCallback = Callable[[str, str, Any], None]
SAMPLING_SEED_OFFSET = 1_000_003  # sampling is seeded with seed + this (genbench eval draws the same way)
METRIC_DIVERGENCE: tuple[type[Exception], ...] = (Diverged, *NUMERICAL_ERRORS)  # a metric's numbers blew up


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA too


def environment(device: torch.device) -> dict[str, str]:
    """Library versions and hardware, written into every record."""
    import torch_fidelity
    import torchvision

    from genbench import __version__

    env = {
        "genbench": __version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_fidelity": torch_fidelity.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    env["calibration"] = CALIBRATION_WORKLOAD
    env["torch_threads"] = str(torch.get_num_threads())  # speed figures of different thread counts never meet
    return env


def conditional_labels(model: type[GenerativeModel], data: DataInfo, n: int) -> torch.Tensor | None:
    """Class-balanced labels for conditional models (0, 1, ..., k-1, 0, 1, ...), else None."""
    if Capability.CONDITIONAL in model.capabilities and data.num_classes:
        return balanced_labels(n, data.num_classes)
    return None


def _on_device(split: Split, device: torch.device) -> Split:
    return Split(split.x.to(device), None if split.y is None else split.y.to(device))


def start_attempt(out_dir: Path) -> str:
    """Make the cell folder ready for a new attempt and return the attempt's id.

    The folder must not be (or sit in) a symbolic link; its old ``record.json`` is
    removed before anything else is written, so until this attempt writes its own
    record no record can vouch for the files beside it.
    """
    cell_folder(out_dir)
    try:
        os.unlink(out_dir / RECORD_JSON)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise GenbenchError(f"{out_dir / RECORD_JSON}: cannot replace the old record ({exc.strerror})") from None
    return uuid.uuid4().hex


def run_cell(spec: CellSpec, on_event: CellCallback | None = None) -> CellRecord:
    """Train, sample, evaluate and save one cell; always return a record (the user's Ctrl-C aside).

    Only a cell folder that cannot be written safely (a symbolic link, see
    :func:`start_attempt`) raises GenbenchError, before any work. Long work inside the cell
    (feature extraction, ...) that reports through :mod:`genbench.progress` reaches ``on_event``
    as ``"work"`` events, whatever executor runs the cell.
    """
    with contextlib.ExitStack() as stack:
        if on_event is not None:
            send = on_event
            stack.enter_context(reporting(lambda what, done, total: send(spec.cell_id, "work", (what, done, total))))
        written = stack.enter_context(recording_writes())
        return _run_cell(spec, on_event, written)


def _run_cell(spec: CellSpec, on_event: CellCallback | None, written: Mapping[Path, FileDigest]) -> CellRecord:
    protocol = spec.protocol
    record = CellRecord(spec.cell_id, spec.model, protocol.dataset, spec.seed, dict(spec.hyper))
    record.protocol = protocol.manifest()
    record.attempt = start_attempt(spec.out_dir)
    threads = decide(spec.threads, spec.threads_reason)  # per cell: the machine's load changes during a grid
    apply_threads(threads.threads)  # before the calibration: its yardstick runs on the cell's threads
    time_calibration(record, protocol.device)
    progress = TrainResult()
    record.history = progress.history  # the same list: epochs that finished are kept whatever happens next
    record.step_history = progress.steps  # likewise: the finer loss log of the curves
    guard = CellGuard(spec.cell_timeout)
    try:
        with guard:
            _run_phases(spec, record, progress, guard, on_event or (lambda *_: None), threads)
    except Diverged as exc:
        record.status, record.error = "diverged", str(exc)
    except ContractError as exc:
        record.status, record.error = "failed", str(exc)
    except NUMERICAL_ERRORS as exc:  # e.g. a sampler's Cholesky on codes of 1e19
        record.status, record.error = "diverged", f"{guard.phase}: {numerical_reason(exc)}"
    except Exception as exc:  # a plugin bug must not stop the grid
        if is_disk_full(exc):  # but a full disk would fail every later cell the same way: stop it
            raise (exc if isinstance(exc, DiskFull) else DiskFull(spec.out_dir)) from None
        record.status, record.error = "failed", one_line(exc)
    except CellTimeout as exc:
        record.status, record.error = "failed", str(exc)
    except (SystemExit, KeyboardInterrupt) as exc:  # sys.exit() in a plugin, or Ctrl-C (handled below)
        if not guard.sigint_seen:
            record.status, record.error = "failed", raised_by_plugin(exc)
    except BaseException:  # anything else that escapes: keep what there is, never as "ok"
        record.status, record.error = "failed", "interrupted"
        save_cell_files(record, spec.out_dir, written)
        raise
    if guard.sigint_seen:  # the user's Ctrl-C (even one plugin code caught): never "ok" (--resume would trust it)
        record.status, record.error = "failed", "interrupted"
        save_cell_files(record, spec.out_dir, written)
        raise KeyboardInterrupt
    try:
        save_cell_files(record, spec.out_dir, written)
    except Exception as exc:
        if is_disk_full(exc):
            raise (exc if isinstance(exc, DiskFull) else DiskFull(spec.out_dir)) from None
        raise
    return record


def time_calibration(record: CellRecord, device: str) -> None:
    """The speed yardstick (:mod:`genbench.run.calibrate`), timed before the cell's time limit starts.

    A cell limit of a second must not be spent on it; and a yardstick that cannot be timed (the
    device refused) fails nothing: the record then has none, and calibrated speed comparisons of
    the run refuse to judge.
    """
    try:
        record.timings["calibrate"] = calibrate(resolve_device(device))
    except Exception as exc:
        record.metric_notes["calibration"] = f"not timed: {one_line(exc)}"


def _run_phases(
    spec: CellSpec,
    record: CellRecord,
    progress: TrainResult,
    guard: CellGuard,
    notify: CellCallback,
    threads: ThreadChoice,
) -> None:
    """The body of :func:`run_cell`: fills ``record`` as it goes, raises on failure or divergence."""
    protocol = spec.protocol
    registry = get_registry()
    cls = registry.model(spec.model)
    data = load_data(protocol.dataset, Path(protocol.data_dir), protocol.download)
    device = resolve_device(protocol.device)
    record.device = str(device)
    record.environment = environment(device)
    record.environment.update(threads=str(threads.threads), threads_reason=threads.reason)
    hyper = build(cls.Hyper, dict(spec.hyper), f"model {spec.model!r}", data.info.kind)
    record.hyper = to_dict(hyper)  # complete, kind defaults included, even for a hand-made partial spec
    seed_everything(spec.seed)
    model = cls(hyper, data.info).to(device)
    record.params = model.parameter_counts()
    prepare_model(model, protocol, device)  # --channels-last, fp16 loss scaling, --compile
    amp = autocast(protocol, device)  # --precision: train_step and sample run in it
    step, step_amp = training_step(model, protocol, device)  # --cuda-graphs: the step captured once, replayed

    epochs = hyper.epochs
    # figures and the quality curve: fed between epochs on forked random streams, off the train clock
    watch = Watch(model, data, device, spec.seed, epochs, protocol, record, spec.out_dir, guard, amp)
    guard.enter("train", f"epoch 1/{epochs}")
    notify(spec.cell_id, "phase", "train")
    train_split = prepare_split(_on_device(data.split("train"), device), protocol)  # resident on the device

    def on_epoch(epoch: int, means: dict[str, float]) -> None:
        guard.detail = f"epoch {min(epoch + 1, epochs)}/{epochs}"
        watch.on_epoch(epoch)
        notify(spec.cell_id, "epoch", (epoch, epochs, means))

    def on_step(epoch: int, step: int, steps: int) -> None:
        notify(spec.cell_id, "step", (epoch, epochs, step, steps))

    with timed(device, watch.elapsed) as t:
        record.timings["train"] = t  # filled in on exit, also when training diverges or fails
        try:
            train(
                model, train_split, epochs, hyper.batch_size, spec.seed, on_epoch, progress, guard.check, on_step,
                step_amp, step,
            )  # fmt: skip
        except Exception:
            watch.finish(complete=False)  # what the epochs that finished show (samples over training)
            raise
        finally:
            t.items = progress.images_seen

    guard.enter("sample")
    notify(spec.cell_id, "phase", "sample")
    seed_everything(spec.seed + SAMPLING_SEED_OFFSET)  # sampling noise independent of the training stream
    n = protocol.eval_samples
    labels = conditional_labels(cls, data.info, n)
    with timed(device) as t, amp():
        samples = draw_samples(model, n, labels, data.info, guard.check)
        t.items = n
    record.timings["sample"] = t
    reference_full = data.split(protocol.reference_split)
    columns = images.sample_columns(data.info, labels is not None)
    images.save_samples(samples, data.info, reference_full.x, spec.out_dir / "samples.png", columns)
    record.artifacts["samples"] = f"cells/{spec.cell_id}/samples.png"
    save_checkpoint(model, spec, data.info, spec.out_dir / "checkpoint.pt")
    record.artifacts["checkpoint"] = f"cells/{spec.cell_id}/checkpoint.pt"

    guard.enter("evaluate")
    notify(spec.cell_id, "phase", "evaluate")
    reference = reference_full.head(protocol.n_reference(len(reference_full)))
    ctx = EvalContext(model, data, samples, reference, protocol, device, spec.seed, labels)
    with timed(device) as t:
        evaluate(ctx, protocol.metrics, record, guard.check)
    record.timings["evaluate"] = t
    guard.enter("figures")
    notify(spec.cell_id, "phase", "figures")
    watch.finish(complete=True, evaluated=ctx)  # the curve's last point reuses the evaluation's samples
    history_flags = training_flags(record.history, record.hyper, cls.d_wins_flag)
    record.flags = history_flags + evaluation_flags(record.metrics) + fast_path_flags(model, protocol) + record.flags


def evaluate(
    ctx: EvalContext, metrics: tuple[str, ...], record: CellRecord, check: Callable[[], None] | None = None
) -> None:
    """Compute every requested metric that applies; note why the others were not computed.

    A metric that fails numerically (a LinAlgError, a value that is NaN, infinite or
    complex) makes the cell ``diverged`` with ``metric <name>: <reason>``; any other
    exception is noted as ``failed: ...``. Either way the other metrics' values are kept.
    ``check`` is called before every metric (the cell's time limit).
    """
    registry = get_registry()
    model_cls = type(ctx.model)
    for name in metrics:
        if check is not None:
            check()
        metric = registry.metric(name)()
        reason = metric.not_applicable(model_cls, ctx.data)
        if reason:
            record.metric_notes[name] = f"not applicable: {reason}"
            continue
        try:
            record.extras.update(metric.prepare(ctx.protocol, ctx.dataset))  # cached: cheap after the first cell
            values = {key: metric_value(key, value) for key, value in metric.compute(ctx).items()}
        except METRIC_DIVERGENCE as exc:
            record.metric_notes[name] = f"diverged: {numerical_reason(exc)}"
            if record.status == "ok":
                record.status, record.error = "diverged", f"metric {name}: {numerical_reason(exc)}"
            continue
        except Exception as exc:
            record.metric_notes[name] = f"failed: {one_line(exc)}"
            continue
        for key, value in values.items():
            record.metrics[key] = value
            direction = metric.better(key)
            if direction is not None:
                record.metric_better[key] = direction
            low, high = metric.bounds(key, ctx.data)
            if low is not None or high is not None or metric.integer(key):
                record.metric_bounds[key] = {"low": low, "high": high, "integer": metric.integer(key)}
    record.flags += sample_flags(ctx, record.metrics)  # Fréchet distances on fewer samples than dimensions
    used = [key.split(":", 1)[1] for key in ctx.memo if key.startswith("features:")]
    record.evaluation = evaluation_manifest(ctx.protocol, ctx.dataset, tuple(used))
    for key in ctx.memo:
        if key.startswith("features:"):
            for stats in ctx.memo[key].reference.values():
                if stats.note:
                    record.metric_notes["reference_cache"] = stats.note


def metric_value(key: str, value: Any) -> float:
    """A metric's value as a float; NaN, infinite or complex (a failed matrix square root) is divergence."""
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, complex | np.complexfloating):
        if value.imag != 0:
            raise Diverged(f"{key} is complex ({complex(value):.6g})")
        value = value.real
    number = float(value)
    if not math.isfinite(number):
        raise Diverged(f"{key} is {number}")
    return number


def save_checkpoint(model: GenerativeModel, spec: CellSpec, data: DataInfo, path: Path) -> None:
    payload = {
        "model": spec.model,
        "hyper": dict(spec.hyper),
        "data": {
            "name": data.name,
            "shape": list(data.shape),
            "kind": data.kind,
            "classes": data.num_classes,
        },
        "seed": spec.seed,
        "state_dict": model.state_dict(),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)  # through a Python file, so that a full disk surfaces as its OSError


def save_cell_files(record: CellRecord, out_dir: Path, written: Mapping[Path, FileDigest] | None = None) -> None:
    """record.json always; history.csv (losses and the quality curve), steps.csv and curves.png when an epoch finished.

    The record lists each artifact's size and sha256: from ``written`` (the digests of the
    bytes this attempt wrote, see :func:`genbench.results.recording_writes`), else from disk.
    An artifact this attempt did not write is not listed.
    """
    if record.history:
        buf = io.StringIO()
        writer = csv.writer(buf)
        keys = list(record.history[0])
        quality = {int(q["epoch"]): q for q in record.quality if "epoch" in q}  # the curve's points, by epoch
        extra = [k for k in dict.fromkeys(k for q in quality.values() for k in q) if k != "epoch" and k not in keys]
        writer.writerow(["epoch", *(csv_text(k) for k in keys + extra)])  # loss names come from plugins
        for i, row in enumerate(record.history, 1):
            writer.writerow([i, *(row.get(k, "") for k in keys), *(quality.get(i, {}).get(k, "") for k in extra)])
        atomic_write_text(out_dir / "history.csv", buf.getvalue())
        record.artifacts["history"] = f"cells/{record.cell_id}/history.csv"
        if record.step_history:
            buf = io.StringIO()
            writer = csv.writer(buf)
            keys = list(record.step_history[0])
            writer.writerow([csv_text(k) for k in keys])
            writer.writerows([row.get(k, "") for k in keys] for row in record.step_history)
            atomic_write_text(out_dir / "steps.csv", buf.getvalue())
            record.artifacts["steps"] = f"cells/{record.cell_id}/steps.csv"
        atomic_save_image(images.curves(record.step_history or record.history, record.quality), out_dir / "curves.png")
        record.artifacts["curves"] = f"cells/{record.cell_id}/curves.png"
    record.checksums = {}
    for name, rel in list(record.artifacts.items()):
        path = out_dir / Path(rel).name
        digest = written.get(path) if written is not None else (file_digest(path) if path.is_file() else None)
        if digest is None:
            del record.artifacts[name]
        else:
            record.checksums[name] = digest
    atomic_write_json(out_dir / RECORD_JSON, record.to_json())
