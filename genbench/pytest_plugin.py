"""pytest plugin (entry point ``pytest11``: ``genbench``): the ``genbench_check`` fixture.

A plugin author's test suite gates quality and speed regressions like any other test::

    def test_no_regression(genbench_check):
        genbench_check("benchmarks/ci.toml", baseline="benchmarks/baseline.json")

The fixture runs the suite (``genbench run --config``) into a temporary folder, checks it
(``genbench check``: against a baseline file, or ``against=`` another run folder) with the
suite's ``[check]`` settings, and:

* returns the :class:`~genbench.reporting.check.CheckResult` when nothing regressed;
* fails the test with a message naming every regressed cell and figure (metric, speed figure,
  status, new flag);
* raises :class:`~genbench.errors.GenbenchError` for bad input (a baseline of another
  protocol, a cell missing from the run): an error of the test, never a pass.

Keyword arguments: ``tolerance=["fid_domain=5%", ...]`` and ``alpha`` override the suite's and
the baseline's; ``out`` keeps the run in a folder of your choice; any other keyword is a
``genbench run`` option by its suite key (``seeds=(0, 1, 2)``, ``device="cpu"``), winning over
the suite file as a command-line flag would. ``markdown``/``json``/``junit`` write the reports;
the Markdown also goes to ``$GITHUB_STEP_SUMMARY`` when it is set.

pytest loads this module in every session of an environment where genbench is installed, so it
imports genbench's runner and suites only when the fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from genbench.reporting.check import CheckResult

GenbenchCheck = Callable[..., "CheckResult"]


def failure_message(result: CheckResult) -> str:
    """The regressions, one line each, for a pytest failure."""
    c = result.comparison
    n = len(result.regressions)
    lines = [f"genbench check: {n} regression{'s' if n != 1 else ''} in {c.b.source} against {c.a.source}"]
    lines += [f"  {r.cell}: {r.what}: {r.message}" for r in result.regressions]
    return "\n".join(lines)


def run_and_check(
    suite: str | Path,
    baseline: str | Path | None = None,
    against: str | Path | None = None,
    *,
    out: str | Path,
    tolerance: Sequence[str] = (),
    alpha: float | None = None,
    markdown: str | Path | None = None,
    json: str | Path | None = None,
    junit: str | Path | None = None,
    **flags: Any,
) -> CheckResult:
    """Run ``suite`` into ``out`` and check it; what the fixture does, without pytest."""
    from genbench.errors import GenbenchError
    from genbench.reporting.gate import check_run, write_reports
    from genbench.run.runner import run_grid
    from genbench.suite import load_suite

    config = Path(suite)
    request = load_suite(config).override(out=Path(out), **flags).request()
    run = run_grid(request).out_dir
    result = check_run(
        run,
        baseline=None if baseline is None else Path(baseline),
        against=None if against is None else Path(against),
        tolerance=tolerance,
        alpha=alpha,
        config=config,
    )
    paths = [None if p is None else Path(p) for p in (markdown, json, junit)]
    write_reports(result, markdown=paths[0], json_path=paths[1], junit=paths[2])
    if result.exit_code == 2:
        missing = ", ".join(c.label for c in result.missing)
        raise GenbenchError(f"genbench check: cells of {result.comparison.a.source} missing from the run: {missing}")
    return result


@pytest.fixture
def genbench_check(tmp_path_factory: pytest.TempPathFactory) -> GenbenchCheck:
    """``genbench_check(suite, baseline=None, against=None, **options)``: run a suite and fail on a regression."""

    def check(
        suite: str | Path, baseline: str | Path | None = None, against: str | Path | None = None, **kw: Any
    ) -> CheckResult:
        kw.setdefault("out", tmp_path_factory.mktemp("genbench-run") / "run")
        result = run_and_check(suite, baseline, against, **kw)
        if result.regressions:
            pytest.fail(failure_message(result), pytrace=False)
        return result

    return check
