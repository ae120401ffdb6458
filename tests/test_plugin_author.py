"""What a plugin author had to guess, now in code and docs.

A plugin written by following README.md and docs/plugins.md met: an always empty
description column in ``genbench list plugins``; a ``dependencies = ["genbench"]`` that
fails in a fresh environment (genbench is on no package index); a ``d_wins`` flag that
fired on a Wasserstein-style loss; ``d_x``/``d_g_z`` that were probabilities in some models
and raw scores in others; no public base for the GAN knobs. Each is tested here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

import pytest
import torch
from packaging.requirements import Requirement

import genbench
from genbench.cli import main
from genbench.models.gans import DCGAN, GAN
from genbench.models.wgan import WGANGP
from genbench.plugins import describe_plugin, get_registry, load_registry
from genbench.protocol import Protocol
from genbench.run.health import d_wins_applies, training_flags
from genbench.run.runner import RunRequest, run_grid

from .conftest import FakeModels, TinyModel

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600


# -- the description column -----------------------------------------------------------------------------
def test_list_plugins_shows_a_description_for_every_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "plugins", "--json"]) == 0
    plugins = json.loads(capsys.readouterr().out)["plugins"]
    assert all(p["description"] for p in plugins if p["origin"] == "built-in"), plugins
    models = next(p for p in plugins if p["name"] == "genbench.models.builtin")
    assert models["description"].startswith("the model zoo: ae, vae")


def test_plugin_description_comes_from_its_attribute_summary_or_docstring() -> None:
    module = ModuleType("plug", "Adds one model.\n\nMore text.")
    assert describe_plugin(module) == "Adds one model."
    assert describe_plugin(module, summary="From pyproject's description") == "From pyproject's description"
    module.GENBENCH_DESCRIPTION = "  declared\n  here "  # type: ignore[attr-defined]
    assert describe_plugin(module, summary="ignored") == "declared here"
    assert describe_plugin(ModuleType("bare")) == ""


def test_an_installed_distributions_summary_is_the_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "summarised_plugin.py").write_text("import genbench\n")
    info = tmp_path / "summarised-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: summarised\nVersion: 1.0\nSummary: Two GANs.\n")
    (info / "entry_points.txt").write_text("[genbench]\nsummarised = summarised_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = load_registry()
    (plugin,) = [p for p in registry.plugins if p.name == "summarised"]
    assert plugin.description == "Two GANs."


# -- the d_wins flag ----------------------------------------------------------------------------------
WINNING = [{"loss_d": 0.5}, {"loss_d": 0.003}]


def test_d_wins_follows_the_models_declaration_then_its_loss_then_the_history() -> None:
    assert training_flags(WINNING, {}, declared=False) == []  # a Wasserstein-style plugin says so
    assert training_flags(WINNING, {"loss": "wgan"}, declared=True) != []  # the declaration wins
    assert d_wins_applies(WINNING, {"loss": "bce"}, None) and not d_wins_applies(WINNING, {"loss": "ls"}, None)
    assert d_wins_applies(WINNING, {}, None)  # undeclared, no loss knob, never negative: a loss >= 0
    critic = [{"loss_d": -3.0}, {"loss_d": 0.004}]  # went negative: not a loss bounded by 0
    assert not d_wins_applies(critic, {}, None) and training_flags(critic, {}) == []
    assert WGANGP.d_wins_flag is False and GAN.d_wins_flag is None


class CriticTiny(TinyModel):
    """A Wasserstein-style plugin whose critic loss sits near 0: no d_wins flag, as it declares."""

    name = "critic-tiny"
    d_wins_flag = False

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        return {**super().train_step(x, y), "loss_d": torch.tensor(0.001)}


class UndeclaredTiny(CriticTiny):
    name = "undeclared-tiny"
    d_wins_flag = None


@pytest.mark.slow
def test_a_wasserstein_style_plugin_is_not_flagged(
    use_plugin: Callable[[object, str], None], tmp_path: Path, cache_dir: Path
) -> None:
    use_plugin(FakeModels(CriticTiny, UndeclaredTiny), "critics")
    p = Protocol("digits", ("fid",), eval_samples=200, epochs=1, cache_dir=cache_dir)
    critic, undeclared = run_grid(RunRequest(("critic-tiny", "undeclared-tiny"), p, tmp_path)).records
    assert not [f for f in critic.flags if f.startswith("d_wins")]
    assert [f for f in undeclared.flags if f.startswith("d_wins")]  # without the declaration, the old rule


# -- d_x and d_g_z are probabilities ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["gan", "dcgan", "cgan", "cdcgan", "wgan-gp", "vaegan"])
def test_d_x_and_d_g_z_are_probabilities_wherever_they_are_logged(name: str) -> None:
    cls = get_registry().model(name)
    data = genbench.DataInfo("d", (1, 8, 8), "image", 10)
    torch.manual_seed(0)
    model = cls(cls.Hyper(width=8, z_dim=4), data)  # type: ignore[call-arg]
    logs = model.train_step(torch.rand(16, 1, 8, 8), torch.arange(16) % 10)
    if name == "wgan-gp":
        assert "d_x" not in logs and {"critic_x", "critic_g_z"} <= set(logs)  # raw critic values, named as such
    else:
        assert 0 <= float(logs["d_x"]) <= 1 and 0 <= float(logs["d_g_z"]) <= 1


# -- the GAN knobs --------------------------------------------------------------------------------------
def test_the_gan_knobs_are_public_and_shared() -> None:
    shared = {f.name for f in dataclasses.fields(genbench.AdversarialHyper)}
    assert {"lr_g", "lr_d", "beta1", "beta2", "d_steps", "g_steps", "noise", "width", "z_dim"} <= shared
    for cls in (GAN, DCGAN, WGANGP):
        assert issubclass(cls.Hyper, genbench.AdversarialHyper)

    @dataclasses.dataclass
    class MyGANHyper(genbench.AdversarialHyper):
        lr: float = genbench.hp(1e-3, "mine")

    hp = MyGANHyper(lr_d=5e-4)
    assert hp.adam("g") == {"lr": 1e-3, "betas": (0.5, 0.999)} and hp.adam("d")["lr"] == 5e-4
    with pytest.raises(ValueError, match="beta2"):
        MyGANHyper(beta2=1.0)
    help_of = {f.name: f.metadata["help"] for f in dataclasses.fields(MyGANHyper)}
    assert help_of["lr_g"] == {f.name: f.metadata["help"] for f in dataclasses.fields(GAN.Hyper)}["lr_g"]


# -- depending on genbench ----------------------------------------------------------------------------
def test_the_documented_dependency_is_satisfied_by_this_genbench() -> None:
    for plugin in ("genbench-example", "genbench-stylegan"):
        with open(REPO / "plugins" / plugin / "pyproject.toml", "rb") as f:
            deps = tomllib.load(f)["project"]["dependencies"]
        (dep,) = [Requirement(d) for d in deps if Requirement(d).name == "genbench"]
        assert dep.specifier.contains(genbench.__version__), (plugin, str(dep))
    guide = (REPO / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert "pip install -e path/to/genbench" in guide and "pip wheel --no-deps" in guide


@pytest.mark.slow
def test_a_wheel_of_genbench_builds_installs_and_runs(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "genbench", src / "genbench", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip"]
    offline = ["-q", "--no-deps", "--no-build-isolation", "--no-index"]
    built = subprocess.run([*pip, "wheel", *offline, "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("genbench-*.whl")
    site = tmp_path / "site"
    installed = subprocess.run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                               capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("GENBENCH_DISABLE_PLUGINS", None)
    code = (
        "import sys, genbench, genbench.cli; print(genbench.__file__); "
        "sys.exit(genbench.cli.main(['list', 'plugins', '--json']))"
    )
    ran = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=TIMEOUT_S)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    first, rest = ran.stdout.split("\n", 1)
    assert first.startswith(str(site))  # the wheel's genbench, not the checkout's
    assert {p["name"] for p in json.loads(rest)["plugins"]} >= {"genbench.models.builtin", "genbench.metrics.builtin"}
    metadata = next(site.glob("genbench-*.dist-info")) / "METADATA"
    requires = [line for line in metadata.read_text().splitlines() if line.startswith("Requires-Dist:")]
    assert "Requires-Dist: torch==2.14.1" in requires
