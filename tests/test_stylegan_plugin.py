"""The StyleGAN-like plugin (plugins/genbench-stylegan): installed like any plugin, StyleGAN's parts checked.

The slow test pip-installs the package into a temporary folder and drives the real CLI
in a subprocess: the plugin appears in ``genbench list``, trains in a grid beside ``dcgan``,
and its export reproduces its metrics. The fast tests import it from its source folder
and check each StyleGAN ingredient, and that it uses nothing but genbench's public API.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F

import genbench

from .test_example_plugin import TIMEOUT_S, genbench_cli

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "plugins" / "genbench-stylegan"
DIGITS = genbench.DataInfo("digits", (1, 8, 8), "image", 10)


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin pip-installed (offline, no deps) into a fresh --target folder, once per module."""
    root = tmp_path_factory.mktemp("stylegan-plugin")
    src = root / "src"
    shutil.copytree(PLUGIN_DIR, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]
    proc = subprocess.run([*cmd, "--target", str(site), str(src)], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    return site


@pytest.mark.slow
def test_installed_stylegan_trains_in_a_grid_and_exports(plugin_site: Path, tmp_path: Path, cache_dir: Path) -> None:
    listed = genbench_cli(["list", "models", "--json"], plugin_site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    payload = json.loads(listed.stdout)
    assert payload["problems"] == []
    stylegan = {m["name"]: m for m in payload["models"]}["stylegan"]
    assert stylegan["origin"] == "genbench-stylegan 0.1.0" and stylegan["capabilities"] == ["decode", "sample"]
    knobs = {h["name"] for h in stylegan["hyper"]}
    assert {"lr_g", "lr_d", "beta2", "d_steps", "mapping_layers", "style_mixing", "truncation"} <= knobs

    out = tmp_path / "out"
    args = ["run", "--models", "stylegan,dcgan", "--dataset", "digits", "--epochs", "1", "--eval-samples", "200",
            "--grid", "width=8", "--out", str(out), "--cache-dir", str(cache_dir)]  # fmt: skip
    ran = genbench_cli(args, plugin_site, tmp_path)
    assert ran.returncode == 0, f"{ran.stdout}\n{ran.stderr}"
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = {row["model"]: row for row in csv.DictReader(f)}
    assert {m: r["status"] for m, r in rows.items()} == {"stylegan": "ok", "dcgan": "ok"}, rows
    assert math.isfinite(float(rows["stylegan"]["fid_domain"])) and rows["stylegan"]["lr_d"] == rows["dcgan"]["lr_d"]
    record = json.loads((out / "cells" / rows["stylegan"]["cell"] / "record.json").read_text(encoding="utf-8"))
    assert set(record["history"][0]) == {"loss_d", "loss_g", "r1_penalty", "d_x", "d_g_z"}
    assert set(record["params"]) == {"mapping", "synthesis", "discriminator", "total"}

    export = tmp_path / "stylegan.pt"
    exported = genbench_cli(["export", str(out / "cells" / rows["stylegan"]["cell"]), "-o", str(export)],
                            plugin_site, tmp_path)  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    evaluated = genbench_cli(["eval", "--generator", str(export), "--name", "sg-export", "--out", str(out),
                              "--cache-dir", str(cache_dir)], plugin_site, tmp_path)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    with open(out / "results.csv", newline="", encoding="utf-8") as f:
        rows = {row["model"]: row for row in csv.DictReader(f)}
    for key in ("fid_domain", "kid_domain", "precision_domain", "vendi_domain"):
        assert float(rows["sg-export"][key]) == pytest.approx(float(rows["stylegan"][key]), rel=1e-6, abs=1e-6), key


# -- in-process: StyleGAN's parts ------------------------------------------------------------------------
@pytest.fixture
def sg(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """``genbench_stylegan`` imported from its source folder (not installed)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    monkeypatch.delitem(sys.modules, "genbench_stylegan", raising=False)
    import genbench_stylegan

    yield genbench_stylegan
    sys.modules.pop("genbench_stylegan", None)


def make(sg: ModuleType, **hyper: object) -> genbench.GenerativeModel:
    torch.manual_seed(0)
    model: genbench.GenerativeModel = sg.StyleGAN(sg.StyleGANHyper(**{"width": 8, "z_dim": 8, **hyper}), DIGITS)
    return model


def test_modulated_convolution_is_stylegan2s_weight_modulation(sg: ModuleType) -> None:
    """conv(x * s, W) * d equals modulating and demodulating the weights per sample (StyleGAN2, eqs. 1-3)."""
    torch.manual_seed(1)
    conv = sg.ModulatedConv(4, 5, w_dim=6).double()
    x, w = torch.randn(3, 4, 7, 7, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    s = conv.affine(w)
    expected = []
    for i in range(3):
        weight = conv.weight * conv.scale * s[i][None, :, None, None]  # w'_ijk = s_i w_ijk
        weight = weight / weight.pow(2).sum(dim=(1, 2, 3), keepdim=True).add(1e-8).sqrt()  # w'' = w' / ||w'||
        expected.append(F.conv2d(x[i : i + 1], weight, padding=1))
    assert torch.allclose(conv(x, w), torch.cat(expected), rtol=1e-10, atol=1e-12)


def test_style_mixing_switches_styles_at_one_layer(sg: ModuleType) -> None:
    model = make(sg, style_mixing=1.0)
    ws = model.styles_for_training(4)  # type: ignore[attr-defined]
    same = [bool(torch.equal(ws[:, i], ws[:, i + 1])) for i in range(ws.shape[1] - 1)]
    assert same.count(False) == 1  # one crossover point, two styles
    unmixed = make(sg, style_mixing=0.0).styles_for_training(4)  # type: ignore[attr-defined]
    assert all(torch.equal(unmixed[:, 0], unmixed[:, i]) for i in range(unmixed.shape[1]))


def test_truncation_pulls_samples_to_the_average_style(sg: ModuleType) -> None:
    model = make(sg)
    model.train()
    model.train_step(torch.rand(16, 1, 8, 8), None)  # moves w_avg away from zero
    model.eval()
    z = torch.randn(6, 8)
    with torch.no_grad():
        full = model.decode(z)
        model.hp.truncation = 0.0  # type: ignore[attr-defined]
        average = model.decode(z)
    assert not torch.allclose(full[0], full[1])
    assert all(torch.allclose(average[0], average[i]) for i in range(6))  # every sample is w_avg's


def test_noise_inputs_are_random_in_training_and_fixed_when_sampling(sg: ModuleType) -> None:
    model = make(sg)
    with torch.no_grad():
        model.synthesis.layers[0].noise_strength.fill_(1.0)  # type: ignore[union-attr, index, operator]
        ws = model.style(torch.randn(2, 8))[:, None].expand(-1, model.synthesis.num_ws, -1)  # type: ignore[operator, union-attr]
        model.train()
        assert not torch.equal(model.synthesis(ws), model.synthesis(ws))  # type: ignore[operator]
        model.eval()
        assert torch.equal(model.synthesis(ws), model.synthesis(ws))  # type: ignore[operator]
        torch.manual_seed(3)
        sampled = model.sample(5)
        torch.manual_seed(3)
        assert torch.equal(sampled, model.decode(model.sample_latent(5)))  # Capability.DECODE's contract


def test_train_step_and_samples_follow_genbench_conventions(sg: ModuleType) -> None:
    model = make(sg)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(2):
        logs = model.train_step(torch.rand(16, 1, 8, 8), torch.arange(16) % 10)
    assert set(logs) == {"loss_d", "loss_g", "r1_penalty", "d_x", "d_g_z"}
    assert all(v.dim() == 0 and not v.requires_grad and torch.isfinite(v) for v in logs.values())
    assert 0 <= float(logs["d_x"]) <= 1 and 0 <= float(logs["d_g_z"]) <= 1
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True) if a.numel() > 1)
    model.eval()
    with torch.no_grad():
        samples = model.sample(7)
    assert samples.shape == (7, 1, 8, 8) and samples.min() >= 0 and samples.max() <= 1
    with pytest.raises(ValueError, match="truncation"):
        sg.StyleGANHyper(truncation=1.5)
    with pytest.raises(ValueError, match="divisible by 4"):
        sg.StyleGAN(sg.StyleGANHyper(), genbench.DataInfo("odd", (1, 9, 9), "image", None))


def test_only_genbench_public_api_is_used() -> None:
    source = (PLUGIN_DIR / "genbench_stylegan" / "__init__.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    from_genbench = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and (node.module or "").startswith("genbench")]  # fmt: skip
    assert "genbench" in imported and from_genbench == []
    used = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id == "genbench"}  # fmt: skip
    assert used <= set(genbench.__all__), used - set(genbench.__all__)


def test_double_backward_names_the_lazy_r1_penalty_that_compile_cannot_differentiate(
    sg: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_gan_family import takes_second_gradient

    assert sg.StyleGAN.double_backward(sg.StyleGANHyper()) == "R1 penalty r1=1; --grid stylegan.r1=0 turns it off"
    assert takes_second_gradient(make(sg), monkeypatch)
    assert sg.StyleGAN.double_backward(sg.StyleGANHyper(r1=0.0)) is None
    assert not takes_second_gradient(make(sg, r1=0.0), monkeypatch)
