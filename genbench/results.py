"""Writing and reading a run's files, atomically.

Every file is written to a temporary name in the same folder and renamed into
place, so an interrupted run (Ctrl-C, a crash, a killed job) leaves either the
previous complete file or the new complete file, never half of one.

Layout of ``<out>``::

    run.json                 protocol, versions, metric directions, plugin problems
    results.csv              one row per model x cell x seed
    cells/<cell_id>/record.json, samples.png, curves.png, history.csv, checkpoint.pt
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from genbench.errors import DiskFull, GenbenchError, is_disk_full
from genbench.protocol import TIMING_COLUMNS, CellRecord

RESULTS_CSV = "results.csv"
RUN_JSON = "run.json"
RECORD_JSON = "record.json"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the body succeeds.

    A full disk, however the writer reports it, becomes :class:`DiskFull` naming the folder.
    """
    tmp = ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, DiskFull):
            raise DiskFull(path.parent) from exc
        raise
    finally:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def atomic_save_image(img: Image.Image, path: Path) -> None:
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def records_frame(records: Sequence[CellRecord]) -> pd.DataFrame:
    """The results table: identity, hyper-parameters, metrics, timings, status (columns in first-seen order)."""
    # convert_dtypes keeps an int column int when some models lack it (pandas would make it float)
    return pd.DataFrame([r.row() for r in records]).convert_dtypes()


def write_results(out_dir: Path, records: Sequence[CellRecord]) -> Path:
    path = out_dir / RESULTS_CSV
    atomic_write_text(path, records_frame(records).to_csv(index=False))
    return path


def read_results(out_dir: Path) -> pd.DataFrame:
    """``results.csv`` as a table; a damaged file is one GenbenchError naming it and what is wrong.

    Every command that reads a run (``genbench table`` and whatever renders or compares runs)
    comes through here and :func:`read_manifest`, so an empty, binary, truncated or hand-broken
    file is reported as such instead of surfacing as a pandas traceback.
    """
    path = out_dir / RESULTS_CSV
    if not path.is_file():
        raise GenbenchError(f"{out_dir}: no {RESULTS_CSV} here; pass the folder a `genbench run --out` wrote")
    text = _read_text(path, "a CSV table")
    header, rows = _csv_rows(path, text)
    numeric = {"params", "peak_mem_mb", *TIMING_COLUMNS, *read_manifest(out_dir).get("metric_better", {})}
    for line, row in rows:
        for column, value in zip(header, row, strict=True):
            problem = _bad_value(column, value, numeric)
            if problem:
                raise GenbenchError(f"{path}: line {line}, column {column!r}: {problem}")
    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


REQUIRED_COLUMNS = ("model", "dataset", "seed", "cell", "status")
STATUSES = ("ok", "failed", "diverged")


def _read_text(path: Path, what: str) -> str:
    """The file as text; a one-line error when it cannot be read or is not text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GenbenchError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\0" in data:
        raise GenbenchError(f"{path}: not {what} (binary data)")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (a spreadsheet's export) is not damage
    except UnicodeDecodeError:
        raise GenbenchError(f"{path}: not {what} (not UTF-8 text)") from None


def _csv_rows(path: Path, text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (line number, fields) of every row, every row as wide as the header."""
    if not text.strip():
        raise GenbenchError(f"{path}: empty (a run writes a header and one row per cell)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if fields:
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise GenbenchError(f"{path}: not a CSV table, damaged or truncated (line {reader.line_num}: {exc})") from None
    (_, header), body = rows[0], rows[1:]
    if not body and not text.endswith("\n"):
        raise GenbenchError(f"{path}: truncated: it ends inside the header")
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise GenbenchError(f"{path}: no {column!r} column; not a results table genbench wrote")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise GenbenchError(f"{path}: column {twice[0]!r} appears twice in the header")
    if not body:
        raise GenbenchError(f"{path}: a header and no rows (no cell was recorded)")
    for i, (line, fields) in enumerate(body):
        if len(fields) != len(header):
            if i == len(body) - 1 and len(fields) < len(header) and not text.endswith("\n"):
                raise GenbenchError(f"{path}: truncated: line {line} ends after {len(fields)} of {len(header)} fields")
            raise GenbenchError(f"{path}: line {line} has {len(fields)} fields, the header has {len(header)}")
    return header, body


def _bad_value(column: str, value: str, numeric: set[str]) -> str | None:
    """What is wrong with one field of results.csv, or None."""
    if column == "status" and value not in STATUSES:
        return f"{value!r}; expected one of {', '.join(map(repr, STATUSES))}"
    if column == "seed":
        try:
            int(value)
        except ValueError:
            return f"{value!r} is not an integer"
    if column in numeric and value != "":
        try:
            float(value)
        except ValueError:
            return f"{value!r} is not a number"
    return None


# The shape of run.json where readers rely on it: (path of keys, JSON type); a key may be absent.
_MANIFEST_SHAPE: tuple[tuple[tuple[str, ...], str], ...] = (
    *(((key,), "object") for key in ("protocol", "facts", "metric_better", "environment")),
    *(((key,), "array") for key in ("models", "grid", "seeds", "plugins", "plugin_problems")),
    (("evaluation",), "object or null"),
    (("protocol", "metrics"), "array"),
    (("protocol", "backbones"), "array"),
    (("evaluation", "backbones"), "object"),
    (("facts", "domain_accuracy"), "number"),
)


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """``run.json`` as a dict ({} when there is none); a damaged file is one GenbenchError naming it."""
    path = out_dir / RUN_JSON
    if not path.exists():
        return {}
    if not path.is_file():
        raise GenbenchError(f"{path}: not a file")
    text = _read_text(path, "JSON text")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GenbenchError(
            f"{path}: not valid JSON, truncated or damaged ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise GenbenchError(f"{path}: holds a JSON {_json_type(data)}, expected an object")
    for keys, expected in _MANIFEST_SHAPE:
        parent: Any = data
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict) or keys[-1] not in parent:
            continue
        found = _json_type(parent[keys[-1]])
        if found not in expected.split(" or "):
            name = "'" + "'.'".join(keys) + "'"
            article = "an" if expected[0] in "aeiou" else "a"
            raise GenbenchError(f"{path}: {name} is a JSON {found}, expected {article} {expected}")
    for key, direction in (data.get("metric_better") or {}).items():
        if direction not in ("lower", "higher", None):
            raise GenbenchError(f"{path}: 'metric_better' of {key!r} is {direction!r}; expected 'lower' or 'higher'")
    return data


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}  # JSON's
    return "null" if value is None else names.get(type(value), type(value).__name__)


def read_record(cell_dir: Path) -> CellRecord | None:
    path = cell_dir / RECORD_JSON
    if not path.is_file():
        return None
    try:
        return CellRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError):
        return None  # a record from an older or foreign format is recomputed, not trusted
