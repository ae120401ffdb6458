"""Baselines as files: what a later ``genbench check`` needs, as small readable JSON meant to be committed.

``genbench baseline RUN -o benchmarks/baseline.json`` writes::

    {
      "format": "genbench-baseline",
      "version": 1,
      "created": "2026-01-02T03:04:05+00:00",
      "run": {"folder": "ci-base", "created": "..."},
      "dataset": "digits",
      "dataset_fingerprint": "410aa8a7...",
      "protocol": {...},          # the run's protocol, less where files were (paths, download)
      "environment": {...},       # versions, platform, device, the calibration workload
      "evaluation": {...},        # what every cell's metrics were measured with (backbones, sample counts...)
      "metric_better": {"fid_domain": "lower", ...},
      "check": {"alpha": 0.01, "tolerance": {"metrics": "5%", "speed": "15%"}},
      "cells": [
        {"key": "gan:3f9a1c2b7e", "cell": "gan_3f9a1c2b7e", "model": "gan", "hyper": {...}, "device": "cpu",
         "seeds": [{"seed": 0, "status": "ok", "flags": [], "metrics": {"fid_domain": 512.3, ...},
                    "speed": {"train": 2113.4, "sample": 81000.0, "evaluate": 640.2},
                    "seconds": {"train": 1.3325, "sample": 0.0025, "evaluate": 0.3124}, "clock": "cpu",
                    "calibration": 35012.6}]}
      ]
    }

``speed`` holds images per second, ``seconds`` how long each phase lasted and ``calibration``
the calibration workload's images per second, so a check compares their ratios
(:mod:`genbench.run.calibrate`); ``clock`` says whether they count the process's CPU time (on a
CPU device) or the wall clock. A cell whose evaluation differs from
the common one carries its own ``evaluation``. ``check`` holds the tolerances and level the
baseline was made with; ``--tolerance`` and a suite's ``[check]`` table override them.

:func:`load_baseline` validates everything it reads: a file that is missing, not JSON,
truncated, of another format or a newer version, or with a field of the wrong type is
refused with one line naming the file and the field, never half-read.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError
from genbench.reporting.cellset import Cell, CellSet, SeedResult
from genbench.reporting.tolerance import Tolerance, parse_table

FORMAT = "genbench-baseline"
VERSION = 1
MAX_BYTES = 16 << 20  # a baseline is a few kilobytes; anything this large is not one
LOCAL_SETTINGS = (
    "data_dir",
    "cache_dir",
    "download",
    "backbone_weights",
)  # where files were, not how numbers were made
_KEY = re.compile(r"[A-Za-z0-9_.\-]+:[0-9a-f]{10}")


def make_baseline(run: CellSet, tolerances: Mapping[str, Tolerance], alpha: float) -> dict[str, Any]:
    """The baseline document of ``run`` (a :class:`CellSet` from :func:`genbench.reporting.cellset.load_run`)."""
    evaluations = [c.evaluation for c in run.cells.values() if c.evaluation]
    common = max(evaluations, key=lambda e: sum(e == x for x in evaluations)) if evaluations else {}
    cells = []
    for cell in run.cells.values():
        entry: dict[str, Any] = {
            "key": cell.key,
            "cell": cell.label,
            "model": cell.model,
            "hyper": cell.hyper,
            "device": cell.device,
        }
        if cell.evaluation and cell.evaluation != common:
            entry["evaluation"] = cell.evaluation
        entry["seeds"] = [_seed_json(s) for s in sorted(cell.seeds.values(), key=lambda s: s.seed)]
        cells.append(entry)
    return {
        "format": FORMAT,
        "version": VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run": {"folder": Path(run.source).name, "created": run.created},
        "dataset": run.dataset,
        "dataset_fingerprint": run.dataset_fingerprint,
        "protocol": {k: v for k, v in run.protocol.items() if k not in LOCAL_SETTINGS},
        "environment": run.environment,
        "evaluation": common,
        "metric_better": run.metric_better,
        "check": {"alpha": alpha, "tolerance": {k: str(v) for k, v in tolerances.items()}},
        "cells": cells,
    }


def _seed_json(s: SeedResult) -> dict[str, Any]:
    out: dict[str, Any] = {"seed": s.seed, "status": s.status}
    if s.error:
        out["error"] = s.error
    out["flags"] = list(s.flags)
    out["metrics"] = dict(s.metrics)
    out["speed"] = {k: round(v, 3) for k, v in s.speed.items()}
    out["seconds"] = {k: round(v, 4) for k, v in s.seconds.items()}
    out["clock"] = s.clock
    out["calibration"] = None if s.calibration is None else round(s.calibration, 3)
    return out


def write_baseline(document: Mapping[str, Any], path: Path) -> None:
    from genbench.results import atomic_write_text

    atomic_write_text(path, json.dumps(document, indent=1, allow_nan=False) + "\n")


# -- reading, every field checked --------------------------------------------------------------
class _Bad(Exception):
    """A field of the wrong shape: its path and what was expected."""


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise _Bad(f"{where}{'.' if where else ''}{key}: missing")
    return obj[key]


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{where}: expected an object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{where}: expected a string")
    return value


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _Bad(f"{where}: expected a finite number")
    return float(value)


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{where}: expected an integer")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(f"{where}: expected a list")
    return value


def _seed(value: Any, where: str) -> SeedResult:
    s = _obj(value, where)
    status = _str(_get(s, "status", where), f"{where}.status")
    if status not in ("ok", "failed", "diverged"):
        raise _Bad(f"{where}.status: expected 'ok', 'failed' or 'diverged'")
    calibration = s.get("calibration")
    return SeedResult(
        seed=_int(_get(s, "seed", where), f"{where}.seed"),
        status=status,
        error=_str(s.get("error", ""), f"{where}.error"),
        flags=tuple(_str(f, f"{where}.flags[{i}]") for i, f in enumerate(_list(s.get("flags", []), f"{where}.flags"))),
        metrics={k: _num(v, f"{where}.metrics.{k}") for k, v in _obj(s.get("metrics", {}), f"{where}.metrics").items()},
        speed={k: _num(v, f"{where}.speed.{k}") for k, v in _obj(s.get("speed", {}), f"{where}.speed").items()},
        seconds={k: _num(v, f"{where}.seconds.{k}") for k, v in _obj(s.get("seconds", {}), f"{where}.seconds").items()},
        calibration=None if calibration is None else _num(calibration, f"{where}.calibration"),
        clock=_clock(s.get("clock", "wall"), f"{where}.clock"),
    )


def _clock(value: Any, where: str) -> str:
    if value not in ("cpu", "wall"):
        raise _Bad(f"{where}: expected 'cpu' or 'wall'")
    return str(value)


def _cell(value: Any, where: str, dataset: str, common: dict[str, Any]) -> Cell:
    c = _obj(value, where)
    key = _str(_get(c, "key", where), f"{where}.key")
    if not _KEY.fullmatch(key):
        raise _Bad(f"{where}.key: expected <model>:<10 hex digits>, got {key[:40]!r}")
    cell = Cell(
        key=key,
        label=_str(_get(c, "cell", where), f"{where}.cell"),
        model=_str(_get(c, "model", where), f"{where}.model"),
        hyper=_obj(_get(c, "hyper", where), f"{where}.hyper"),
        dataset=dataset,
        evaluation=_obj(c.get("evaluation", common), f"{where}.evaluation"),
        device=_str(c.get("device", "cpu"), f"{where}.device"),
    )
    if not key.startswith(f"{cell.model}:"):
        raise _Bad(f"{where}.key: {key!r} is not a key of model {cell.model!r}")
    for i, s in enumerate(_list(_get(c, "seeds", where), f"{where}.seeds")):
        seed = _seed(s, f"{where}.seeds[{i}]")
        if seed.seed in cell.seeds:
            raise _Bad(f"{where}.seeds[{i}].seed: seed {seed.seed} given twice")
        cell.seeds[seed.seed] = seed
    return cell


def _parse(doc: Any, source: str) -> CellSet:
    d = _obj(doc, "the document")
    if d.get("format") != FORMAT:
        raise _Bad(f'not a genbench baseline (no "format": "{FORMAT}"); make one with genbench baseline RUN -o FILE')
    version = _int(_get(d, "version", ""), "version")
    if version > VERSION:
        raise _Bad(f"version {version} is newer than this genbench reads ({VERSION}); upgrade genbench")
    if version < 1:
        raise _Bad(f"version {version}: expected 1")
    dataset = _str(_get(d, "dataset", ""), "dataset")
    fingerprint = d.get("dataset_fingerprint")
    common = _obj(d.get("evaluation", {}), "evaluation")
    check = _obj(d.get("check", {}), "check")
    if "alpha" in check:
        alpha = _num(check["alpha"], "check.alpha")
        if not 0 < alpha < 1:
            raise _Bad("check.alpha: expected a number between 0 and 1")
    better = _obj(d.get("metric_better", {}), "metric_better")
    for k, v in better.items():
        if v not in ("lower", "higher"):
            raise _Bad(f"metric_better.{k}: expected 'lower' or 'higher'")
    out = CellSet(
        source=source,
        kind="baseline",
        dataset=dataset,
        dataset_fingerprint=None if fingerprint is None else _str(fingerprint, "dataset_fingerprint"),
        protocol=_obj(d.get("protocol", {}), "protocol"),
        environment={k: _str(v, f"environment.{k}") for k, v in _obj(d.get("environment", {}), "environment").items()},
        metric_better=dict(better),
        created=_str(d.get("created", ""), "created"),
    )
    for i, c in enumerate(_list(_get(d, "cells", ""), "cells")):
        cell = _cell(c, f"cells[{i}]", dataset, common)
        if cell.key in out.cells:
            raise _Bad(f"cells[{i}].key: cell {cell.key} given twice")
        out.cells[cell.key] = cell
    if not out.cells:
        raise _Bad("cells: empty; a baseline needs at least one cell")
    return out


def load_baseline(path: Path) -> tuple[CellSet, dict[str, Any]]:
    """The baseline's cells, and its ``check`` settings (``alpha``, ``tolerance`` as parsed Tolerances)."""
    how = f"make one with: genbench baseline RUN -o {path}"
    if not path.is_file():
        raise GenbenchError(f"{path}: no such file; {how}" if not path.exists() else f"{path}: not a file; {how}")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise GenbenchError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise GenbenchError(f"{path}: over {MAX_BYTES >> 20} MiB; not a genbench baseline")
    try:
        doc = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise GenbenchError(f"{path}: not UTF-8 text; not a genbench baseline") from None
    except json.JSONDecodeError as exc:
        raise GenbenchError(f"{path}: not valid JSON (truncated or damaged? {exc.msg} at line {exc.lineno})") from None
    except (ValueError, RecursionError) as exc:
        raise GenbenchError(f"{path}: not a genbench baseline ({exc})") from None
    try:
        cells = _parse(doc, str(path))
        check = _obj(doc.get("check", {}), "check")
        tolerance = parse_table(check.get("tolerance", {}), f"{path}: check.tolerance")
    except _Bad as exc:
        raise GenbenchError(f"{path}: {exc}") from None
    cells.tolerances = {k: str(v) for k, v in tolerance.items()}
    return cells, {"alpha": check.get("alpha"), "tolerance": tolerance}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")
