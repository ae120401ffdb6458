"""Reading run folders for ``genbench report``: each run's table, cells, records and pictures, checked.

A report shows only what a run wrote: every file comes from a record's ``artifacts``,
opened below ``cells/<cell_id>`` without following links (:func:`genbench.results.open_inside`),
and is embedded only if its bytes still match the sha256 the run recorded. Anything
else is listed as missing ("deleted, or changed since the run wrote it"), so a report
says exactly what it lacks instead of showing a broken image or someone else's file.

The comparison table is :func:`genbench.reporting.table.comparison`'s, the one
``genbench table`` prints (same mean ± CI, bold and ≈ marks); the HTML and Markdown
renderers (:mod:`genbench.reporting.html`, :mod:`genbench.reporting.markdown`) draw
from the :class:`RunView` objects made here.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from genbench.errors import GenbenchError
from genbench.folder import CELLS, safe_relative
from genbench.protocol import CellRecord
from genbench.reporting.table import ComparisonTable, comparison
from genbench.results import RESULTS_CSV, RUN_JSON, open_inside, read_record, read_run

PICTURES = (".png", ".gif")
MAX_PICTURE_BYTES = 8 << 20  # a picture larger than this is not embedded (genbench's are tens of kB)
REQUIRED_COLUMNS = ("model", "cell", "status", "seed")


@dataclass(frozen=True)
class Artifact:
    """A picture a cell wrote, read back and checked against the record's sha256."""

    name: str  # the record's artifact name ("samples", "reconstructions.png")
    path: str  # relative to the run folder
    data: bytes

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def mime(self) -> str:
        return "image/gif" if self.file_name.endswith(".gif") else "image/png"


@dataclass
class CellView:
    """One row of ``results.csv`` (a cell and seed) with its record and checked pictures."""

    cell_id: str
    model: str
    seed: Any
    status: str
    error: str
    flags: list[str]
    hyper: dict[str, Any]
    metrics: dict[str, float]
    record: CellRecord | None
    pictures: dict[str, Artifact] = field(default_factory=dict)  # artifact name -> picture
    missing: list[str] = field(default_factory=list)  # "samples.png: not on disk", one line each

    def label(self, varied: list[str]) -> str:
        """``gan z_dim=2 s0``: :meth:`title` for a chart's legend."""
        parts = [self.model, *(f"{k}={_short(self.hyper.get(k))}" for k in varied if k in self.hyper)]
        return " ".join([*parts, f"s{self.seed}"])

    def title(self, varied: list[str]) -> str:
        """``gan · z_dim=2 · seed 0``: the model, the varied hyper-parameters, the seed."""
        parts = [self.model, *(f"{k}={_short(self.hyper.get(k))}" for k in varied if k in self.hyper)]
        return " · ".join([*parts, f"seed {self.seed}"])


@dataclass
class RunView:
    """A run folder as a report reads it."""

    path: Path
    name: str
    manifest: dict[str, Any]
    frame: pd.DataFrame
    table: ComparisonTable
    cells: list[CellView]
    notes: list[str] = field(default_factory=list)  # what is wrong with the run as a whole

    @property
    def dataset(self) -> str:
        names = sorted({str(d) for d in self.frame.get("dataset", pd.Series(dtype=object)).dropna()})
        return ", ".join(names) or str(self.manifest.get("protocol", {}).get("dataset", "?"))

    @property
    def ok(self) -> int:
        return sum(c.status == "ok" for c in self.cells)

    def summary(self) -> str:
        bad = {s: sum(c.status == s for c in self.cells) for s in ("failed", "diverged")}
        extra = ", ".join(f"{n} {s}" for s, n in bad.items() if n)
        return f"{len(self.cells)} cells, {self.ok} ok" + (f", {extra}" if extra else "")


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def load_runs(paths: list[Path]) -> list[RunView]:
    """Every run of ``paths``, in order; a path given twice or a folder that is not a run is an error."""
    if not paths:
        raise GenbenchError("no run given; pass one or more folders that `genbench run --out` wrote")
    seen: dict[Path, Path] = {}
    for path in paths:
        real = path.resolve()
        if real in seen:
            raise GenbenchError(f"{path}: given twice (also as {seen[real]}); pass each run once")
        seen[real] = path
    runs = [load_run(p) for p in paths]
    names = [r.path.name or str(r.path) for r in runs]
    for run, name in zip(runs, names, strict=True):
        run.name = name if names.count(name) == 1 else f"{run.path.parent.name}/{name}"
    return runs


def load_run(path: Path) -> RunView:
    """One run folder: its table (as ``genbench table``), and every cell with its record and pictures."""
    if not path.is_dir():
        raise GenbenchError(f"{path}: no such folder; pass a folder that `genbench run --out` wrote")
    if not (path / RESULTS_CSV).is_file():
        raise GenbenchError(f"{path}: not a genbench run (no {RESULTS_CSV}); pass a folder `genbench run --out` wrote")
    frame, manifest = read_run(path)  # damage in either file: one GenbenchError naming it
    absent = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if absent:
        raise GenbenchError(f"{path / RESULTS_CSV}: not genbench's results (no {absent[0]!r} column)")
    if frame.empty:
        raise GenbenchError(f"{path / RESULTS_CSV}: lists no cell; the run stopped before its first cell finished")
    notes: list[str] = []
    if not manifest:
        notes.append(f"{RUN_JSON} is missing: the protocol and the metrics' directions are unknown")
    if not manifest.get("metric_better"):  # an older or damaged run.json: the records know the directions
        manifest = {**manifest, "metric_better": {}}
    cells = [_cell(path, row) for row in frame.to_dict("records")]
    for cell in cells:
        if cell.record is not None:
            manifest["metric_better"] = {**cell.record.metric_better, **manifest["metric_better"]}
    table = comparison(frame, manifest)
    return RunView(path, path.name, manifest, frame, table, cells, notes)


def _cell(root: Path, row: dict[str, Any]) -> CellView:
    cell_id = str(row.get("cell", ""))
    flags = [f for f in str(row.get("flags") or "").split("; ") if f and f != "nan"]
    view = CellView(
        cell_id=cell_id,
        model=str(row.get("model", "?")),
        seed=row.get("seed"),
        status=str(row.get("status", "?")),
        error="" if _blank(row.get("error")) else str(row.get("error")),
        flags=flags,
        hyper={},
        metrics={},
        record=None,
    )
    if safe_relative(f"{CELLS}/{cell_id}", (CELLS,)) is None:
        view.missing.append(f"cell id {cell_id[:60]!r} is not a folder name genbench writes: its files are not read")
        return view
    record = read_record(root / CELLS / cell_id)
    if record is None or record.cell_id != cell_id:
        view.missing.append(f"{CELLS}/{cell_id}/record.json: missing or damaged, so are its pictures' checksums")
        return view
    view.record, view.hyper, view.metrics = record, dict(record.hyper), dict(record.metrics)
    for name, rel in record.artifacts.items():
        view.missing += _check(root, record, name, rel, view.pictures)
    return view


def _blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value) or value == ""


def _check(root: Path, record: CellRecord, name: str, rel: str, pictures: dict[str, Artifact]) -> list[str]:
    """Read artifact ``name`` if it is a picture; return what is wrong with it (nothing, usually)."""
    parts = safe_relative(rel, (CELLS, record.cell_id))
    digest = record.checksums.get(name)
    if parts is None:
        return [f"{name}: the record points outside the cell's folder ({rel[:60]!r}); not read"]
    if digest is None:
        return [f"{rel}: no checksum in the record; not shown"]
    try:
        fd = open_inside(root, parts)
    except OSError:
        return [f"{rel}: not on disk (the run wrote it; deleted since?)"]
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size != digest.size:
            return [f"{rel}: changed since the run wrote it (size {info.st_size}, recorded {digest.size}); not shown"]
        if not rel.endswith(PICTURES):
            return []  # checkpoints and CSVs: present, of the recorded size (not read: a report embeds pictures)
        if digest.size > MAX_PICTURE_BYTES:
            return [f"{rel}: {digest.size >> 20} MiB, too large to embed; not shown"]
        data = f.read()
    if hashlib.sha256(data).hexdigest() != digest.sha256:
        return [f"{rel}: changed since the run wrote it (sha256 differs); not shown"]
    pictures[name] = Artifact(name, rel, data)
    return []


def datasets_differ(runs: list[RunView]) -> bool:
    return len({r.dataset for r in runs}) > 1


def model_colours(runs: list[RunView]) -> dict[str, int]:
    """A palette index per model, the same in every chart of the report (first appearance order)."""
    order: dict[str, int] = {}
    for run in runs:
        for cell in run.cells:
            order.setdefault(cell.model, len(order))
    return order
