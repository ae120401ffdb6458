"""Run folders with chosen numbers, written by genbench's own writers: compare/check tests without training.

A folder made here is what ``genbench run`` writes (``results.csv`` from the records, ``run.json``,
``cells/<id>/record.json``), with metric values, statuses, flags and timings that a test picks, so a
verdict can be asserted exactly. The end-to-end tests in ``test_gate.py`` also check real runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genbench.protocol import CellRecord, PhaseTiming, Status
from genbench.results import atomic_write_json, write_results
from genbench.run.calibrate import WORKLOAD
from genbench.run.grid import hyper_digest

BETTER: dict[str, Any] = {
    "fid_domain": "lower",
    "kid_domain": "lower",
    "precision_domain": "higher",
    "classes_covered": "higher",
    "recon_mse": "lower",
}
GAN = {"z_dim": 64, "lr": 2e-4, "batch_size": 64, "epochs": 2}
VAE = {"z_dim": 16, "lr": 3e-3, "batch_size": 32, "epochs": 2}
FINGERPRINT = "410aa8a7290ce535" + "0" * 48


def evaluation(**changes: Any) -> dict[str, Any]:
    """The evaluation manifest of a digits run with the domain backbone; ``changes`` replace fields."""
    domain = {
        "extractor": "genbench-domain",
        "weights": "9a808de91941bb6b",
        "layer": "penultimate",
        "logits_layer": "logits",
        "resize": "none (native 8x8)",
        "accuracy": 0.98,
    }
    domain.update(changes.pop("domain", {}))
    out = {
        "backbones": {"domain": domain},
        "n_generated": 200,
        "n_reference": 200,
        "reference_split": "test",
        "kid_subsets": 100,
        "kid_subset_size": 200,
        "isc_splits": 10,
        "prc_neighborhood": 3,
        "reference_stats": None,
        "torch_fidelity": "0.4.0",
        "torch": "2.14.1+cu130",
    }
    out.update(changes)
    return out


def record(
    model: str,
    hyper: Mapping[str, Any],
    seed: int,
    metrics: Mapping[str, float],
    *,
    status: Status = "ok",
    flags: Sequence[str] = (),
    train: float = 2000.0,  # images per second
    calibration: float = 20000.0,  # the calibration workload's images per second
    readable: str = "",
    ev: Mapping[str, Any] | None = None,
    device: str = "cpu",
) -> CellRecord:
    cid = f"{readable or model}_{hyper_digest(model, hyper)}_s{seed}"
    r = CellRecord(cid, model, "digits", seed, dict(hyper), status=status)
    r.error = "RuntimeError: boom" if status != "ok" else None
    r.metrics = dict(metrics)
    r.metric_better = {k: BETTER[k] for k in metrics}
    r.flags = list(flags)
    r.device = device
    r.evaluation = dict(ev) if ev is not None else evaluation()
    r.timings = {
        "calibrate": PhaseTiming(4096 / calibration, 4096),
        "train": PhaseTiming(2816 / train, 2816),
        "sample": PhaseTiming(200 / 50000.0, 200),
        "evaluate": PhaseTiming(200 / 500.0),
    }
    return r


def write_run(
    out: Path,
    records: Sequence[CellRecord],
    *,
    fingerprint: str = FINGERPRINT,
    dataset: str = "digits",
    environment: Mapping[str, str] | None = None,
) -> Path:
    """A results folder holding ``records``, as genbench writes one."""
    out.mkdir(parents=True, exist_ok=True)
    for r in records:
        atomic_write_json(out / "cells" / r.cell_id / "record.json", r.to_json())
    write_results(out, records)
    env = {
        "genbench": "0.1.0",
        "torch": "2.14.1+cu130",
        "python": "3.11.7",
        "platform": "Linux-test",
        "device": "cpu",
        "calibration": WORKLOAD,
    }
    env.update(environment or {})
    manifest = {
        "created": "2026-01-01T00:00:00+00:00",
        "protocol": {"dataset": dataset, "eval_samples": 200, "metrics": ["fid"], "backbones": ["domain"]},
        "dataset_fingerprint": fingerprint,
        "environment": env,
        "metric_better": {k: v for r in records for k, v in r.metric_better.items()},
    }
    atomic_write_json(out / "run.json", manifest)
    return out


def seeds(
    model: str, hyper: Mapping[str, Any], values: Mapping[str, Sequence[float]], first_seed: int = 0, **kw: Any
) -> list[CellRecord]:
    """One record per seed; ``values`` gives each metric's per-seed values (and ``train``/``calibration`` lists)."""
    n = len(next(iter(values.values())))
    out = []
    for i in range(n):
        per_seed = {k: v[i] for k, v in values.items()}
        extra = {k: per_seed.pop(k) for k in ("train", "calibration") if k in per_seed}
        out.append(record(model, hyper, first_seed + i, per_seed, **extra, **kw))
    return out
