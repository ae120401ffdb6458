"""The regression gate: a run against a baseline (file or run), and what counts as a regression.

:func:`check` compares a run (B) with a reference (A: a baseline file, or another run made
in the same job) through :func:`genbench.reporting.compare.compare` and collects:

* **figure regressions**: every metric or speed figure whose verdict is ``worse`` (a change
  beyond its tolerance, with q < alpha; see :mod:`genbench.reporting.compare`);
* **status regressions**: a cell with a failed or diverged seed, when a larger share of its
  seeds is not ok than in the reference (a cell that was ok everywhere and now fails in one
  seed is a regression; a cell that already failed as often is not);
* **new flags**: a health flag (``collapse``, ``d_wins``, :mod:`genbench.run.health`) raised in
  more than half of the cell's seeds now and in at most half before. Flags are judgements on
  noisy numbers (a class count near the threshold flips from seed to seed), so one flagged
  seed out of three is not taken as a change.

Exit status (:meth:`CheckResult.exit_code`): 1 when anything regressed; 2 for bad input: the
two sides measured differently (:func:`refusal`, raised before any verdict), or a cell of the
reference is missing from the run (the gate cannot vouch for it: re-make the baseline or run
the cell); 0 otherwise. A regression is never reported as a usage error: regressions win.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from genbench.errors import GenbenchError
from genbench.reporting.cellset import Cell, CellSet
from genbench.reporting.compare import ALPHA, Comparison, Figure, SpeedMode, compare
from genbench.reporting.tolerance import Tolerance

Mode = Literal["baseline", "against"]


@dataclass(frozen=True)
class Regression:
    """One thing that got worse: the cell, what (a figure, ``status`` or ``flag:<kind>``) and one line."""

    cell: str
    what: str
    message: str


@dataclass
class CheckResult:
    comparison: Comparison
    mode: Mode
    regressions: list[Regression] = field(default_factory=list)
    missing: list[Cell] = field(default_factory=list)  # reference cells the run lacks

    @property
    def passed(self) -> bool:
        return not self.regressions and not self.missing

    @property
    def exit_code(self) -> int:
        if self.regressions:
            return 1
        return 2 if self.missing else 0

    @property
    def improvements(self) -> list[Figure]:
        return [f for f in self.comparison.figures if f.verdict == "better"]


def refusal(comparison: Comparison) -> str | None:
    """One line naming what the two sides measured differently, or None when nothing was refused."""
    refused = comparison.refused()
    if not refused:
        return None
    reasons = list(dict.fromkeys(f"{f.label}: {f.reason}" for f in refused))
    more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
    fix = (
        "make a new baseline with genbench baseline"
        if comparison.a.kind == "baseline"
        else "run both sides with the same protocol"
    )
    return f"{comparison.a.source} was measured differently: {reasons[0]}{more}; {fix}"


def _share_bad(cell: Cell) -> tuple[float, int, int]:
    bad = sum(s.status != "ok" for s in cell.seeds.values())
    n = len(cell.seeds)
    return (bad / n if n else 0.0), bad, n


def status_regressions(reference: CellSet, run: CellSet) -> list[Regression]:
    """Cells that fail more often than before, and flags raised in most seeds now but not before."""
    out = []
    for key, now in run.cells.items():
        before = reference.cells.get(key)
        if before is None:
            continue
        share_now, bad_now, n_now = _share_bad(now)
        share_before, bad_before, n_before = _share_bad(before)
        if bad_now and share_now > share_before:
            seeds = [s for s in now.seeds.values() if s.status != "ok"]
            error = f": {seeds[0].error[:100]}" if seeds[0].error else ""
            was = "all ok" if not bad_before else f"{bad_before}/{n_before} not ok"
            kinds = "/".join(dict.fromkeys(s.status for s in seeds))
            message = f"{bad_now}/{n_now} seeds {kinds} (reference: {was}); s{seeds[0].seed}{error}"
            out.append(Regression(now.label, "status", message))
        for kind in dict.fromkeys(k for s in now.seeds.values() for k in s.flag_kinds):
            flagged_now = [s for s in now.seeds.values() if kind in s.flag_kinds]
            flagged_before = sum(kind in s.flag_kinds for s in before.seeds.values())
            if len(flagged_now) * 2 > n_now and flagged_before * 2 <= n_before:
                text = next(f for f in flagged_now[0].flags if f.split(":", 1)[0].strip() == kind)
                message = (
                    f"newly flagged {kind} in {len(flagged_now)}/{n_now} seeds "
                    f"(reference: {flagged_before}/{n_before}): {text}"
                )
                out.append(Regression(now.label, f"flag:{kind}", message))
    return out


def number(x: float) -> str:
    """4 significant digits, without an exponent for the large throughputs (20131, not 2.013e+04)."""
    return f"{x:.0f}" if 1e4 <= abs(x) < 1e9 else f"{x:.4g}"


def figure_message(f: Figure) -> str:
    """``fid_domain worse: 336.1 -> 512.3 (+52.4%; tolerance 5%; Welch t, q=0.0012)``."""
    a, b = f.summary_a, f.summary_b
    change = "" if f.change is None else f"{f.change:+.1%}" + (" time per image" if f.kind == "speed" else "")
    what = f"{f.name} {f.verdict}: {number(a.mean)} -> {number(b.mean)}"
    return f"{what} ({change}{'; ' if change else ''}tolerance {f.tolerance}; {f.why()})"


def check(
    run: CellSet,
    reference: CellSet,
    mode: Mode,
    tolerances: Sequence[Mapping[str, Tolerance]] = (),
    alpha: float = ALPHA,
    speed: SpeedMode | None = None,
) -> CheckResult:
    """Judge ``run`` against ``reference``; GenbenchError (exit 2) when they cannot be compared.

    ``speed`` defaults to ``calibrated`` against a baseline file and ``raw`` against a run.
    """
    mode_speed: SpeedMode = speed or ("calibrated" if mode == "baseline" else "raw")
    comparison = compare(reference, run, tolerances, alpha, mode_speed, one_sided=True)
    problem = refusal(comparison)
    if problem:
        raise GenbenchError(problem)
    result = CheckResult(comparison, mode)
    result.regressions = [
        Regression(f.label, f.name, figure_message(f)) for f in comparison.figures if f.verdict == "worse"
    ]
    result.regressions += status_regressions(reference, run)
    result.missing = comparison.only_a
    return result
