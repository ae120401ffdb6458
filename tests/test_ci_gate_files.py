"""The committed CI gate holds together: docs/ci.md shows the script CI runs, the suite and its baseline agree
(down to the domain classifier's recipe), and .ci/run runs the gate after the tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from genbench.metrics.backbones import domain_recipe
from genbench.reporting.baseline import load_baseline
from genbench.reporting.cellset import cell_key
from genbench.run.data import load_data
from genbench.run.runner import validate
from genbench.suite import load_suite

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, re.S)


def test_the_script_in_the_guide_is_the_script_ci_runs() -> None:
    script = (ROOT / "benchmarks" / "ci-gate.sh").read_text(encoding="utf-8")
    assert script in blocks("sh"), "docs/ci.md section 4 must show benchmarks/ci-gate.sh verbatim"


def test_the_workflow_in_the_guide_is_valid_yaml_that_runs_the_gate() -> None:
    yaml = pytest.importorskip("yaml")  # PyYAML: present in the dev environment, not a test dependency
    (workflow,) = blocks("yaml")
    jobs = yaml.safe_load(workflow)["jobs"]
    gate = [step.get("run", "") for step in jobs["gate"]["steps"]]
    assert "benchmarks/ci-gate.sh" in gate and any("pytest" in s for s in gate)
    speed = " ".join(step.get("run", "") for step in jobs["speed"]["steps"])
    assert "genbench check results/head --against results/base" in speed


def test_ci_runs_the_gate_after_the_tests() -> None:
    commands = [line for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    ci = "\n".join(commands)
    assert "-m pytest" in ci and ci.index("-m pytest") < ci.index("benchmarks/ci-gate.sh")


def test_the_committed_baseline_is_of_the_suite_and_of_the_domain_classifier_genbench_trains_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)  # the suite's paths are relative to the repository root
    suite = load_suite(ROOT / "benchmarks" / "ci.toml")
    baseline, settings = load_baseline(ROOT / "benchmarks" / "baseline.json")
    planned = {cell_key(c.cell_id, c.model, c.hyper) for c in validate(suite.request())}
    assert planned == set(baseline.cells), "re-make benchmarks/baseline.json after changing benchmarks/ci.toml"
    assert {s for c in baseline.cells.values() for s in c.seeds} == set(suite.seeds)
    # no weights are committed: CI trains the classifier from the recipe the baseline records, else it is refused
    assert not suite.backbone_weights and not list((ROOT / "benchmarks").glob("*.pt"))
    recipes = [c.evaluation["backbones"]["domain"].get("recipe") for c in baseline.cells.values()]
    now = domain_recipe(load_data(suite.dataset, Path("unused")))
    assert recipes == [now] * len(recipes), "re-make benchmarks/baseline.json after changing the domain classifier"
    assert suite.check is not None and settings["alpha"] == suite.check.alpha
