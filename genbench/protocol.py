"""Value objects of a run: the protocol, one cell's spec, one cell's record.

A :class:`CellSpec` is everything one grid cell needs and a :class:`CellRecord`
everything it produced. Both are plain, picklable dataclasses with no reference
to shared state, so a cell can run in this process, another process, another
GPU or on a cluster node and come back the same.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["ok", "failed", "diverged"]


def default_cache_dir() -> Path:
    """``$GENBENCH_CACHE``, else ``$XDG_CACHE_HOME/genbench`` (``~/.cache/genbench``)."""
    if "GENBENCH_CACHE" in os.environ:
        return Path(os.environ["GENBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genbench"


def default_data_dir() -> Path:
    """``$GENBENCH_DATA``, else ``data/`` inside the cache folder."""
    return Path(os.environ["GENBENCH_DATA"]) if "GENBENCH_DATA" in os.environ else default_cache_dir() / "data"


PHASES = ("train", "sample", "evaluate")
# Columns of results.csv that are neither hyper-parameters nor metrics: one list, used by the
# table to tell hyper-parameters apart and by the registry to reserve these names.
IDENTITY_COLUMNS = frozenset(
    {"model", "dataset", "seed", "cell", "status", "error", "flags", "params", "device", "samples_png", "peak_mem_mb"}
    | {"threads"}  # the torch threads a cell trained with (train_s depends on it)
)
PROTOCOL_COLUMNS = frozenset({"n_generated", "n_reference", "reference_split", "backbones", "torch_fidelity", "torch"})
TIMING_COLUMNS = frozenset({f"{phase}_s" for phase in PHASES} | {f"{phase}_items_per_s" for phase in PHASES})


@dataclass(frozen=True)
class Protocol:
    """What is held equal for every model and cell of a run.

    Same dataset and split, same number of generated and reference samples, same
    metrics and feature backbones, same device policy. ``epochs`` (when set)
    overrides every model's own ``epochs`` so all train on the same budget.
    """

    dataset: str
    metrics: tuple[str, ...]
    backbones: tuple[str, ...] = ("domain",)
    eval_samples: int = 1000
    reference_split: Literal["train", "test"] = "test"
    epochs: int | None = None
    device: str = "auto"
    data_dir: Path = field(default_factory=default_data_dir)
    cache_dir: Path = field(default_factory=default_cache_dir)
    download: bool = True
    # Evaluation details that change the numbers, so they are explicit and recorded:
    feature_layer: str | None = None  # FID/KID/PR layer; None = each backbone's standard layer
    backbone_weights: tuple[tuple[str, Path], ...] = ()  # (backbone, weights file) for offline machines
    reference_stats: Path | None = None  # an .npz with mu, sigma computed elsewhere, used for FID
    eval_batch_size: int = 256  # feature extraction batch (results do not depend on it)
    kid_subsets: int = 100
    kid_subset_size: int | None = None  # None: min(1000, generated, reference)
    isc_splits: int = 10
    prc_neighborhood: int = 3

    def weights_for(self, backbone: str) -> Path | None:
        """The weights file given for ``backbone``, if any."""
        return dict(self.backbone_weights).get(backbone)

    def n_reference(self, available: int) -> int:
        """Reference examples used: as many as generated, at most what the split holds."""
        return min(self.eval_samples, available)

    def kid_subset(self, n_reference: int) -> int:
        """KID's subset size: the one asked for, else torch-fidelity's 1000 capped by the sample counts."""
        return self.kid_subset_size or min(1000, self.eval_samples, n_reference)

    def manifest(self) -> dict[str, Any]:
        """A JSON-ready description written next to every result."""
        out = dataclasses.asdict(self)
        out["backbone_weights"] = {name: str(path) for name, path in self.backbone_weights}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


@dataclass(frozen=True)
class CellSpec:
    """One unit of work: train model ``model`` with ``hyper`` on ``seed``, evaluate, save to ``out_dir``."""

    cell_id: str
    model: str
    hyper: dict[str, Any]
    seed: int
    protocol: Protocol
    out_dir: Path
    threads: int | None = None  # torch intra-op threads; None: genbench.threads chooses when the cell starts


@dataclass
class PhaseTiming:
    """Wall time of one phase (CUDA-synchronised), throughput and peak memory."""

    seconds: float
    items: int = 0  # images seen (train) or generated (sample)
    peak_mem_mb: float = 0.0  # CUDA: peak allocated in the phase; CPU: process peak RSS so far

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 and self.items else 0.0


@dataclass
class CellRecord:
    """Everything a cell produced; serialised to ``record.json`` and one row of ``results.csv``."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    hyper: dict[str, Any]
    status: Status = "ok"
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metric_better: dict[str, Literal["lower", "higher"]] = field(default_factory=dict)
    # key -> {"low": float | None, "high": float | None, "integer": bool}: the values the metric can take
    metric_bounds: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_notes: dict[str, str] = field(default_factory=dict)  # metric -> why not computed
    flags: list[str] = field(default_factory=list)  # training health: "d_wins: ...", "collapse: ..."
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. domain backbone accuracy
    timings: dict[str, PhaseTiming] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    # Up to 10 points an epoch for the loss curves: {"step", "epoch" (fractional), key: mean over the steps since}
    step_history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    environment: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # backbones, layers, weights, sample counts
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run folder

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["timings"] = {k: {**dataclasses.asdict(t), "items_per_s": t.items_per_s} for k, t in self.timings.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRecord:
        data = dict(data)
        data["timings"] = {
            k: PhaseTiming(v["seconds"], v.get("items", 0), v.get("peak_mem_mb", 0.0))
            for k, v in data.get("timings", {}).items()
        }
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def row(self) -> dict[str, Any]:
        """The flat ``results.csv`` row: identity, hyper-parameters, metrics, timings, status."""
        row: dict[str, Any] = {
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "cell": self.cell_id,
            "status": self.status,
            "error": self.error or "",
            "flags": "; ".join(self.flags),
        }
        row.update(self.hyper)
        row.update(self.metrics)
        for phase, t in self.timings.items():
            row[f"{phase}_s"] = round(t.seconds, 4)
            if t.items:
                row[f"{phase}_items_per_s"] = round(t.items_per_s, 1)
        if self.timings:
            row["peak_mem_mb"] = round(max(t.peak_mem_mb for t in self.timings.values()), 1)
        row["params"] = self.params.get("total", 0)
        row["device"] = self.device
        if "threads" in self.environment:
            row["threads"] = int(self.environment["threads"])  # train_s depends on it
        row["samples_png"] = self.artifacts.get("samples", "")
        row.update(self.protocol_columns())
        return row

    def protocol_columns(self) -> dict[str, Any]:
        """The evaluation protocol, flat, so that every row of results.csv says how its numbers were made."""
        ev = self.evaluation
        if not ev:
            return {}
        backbones = ";".join(
            f"{name}:{b.get('layer')}@{str(b.get('weights'))[:12]}" for name, b in ev.get("backbones", {}).items()
        )
        return {
            "n_generated": ev.get("n_generated"),
            "n_reference": ev.get("n_reference"),
            "reference_split": ev.get("reference_split"),
            "backbones": backbones,
            "torch_fidelity": ev.get("torch_fidelity"),
            "torch": ev.get("torch"),
        }
