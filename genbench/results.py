"""Writing and reading a run's files, atomically.

Every file is written to a temporary name in the same folder and renamed into
place, so an interrupted run (Ctrl-C, a crash, a killed job) leaves either the
previous complete file or the new complete file, never half of one.

Files get the permissions the user's umask gives new files (``0o666 & ~umask``),
not the owner-only mode of a temporary file, so a team folder stays readable.

Layout of ``<out>``::

    .genbench.lock           held by the run writing the folder (genbench.folder)
    run.json                 protocol, versions, metric directions, plugin problems
    results.csv              one row per model x cell x seed
    quality.csv              the quality curves (cell, model, seed, epoch, metric, value)
    cells/<cell_id>/record.json, samples.png, curves.png, history.csv, checkpoint.pt

CSV files are safe to open in a spreadsheet: a text cell that starts with
``= + - @``, a tab or a carriage return (or with the guard ``'`` itself) gets a
leading ``'``, so it is never read as a formula; numbers stay numbers (-3.5, and
text that is a plain number such as "-5"). :func:`read_results` removes the
guard again, so tables and scripts see the original text.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import io
import json
import numbers
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from genbench.errors import DiskFull, GenbenchError, is_disk_full
from genbench.protocol import TIMING_COLUMNS, CellRecord, FileDigest

RESULTS_CSV = "results.csv"
QUALITY_CSV = "quality.csv"  # the quality curves of every cell, long format (one row per cell, epoch and metric)
RUN_JSON = "run.json"
RECORD_JSON = "record.json"
MAX_RECORD_BYTES = 64 << 20  # a record.json larger than this is not read (history of ~300k epochs)

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_umask_lock = threading.Lock()
_written: contextvars.ContextVar[dict[Path, FileDigest] | None] = contextvars.ContextVar("written", default=None)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux: /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_lock:  # elsewhere: set and restore; the lock keeps our own threads from racing
        old = os.umask(0o077)
        os.umask(old)
    return old


def file_digest(path: Path) -> FileDigest:
    """Size and sha256 of the file at ``path``."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return FileDigest(size, h.hexdigest())


@contextlib.contextmanager
def recording_writes() -> Iterator[dict[Path, FileDigest]]:
    """Collect ``{path: digest}`` of every file :func:`atomic_path` writes inside the block.

    The digest is taken from the temporary file just before it is renamed into
    place: it describes the bytes this code wrote, whatever happens to the file later.
    """
    ledger: dict[Path, FileDigest] = {}
    token = _written.set(ledger)
    try:
        yield ledger
    finally:
        _written.reset(token)


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
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; a new file's usual mode instead
        ledger = _written.get()
        if ledger is not None:
            ledger[path] = file_digest(Path(tmp))
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


# -- spreadsheet-safe CSV ---------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_GUARD = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_text(value: str) -> str:
    """``value`` guarded for a spreadsheet: ``'`` before a leading ``= + - @``, tab, CR or ``'``.

    A plain number written as text ("-5", "+1e-3") is left alone: a spreadsheet reads it as the number.
    """
    if value.startswith(_GUARD) or (value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value)):
        return _GUARD + value
    return value


def csv_original(value: str) -> str:
    """The text :func:`csv_text` guarded."""
    return value[1:] if value.startswith(_GUARD) else value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell and header guarded by :func:`csv_text`; numbers untouched."""

    def cell(value: Any) -> Any:
        if value is None or value is pd.NA or isinstance(value, numbers.Number):
            return value
        return csv_text(value if isinstance(value, str) else str(value))

    out = frame.copy()
    for column in out.columns:
        if not pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype(object).map(cell)
    out.columns = [csv_text(str(c)) for c in out.columns]
    return out


def safe_csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV for spreadsheets: formula text guarded, numbers bare.

    Text is quoted when it must be: pandas quotes a comma, a quote or a newline, but leaves
    a carriage return bare, which ends the row in most readers; when any text holds one,
    every text cell is quoted.
    """
    safe = csv_safe(frame)
    texts = [str(c) for c in safe.columns]
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            texts += [v for v in safe[column] if isinstance(v, str)]
    quoting = csv.QUOTE_NONNUMERIC if any("\r" in t for t in texts) else csv.QUOTE_MINIMAL
    return str(safe.to_csv(index=False, quoting=quoting))


def _csv_restore(frame: pd.DataFrame) -> pd.DataFrame:
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: csv_original(v) if isinstance(v, str) else v)
    frame.columns = [csv_original(str(c)) for c in frame.columns]
    return frame


def quality_frame(records: Sequence[CellRecord]) -> pd.DataFrame:
    """Every cell's quality curve: ``cell, model, seed, epoch, metric, value`` (one row per point and metric)."""
    rows = [
        {"cell": r.cell_id, "model": r.model, "seed": r.seed, "epoch": int(q["epoch"]), "metric": key, "value": value}
        for r in records
        for q in r.quality
        if "epoch" in q
        for key, value in q.items()
        if key != "epoch"
    ]
    return pd.DataFrame(rows, columns=["cell", "model", "seed", "epoch", "metric", "value"])


def write_results(out_dir: Path, records: Sequence[CellRecord]) -> Path:
    """``results.csv``, and ``quality.csv`` when a cell has a quality curve."""
    path = out_dir / RESULTS_CSV
    atomic_write_text(path, safe_csv_text(records_frame(records)))
    if any(r.quality for r in records):
        atomic_write_text(out_dir / QUALITY_CSV, safe_csv_text(quality_frame(records)))
    return path


def read_run(out_dir: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``results.csv`` (as :func:`read_results`) and ``run.json`` (as :func:`read_manifest`), each read once."""
    manifest = read_manifest(out_dir)
    return read_results(out_dir, manifest), manifest


def read_results(out_dir: Path, manifest: dict[str, Any] | None = None) -> pd.DataFrame:
    """``results.csv`` as written, the spreadsheet guard removed (the original text of every cell).

    A damaged file is one GenbenchError naming it and what is wrong. ``manifest``: the folder's
    ``run.json`` when the caller has read it already (it says which columns are metrics).

    Every command that reads a run (``genbench table`` and whatever renders or compares runs)
    comes through here and :func:`read_manifest`, so an empty, binary, truncated or hand-broken
    file is reported as such instead of surfacing as a pandas traceback.
    """
    path = out_dir / RESULTS_CSV
    if not path.is_file():
        raise GenbenchError(f"{out_dir}: no {RESULTS_CSV} here; pass the folder a `genbench run --out` wrote")
    text = _read_text(path, "a CSV table")
    header, rows = _csv_rows(path, text)
    manifest = read_manifest(out_dir) if manifest is None else manifest
    numeric = {"params", "peak_mem_mb", *TIMING_COLUMNS, *manifest.get("metric_better", {})}
    for line, row in rows:
        for column, value in zip(header, row, strict=True):
            problem = _bad_value(column, value, numeric)
            if problem:
                raise GenbenchError(f"{path}: line {line}, column {column!r}: {problem}")
    return _csv_restore(pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""]))


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
    *(((key,), "object") for key in ("protocol", "facts", "metric_better", "metric_bounds", "environment")),
    *(((key,), "array") for key in ("models", "grid", "seeds", "plugins", "plugin_problems", "evaluated")),
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
    for key, bounds in (data.get("metric_bounds") or {}).items():
        if bounds is None:  # no bounds declared: read as unbounded
            continue
        if not isinstance(bounds, dict):
            raise GenbenchError(
                f"{path}: 'metric_bounds' of {key!r} is a JSON {_json_type(bounds)}, expected an object"
            )
        for end in ("low", "high"):
            if _json_type(bounds.get(end)) not in ("number", "null"):
                raise GenbenchError(
                    f"{path}: 'metric_bounds' of {key!r}: {end!r} is {bounds[end]!r}; expected a number or null"
                )
    for cell in data.get("evaluated") or []:
        if not isinstance(cell, str):
            raise GenbenchError(f"{path}: 'evaluated' holds a JSON {_json_type(cell)}, expected cell ids (strings)")
    return data


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}  # JSON's
    return "null" if value is None else names.get(type(value), type(value).__name__)


def open_inside(root: Path, parts: Sequence[str]) -> int:
    """Open ``root/parts...`` for reading, following no symbolic link below ``root``; return the descriptor.

    Raises OSError when a part is missing, is a link (ELOOP) or a folder is not one.
    """
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)


def matches(root: Path, parts: Sequence[str], digest: FileDigest) -> bool:
    """Whether ``root/parts...`` is a regular file, reached without links, of ``digest``'s size and sha256."""
    try:
        fd = open_inside(root, parts)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size != digest.size:
            return False
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest() == digest.sha256


def read_record(cell_dir: Path) -> CellRecord | None:
    """The record in ``cell_dir``, or None when there is none or it cannot be trusted.

    Neither ``cell_dir`` nor its ``record.json`` may be a symbolic link; the file must be
    UTF-8 JSON of the record's shape (any other type, a wrong field, a huge number or a
    file over 64 MiB gives None). An older or foreign record is recomputed, never trusted.
    """
    try:
        fd = open_inside(cell_dir.parent, (cell_dir.name, RECORD_JSON))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            raw = f.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None
        return CellRecord.from_json(json.loads(raw.decode("utf-8")))
    except (OSError, ValueError, TypeError, KeyError, RecursionError, OverflowError):
        return None
