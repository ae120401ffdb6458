"""The third-party example plugin (plugins/genbench-example), as a user would meet it.

The slow test pip-installs the package into a temporary folder and drives the
real CLI in a subprocess, so the entry point, the registry, the grid runner and
the metrics are all exercised exactly as after ``pip install genbench-example``.
The fast test imports the package from its source folder and checks the model
contract directly.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch

import genbench

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "plugins" / "genbench-example"
GUIDE = REPO / "docs" / "plugins.md"
TIMEOUT_S = 600  # a hung subprocess fails the test instead of blocking the suite


def genbench_cli(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m genbench.cli ARGS`` with ``site`` (the --target install) on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env.pop("GENBENCH_DISABLE_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "genbench.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed (offline, no deps) into a fresh --target folder, once per module."""
    root = tmp_path_factory.mktemp("example-plugin")
    # Build from a copy: setuptools writes build/ and *.egg-info/ next to the sources it builds.
    src = root / "src"
    shutil.copytree(PLUGIN_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    proc = subprocess.run(
        [*cmd, "--quiet", "--target", str(site), str(src)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    assert (site / "genbench_example" / "__init__.py").is_file()
    return site


@pytest.mark.slow
def test_installed_plugin_is_listed_and_runs(plugin_site: Path, tmp_path: Path, cache_dir: Path) -> None:
    # (a) the entry point is found, with the distribution's name and version as origin.
    listed = genbench_cli(["list", "models", "--json"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    assert payload["problems"] == []
    models = {m["name"]: m for m in payload["models"]}
    assert "gan" in models  # built-ins still load next to the plugin
    lsgan = models["lsgan"]
    assert lsgan["origin"] == "genbench-example 0.1.0"
    assert lsgan["plugin"] == "example"
    assert lsgan["capabilities"] == ["sample"]
    hyper = {h["name"]: h for h in lsgan["hyper"]}
    assert {"z_dim", "lr", "batch_size", "epochs", "beta1", "hidden", "a", "b", "c"} <= set(hyper)
    assert (hyper["hidden"]["type"], hyper["hidden"]["default"]) == ("int", 256)
    assert (hyper["z_dim"]["default"], hyper["b"]["type"]) == (64, "float")
    assert hyper["hidden"]["help"]

    # (b) a plugin model and a built-in one train and are evaluated side by side.
    out = tmp_path / "out"
    args = ["run", "--models", "lsgan,gan", "--dataset", "digits", "--epochs", "1", "--eval-samples", "200"]
    # cache_dir (conftest) is shared by the session: the digits domain backbone trains once for all tests.
    ran = genbench_cli([*args, "--out", str(out), "--cache-dir", str(cache_dir)], plugin_site, tmp_path)
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}"
    assert "plugin problem" not in ran.stderr
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = {row["model"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["gan", "lsgan"]
    assert {m: r["status"] for m, r in rows.items()} == {"gan": "ok", "lsgan": "ok"}, rows
    row = rows["lsgan"]
    assert math.isfinite(float(row["fid_domain"]))
    assert (row["epochs"], float(row["hidden"])) == ("1", 256.0)
    assert (out / "cells" / row["cell"] / "samples.png").is_file()
    record = json.loads((out / "cells" / row["cell"] / "record.json").read_text(encoding="utf-8"))
    assert set(record["history"][0]) == {"loss_d", "loss_g", "score_x", "score_g_z"}
    assert set(record["params"]) == {"generator", "discriminator", "total"}


# -- in-process: the model contract ----------------------------------------------------------------
@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``genbench_example`` imported from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.delitem(sys.modules, "genbench_example", raising=False)
    import genbench_example

    yield genbench_example
    sys.modules.pop("genbench_example", None)


@pytest.mark.parametrize(
    "data",
    [genbench.DataInfo("t", (1, 8, 8), "image", 10), genbench.DataInfo("p", (2,), "points", None)],
    ids=["image", "points"],
)
def test_lsgan_contract(example: ModuleType, data: genbench.DataInfo) -> None:
    cls = example.LSGAN
    assert issubclass(cls, genbench.GenerativeModel) and issubclass(cls.Hyper, genbench.Hyper)
    assert cls.name == "lsgan" and data.kind in cls.data_kinds
    torch.manual_seed(0)
    model = cls(cls.Hyper(hidden=32, z_dim=8), data)
    n = 16
    if data.kind == "image":
        x = torch.rand(n, *data.shape)
        y = torch.randint(0, 10, (n,))
    else:
        x, y = torch.randn(n, *data.shape) * 2, None

    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    logs = model.train_step(x, y)
    assert set(logs) == {"loss_d", "loss_g", "score_x", "score_g_z"}
    for key, value in logs.items():
        assert isinstance(value, torch.Tensor) and value.dim() == 0, key
        assert not value.requires_grad, key
        assert torch.isfinite(value), key
    assert logs["loss_d"] >= 0 and logs["loss_g"] >= 0  # least squares
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # G and D stepped

    model.eval()
    with torch.no_grad():
        samples = model.sample(10)
    assert samples.shape == (10, *data.shape)
    assert samples.dtype == torch.float32 and torch.isfinite(samples).all()
    if data.kind == "image":
        assert samples.min() >= 0 and samples.max() <= 1
    else:
        assert samples.min() < 0 or samples.max() > 1  # points are unbounded reals, not squashed to [0, 1]


def test_lsgan_hyper_validation_and_registration(example: ModuleType) -> None:
    with pytest.raises(ValueError, match="a and b must differ"):
        example.LSGANHyper(a=1.0, b=1.0)
    with pytest.raises(ValueError, match="hidden"):
        example.LSGANHyper(hidden=0)
    with pytest.raises(ValueError, match="lr"):  # genbench.Hyper's own checks still run
        example.LSGANHyper(lr=0.0)
    registered: list[type] = []
    example.register_models(registered.append)
    assert registered == [example.LSGAN]


# -- the plugin guide shows working code -----------------------------------------------------------
def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.DOTALL | re.MULTILINE)


def test_guide_shows_the_example_package_verbatim() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    section = guide.split("<!-- example:begin", 1)[1].split("<!-- example:end -->", 1)[0]
    source = (PLUGIN_DIR / "genbench_example" / "__init__.py").read_text(encoding="utf-8")
    assert python_blocks(section) == [source], "docs/plugins.md section 4 must show genbench_example verbatim"
    pyproject = (PLUGIN_DIR / "pyproject.toml").read_text(encoding="utf-8")
    assert f"```toml\n{pyproject}```" in guide, "docs/plugins.md section 5 must show pyproject.toml verbatim"


def test_guide_dataset_and_metric_examples_work(example: ModuleType, tmp_path: Path) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    dataset_code = next(b for b in python_blocks(guide) if "class Moons(genbench.Dataset)" in b)
    metric_code = next(b for b in python_blocks(guide) if "class MeanGap(genbench.Metric)" in b)
    namespace: dict[str, Any] = {}
    exec(dataset_code + metric_code, namespace)  # the metric block relies on the dataset block's imports
    moons, mean_gap = namespace["Moons"], namespace["MeanGap"]
    registered: list[type] = []
    namespace["register_datasets"](registered.append)
    namespace["register_metrics"](registered.append)
    assert registered == [moons, mean_gap]

    splits = moons().load(genbench.LoadOptions(tmp_path))
    info = moons.info()
    assert info == genbench.DataInfo("moons", (2,), "points", 2)
    assert (len(splits["train"]), len(splits["test"])) == (10_000, 2_000)
    assert splits["train"].x.dtype == torch.float32 and splits["train"].y.dtype == torch.int64

    metric = mean_gap()
    assert metric.not_applicable(example.LSGAN, info) is None
    ref = splits["test"]
    ctx = SimpleNamespace(samples=ref.x + torch.tensor([3.0, 4.0]), reference=ref)
    assert metric.compute(ctx) == {"mean_gap": pytest.approx(5.0, rel=1e-5)}
