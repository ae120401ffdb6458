"""Small things a user meets in the first hour: --version, completion, descriptions, curves, a fast start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import genbench
from genbench.cli import main
from genbench.plugins import get_registry
from genbench.reporting import images

REPO = Path(__file__).resolve().parents[1]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"genbench {genbench.__version__}\n"


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--help"])
    assert "--install-completion" in capsys.readouterr().out
    assert main(["--show-completion", "bash"]) == 0
    assert "_GENBENCH_COMPLETE" in capsys.readouterr().out


def test_toy2d_ring_describes_itself() -> None:
    datasets = get_registry().datasets
    ring, alias = datasets["toy2d"].cls.description, datasets["toy2d-ring"].cls.description
    assert ring.endswith("same as toy2d-ring") and alias.endswith("same as toy2d")
    assert ring.replace("toy2d-ring", "toy2d") == alias


def test_the_public_api_is_imported_on_first_use() -> None:
    from genbench.models.base import GenerativeModel

    assert genbench.GenerativeModel is GenerativeModel and "Metric" in dir(genbench)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = genbench.Nope  # type: ignore[attr-defined]
    code = (
        "import sys, genbench\nprint('torch' in sys.modules)\ngenbench.GenerativeModel\nprint('torch' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "True"]  # torch loads with the first name that needs it


def test_help_and_version_start_without_torch() -> None:
    """`genbench --help` and `--version` need neither torch nor the registry (they started in 3.6 s)."""
    code = (
        "import sys\n"
        "from genbench.cli import main\n"
        "main(['--help']); main(['--version'])\n"
        "print(sorted(m for m in ('torch', 'torchvision', 'torch_fidelity', 'pandas', 'scipy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_listing_models_does_not_load_torch_fidelity_or_torchvision() -> None:
    code = (
        "import sys\n"
        "from genbench.cli import main\n"
        "main(['list', 'metrics'])\n"
        "print(sorted(m for m in ('torchvision', 'torch_fidelity') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_loss_curves_from_a_step_log_draw_every_logged_value() -> None:
    steps = [{"step": s, "epoch": s / 10, "loss_d": 1.0 / s, "loss_g": float(s), "d_x": 0.6} for s in range(1, 31)]
    img = images.curves(steps, width=300, panel=100)
    assert img.size == (300, 200)  # the losses together, then d_x; step and epoch are positions, not curves
    per_epoch = images.curves([{"loss": 1.0}, {"loss": 0.5}], width=300, panel=100)
    assert per_epoch.size == (300, 100)
