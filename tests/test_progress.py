"""Progress that tells the truth: lines in a log, a running clock per cell, an ETA, steps, preparation."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
import torch
from rich.console import Console

import genbench.run.train as train_module
from genbench.console import ProgressReporter, duration, eta
from genbench.hyper import build
from genbench.plugins import get_registry
from genbench.progress import report, reporting
from genbench.protocol import CellRecord, CellSpec, Protocol
from genbench.run.data import load_data
from genbench.run.runner import CellFinished, CellProgress, CellStarted, Planned, Preparing, RunRequest, run_grid
from genbench.run.train import epoch_log, epoch_means, train


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def spec(cid: str) -> CellSpec:
    return CellSpec(cid, "gan", {}, 0, Protocol("digits", ()), Path("/nonexistent"))


def record(cid: str, status: str = "ok") -> CellRecord:
    r = CellRecord(cid, "gan", "digits", 0, {})
    r.status = status  # type: ignore[assignment]
    r.error = None if status == "ok" else "RuntimeError: boom"
    return r


def test_eta_and_durations() -> None:
    assert eta([], 3) is None and eta([10.0, 30.0, 20.0], 2) == 40.0  # the median cell, times the cells left
    assert [duration(s) for s in (4.2, 200, 3725)] == ["4s", "3m20s", "1h02m"]


def test_a_log_gets_a_line_per_cell_start_and_end_and_at_most_one_in_between_per_interval() -> None:
    out, clock = io.StringIO(), Clock()
    reporter = ProgressReporter(Console(file=out, width=100), clock=clock, interval=10.0)
    assert reporter.plain  # a StringIO is not a terminal
    cells = (spec("gan_s0"), spec("gan_s1"))
    reporter(Planned(cells, 2))
    reporter(Preparing("preparing metric 'fid'"))
    for done in range(5):
        reporter(Preparing("training the domain classifier on digits (epochs)", done, 5))
        clock.now += 4.0
    for i, cell in enumerate(cells):
        reporter(CellStarted(i, 2, cell))
        for epoch in range(1, 7):  # one epoch every 3 s: a line every 10 s at most
            clock.now += 3.0
            reporter(CellProgress(cell.cell_id, "epoch", (epoch, 6, {"loss_d": 0.5, "loss_g": 1.25})))
        reporter(CellFinished(i, 2, record(cell.cell_id, "ok" if i == 0 else "failed")))
    lines = out.getvalue().splitlines()
    assert lines[0] == "genbench: 2 cells to run" and lines[1] == "preparing: preparing metric 'fid'"
    assert sum("training the domain classifier" in line for line in lines) == 2  # 20 s of it: two lines
    assert "[1/2] gan_s0: started" in lines and "[2/2] gan_s1: started" in lines
    epochs = [line for line in lines if "epoch" in line and "domain" not in line]
    assert 2 <= len(epochs) <= 4 and "[1/2] gan_s0: epoch" in epochs[0] and "loss_d=0.5 loss_g=1.25" in epochs[0]
    assert "[1/2] gan_s0: ok in 18s; grid 1/2, ETA 18s" in lines
    assert "[2/2] gan_s1: failed: RuntimeError: boom in 18s; grid 2/2" in lines


def test_in_a_terminal_every_cell_gets_its_own_clock_and_the_losses_never_squeeze_the_bars() -> None:
    clock = Clock()
    console = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    reporter = ProgressReporter(console, clock=clock)
    assert not reporter.plain
    a, b = spec("gan_z_dim=32_lr_g=0.001_batch_size=64_s0"), spec("gan_s1")
    with reporter:
        reporter(Planned((a, b), 2))
        reporter(CellStarted(0, 2, a))
        clock.now = 30.0
        reporter(CellProgress(a.cell_id, "epoch", (2, 2, {f"loss_{i}": 0.1234 * i for i in range(20)})))
        assert reporter.bar(a.cell_id).finished  # the first cell's bar is full: Rich stops its clock here
        reporter(CellFinished(0, 2, record(a.cell_id)))
        clock.now = 40.0
        reporter(CellStarted(1, 2, b))
        clock.now = 43.0
        cell = reporter.bar(b.cell_id)
        assert cell.elapsed == pytest.approx(3.0) and not cell.finished  # not frozen at the first cell's 30 s
        reporter(CellProgress(b.cell_id, "step", (1, 4, 25, 100)))
        assert reporter.bar(b.cell_id).completed == pytest.approx(0.25) and reporter.bar(b.cell_id).total == 4
        reporter(CellProgress(b.cell_id, "epoch", (1, 4, {f"loss_{i}": 0.1234 * i for i in range(20)})))
        assert "ETA 30s" in str(next(t for t in reporter.progress.tasks if t.id == reporter.grid_task).fields)
        screen = Console(file=io.StringIO(), width=80, color_system=None)
        screen.print(reporter.progress.get_renderable())
    lines = screen.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    assert "━" * 5 in lines[1]  # a quarter of a 20-wide bar: the losses were cut, not the bar
    assert lines[1].rstrip().endswith("…") and "0:00:03" in lines[1]


def test_train_reports_steps_of_a_long_epoch_and_logs_points_within_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(train_module, "STEP_REPORT_S", 0.0)  # every step
    data = load_data("digits", Path("unused"), False)
    cls = get_registry().model("tiny") if "tiny" in get_registry().models else get_registry().model("ae")
    torch.manual_seed(0)
    model = cls(build(cls.Hyper, {"batch_size": 64}, "m", "image"), data.info)
    steps: list[tuple[int, int, int]] = []
    result = train(model, data.split("train"), 2, 64, 0, on_step=lambda *a: steps.append(a))
    per_epoch = len(data.split("train")) // 64  # 23 full batches
    assert steps[0] == (1, 1, per_epoch) and steps[-1] == (2, per_epoch, per_epoch) and len(steps) == 2 * per_epoch
    assert len(result.history) == 2 and len(result.steps) == 2 * 8  # ceil(23 / 10) = 3 steps a point: 8 points
    assert [p["step"] for p in result.steps[:8]] == [3, 6, 9, 12, 15, 18, 21, 23]
    assert result.steps[7]["epoch"] == 1.0 and result.steps[-1]["epoch"] == 2.0
    assert 0.0 < result.steps[0]["epoch"] < 1.0 and set(result.steps[0]) == {"step", "epoch", *result.history[0]}


def test_the_step_log_averages_the_same_values_as_the_epoch_mean() -> None:
    logs = [{"loss": torch.tensor(float(v))} for v in range(1, 26)]  # 25 steps: runs of 3, the last of 1
    means, points = epoch_log(logs)
    assert means == epoch_means(logs) == {"loss": 13.0}
    assert [end for end, _ in points] == [3, 6, 9, 12, 15, 18, 21, 24, 25]
    assert points[0][1] == {"loss": 2.0} and points[-1][1] == {"loss": 25.0}


def test_reporting_sends_progress_to_the_listener_in_its_block_only() -> None:
    heard: list[tuple[str, int, int | None]] = []
    report("nobody listens", 1, 2)
    with reporting(lambda *a: heard.append(a)):
        report("work", 1, 2)
    report("after", 2, 2)
    assert heard == [("work", 1, 2)]


@pytest.mark.slow
def test_a_run_says_how_far_its_long_preparation_and_evaluation_steps_are(tmp_path: Path, cache_dir: Path) -> None:
    fresh = tmp_path / "cache"  # the domain classifier is trained here, not taken from the session cache
    events: list[object] = []
    protocol = Protocol("digits", ("fid",), eval_samples=300, epochs=1, cache_dir=fresh, eval_batch_size=128)
    result = run_grid(RunRequest(("gan",), protocol, tmp_path / "out"), events.append)
    assert result.records[0].status == "ok", result.records[0].error
    training = [e for e in events if isinstance(e, Preparing) and e.what.startswith("training the domain")]
    assert training[0].done == 0 and training[-1].done == training[-1].total and len(training) >= 3
    work = [e.detail for e in events if isinstance(e, CellProgress) and e.kind == "work"]
    reference = [w for w in work if w[0] == "reference features (domain, images)"]
    assert [w[1] for w in reference] == [0, 128, 256, 300] and {w[2] for w in reference} == {300}
    assert any(w[0] == "sample features (domain, images)" for w in work)
    record = result.records[0]
    assert record.step_history and record.step_history[-1]["epoch"] == 1.0
    cell = tmp_path / "out" / "cells" / record.cell_id
    assert (cell / "steps.csv").read_text().splitlines()[0].startswith("step,epoch,loss_d")
    shutil.rmtree(fresh)
