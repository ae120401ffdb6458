"""One grid cell, start to finish: a :class:`CellSpec` in, a :class:`CellRecord` out.

The cell loads what it needs itself (the registry and datasets are cached per
process, never passed in), so the same function runs in a worker process or on
another machine. Whatever happens, a record comes back: a plugin that raises
gives ``failed`` with its error, a NaN loss gives ``diverged``; only
KeyboardInterrupt propagates, so the user can stop a grid.
"""

from __future__ import annotations

import csv
import io
import platform
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genbench import images
from genbench.data import load_data
from genbench.datasets.base import DataInfo, Split
from genbench.errors import GenbenchError
from genbench.health import evaluation_flags, training_flags
from genbench.hyper import build, to_dict
from genbench.metrics.base import EvalContext
from genbench.metrics.features import evaluation_manifest
from genbench.models.base import Capability, GenerativeModel
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, CellSpec
from genbench.results import RECORD_JSON, atomic_path, atomic_save_image, atomic_write_json, atomic_write_text
from genbench.threads import apply_threads, decide
from genbench.timing import resolve_device, timed
from genbench.train import Diverged, TrainResult, train

# (cell_id, event, detail): "phase" with the phase name, "epoch" with (epoch, epochs, means), "step" with
# (epoch, epochs, steps done in the epoch, steps per epoch), "work" with (what, done, total) from genbench.progress.
CellCallback = Callable[[str, str, Any], None]
SAMPLE_BATCH = 500


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
    return env


def conditional_labels(model: type[GenerativeModel], data: DataInfo, n: int) -> torch.Tensor | None:
    """Class-balanced labels for conditional models (0, 1, ..., k-1, 0, 1, ...), else None."""
    if Capability.CONDITIONAL in model.capabilities and data.num_classes:
        return torch.arange(n) % data.num_classes
    return None


def draw_samples(model: GenerativeModel, n: int, labels: torch.Tensor | None) -> torch.Tensor:
    """``n`` samples on the CPU, drawn in batches in eval mode."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, n, SAMPLE_BATCH):
            lab = None if labels is None else labels[i : i + SAMPLE_BATCH].to(model.device)
            out.append(model.sample(min(SAMPLE_BATCH, n - i), lab).float().cpu())
    return torch.cat(out)


def _on_device(split: Split, device: torch.device) -> Split:
    return Split(split.x.to(device), None if split.y is None else split.y.to(device))


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, GenbenchError) else text


def run_cell(spec: CellSpec, on_event: CellCallback | None = None) -> CellRecord:
    """Train, sample, evaluate and save one cell; always return a record."""
    protocol = spec.protocol
    record = CellRecord(spec.cell_id, spec.model, protocol.dataset, spec.seed, dict(spec.hyper))
    record.protocol = protocol.manifest()
    notify = on_event or (lambda *_: None)
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    progress = TrainResult()
    record.history = progress.history  # the same list: epochs that finished are kept whatever happens next
    record.step_history = progress.steps  # likewise: the finer loss log of the curves
    try:
        threads = decide(spec.threads)  # per cell: the machine's load changes during a grid
        apply_threads(threads.threads)
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

        notify(spec.cell_id, "phase", "train")
        train_split = _on_device(data.split("train"), device)
        epochs = hyper.epochs

        def on_epoch(epoch: int, means: dict[str, float]) -> None:
            notify(spec.cell_id, "epoch", (epoch, epochs, means))

        def on_step(epoch: int, step: int, steps: int) -> None:
            notify(spec.cell_id, "step", (epoch, epochs, step, steps))

        with timed(device) as t:
            record.timings["train"] = t  # filled in on exit, also when training diverges or fails
            try:
                train(model, train_split, epochs, hyper.batch_size, spec.seed, on_epoch, progress, on_step)
            finally:
                t.items = progress.images_seen

        notify(spec.cell_id, "phase", "sample")
        seed_everything(spec.seed + 1_000_003)  # sampling noise independent of the training stream
        n = protocol.eval_samples
        labels = conditional_labels(cls, data.info, n)
        with timed(device) as t:
            samples = draw_samples(model, n, labels)
            t.items = n
        record.timings["sample"] = t
        if not torch.isfinite(samples).all():
            raise Diverged(len(progress.history), "samples", float("nan"))
        reference_full = data.split(protocol.reference_split)
        # conditional samples are class-balanced in label order: one column per class (up to 16 classes)
        k = data.info.num_classes or 0
        columns = k if labels is not None and 0 < k <= 16 else 8
        images.save_samples(samples, data.info, reference_full.x, spec.out_dir / "samples.png", columns)
        record.artifacts["samples"] = f"cells/{spec.cell_id}/samples.png"
        save_checkpoint(model, spec, data.info, spec.out_dir / "checkpoint.pt")
        record.artifacts["checkpoint"] = f"cells/{spec.cell_id}/checkpoint.pt"

        notify(spec.cell_id, "phase", "evaluate")
        reference = reference_full.head(protocol.n_reference(len(reference_full)))
        ctx = EvalContext(model, data, samples, reference, protocol, device, spec.seed, labels)
        with timed(device) as t:
            evaluate(ctx, protocol.metrics, record)
        record.timings["evaluate"] = t
        record.flags = training_flags(record.history, record.hyper) + evaluation_flags(record.metrics)
    except Diverged as exc:
        record.status, record.error = "diverged", str(exc)
    except Exception as exc:  # a plugin bug must not stop the grid
        record.status, record.error = "failed", one_line(exc)
    except BaseException:  # Ctrl-C: keep what there is, never as "ok" (--resume would trust it), stop the grid
        record.status, record.error = "failed", "interrupted"
        save_cell_files(record, spec.out_dir)
        raise
    save_cell_files(record, spec.out_dir)
    return record


def evaluate(ctx: EvalContext, metrics: tuple[str, ...], record: CellRecord) -> None:
    """Compute every requested metric that applies; note why the others were not computed."""
    registry = get_registry()
    model_cls = type(ctx.model)
    for name in metrics:
        metric = registry.metric(name)()
        reason = metric.not_applicable(model_cls, ctx.data)
        if reason:
            record.metric_notes[name] = f"not applicable: {reason}"
            continue
        try:
            record.extras.update(metric.prepare(ctx.protocol, ctx.dataset))  # cached: cheap after the first cell
            values = metric.compute(ctx)
        except Exception as exc:
            record.metric_notes[name] = f"failed: {one_line(exc)}"
            continue
        for key, value in values.items():
            record.metrics[key] = float(value)
            direction = metric.better(key)
            if direction is not None:
                record.metric_better[key] = direction
            low, high = metric.bounds(key, ctx.data)
            if low is not None or high is not None or metric.integer(key):
                record.metric_bounds[key] = {"low": low, "high": high, "integer": metric.integer(key)}
    used = [key.split(":", 1)[1] for key in ctx.memo if key.startswith("features:")]
    record.evaluation = evaluation_manifest(ctx.protocol, ctx.dataset, tuple(used))
    for key in ctx.memo:
        if key.startswith("features:"):
            for stats in ctx.memo[key].reference.values():
                if stats.note:
                    record.metric_notes["reference_cache"] = stats.note


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
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_cell_files(record: CellRecord, out_dir: Path) -> None:
    """record.json always; history.csv, steps.csv and curves.png when at least one epoch finished."""
    if record.history:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["epoch", *record.history[0]])
        writer.writeheader()
        for i, row in enumerate(record.history, 1):
            writer.writerow({"epoch": i, **row})
        atomic_write_text(out_dir / "history.csv", buf.getvalue())
        if record.step_history:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(record.step_history[0]))
            writer.writeheader()
            writer.writerows(record.step_history)
            atomic_write_text(out_dir / "steps.csv", buf.getvalue())
        atomic_save_image(images.curves(record.step_history or record.history), out_dir / "curves.png")
        record.artifacts["curves"] = f"cells/{record.cell_id}/curves.png"
    atomic_write_json(out_dir / RECORD_JSON, record.to_json())
