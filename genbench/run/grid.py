"""``--grid`` parsing and expansion into cells.

``--grid key=v1,v2`` applies to every selected model; ``--grid gan.lr=1e-4,2e-4``
to one model only (and overrides an unscoped axis of the same key for it).
Values are parsed into the types the model's hyper-parameter dataclass
declares; values that parse to the same value (``lr=1e-4,0.0001``) are one
cell, and a key given twice in one scope is an error. Every mistake is
reported before any training starts, naming the axis, the model and the valid
keys or values.

A cell's id names its folder (``cells/<id>``) and its row, so it is exact: a
readable part (``gan_z_dim=64_lr=0.0002``, rounded and filesystem-safe) plus a
digest of the model and every resolved hyper-parameter value, then the seed
(``gan_z_dim=64_lr=0.0002_3f9a1c2b7e_s0``). Two cells that differ in any value
never share a folder; the seeds of one cell share everything but ``_s<seed>``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.errors import GenbenchError, choices
from genbench.hyper import build, field_types, parse_value, to_dict
from genbench.options import SEED_LIMIT
from genbench.protocol import CellSpec, Protocol

if TYPE_CHECKING:  # the registry imports torch: --help and suite parsing must not wait for it
    from genbench.plugins import Registry


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid`` option: a key, its raw values, and the model it is scoped to (or None)."""

    key: str
    values: tuple[str, ...]
    scope: str | None = None

    @property
    def label(self) -> str:
        return f"{self.scope}.{self.key}" if self.scope else self.key


_KEY = re.compile(r"^(?:(?P<scope>[A-Za-z0-9_\-]+)\.)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)$")


def parse_axis(text: str) -> GridAxis:
    """Parse ``key=v1,v2`` or ``model.key=v1,v2``."""
    if "=" not in text:
        raise GenbenchError(f"--grid {text!r}: expected key=v1,v2,... (e.g. z_dim=32,64)")
    raw_key, raw_values = text.split("=", 1)
    m = _KEY.match(raw_key.strip())
    if not m:
        raise GenbenchError(f"--grid {text!r}: {raw_key.strip()!r} is not a key (write key or model.key)")
    values = [v.strip() for v in raw_values.split(",")]
    if raw_values.strip() == "":
        raise GenbenchError(f"--grid {text!r}: no values given; expected {raw_key.strip()}=v1,v2,...")
    if any(v == "" for v in values):
        raise GenbenchError(f"--grid {text!r}: empty value in the list; expected {raw_key.strip()}=v1,v2,...")
    unique = tuple(dict.fromkeys(values))  # keep order, drop repeats
    return GridAxis(m.group("key"), unique, m.group("scope"))


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` -> (0, 1, 2); seeds are non-negative integers."""
    try:
        seeds = tuple(dict.fromkeys(int(s) for s in text.split(",")))
    except ValueError:
        raise GenbenchError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or any(not 0 <= s < SEED_LIMIT for s in seeds):
        raise GenbenchError(f"--seeds {text!r}: seeds must be integers >= 0 and < 2**63")
    return seeds


def check_unique(axes: Sequence[GridAxis]) -> None:
    """A key may appear once per scope: a repeated axis would otherwise silently replace the first."""
    seen: dict[tuple[str | None, str], GridAxis] = {}
    for axis in axes:
        first = seen.setdefault((axis.scope, axis.key), axis)
        if first is not axis:
            raise GenbenchError(
                f"--grid {axis.label}: given twice ({first.label}={','.join(first.values)} and "
                f"{axis.label}={','.join(axis.values)}); give the key once with all its values"
            )


def axes_for(model: str, axes: Sequence[GridAxis]) -> dict[str, GridAxis]:
    """The axes that apply to ``model``: unscoped ones, overridden by ones scoped to it."""
    out = {a.key: a for a in axes if a.scope is None}
    out.update({a.key: a for a in axes if a.scope == model})
    return out


def model_grid(
    registry: Registry, model: str, axes: Sequence[GridAxis], epochs: int | None, kind: str | None = None
) -> list[dict[str, Any]]:
    """Every hyper-parameter combination of ``model`` (complete, validated values).

    ``kind`` is the data kind: the model's defaults for it (``Hyper.kind_defaults``) fill what the grid leaves out.
    """
    cls = registry.model(model)
    types = field_types(cls.Hyper)
    mine = axes_for(model, axes)
    if epochs is not None and "epochs" in mine:
        raise GenbenchError(f"--grid {mine['epochs'].label}: conflicts with --epochs; use one of them")
    parsed: dict[str, list[Any]] = {}
    for key, axis in mine.items():
        if key not in types:
            raise GenbenchError(
                f"--grid {axis.label}: model {model!r} has no hyper-parameter {key!r}; valid: {choices(types)}"
            )
        try:
            typed = [parse_value(types[key], v) for v in axis.values]
        except ValueError as exc:
            raise GenbenchError(f"--grid {axis.label}: {exc} (model {model!r})") from None
        # Spellings of one value (1e-4, 0.0001) are one cell; the type keeps True and 1 apart.
        parsed[key] = [v for _, v in dict.fromkeys((type(v), v) for v in typed)]
    combos = []
    for values in itertools.product(*parsed.values()):
        chosen = dict(zip(parsed, values, strict=True))
        if epochs is not None:
            chosen["epochs"] = epochs
        hyper = build(cls.Hyper, chosen, f"model {model!r}", kind)
        combos.append(to_dict(hyper))
    return combos


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


READABLE_MAX = 160  # characters of the readable part; with the digest and a seed < 2**63 an id stays < 200 bytes
DIGEST_CHARS = 10  # hex digits of sha256: 40 bits


def hyper_digest(model: str, hyper: Mapping[str, Any]) -> str:
    """Short sha256 of the canonical JSON of the model name and every hyper-parameter value.

    Floats are written as their shortest exact repr, so values that differ in any bit differ here.
    """
    text = json.dumps({"model": model, "hyper": dict(hyper)}, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]


def cell_id(model: str, hyper: Mapping[str, Any], varied: Sequence[str], seed: int) -> str:
    """A readable, filesystem-safe, exact id: ``gan_z_dim=64_lr=0.0002_3f9a1c2b7e_s0``.

    The readable part shows the model and the ``varied`` keys' values (floats to six digits,
    characters outside ``[A-Za-z0-9_.=-]`` as ``-``, cut to :data:`READABLE_MAX`); the digest
    (:func:`hyper_digest`) of all of ``hyper`` is what tells cells apart.
    """
    readable = "_".join([model, *(f"{k}={_fmt(hyper[k])}" for k in varied)])
    readable = re.sub(r"[^A-Za-z0-9_.=\-]", "-", readable)[:READABLE_MAX]
    return f"{readable}_{hyper_digest(model, hyper)}_s{seed}"


def plan_cells(
    registry: Registry,
    models: Sequence[str],
    axes: Sequence[GridAxis],
    seeds: Sequence[int],
    protocol: Protocol,
    out_dir: Path,
) -> list[CellSpec]:
    """Expand models x grid x seeds into cell specs; raise GenbenchError on any bad input."""
    check_unique(axes)
    for axis in axes:
        if axis.scope is not None and axis.scope not in models:
            raise GenbenchError(
                f"--grid {axis.label}: model {axis.scope!r} is not among --models; valid: {choices(models)}"
            )
    kind = registry.dataset(protocol.dataset).kind
    cells: dict[str, CellSpec] = {}
    for model in models:
        mine = axes_for(model, axes)
        for hyper in model_grid(registry, model, axes, protocol.epochs, kind):
            for seed in seeds:
                cid = cell_id(model, hyper, list(mine), seed)
                if cid in cells:  # the same model and seed twice: one folder would hold two runs
                    raise GenbenchError(f"cell {cid!r} is planned twice; give each model and seed once")
                cells[cid] = CellSpec(cid, model, hyper, seed, protocol, out_dir / "cells" / cid)
    return list(cells.values())
