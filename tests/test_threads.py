"""Threads: --threads is validated and recorded, the automatic choice backs off on a busy machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from genbench import threads
from genbench.errors import GenbenchError
from genbench.protocol import Protocol
from genbench.run.runner import RunRequest, run_grid, validate
from genbench.threads import CpuSample, apply_threads, auto_threads, busy_between, check_threads, decide

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("bad", [0, -1])
def test_threads_below_one_is_a_one_line_error_before_any_work(tmp_path: Path, bad: int) -> None:
    request = RunRequest(("gan",), Protocol("digits", ("fid",)), tmp_path / "out", threads=bad)
    with pytest.raises(GenbenchError) as exc:
        validate(request)
    assert str(exc.value).startswith(f"--threads {bad}: must be an integer >= 1")
    assert "\n" not in str(exc.value) and not (tmp_path / "out").exists()


def test_check_threads_accepts_none_and_positive_integers_only() -> None:
    check_threads(None)
    check_threads(3)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(GenbenchError, match="must be an integer >= 1"):
            check_threads(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cores", "busy", "expected"),
    [
        (2, 0.0, 2),  # a quiet machine: one thread per core, as torch would
        (2, 0.2, 2),  # a shell and an editor do not cost a thread
        (2, 1.0, 1),  # another process holds a core: never two threads spinning for one
        (2, 7.0, 1),  # load 7 on 2 cores: one thread, at least
        (16, 13.0, 3),  # the cores others leave free
        (1, 0.0, 1),
    ],
)
def test_auto_threads_uses_the_cores_others_leave_free(cores: int, busy: float, expected: int) -> None:
    assert auto_threads(cores, busy) == expected


def test_busy_between_subtracts_this_process_own_cpu_time() -> None:
    a, b = CpuSample(wall=100.0, busy=500.0, own=20.0), CpuSample(wall=110.0, busy=525.0, own=30.0)
    assert busy_between(a, b) == pytest.approx(1.5)  # 25 busy core-seconds in 10 s, 10 of them ours
    assert busy_between(CpuSample(0.0, None, 0.0), b) is None  # no /proc/stat: cannot tell


def test_decide_prefers_the_request_then_omp_num_threads_then_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    assert decide(3) == threads.ThreadChoice(3, "--threads 3")
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert decide(None) == threads.ThreadChoice(2, "OMP_NUM_THREADS=2")
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads._METER, "busy_elsewhere", lambda: 1.6)
    choice = decide(None)
    assert choice.threads == 1 and choice.reason == "auto: 2 cores, 1.6 busy elsewhere"
    monkeypatch.setattr(threads._METER, "busy_elsewhere", lambda: 0.0)
    assert threads.choose_threads(None) == 2


def test_apply_threads_sets_torch_and_reports_it() -> None:
    before = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 == torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_every_record_and_results_row_carries_its_thread_count(tmp_path: Path, cache_dir: Path) -> None:
    protocol = Protocol("toy2d", ("modes",), eval_samples=200, epochs=1, cache_dir=cache_dir)
    result = run_grid(RunRequest(("gan",), protocol, tmp_path, ("z_dim=2,3",), threads=1))
    assert [r.status for r in result.records] == ["ok", "ok"]
    for r in result.records:
        assert r.environment["threads"] == "1" and r.environment["threads_reason"] == "--threads 1"
    assert pd.read_csv(tmp_path / "results.csv")["threads"].tolist() == [1, 1]
    automatic = run_grid(RunRequest(("gan",), protocol, tmp_path / "auto"))  # conftest: OMP_NUM_THREADS=1
    assert automatic.records[0].environment["threads_reason"] == "OMP_NUM_THREADS=1"


def test_the_cli_sets_a_passive_wait_policy_before_torch_loads() -> None:
    """``import genbench.cli`` loads no torch, so ``main`` can still configure the OpenMP runtime."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import sys, os\n"
        "import genbench.cli\n"
        "assert 'torch' not in sys.modules, 'importing the CLI loaded torch'\n"
        "genbench.cli.main(['--version'])\n"
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["genbench 0.1.0", "PASSIVE False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice wins
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "ACTIVE False"


@pytest.mark.parametrize(
    ("value", "expected"), [("3", 3), (" 2 ", 2), ("0", None), ("-1", None), ("four", None), ("", None)]
)
def test_env_threads_takes_only_a_positive_integer(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: int | None
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert threads.env_threads() == expected
    choice = decide(None)  # the executors' thread cap and a serial cell read the variable alike
    if expected is None:
        assert choice.reason.startswith("auto:")
    else:
        assert choice == threads.ThreadChoice(expected, f"OMP_NUM_THREADS={expected}")
