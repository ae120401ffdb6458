"""The library calls behind ``genbench compare``, ``genbench baseline`` and ``genbench check``.

Each takes paths and option values as a user gives them, checks them (one-line
:class:`~genbench.errors.GenbenchError` for anything wrong, before any comparison), and returns
a result that :mod:`genbench.reporting.gate_output` renders; the CLI and the pytest plugin
(:mod:`genbench.pytest_plugin`) are thin callers.

Settings come in layers, the first that says something wins: the caller's ``--tolerance`` /
``--alpha``, then the suite's ``[check]`` table (``config``), then what the baseline was made
with, then the defaults (:data:`genbench.reporting.tolerance.DEFAULTS`, alpha
:data:`genbench.reporting.compare.ALPHA`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from genbench.errors import GenbenchError
from genbench.reporting.baseline import load_baseline, make_baseline, write_baseline
from genbench.reporting.cellset import CellSet, load_run
from genbench.reporting.check import CheckResult, Mode, check
from genbench.reporting.compare import ALPHA, Comparison, SpeedMode, compare
from genbench.reporting.tolerance import CheckSettings, Tolerance, check_names, parse_items

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"  # GitHub Actions: Markdown appended here shows on the run's page


def _suite_check(config: Path | None) -> CheckSettings:
    if config is None:
        return CheckSettings()
    from genbench.suite import load_suite

    return load_suite(config).check or CheckSettings()


def _alpha(*values: float | None) -> float:
    alpha = next((a for a in values if a is not None), ALPHA)
    if not 0 < alpha < 1:
        raise GenbenchError(f"--alpha {alpha}: must be a number between 0 and 1, e.g. 0.01")
    return alpha


def _names(layers: Sequence[tuple[Mapping[str, Tolerance], str]], *sides: CellSet) -> None:
    metrics = [m for side in sides for m in side.metrics()]
    for layer, where in layers:
        check_names(layer, metrics, where)


def compare_runs(
    run_a: Path,
    run_b: Path,
    tolerance: Sequence[str] = (),
    alpha: float | None = None,
    speed: SpeedMode = "raw",
    config: Path | None = None,
) -> Comparison:
    """``genbench compare RUN_A RUN_B``."""
    given = parse_items(tolerance)
    suite = _suite_check(config)
    level = _alpha(alpha, suite.alpha)
    a, b = load_run(run_a), load_run(run_b)
    _names([(given, "--tolerance"), (suite.tolerance, f"{config}: [check.tolerance]")], a, b)
    return compare(a, b, [given, suite.tolerance], level, speed)


@dataclass
class BaselineWritten:
    path: Path
    cells: int
    seeds: int
    notes: list[str] = field(default_factory=list)


def write_run_baseline(
    run: Path,
    out: Path,
    tolerance: Sequence[str] = (),
    alpha: float | None = None,
    config: Path | None = None,
) -> BaselineWritten:
    """``genbench baseline RUN -o FILE``: the run's cells, protocol, environment and tolerances as JSON.

    No weights are written: the domain classifier is identified by its recipe (recorded with the
    evaluation), so a check elsewhere trains its own from the same recipe and compares. A note
    says which backbones the run read from a given weights file: those compare by the file's hash.
    """
    given = parse_items(tolerance)
    suite = _suite_check(config)
    level = _alpha(alpha, suite.alpha)
    if out.suffix != ".json":
        raise GenbenchError(f"-o {out}: a baseline is a .json file, e.g. benchmarks/baseline.json")
    side = load_run(run)
    _names([(given, "--tolerance"), (suite.tolerance, f"{config}: [check.tolerance]")], side)
    tolerances = {**suite.tolerance, **given}
    document = make_baseline(side, tolerances, level)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = BaselineWritten(out, len(side.cells), sum(len(c.seeds) for c in side.cells.values()))
    for name, path in sorted((side.protocol.get("backbone_weights") or {}).items()):
        result.notes.append(
            f"backbone {name} was read from {path}: a check compares only runs made with the same weights "
            f"(--backbone-weights {name}={path}, or backbone_weights in the suite)"
        )
    write_baseline(document, out)
    return result


def check_run(
    run: Path,
    baseline: Path | None = None,
    against: Path | None = None,
    tolerance: Sequence[str] = (),
    alpha: float | None = None,
    speed: SpeedMode | None = None,
    config: Path | None = None,
) -> CheckResult:
    """``genbench check RUN --baseline FILE`` or ``--against OTHER_RUN``."""
    if (baseline is None) == (against is None):
        raise GenbenchError("genbench check: give exactly one of --baseline FILE and --against RUN")
    given = parse_items(tolerance)
    suite = _suite_check(config)
    layers = [(given, "--tolerance"), (suite.tolerance, f"{config}: [check.tolerance]")]
    if baseline is not None:
        reference, stored = load_baseline(baseline)
        level = _alpha(alpha, suite.alpha, stored["alpha"])
        layers.append((stored["tolerance"], f"{baseline}: check.tolerance"))
    else:
        assert against is not None
        reference = load_run(against)
        level = _alpha(alpha, suite.alpha)
    side = load_run(run)
    _names(layers[:2], reference, side)
    _names(layers[2:], reference)
    mode: Mode = "baseline" if baseline is not None else "against"
    return check(side, reference, mode, [layer for layer, _ in layers], level, speed)


def write_reports(
    result: CheckResult,
    markdown: Path | None = None,
    json_path: Path | None = None,
    junit: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the summaries asked for, and append the Markdown to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    from genbench.reporting.gate_output import check_json, check_junit, check_markdown
    from genbench.results import atomic_write_text

    written = []
    text = check_markdown(result)
    for path, render in (
        (markdown, lambda: text),
        (json_path, lambda: check_json(result)),
        (junit, lambda: check_junit(result)),
    ):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, render())
            written.append(path)
    summary = (os.environ if environ is None else environ).get(STEP_SUMMARY)
    if summary:
        with open(summary, "a", encoding="utf-8") as f:
            f.write(text + "\n")
        written.append(Path(summary))
    return written
