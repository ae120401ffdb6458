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
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from genbench.protocol import CellRecord

RESULTS_CSV = "results.csv"
RUN_JSON = "run.json"
RECORD_JSON = "record.json"


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the body succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
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
    path = out_dir / RESULTS_CSV
    if not path.is_file():
        raise FileNotFoundError(path)
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def read_manifest(out_dir: Path) -> dict[str, Any]:
    path = out_dir / RUN_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_record(cell_dir: Path) -> CellRecord | None:
    path = cell_dir / RECORD_JSON
    if not path.is_file():
        return None
    try:
        return CellRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, KeyError):
        return None  # a record from an older or foreign format is recomputed, not trusted
