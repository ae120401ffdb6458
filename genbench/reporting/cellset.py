"""Results as cells over seeds: what ``compare``, ``baseline`` and ``check`` read, from a run or a baseline file.

A :class:`CellSet` is one side of a comparison. :func:`load_run` builds it from a results
folder (through the readers of :mod:`genbench.results`); :mod:`genbench.reporting.baseline`
builds it from a baseline file. Both give the same thing, so a check against a file and a
check against another run are one code path.

Cells are matched across runs by :func:`cell_key`: the model and the digest of every
hyper-parameter that the cell id carries (:func:`genbench.run.grid.cell_id`). The readable
part of an id depends on which keys a grid varied, so two runs that name a cell differently
(``gan_z_dim=64_...`` in a sweep, ``gan_...`` alone) still match; two cells that differ in
any hyper-parameter value, ``epochs`` included, never do.

Per seed a cell keeps its status, flags, metric values and three speed figures, the
throughput of the ``train``, ``sample`` and ``evaluate`` phases (images per second; for
``evaluate``, generated images evaluated per second), and the throughput of the calibration
workload timed next to them (:mod:`genbench.run.calibrate`). On a CPU device they count the
process's CPU time, elsewhere the (synchronised) wall clock (:func:`clock`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError
from genbench.folder import CELLS, safe_relative
from genbench.protocol import CellRecord
from genbench.reporting.tolerance import SPEED_PHASES
from genbench.results import RECORD_JSON, RUN_JSON, read_record, read_run

SPEED_UNITS = {"train": "img/s trained", "sample": "img/s generated", "evaluate": "img/s evaluated"}
# Protocol settings that change no number: where files are, how big a feature batch is, the device
# policy (the device itself is compared for speed), backbone weight *paths* (their hashes are compared).
PROTOCOL_WITHOUT_EFFECT = frozenset(
    {"data_dir", "cache_dir", "download", "eval_batch_size", "device", "backbone_weights", "metrics", "backbones"}
)
_ID_DIGEST = re.compile(r"_([0-9a-f]{10})_s\d+$")  # genbench.run.grid.cell_id: <readable>_<digest>_s<seed>
_SEED = re.compile(r"_s-?\d+$")


@dataclass(frozen=True)
class SeedResult:
    """One seed of a cell: status, flags, metrics, throughput per phase and of the calibration."""

    seed: int
    status: str = "ok"
    error: str = ""
    flags: tuple[str, ...] = ()  # as recorded: "collapse: 2/10 classes covered"
    metrics: Mapping[str, float] = field(default_factory=dict)
    speed: Mapping[str, float] = field(default_factory=dict)  # phase -> items per second (raw)
    seconds: Mapping[str, float] = field(default_factory=dict)  # phase -> how long it lasted
    clock: str = "wall"  # what speed and seconds count: "cpu" (the process's CPU time) or "wall"
    calibration: float | None = None  # the calibration workload's items per second, timed in the cell

    @property
    def flag_kinds(self) -> tuple[str, ...]:
        """``("collapse", "d_wins")``: the part of each flag before its colon."""
        return tuple(dict.fromkeys(f.split(":", 1)[0].strip() for f in self.flags))

    def speed_value(self, phase: str, scale: float = 1.0) -> float | None:
        """Throughput of ``phase`` divided by ``scale`` (a side's calibration, or 1), or None when missing."""
        raw = self.speed.get(phase)
        return raw / scale if raw is not None and raw > 0 else None


@dataclass
class Cell:
    """A model with one set of hyper-parameters, over the seeds it ran."""

    key: str  # "<model>:<digest>" (cell_key)
    label: str  # the cell id without its seed, as the side that named it wrote it
    model: str
    hyper: dict[str, Any]
    dataset: str
    evaluation: dict[str, Any] = field(default_factory=dict)  # of the cell's evaluated seeds
    device: str = "cpu"
    seeds: dict[int, SeedResult] = field(default_factory=dict)

    def ok(self) -> list[SeedResult]:
        return [s for s in self.seeds.values() if s.status == "ok"]


@dataclass
class CellSet:
    """One side of a comparison: a run folder or a baseline file."""

    source: str  # the path as the user gave it, for messages
    kind: str  # "run" or "baseline"
    dataset: str
    dataset_fingerprint: str | None
    protocol: dict[str, Any]
    environment: dict[str, str]
    metric_better: dict[str, str]
    cells: dict[str, Cell] = field(default_factory=dict)
    tolerances: dict[str, str] = field(default_factory=dict)  # a baseline's stored tolerances, as text
    created: str = ""

    def calibration(self) -> float | None:
        """The machine's speed during this side's run: the median throughput of the calibration workload
        over every ok seed of every cell (:mod:`genbench.run.calibrate`), or None when none was timed.

        Each cell times the workload for a fraction of a second, so one timing is noisy (on our busy
        2-core machine +-15% from cell to cell, even in CPU time); their median over a run is stable to
        a few percent, and that is what a speed figure is divided by when runs from different
        machines are compared.
        """
        timed = sorted(s.calibration for c in self.cells.values() for s in c.ok() if s.calibration)
        return timed[len(timed) // 2] if timed else None

    def metrics(self) -> list[str]:
        """The ranked metric keys any cell has, in the order the run reported them."""
        seen = [k for k in self.metric_better if self.metric_better[k] in ("lower", "higher")]
        return [k for k in seen if any(k in s.metrics for c in self.cells.values() for s in c.seeds.values())]


def cell_key(cell_id: str, model: str, hyper: Mapping[str, Any]) -> str:
    """``"<model>:<digest>"``: the digest read off the cell id, else computed from ``hyper`` as the grid does."""
    m = _ID_DIGEST.search(cell_id)
    if m:
        return f"{model}:{m.group(1)}"
    from genbench.run.grid import hyper_digest  # imports torch: only for ids without a digest

    return f"{model}:{hyper_digest(model, hyper)}"


def cell_label(cell_id: str) -> str:
    """The cell id without ``_s<seed>``."""
    return _SEED.sub("", cell_id)


def clock(record: CellRecord) -> str:
    """``"cpu"`` on a CPU device whose timings have the process's CPU time, else ``"wall"``.

    On a CPU the process's CPU time is the better instrument for a regression gate: time spent
    waiting for a core that another process holds is the machine's, not the code's (on our busy
    2-core machine the wall clock of one workload varied sixfold within minutes). On a GPU the
    CPU mostly waits for the device: the synchronised wall clock is what counts there.
    """
    timed = [t for phase, t in record.timings.items() if phase in (*SPEED_PHASES, "calibrate")]
    on_cpu = record.device.split(":")[0] == "cpu"
    return "cpu" if on_cpu and timed and all(t.cpu_seconds > 0 for t in timed) else "wall"


def seed_result(record: CellRecord) -> SeedResult:
    """A record's status, flags, metrics and throughputs (on the clock :func:`clock` picks)."""
    kind = clock(record)

    def lasted(phase: str) -> float:
        t = record.timings[phase]
        return t.cpu_seconds if kind == "cpu" else t.seconds

    speed: dict[str, float] = {}
    for phase in ("train", "sample"):
        t = record.timings.get(phase)
        if t is not None and t.items and lasted(phase) > 0:
            speed[phase] = t.items / lasted(phase)
    n = record.evaluation.get("n_generated")
    if "evaluate" in record.timings and lasted("evaluate") > 0 and isinstance(n, int) and n > 0:
        speed["evaluate"] = n / lasted("evaluate")
    calibration = None
    if "calibrate" in record.timings and record.timings["calibrate"].items and lasted("calibrate") > 0:
        calibration = record.timings["calibrate"].items / lasted("calibrate")
    return SeedResult(
        seed=record.seed,
        status=record.status,
        error=record.error or "",
        flags=tuple(record.flags),
        metrics={k: v for k, v in record.metrics.items() if math.isfinite(v)},
        speed=speed,
        seconds={phase: lasted(phase) for phase in speed},
        clock=kind,
        calibration=calibration,
    )


def add_record(cells: dict[str, Cell], record: CellRecord) -> None:
    """File ``record`` under its cell (made on first sight)."""
    key = cell_key(record.cell_id, record.model, record.hyper)
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = Cell(key, cell_label(record.cell_id), record.model, dict(record.hyper), record.dataset)
    if record.evaluation and (not cell.evaluation or record.status == "ok"):
        cell.evaluation = dict(record.evaluation)
    if record.status == "ok" or not cell.seeds:
        cell.device = record.device
    cell.seeds[record.seed] = seed_result(record)


def load_run(path: Path) -> CellSet:
    """The cells of a results folder; GenbenchError (one line) for anything that is not a readable run."""
    what = "pass a folder that `genbench run --out` wrote"
    if not path.exists():
        raise GenbenchError(f"{path}: no such folder; {what}")
    if not path.is_dir():
        raise GenbenchError(f"{path}: not a folder; {what}")
    frame, manifest = read_run(path)  # damage in either file: one GenbenchError naming it
    if not manifest:
        raise GenbenchError(f"{path}: not a genbench run (no readable {RUN_JSON}); {what}")
    if "cell" not in frame.columns:
        raise GenbenchError(f"{path / 'results.csv'}: no 'cell' column; not a results table genbench wrote")
    raw_protocol = manifest.get("protocol")
    protocol: dict[str, Any] = raw_protocol if isinstance(raw_protocol, dict) else {}
    out = CellSet(
        source=str(path),
        kind="run",
        dataset=str(protocol.get("dataset", "")),
        dataset_fingerprint=_text(manifest.get("dataset_fingerprint")),
        protocol=dict(protocol),
        environment={str(k): str(v) for k, v in (manifest.get("environment") or {}).items()},
        metric_better={str(k): str(v) for k, v in (manifest.get("metric_better") or {}).items()},
        created=str(manifest.get("created", "")),
    )
    for cell_id in dict.fromkeys(str(c) for c in frame["cell"]):
        parts = safe_relative(f"{CELLS}/{cell_id}", (CELLS,))  # a plain name inside cells/, nothing else
        record = read_record(path / CELLS / cell_id) if parts is not None and len(parts) == 2 else None
        if record is None:
            raise GenbenchError(
                f"{path / CELLS / cell_id / RECORD_JSON}: missing or damaged; every cell in results.csv needs "
                "its record (re-run it with genbench run --resume)"
            )
        add_record(out.cells, record)
        for key, better in record.metric_better.items():
            out.metric_better.setdefault(key, better)
    if not out.cells:
        raise GenbenchError(f"{path}: the run holds no cell yet; {what}")
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def describe(value: Any, width: int = 12) -> str:
    """A setting for a message: hashes cut to ``width`` characters and an ellipsis, the rest as JSON."""
    if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{12,}", value):  # a hash: its start is enough
        return value[:width] + "…" if len(value) > width else value
    return json.dumps(value) if not isinstance(value, str) else repr(value)
