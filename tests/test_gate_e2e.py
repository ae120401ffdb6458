"""compare / baseline / check end to end on real runs of the packaged digits, through the CLI and through pytest.

The runs use the tiny test model (tests/conftest.py) so that a cell trains in milliseconds; the
domain backbone trains once per session in the shared cache. Timings are never asserted: where a
check runs on real timings, speed gets a tolerance no timing noise reaches (``speed=1000%``).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import torch

from genbench.cli import main
from genbench.metrics.backbones import domain_recipe
from genbench.reporting.cellset import cell_label
from genbench.results import read_record
from genbench.run.data import load_data
from tests.conftest import TinyModel

pytest_plugins = ("pytester",)
ROOT = Path(__file__).resolve().parents[1]
NO_SPEED = ("--tolerance", "speed=1000%")  # real timings: the speed verdicts are tested on chosen numbers


def run(out: Path, cache: Path, seeds: str = "0,1,2", *extra: str) -> list[str]:
    return [
        "run", "--models", "tiny", "--dataset", "digits", "--epochs", "1", "--seeds", seeds,
        "--metrics", "fid,coverage", "--eval-samples", "100", "--device", "cpu",
        "--cache-dir", str(cache), "--out", str(out), *extra,
    ]  # fmt: skip


def blank(self: TinyModel, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """A broken sampler: every sample the same grey image (much worse FID, one class covered)."""
    return torch.full((n, *self.data.shape), 0.5)


@pytest.mark.slow
def test_run_baseline_check_then_a_broken_model_fails_naming_cell_and_metric(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    cache_dir: Path,
    tiny_models: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, baseline = tmp_path / "base", tmp_path / "benchmarks" / "baseline.json"
    assert main(run(base, cache_dir)) == 0
    record = read_record(next((base / "cells").iterdir()))
    assert record is not None and record.timings["calibrate"].items == 4096 and record.timings["calibrate"].seconds > 0
    capsys.readouterr()

    assert main(["baseline", str(base), "-o", str(baseline)]) == 0
    assert capsys.readouterr().out == f"wrote {baseline}: 1 cells, 3 seeds\n"
    assert [p.name for p in baseline.parent.iterdir()] == ["baseline.json"]  # no weights to commit beside it
    recipe = record.evaluation["backbones"]["domain"]["recipe"]
    assert recipe == domain_recipe(load_data("digits", Path("unused")))
    assert json.loads(baseline.read_text())["evaluation"]["backbones"]["domain"]["recipe"] == recipe

    # the same commit on a machine without this cache (a CI runner): the classifier is trained again from the
    # recipe (here on the same CPU; on another one its weights differ and the check says so in a note)
    fresh = tmp_path / "fresh-cache"
    head = tmp_path / "head"
    assert main(run(head, fresh)) == 0
    assert list((fresh / "backbones").glob("domain-*.pt"))
    capsys.readouterr()
    assert main(["check", str(head), "--baseline", str(baseline), *NO_SPEED]) == 0
    assert "## genbench check: ✅ passed" in capsys.readouterr().out
    assert main(["compare", str(base), str(head), "--format", "markdown"]) == 0
    assert "**worse**" not in capsys.readouterr().out

    # a commit that breaks the sampler
    monkeypatch.setattr(TinyModel, "sample", blank)
    broken = tmp_path / "broken"
    assert main(run(broken, fresh)) == 0
    capsys.readouterr()
    summary = tmp_path / "summary.md"
    code = main(["check", str(broken), "--baseline", str(baseline), "--markdown", str(summary), *NO_SPEED])
    out = capsys.readouterr().out
    assert code == 1
    cell = cell_label(record.cell_id)
    assert f"| {cell} | fid_domain | fid_domain worse: " in summary.read_text() and f"| {cell} |" in out
    # (which other metrics also regress depends on how many classes the tiny model covered before: on
    # another CPU or torch build it may already be one, so classes_covered is not asserted)
    assert main(["check", str(broken), "--against", str(head), *NO_SPEED]) == 1


@pytest.mark.slow
def test_a_domain_weights_file_that_is_not_a_checkpoint_is_refused_unread(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "domain.pt"
    evil.write_bytes(pickle.dumps({"config": Evil()}, protocol=2))
    code = main(run(tmp_path / "out", cache_dir, "0", "--backbone-weights", f"domain={evil}"))
    err = capsys.readouterr().err.rstrip("\n").splitlines()[-1]  # progress lines come before it
    assert code == 2 and err.startswith(
        f"error: --backbone-weights domain={evil}: not a domain classifier for 'digits'"
    )
    assert not marker.exists()
    assert not (tmp_path / "out" / "results.csv").exists()


# -- the pytest plugin ----------------------------------------------------------------------------
def plugin_args() -> list[str]:
    """``-p genbench.pytest_plugin`` unless the installed genbench already declares the entry point."""
    installed = any(ep.name == "genbench" for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "genbench.pytest_plugin"]


def test_pyproject_declares_the_pytest11_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"genbench": "genbench.pytest_plugin"}


def test_the_entry_point_alone_gives_a_test_suite_the_fixture(tmp_path: Path) -> None:
    """A distribution declaring the entry point (as pip writes it) is enough: no -p, no conftest."""
    site = tmp_path / "site"
    dist = site / "genbench_gate_probe-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: genbench-gate-probe\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[pytest11]\ngenbench = genbench.pytest_plugin\n")
    (tmp_path / "test_probe.py").write_text("def test_fixture(genbench_check):\n    assert callable(genbench_check)\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def suite_text(cache: Path) -> str:
    return (
        'models = ["tiny"]\ndataset = "digits"\nepochs = 1\nseeds = [0, 1, 2]\nmetrics = ["fid", "coverage"]\n'
        f'eval_samples = 100\ndevice = "cpu"\ncache_dir = "{cache}"\n'
        '[check.tolerance]\nspeed = "1000%"  # real timings: never asserted in tests\n'
    )


@pytest.mark.slow
def test_genbench_check_fixture_passes_then_fails_naming_the_regressed_cell_and_metric(
    pytester: pytest.Pytester, cache_dir: Path, tiny_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = pytester.path
    (root / "ci.toml").write_text(suite_text(cache_dir))
    assert main(["run", "--config", str(root / "ci.toml"), "--out", str(root / "base")]) == 0
    assert (
        main(["baseline", str(root / "base"), "-o", str(root / "baseline.json"), "--config", str(root / "ci.toml")])
        == 0
    )
    pytester.makepyfile(
        test_model="""
        def test_no_regression(genbench_check):
            result = genbench_check("ci.toml", baseline="baseline.json", markdown="summary.md")
            assert result.passed
        """
    )
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(passed=1)
    assert "✅ passed" in (root / "summary.md").read_text()

    monkeypatch.setattr(TinyModel, "sample", blank)
    result = pytester.runpytest(*plugin_args())
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*genbench check: * regressions in * against baseline.json",
            "*tiny_*: fid_domain: fid_domain worse: *",
        ]
    )
