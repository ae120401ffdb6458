"""Tolerances: how large a change must be before ``compare`` calls it better or worse and ``check`` fails.

Written ``NAME=VALUE`` (``--tolerance fid_domain=5%``) or in a suite's ``[check.tolerance]``
table (``fid_domain = "5%"``, ``kid_domain = 0.002``). ``NAME`` is a ranked metric of the runs
(``fid_domain``, ``classes_covered``...), a speed figure (``train_speed``, ``sample_speed``,
``evaluate_speed``), ``speed`` (every speed figure without its own) or ``metrics`` (every
metric without its own). ``VALUE`` is a percentage of the reference side's mean (``5%``) or,
for metrics, an amount in the metric's own units (``0.002``). Speed tolerances are always
percentages of time: ``speed=15%`` lets a phase take up to 15% longer per image.

A change must exceed its tolerance *and* be statistically significant to count
(:mod:`genbench.reporting.compare`); the tolerance says what size of change matters, the
test whether the seeds show it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from genbench.errors import GenbenchError, choices

SPEED_PHASES = ("train", "sample", "evaluate")  # timed phases whose throughput is a speed figure
SPEED_FIGURES = {f"{phase}_speed": phase for phase in SPEED_PHASES}  # figure name -> timing phase

SPEED = "speed"  # every speed figure without a tolerance of its own
METRICS = "metrics"  # every metric without a tolerance of its own
GROUPS = (METRICS, SPEED)


@dataclass(frozen=True)
class Tolerance:
    """A relative (``5%``) or absolute (``0.002``) tolerance."""

    value: float  # a fraction when relative
    relative: bool = True

    def __str__(self) -> str:
        return f"{self.value * 100:g}%" if self.relative else f"{self.value:g}"

    def size(self, reference: float) -> float:
        """The tolerated change in the figure's units, for a reference mean of ``reference``."""
        return self.value * abs(reference) if self.relative else self.value


DEFAULTS: dict[str, Tolerance] = {METRICS: Tolerance(0.05), SPEED: Tolerance(0.15)}


def parse_value(name: str, value: Any, where: str) -> Tolerance:
    """``"5%"`` -> 5% relative; ``"0.002"`` or ``0.002`` -> absolute (metrics only); anything else: an error."""
    example = "speed=15%" if name in GROUPS[1:] or name in SPEED_FIGURES else f"{name}=5% or {name}=0.002"
    text = str(value).strip() if not isinstance(value, bool) else ""
    relative = text.endswith("%")
    number = text[:-1].strip() if relative else text
    try:
        amount = float(number)
    except ValueError:
        amount = math.nan
    if isinstance(value, bool) or not number or not math.isfinite(amount):
        raise GenbenchError(f"{where}: {text or value!r} is not a percentage or a number; write e.g. {example}")
    if amount < 0:
        raise GenbenchError(f"{where}: a tolerance cannot be negative ({text}); write e.g. {example}")
    if not relative and (name == SPEED or name in SPEED_FIGURES):
        raise GenbenchError(f"{where}: speed tolerances are percentages of time; write e.g. {name}=15%")
    return Tolerance(amount / 100 if relative else amount, relative)


def parse_items(items: Iterable[str]) -> dict[str, Tolerance]:
    """``--tolerance NAME=VALUE`` options; names are checked later against the runs (:func:`check_names`)."""
    out: dict[str, Tolerance] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise GenbenchError(f"--tolerance {item!r}: expected NAME=VALUE, e.g. fid_domain=5% or speed=15%")
        if name in out:
            raise GenbenchError(f"--tolerance {name}: given twice; give each name once")
        out[name] = parse_value(name, value, f"--tolerance {item}")
    return out


def parse_table(table: Any, where: str) -> dict[str, Tolerance]:
    """A ``[check.tolerance]`` table (or a baseline's ``tolerances`` object) of ``name = "5%"`` or numbers."""
    if not isinstance(table, Mapping):
        raise GenbenchError(f'{where}: must be a table of name = "5%" (or a number), got {table!r}')
    return {str(k): parse_value(str(k), v, f"{where}: {k}") for k, v in table.items()}


@dataclass(frozen=True)
class CheckSettings:
    """A suite's ``[check]`` table, or a baseline's ``check``: the level and the tolerances."""

    alpha: float | None = None
    tolerance: Mapping[str, Tolerance] = field(default_factory=dict)


CHECK_KEYS = ("alpha", "tolerance")


def parse_check(table: Any, where: str) -> CheckSettings:
    """``[check]`` with ``alpha = 0.01`` and a ``[check.tolerance]`` table; every mistake one line naming ``where``."""
    if not isinstance(table, Mapping):
        raise GenbenchError(f"{where}: [check] must be a table (alpha = 0.01, [check.tolerance]), got {table!r}")
    for key in table:
        if key not in CHECK_KEYS:
            raise GenbenchError(f"{where}: [check] unknown key {key!r}; valid: {choices(CHECK_KEYS)}")
    alpha = table.get("alpha")
    if alpha is not None:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise GenbenchError(f"{where}: [check] alpha: must be a number between 0 and 1, e.g. 0.01; got {alpha!r}")
        alpha = float(alpha)
    return CheckSettings(alpha, parse_table(table.get("tolerance", {}), f"{where}: [check.tolerance]"))


def check_names(given: Mapping[str, Tolerance], metrics: Iterable[str], where: str = "--tolerance") -> None:
    """Every name must be a metric the runs rank, a speed figure, ``speed`` or ``metrics``."""
    valid = [*dict.fromkeys(metrics), *SPEED_FIGURES, *GROUPS]
    for name in given:
        if name not in valid:
            raise GenbenchError(
                f"{where} {name}: not a metric of these runs or a speed figure; valid: {choices(valid)}"
            )


def resolve(name: str, *layers: Mapping[str, Tolerance]) -> Tolerance:
    """The tolerance of figure ``name`` from the first layer that names it or its group (the name first), else
    the default. Layers come in order of precedence: ``--tolerance``, the suite's ``[check]``, the baseline's."""
    group = SPEED if name in SPEED_FIGURES else METRICS
    for layer in layers:
        for key in (name, group):
            if key in layer:
                return layer[key]
    return DEFAULTS[group]
