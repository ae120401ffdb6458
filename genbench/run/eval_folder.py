"""Which protocol ``genbench eval`` evaluates by, and what a results folder already holds.

With ``--out`` naming a ``genbench run``'s folder, the evaluation takes that run's protocol
from its ``run.json`` (:func:`resolve_protocol`): options left out come from it, an option
given with another value is refused, and the options that change no number (:data:`STEERING`)
are never taken from it. The rows already in the folder are read back checked
(:func:`existing_records`): a damaged ``results.csv`` or record is one line, never a read
outside the folder. :func:`evaluated_records` and :func:`check_evaluated` let
``genbench run --resume`` keep the rows evaluations added. Split from
:mod:`genbench.run.evaluate`, which evaluates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genbench.checks import check_backbone_options, check_folders, check_memory, check_reference_stats, check_sizes
from genbench.errors import GenbenchError, choices
from genbench.folder import CELLS, safe_relative
from genbench.metrics.backbones import BACKBONES
from genbench.options import ALL, declared
from genbench.plugins import get_registry
from genbench.protocol import TRAINING_ONLY, CellRecord, Protocol
from genbench.results import RUN_JSON, read_manifest, read_record, read_results
from genbench.run.timing import resolve_device

# Protocol fields that change no number: an evaluation added to a run may set them differently.
STEERING = frozenset({"device", "data_dir", "cache_dir", "download", "eval_batch_size", *TRAINING_ONLY})
EVALUATED = "evaluated"  # record.extras key (and run.json key) marking evaluated generators


# -- the protocol -----------------------------------------------------------------------------------
_JSON_KIND = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "path": "a string",
    "file": "a string",
    "names": "an array of strings",
    "weights": "an object of backbone: path",
}


def _fits(kind: str, value: Any) -> bool:
    """Whether a JSON value stored for an option of ``kind`` has that option's type."""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("str", "path", "file"):
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "names":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "weights":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return False


def _typed(opt_kind: str, value: Any) -> Any:
    """A protocol value as run.json holds it (JSON) -> the field's type."""
    if value is None:
        return None
    if opt_kind == "names":
        return tuple(value)
    if opt_kind in ("path", "file"):
        return Path(value)
    if opt_kind == "weights":
        return tuple((str(k), Path(v)) for k, v in dict(value).items())
    return value


def run_protocol(out_dir: Path) -> dict[str, Any] | None:
    """The typed protocol fields of the run in ``out_dir`` (from its run.json), or None if there is no run.

    Only the fields that change a number are taken: the options that steer (:data:`STEERING`: where
    caches and data go, the device) are this invocation's, never a run.json's, which a copied or
    crafted folder could point anywhere. Each value taken must have its option's type.
    """
    path = out_dir / RUN_JSON
    if not path.is_file():
        return None
    try:
        manifest = read_manifest(out_dir)
        stored = manifest["protocol"]
        if not isinstance(stored, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise GenbenchError(f"{path}: damaged (no protocol); evaluate into another --out") from None
    out = {}
    for opt in declared(Protocol, "protocol"):
        if opt.name in STEERING or opt.name not in stored:
            continue
        value = stored[opt.name]
        if not (value is None and opt.nullable) and not _fits(opt.kind, value):
            raise GenbenchError(
                f"{path}: damaged ('protocol'.{opt.name!r} is {json.dumps(value)[:40]}, expected "
                f"{_JSON_KIND.get(opt.kind, opt.kind)}); evaluate into another --out"
            )
        out[opt.name] = _typed(opt.kind, value)
    return out


def _shown(value: Any) -> str:
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, tuple):
        return ",".join(f"{k}={v}" for k, v in value)
    return str(value)


def resolve_protocol(out_dir: Path, given: Mapping[str, Any]) -> tuple[Protocol, bool]:
    """The protocol of the evaluation, and whether ``out_dir`` holds a run whose protocol it takes."""
    registry = get_registry()
    base = run_protocol(out_dir)
    flags = {o.name: o.flag for o in declared(Protocol, "protocol")}
    if tuple(given.get("metrics") or ()) == (ALL,):
        given = {**given, "metrics": tuple(registry.metrics)}
    values: dict[str, Any] = {}
    if base is not None:
        for name, value in given.items():
            if name not in STEERING and name in base and value != base[name]:
                raise GenbenchError(
                    f"{flags[name]} {_shown(value)}: the run in {out_dir} used {_shown(base[name])}; an evaluation "
                    "added to a run keeps its protocol (leave the option out, or use another --out)"
                )
        values.update(base)
    values.update({k: v for k, v in given.items() if v is not None})
    if tuple(values.get("metrics", (ALL,))) == (ALL,):
        values["metrics"] = tuple(registry.metrics)
    values.setdefault("dataset", "mnist5k")
    try:
        protocol = Protocol(**values)
    except TypeError as exc:
        raise GenbenchError(f"{out_dir / RUN_JSON}: its protocol does not fit this genbench ({exc})") from None
    return protocol, base is not None


def check_protocol(p: Protocol, out_dir: Path) -> None:
    """The checks ``genbench run`` makes of a protocol and its folders (:func:`genbench.run.runner.validate`:
    names, ranges, sizes, folders, the samples' memory), before any work."""
    from genbench.options import check_values

    registry = get_registry()
    info = registry.dataset(p.dataset).info()
    for name in p.metrics:
        registry.metric(name)
    if not p.backbones:
        raise GenbenchError(f"--backbone: none given; valid: {choices(BACKBONES)}")
    for name in p.backbones:
        if name not in BACKBONES:
            raise GenbenchError(f"unknown backbone {name!r}; valid: {choices(BACKBONES)}")
    check_values(declared(Protocol, "protocol"), p, None)
    if p.isc_splits > p.eval_samples:
        raise GenbenchError(f"--isc-splits {p.isc_splits}: more splits than the {p.eval_samples} samples")
    check_backbone_options(p)
    check_sizes(p)
    check_reference_stats(p, info)
    device = resolve_device(p.device)
    check_folders(out_dir, p)
    check_memory((), p, info, device)  # no cell is trained: the samples' memory only


# -- the run folder -----------------------------------------------------------------------------------
def _row_cells(out_dir: Path) -> list[str] | None:
    """The ``cell`` column of ``results.csv``, in its order; None when the table cannot be read."""
    try:
        return [str(c) for c in read_results(out_dir)["cell"]]
    except Exception:
        return None


def _folder_name(cell: str) -> bool:
    """Whether ``cell`` names one folder of ``cells/`` (no ``/``, ``..`` or odd characters): never a way out."""
    return safe_relative(cell) is not None and "/" not in cell


def existing_records(out_dir: Path) -> list[CellRecord]:
    """The records behind every row of ``results.csv``, in its order; GenbenchError if one cannot be read
    (rewriting results.csv would lose that row)."""
    if not (out_dir / "results.csv").is_file():
        return []
    cells = _row_cells(out_dir)
    if cells is None:
        raise GenbenchError(f"{out_dir}/results.csv: damaged; evaluate into another --out")
    records: list[CellRecord] = []
    seen: set[str] = set()
    for cell in cells:
        if not _folder_name(cell):  # read nothing outside cells/
            raise GenbenchError(
                f"{out_dir}/results.csv: damaged (cell {cell[:80]!r} is not a folder name of {CELLS}/: letters, "
                "digits and _ . = -); evaluate into another --out"
            )
        if cell in seen:
            raise GenbenchError(
                f"{out_dir}/results.csv: damaged (cell {cell!r} has two rows); evaluate into another --out"
            )
        seen.add(cell)
        record = read_record(out_dir / CELLS / cell)
        if record is None:
            raise GenbenchError(
                f"{out_dir}: {CELLS}/{cell}/record.json is missing or damaged; adding a row would drop that cell's "
                "row from results.csv (evaluate into another --out)"
            )
        if record.cell_id != cell:
            raise GenbenchError(
                f"{out_dir}: {CELLS}/{cell}/record.json is damaged (it records cell {record.cell_id[:80]!r}, "
                "another folder's); evaluate into another --out"
            )
        records.append(record)
    return records


def evaluated_records(out_dir: Path, exclude: set[str]) -> list[CellRecord]:
    """Records of generators ``genbench eval`` added to ``out_dir`` (for ``genbench run --resume``), in
    ``results.csv`` order, except the cells in ``exclude``."""
    if not (out_dir / "results.csv").is_file():
        return []
    out = []
    seen: set[str] = set()
    for cell in _row_cells(out_dir) or []:
        if cell in exclude or cell in seen or not _folder_name(cell):
            continue
        seen.add(cell)
        record = read_record(out_dir / CELLS / cell)
        if record is not None and record.cell_id == cell and EVALUATED in record.extras:
            out.append(record)
    return out


def check_evaluated(out_dir: Path, protocol: Protocol, exclude: set[str]) -> None:
    """Refuse a ``genbench run --resume`` whose protocol is not that of the rows ``genbench eval`` added
    to ``out_dir``: the run cannot measure them again, and its table would show them under its own
    protocol line (the options that change no number, :data:`STEERING`, may differ)."""
    ours = json.loads(json.dumps(protocol.manifest(), default=str))
    flags = {o.name: o.flag for o in declared(Protocol, "protocol")}
    for record in evaluated_records(out_dir, exclude):
        theirs = json.loads(json.dumps(record.protocol, default=str))
        for name in (n for n in ours if n not in STEERING and theirs.get(n) != ours[n]):
            shown = [_shown(tuple(v) if isinstance(v, list) else v) for v in (theirs.get(name), ours[name])]
            raise GenbenchError(
                f"{flags.get(name, name)} {shown[1]}: {out_dir / CELLS / record.cell_id}, added by genbench eval, "
                f"was measured with {shown[0]}; a run keeps the protocol of the generators evaluated into it "
                "(resume with its options, or use another --out)"
            )
