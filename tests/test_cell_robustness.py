"""A plugin cannot take the grid down or game the table.

SystemExit/KeyboardInterrupt raised by plugin code fail only their cell (the user's
Ctrl-C still stops the grid); samples are held to the contract before any metric; a
cell can be given a time limit; exploded losses, non-finite weights and numerical
failures in samplers and metrics end as ``diverged`` with the reason.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import genbench
from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError
from genbench.protocol import CellRecord, Protocol
from genbench.results import read_record
from genbench.run.cell import environment, run_cell
from genbench.run.contract import ContractError, check_batch, check_values
from genbench.run.data import load_data
from genbench.run.runner import RunRequest, run_grid, validate
from genbench.run.train import Diverged

from .conftest import FakeModels, TinyModel

Plugin = Callable[[object, str], None]


def run(
    tmp_path: Path, cache_dir: Path, models: tuple[str, ...], metrics: tuple[str, ...] = ("gap",), **kw: Any
) -> list[CellRecord]:
    epochs, eval_every = kw.pop("epochs", 1), kw.pop("eval_every", None)
    protocol = Protocol("digits", metrics, eval_samples=200, epochs=epochs, cache_dir=cache_dir, eval_every=eval_every)
    return run_grid(RunRequest(models, protocol, tmp_path, **kw)).records


class Gap(genbench.Metric):
    """A cheap metric that always works: distance between the mean sample and the mean reference."""

    name = "gap"
    data_kinds = frozenset({"image", "points"})

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        return {"gap": float((ctx.samples.flatten(1).mean(0) - ctx.reference.x.flatten(1).mean(0)).norm())}


class FakeMetrics:
    def __init__(self, *classes: type[Any]) -> None:
        self.classes = classes

    @genbench.hookimpl
    def register_metrics(self, register: Callable[[type[Any]], None]) -> None:
        for cls in self.classes:
            register(cls)


@pytest.fixture
def gap_metric(use_plugin: Plugin) -> None:
    use_plugin(FakeMetrics(Gap), "test-gap")


# -- 1. SystemExit and KeyboardInterrupt from plugin code -------------------------------------------------
class ExitModel(TinyModel):
    name = "exits"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        sys.exit(3)


class ExitInInit(TinyModel):
    name = "exits-init"

    def __init__(self, hp: Any, data: DataInfo) -> None:
        raise SystemExit("no GPU, giving up")


class RaisesInterrupt(TinyModel):
    """Raises KeyboardInterrupt itself: no SIGINT, so not the user's Ctrl-C."""

    name = "raises-interrupt"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        raise KeyboardInterrupt


class SwallowingModel(TinyModel):
    """Catches the KeyboardInterrupt of a real Ctrl-C and carries on: the grid must stop all the same."""

    name = "swallows"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        with contextlib.suppress(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        return super().train_step(x, y)


class ExitMetric(Gap):
    name = "exits"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        raise SystemExit(4)


def test_system_exit_and_keyboard_interrupt_from_a_plugin_fail_only_that_cell(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel, ExitModel, ExitInInit, RaisesInterrupt), "m")
    records = run(tmp_path, cache_dir, ("exits", "exits-init", "raises-interrupt", "tiny"))
    status = {r.model: (r.status, r.error) for r in records}
    assert status == {
        "exits": ("failed", "SystemExit raised by plugin code: 3"),
        "exits-init": ("failed", "SystemExit raised by plugin code: no GPU, giving up"),
        "raises-interrupt": ("failed", "KeyboardInterrupt raised by plugin code"),
        "tiny": ("ok", None),
    }
    assert list(pd.read_csv(tmp_path / "results.csv")["status"]) == ["failed", "failed", "failed", "ok"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back


def test_system_exit_in_a_metric_fails_that_cell_and_the_grid_goes_on(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin
) -> None:
    use_plugin(FakeModels(TinyModel), "m")
    use_plugin(FakeMetrics(ExitMetric), "exit-metric")
    records = run(tmp_path, cache_dir, ("tiny",), ("exits",), seeds=(0, 1))
    assert [(r.status, r.error) for r in records] == [("failed", "SystemExit raised by plugin code: 4")] * 2


def test_a_real_sigint_caught_by_plugin_code_still_stops_the_grid(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel, SwallowingModel), "m")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, cache_dir, ("swallows", "tiny"))
    (folder,) = (tmp_path / "cells").glob("swallows_*_s0")  # ids carry a digest of the hyper-parameters
    saved = read_record(folder)
    assert saved is not None and (saved.status, saved.error) == ("failed", "interrupted")
    assert not list((tmp_path / "cells").glob("tiny_*"))


# -- 2. The sample contract --------------------------------------------------------------------------------
class WideRange(TinyModel):
    """'Images' in [-25, 25]: once scored a better FID than a correct model."""

    name = "wide"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.linspace(-25, 25, n * self.data.dim).reshape(n, *self.data.shape)


class ShortCount(TinyModel):
    name = "short"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().sample(n)[: max(n - 1, 0)]


class Flat(TinyModel):
    name = "flat"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().sample(n).flatten(1)


class Bytes(TinyModel):
    name = "bytes"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return (super().sample(n) * 255).to(torch.uint8)


class NaNSamples(TinyModel):
    name = "nan-samples"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().sample(n) * float("nan")


class Overshoot(TinyModel):
    """x * std + mean style output: a hair outside [0, 1], within the tolerance."""

    name = "overshoot"

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = super().sample(n)
        out[0].fill_(1 + 5e-4)
        out[1].fill_(-5e-4)
        return out


class LabelIgnorer(TinyModel):
    """Conditional, but returns a fixed number of samples whatever the labels."""

    name = "label-ignorer"
    capabilities = frozenset({genbench.Capability.SAMPLE, genbench.Capability.CONDITIONAL})

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().sample(10)


def test_samples_breaking_the_contract_fail_the_cell_before_any_metric(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel, WideRange, ShortCount, Flat, Bytes, Overshoot, LabelIgnorer), "m")
    models = ("wide", "short", "flat", "bytes", "label-ignorer", "overshoot", "tiny")
    status = {r.model: (r.status, r.error, r.metrics) for r in run(tmp_path, cache_dir, models)}
    assert status["wide"] == ("failed", "samples out of range [0, 1] (tolerance 0.001): min -25.0, max 25.0", {})
    assert status["short"][:2] == ("failed", "samples: sample(200) returned 199 samples; expected 200")
    assert status["flat"][:2] == (
        "failed",
        "samples of shape (200, 64); expected (200, 1, 8, 8) (n, *shape of 'digits')",
    )
    assert status["bytes"][:2] == ("failed", "samples of dtype torch.uint8; expected a floating dtype")
    assert status["label-ignorer"][:2] == (
        "failed",
        "samples: sample(200, labels) returned 10 samples; expected 200 (one per label given)",
    )
    assert status["overshoot"][0] == status["tiny"][0] == "ok" and "gap" in status["overshoot"][2]
    assert not list((tmp_path / "cells").glob("wide_*_s0/samples.png"))  # stopped before anything used them


def test_non_finite_samples_are_divergence(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(NaNSamples), "m")
    (record,) = run(tmp_path, cache_dir, ("nan-samples",))
    assert (record.status, record.error) == ("diverged", "samples: 12800 of 12800 values are NaN or infinite")


def test_points_have_no_range_but_the_rest_of_the_contract_holds() -> None:
    points = DataInfo("toy2d", (2,), "points")
    check_values(torch.tensor([[-40.0, 70.0], [3.0, 1e4]]), points)  # unbounded reals
    with pytest.raises(Diverged, match="1 of 4 values are NaN or infinite"):
        check_values(torch.tensor([[-40.0, math.inf], [3.0, 1.0]]), points)
    with pytest.raises(ContractError, match=r"sample\(3\) returned list, not a torch.Tensor"):
        check_batch([[0.0, 0.0]] * 3, 3, points)
    with pytest.raises(ContractError, match=r"sample\(3\) returned a 0-dim tensor; expected 3"):
        check_batch(torch.tensor(0.5), 3, points)
    image = DataInfo("digits", (1, 8, 8), "image", 10)
    check_values(torch.full((2, 1, 8, 8), 1.0009), image)  # within the tolerance
    with pytest.raises(ContractError, match=r"out of range \[0, 1\] \(tolerance 0.001\): min 0.0, max 1.002"):
        check_values(torch.cat([torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 1.002)]), image)
    assert check_batch(torch.zeros(3, 1, 8, 8, dtype=torch.float64), 3, image).dtype == torch.float64


# -- 3. Cell timeout ---------------------------------------------------------------------------------------
class Sleeper(TinyModel):
    """One very long step; ``finished`` records whether the sleep ever ran to its end."""

    name = "sleeper"
    finished = False

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        time.sleep(60)
        Sleeper.finished = True
        return super().train_step(x, y)


class Dozer(TinyModel):
    """Short naps every step (the deadline check between steps stops it)."""

    name = "dozer"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        time.sleep(0.2)
        return super().train_step(x, y)


class SwallowsTimeout(TinyModel):
    """Catches every exception, the alarm's included, and naps on."""

    name = "stubborn"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        with contextlib.suppress(BaseException):  # the alarm's exception too: the point of the test
            time.sleep(1.0)
        return super().train_step(x, y)


class SlowMetric(Gap):
    name = "slow"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        try:
            time.sleep(60)
        except Exception:  # a metric's own broad handler must not swallow the timeout
            return {"slow": 0.0}
        return {"slow": 1.0}


def test_a_cell_past_its_time_limit_fails_with_its_phase_and_the_grid_goes_on(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel, Sleeper), "m")
    Sleeper.finished = False
    # A limit the tiny cell meets with room to spare on a loaded 2-core machine (no quality curve: seconds).
    records = run(tmp_path, cache_dir, ("sleeper", "tiny"), epochs=3, cell_timeout=12.0, eval_every=0)
    status = {r.model: (r.status, r.error) for r in records}
    assert status["sleeper"] == ("failed", "timed out after 12 s in phase train (epoch 1/3)")
    assert not Sleeper.finished  # the alarm interrupted the sleep itself
    assert status["tiny"] == ("ok", None)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_timeout_in_a_metric_is_not_swallowed_by_its_exception_handler(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel), "m")
    use_plugin(FakeMetrics(SlowMetric), "slow-metric")
    (record,) = run(tmp_path, cache_dir, ("tiny",), ("gap", "slow"), cell_timeout=10.0, eval_every=0)
    assert (record.status, record.error) == ("failed", "timed out after 10 s in phase evaluate")
    assert "gap" in record.metrics and "slow" not in record.metrics


def test_the_deadline_is_also_checked_between_steps(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(SwallowsTimeout), "m")
    (record,) = run(tmp_path, cache_dir, ("stubborn",), cell_timeout=5.0)  # room for setup on a loaded machine
    assert (record.status, record.error) == ("failed", "timed out after 5 s in phase train (epoch 1/1)")


def test_outside_the_main_thread_the_deadline_is_checked_between_steps(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(Dozer), "m")
    protocol = Protocol("digits", ("gap",), eval_samples=200, epochs=2, cache_dir=cache_dir)
    (spec,) = validate(RunRequest(("dozer",), protocol, tmp_path, cell_timeout=3.0))  # an epoch naps ~4 s
    load_data("digits", Path(protocol.data_dir), protocol.download), environment(torch.device("cpu"))  # warm
    out: list[CellRecord] = []
    worker = threading.Thread(target=lambda: out.append(run_cell(spec)))
    worker.start()
    worker.join()
    assert (out[0].status, out[0].error) == ("failed", "timed out after 3 s in phase train (epoch 1/2)")


def test_a_timer_that_was_running_is_restored(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel), "m")
    fired: list[int] = []

    def handler(signum: int, frame: object) -> None:
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 300)
    try:
        (record,) = run(tmp_path, cache_dir, ("tiny",), cell_timeout=100.0)
        delay, _ = signal.getitimer(signal.ITIMER_REAL)
        assert record.status == "ok" and 0 < delay <= 300 and not fired
        assert signal.getsignal(signal.SIGALRM) is handler  # the test's own handler is back
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("seconds", [0.0, -5.0, math.nan, math.inf])
def test_cell_timeout_must_be_a_positive_number_of_seconds(tmp_path: Path, seconds: float) -> None:
    protocol = Protocol("digits", ("fid",), epochs=1)
    with pytest.raises(GenbenchError, match=rf"--cell-timeout {seconds:g}: must be a number of seconds > 0"):
        run_grid(RunRequest(("gan",), protocol, tmp_path, cell_timeout=seconds))
    assert not (tmp_path / "results.csv").exists()


def test_cell_timeout_reaches_every_cell_but_not_the_protocol(tmp_path: Path) -> None:
    protocol = Protocol("digits", ("fid",), epochs=1)
    cells = validate(RunRequest(("gan", "vae"), protocol, tmp_path, cell_timeout=30.0))
    assert [c.cell_timeout for c in cells] == [30.0, 30.0]
    assert "cell_timeout" not in cells[0].protocol.manifest()  # it changes no number: --resume may reuse


# -- 4. Divergence that is not NaN -------------------------------------------------------------------------
class Blowup(TinyModel):
    """A finite loss that explodes, as a learning rate 1000x too large gives."""

    name = "blowup"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        out = dict(super().train_step(x, y))
        return {"loss": out["loss"] * 0 + 3e7, "d_x": out["loss"] * 0 + 0.5}


class NaNWeights(TinyModel):
    """Logs a finite loss while its weights turn NaN."""

    name = "nan-weights"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        super().train_step(x, y)
        with torch.no_grad():
            self.decoder.weight[0, 0] = float("nan")
        return {"loss": torch.tensor(0.5)}


class Singular(Gap):
    """Fails as FID can on degenerate statistics: a Cholesky factorisation of a singular matrix."""

    name = "singular"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        return {"singular": float(torch.linalg.cholesky(torch.zeros(3, 3)).sum())}


class ScipySingular(Gap):
    name = "scipy-singular"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        import scipy.linalg

        return {"scipy-singular": float(scipy.linalg.cholesky(np.zeros((3, 3))).sum())}


class NaNValue(Gap):
    name = "nan-value"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        return {"nan_value": float("nan")}


class ComplexValue(Gap):
    name = "complex-value"

    def compute(self, ctx: genbench.EvalContext) -> dict[str, float]:
        return {"complex_value": complex(3.0, 0.5)}  # type: ignore[dict-item]


def test_an_exploding_loss_is_divergence_and_the_epoch_is_kept(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(Blowup, NaNWeights), "m")
    records = {r.model: r for r in run(tmp_path, cache_dir, ("blowup", "nan-weights"))}
    blowup = records["blowup"]
    assert (blowup.status, blowup.error) == (
        "diverged",
        "losses exploded in epoch 1 (limit: |epoch mean| <= 1e+06): loss 3e+07",
    )
    assert blowup.history[0]["loss"] == pytest.approx(3e7)
    nan = records["nan-weights"]
    assert (nan.status, nan.error) == ("diverged", "parameter 'decoder.weight' became NaN or infinite in epoch 1")


@pytest.mark.parametrize(
    ("model", "reason"),
    [
        ("gan", r"losses exploded in epoch 1 \(limit: \|epoch mean\| <= 1e\+06\): loss_d \d"),
        ("ae", r"sample: LinAlgError: linalg.cholesky: .*not positive-definite"),
    ],
)
def test_builtin_models_at_a_huge_learning_rate_diverge(
    tmp_path: Path, cache_dir: Path, gap_metric: None, model: str, reason: str
) -> None:
    (record,) = run(tmp_path, cache_dir, (model,), grid=("lr=10",))
    assert record.status == "diverged" and re.match(reason, record.error or ""), record.error


def test_a_metric_failing_numerically_makes_the_cell_diverged_and_keeps_other_metrics(
    tmp_path: Path, cache_dir: Path, use_plugin: Plugin, gap_metric: None
) -> None:
    use_plugin(FakeModels(TinyModel), "m")
    use_plugin(FakeMetrics(Singular, ScipySingular, NaNValue, ComplexValue), "bad-metrics")
    metrics = ("gap", "singular", "scipy-singular", "nan-value", "complex-value")
    (record,) = run(tmp_path, cache_dir, ("tiny",), metrics)
    assert record.status == "diverged"
    assert (record.error or "").startswith("metric singular: LinAlgError: linalg.cholesky:")
    assert record.metric_notes["scipy-singular"].startswith("diverged: LinAlgError: ")
    assert record.metric_notes["nan-value"] == "diverged: nan_value is nan"
    assert record.metric_notes["complex-value"] == "diverged: complex_value is complex (3+0.5j)"
    assert set(record.metrics) == {"gap"}  # the metric that worked is kept
    df = pd.read_csv(tmp_path / "results.csv")
    assert list(df["status"]) == ["diverged"] and df.loc[0, "gap"] > 0


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (ValueError("bad shape\nsecond line"), "ValueError: bad shape"),
        (RuntimeError(), "RuntimeError"),
        (GenbenchError("--device cuda: no GPU here"), "--device cuda: no GPU here"),
        (GenbenchError(""), "GenbenchError"),
    ],
)
def test_one_line_names_the_exception_in_one_line(exc: BaseException, line: str) -> None:
    """What a record's error and notes hold: type and first line; a GenbenchError's own text is enough."""
    from genbench.run.contract import one_line

    assert one_line(exc) == line
