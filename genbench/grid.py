"""``--grid`` parsing and expansion into cells.

``--grid key=v1,v2`` applies to every selected model; ``--grid gan.lr=1e-4,2e-4``
to one model only (and overrides an unscoped axis of the same key for it).
Values are parsed into the types the model's hyper-parameter dataclass
declares; every mistake is reported before any training starts, naming the
axis, the model and the valid keys or values.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genbench.errors import GenbenchError, choices
from genbench.hyper import build, field_types, parse_value, to_dict
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
    if not seeds or any(s < 0 for s in seeds):
        raise GenbenchError(f"--seeds {text!r}: seeds must be integers >= 0")
    return seeds


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
            parsed[key] = [parse_value(types[key], v) for v in axis.values]
        except ValueError as exc:
            raise GenbenchError(f"--grid {axis.label}: {exc} (model {model!r})") from None
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


def cell_id(model: str, varied: dict[str, Any], seed: int) -> str:
    """A readable, filesystem-safe id: ``gan_z_dim=64_lr=0.0002_s0``."""
    parts = [model, *(f"{k}={_fmt(v)}" for k, v in varied.items()), f"s{seed}"]
    return re.sub(r"[^A-Za-z0-9_.=\-]", "-", "_".join(parts))


def plan_cells(
    registry: Registry,
    models: Sequence[str],
    axes: Sequence[GridAxis],
    seeds: Sequence[int],
    protocol: Protocol,
    out_dir: Path,
) -> list[CellSpec]:
    """Expand models x grid x seeds into cell specs; raise GenbenchError on any bad input."""
    for axis in axes:
        if axis.scope is not None and axis.scope not in models:
            raise GenbenchError(
                f"--grid {axis.label}: model {axis.scope!r} is not among --models; valid: {choices(models)}"
            )
    kind = registry.dataset(protocol.dataset).kind
    cells = []
    for model in models:
        mine = axes_for(model, axes)
        for hyper in model_grid(registry, model, axes, protocol.epochs, kind):
            varied = {k: hyper[k] for k in mine}
            for seed in seeds:
                cid = cell_id(model, varied, seed)
                cells.append(CellSpec(cid, model, hyper, seed, protocol, out_dir / "cells" / cid))
    return cells
