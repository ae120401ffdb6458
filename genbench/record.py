"""One cell's record: everything it produced, written to ``record.json`` and one row of ``results.csv``.

A :class:`CellRecord` (with its :class:`PhaseTiming` per phase and :class:`FileDigest` per
file) is a plain, picklable dataclass, so that it comes back the same from another process
or machine; read back from disk (``--resume``), every field is checked like user input.
These names are importable from :mod:`genbench.protocol` too.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "failed", "diverged"]


@dataclass
class PhaseTiming:
    """Wall time of one phase (CUDA-synchronised), throughput and peak memory."""

    seconds: float
    items: int = 0  # images seen (train) or generated (sample)
    peak_mem_mb: float = 0.0  # CUDA: peak allocated in the phase; CPU: process peak RSS so far
    # CPU time of the whole process (all threads) in the phase: unlike the wall clock, it does not count
    # time spent waiting for a CPU that other processes hold (genbench check's speed figures on a CPU)
    cpu_seconds: float = 0.0

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 and self.items else 0.0


@dataclass(frozen=True)
class FileDigest:
    """Size and sha256 of a file as it was written: --resume trusts a file only if it still matches."""

    size: int
    sha256: str


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
    attempt: str = ""  # random id of the run_cell call that wrote this record and its files
    checksums: dict[str, FileDigest] = field(default_factory=dict)  # artifact name -> the bytes written
    # Quality over training (Protocol.eval_every): [{"epoch": 1, "fid_domain": 312.5}, ...]
    quality: list[dict[str, float]] = field(default_factory=list)
    figures: dict[str, list[str]] = field(default_factory=dict)  # figure name -> its artifact names
    figure_notes: dict[str, str] = field(default_factory=dict)  # figure name -> why it was not drawn

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["timings"] = {k: {**dataclasses.asdict(t), "items_per_s": t.items_per_s} for k, t in self.timings.items()}
        return out

    @classmethod
    def from_json(cls, data: Any) -> CellRecord:
        """A record from its JSON; raises ValueError naming the first field of the wrong type.

        ``record.json`` is read back from disk on ``--resume``, so every field is checked
        like user input: a record that is malformed in any way is recomputed, never trusted.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
        for name in ("cell_id", "model", "dataset", "seed", "hyper"):
            if name not in data:
                raise ValueError(f"no {name!r}")
        get = data.get
        timings = {}
        for phase, t in _mapping(get("timings", {}), "timings").items():
            t = _mapping(t, f"timings.{phase}")
            seconds, items = _number(t.get("seconds"), "seconds"), _int(t.get("items", 0), "items")
            peak, cpu = _number(t.get("peak_mem_mb", 0.0), "peak_mem_mb"), _number(t.get("cpu_seconds", 0.0), "cpu")
            timings[phase] = PhaseTiming(seconds, items, peak, cpu)
        checksums = {}
        for name, d in _mapping(get("checksums", {}), "checksums").items():
            d = _mapping(d, f"checksums.{name}")
            size, sha = _int(d.get("size"), "size"), d.get("sha256")
            if size < 0 or not isinstance(sha, str) or not _SHA256.fullmatch(sha):
                raise ValueError(f"checksums.{name}: expected a size >= 0 and a sha256 in hex")
            checksums[name] = FileDigest(size, sha)
        status = get("status", "ok")
        if status not in ("ok", "failed", "diverged"):
            raise ValueError(f"status {str(status)[:20]!r}")
        better = _mapping(get("metric_better", {}), "metric_better")
        if any(v not in ("lower", "higher") for v in better.values()):
            raise ValueError("metric_better: expected 'lower' or 'higher'")
        evaluation = _mapping(get("evaluation", {}), "evaluation")
        for name, b in _mapping(evaluation.get("backbones", {}), "evaluation.backbones").items():
            _mapping(b, f"evaluation.backbones.{name}")  # read by protocol_columns()
        error = get("error")
        history = get("history", [])
        if not isinstance(history, list):
            raise ValueError("history: expected a list")
        bounds = {}
        for key, b in _mapping(get("metric_bounds", {}), "metric_bounds").items():
            b = _mapping(b, f"metric_bounds.{key}")
            low, high, integer = b.get("low"), b.get("high"), b.get("integer", False)
            if not isinstance(integer, bool):
                raise ValueError(f"metric_bounds.{key}.integer: expected true or false")
            bounds[key] = {
                "low": None if low is None else _number(low, f"metric_bounds.{key}.low"),
                "high": None if high is None else _number(high, f"metric_bounds.{key}.high"),
                "integer": integer,
            }
        return cls(
            cell_id=_str(get("cell_id"), "cell_id"),
            model=_str(get("model"), "model"),
            dataset=_str(get("dataset"), "dataset"),
            seed=_int(get("seed"), "seed"),
            hyper=_mapping(get("hyper"), "hyper"),
            status=status,
            error=None if error is None else _str(error, "error"),
            metrics={k: _number(v, f"metrics.{k}") for k, v in _mapping(get("metrics", {}), "metrics").items()},
            metric_better=better,
            metric_bounds=bounds,
            metric_notes=_strings(get("metric_notes", {}), "metric_notes"),
            flags=[_str(f, "flags") for f in _list(get("flags", []), "flags")],
            extras=_mapping(get("extras", {}), "extras"),
            timings=timings,
            params={k: _int(v, f"params.{k}") for k, v in _mapping(get("params", {}), "params").items()},
            history=[{k: _number(v, f"history.{k}") for k, v in _mapping(h, "history").items()} for h in history],
            step_history=[
                {k: _number(v, f"step_history.{k}") for k, v in _mapping(h, "step_history").items()}
                for h in _list(get("step_history", []), "step_history")
            ],
            device=_str(get("device", "cpu"), "device"),
            environment=_strings(get("environment", {}), "environment"),
            protocol=_mapping(get("protocol", {}), "protocol"),
            evaluation=evaluation,
            artifacts=_strings(get("artifacts", {}), "artifacts"),
            attempt=_str(get("attempt", ""), "attempt"),
            checksums=checksums,
            quality=[
                {k: _number(v, f"quality.{k}") for k, v in _mapping(q, "quality").items()}
                for q in _list(get("quality", []), "quality")
            ],
            figures={
                k: [_str(f, f"figures.{k}") for f in _list(v, f"figures.{k}")]
                for k, v in _mapping(get("figures", {}), "figures").items()
            },
            figure_notes=_strings(get("figure_notes", {}), "figure_notes"),
        )

    def row(self) -> dict[str, Any]:
        """The flat ``results.csv`` row: identity, hyper-parameters, metrics, timings, status.

        The identity columns are the record's own: a hyper-parameter or metric of the same name (a
        damaged or crafted record.json) cannot replace them, which would write a results.csv genbench
        then refuses to read (``status: bogus``) or a row of another cell.
        """
        identity: dict[str, Any] = {
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "cell": self.cell_id,
            "status": self.status,
            "error": self.error or "",
            "flags": "; ".join(self.flags),
        }
        row = dict(identity)
        row.update(self.hyper)
        row.update(self.metrics)
        row.update(identity)  # keeps the columns' order
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


# -- checking JSON read back from disk ---------------------------------------------------------------
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected a string")
    return value


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what}: expected an integer")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what}: expected a number")
    try:
        return float(value)
    except OverflowError:  # an integer too large for a float
        raise ValueError(f"{what}: out of range") from None


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what}: expected a list")
    return value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what}: expected an object")
    return value


def _strings(value: Any, what: str) -> dict[str, str]:
    return {k: _str(v, f"{what}.{k}") for k, v in _mapping(value, what).items()}
