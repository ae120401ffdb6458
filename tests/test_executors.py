"""Executors: one interface and one plugin road; the same numbers on every executor; dead workers;
the driver as the one writer; kill -9 of the driver and --resume."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import genbench
from genbench.cli import main
from genbench.errors import DiskFull, GenbenchError
from genbench.folder import RunFolder, intact
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, CellSpec, Protocol
from genbench.results import read_record
from genbench.run.events import CellFinished, CellProgress, CellStarted, EventCallback
from genbench.run.executors import Executor, PackedCell, resources
from genbench.run.executors.process import plan_workers
from genbench.run.executors.remote import ShippedPlugin, failed_cell, land, run_packed
from genbench.run.runner import RunRequest, run_grid

from .conftest import FakeModels, FullDiskModel, KillerModel, TinyModel

ROOT = Path(__file__).resolve().parents[1]


def tiny_request(out: Path, cache: Path, models: tuple[str, ...] = ("tiny",), **kw: Any) -> RunRequest:
    """Cells that are deterministic on the CPU (GPU kernels need not be): the same numbers on every executor."""
    protocol = Protocol("digits", ("fid",), eval_samples=100, epochs=2, cache_dir=cache, device="cpu")
    return RunRequest(models, protocol, out, kw.pop("grid", ("z_dim=2,3",)), **kw)


def saved(out: Path, record: CellRecord) -> bool:
    """Whether ``record`` is what its cell folder's record.json holds (compared as JSON)."""
    on_disk = read_record(out / "cells" / record.cell_id)
    return on_disk is not None and on_disk.to_json() == json.loads(json.dumps(record.to_json(), default=str))


def metrics(records: Sequence[CellRecord]) -> list[tuple[str, str, dict[str, float], list[dict[str, float]]]]:
    return [(r.cell_id, r.status, r.metrics, r.history) for r in records]


# -- one road for executors ----------------------------------------------------------------------------
class ReverseExecutor(Executor):
    """A third-party executor: runs the cells last to first, each in a private folder (packed)."""

    name = "reverse"
    description = "test executor"

    locked_while_running: bool | None = None

    def run(self, specs: Sequence[CellSpec], on_event: EventCallback) -> Iterator[PackedCell]:
        try:  # the driver holds the results folder's lock while any executor runs
            RunFolder(self.request.out_dir).acquire()
            ReverseExecutor.locked_while_running = False
        except GenbenchError:
            ReverseExecutor.locked_while_running = True
        for i, spec in enumerate(reversed(specs)):
            on_event(CellStarted(i, len(specs), spec))
            yield run_packed(spec, lambda cid, kind, detail: on_event(CellProgress(cid, kind, detail)))


class FakeExecutors:
    @genbench.hookimpl
    def register_executors(self, register: Callable[[type[Any]], None]) -> None:
        register(ReverseExecutor)


def test_built_in_executors_are_listed_with_their_origin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "executors", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)["executors"]}
    assert set(rows) >= {"serial", "process", "ray"}
    assert {rows[n]["origin"] for n in ("serial", "process", "ray")} == {"built-in"}
    assert rows["process"]["options"] == ["cells_per_gpu", "gpus", "workers"]


def test_a_plugin_executor_runs_the_grid_and_the_driver_writes_it_in_grid_order(
    tmp_path: Path, cache_dir: Path, tiny_models: None, use_plugin: Callable[[object, str], None]
) -> None:
    use_plugin(FakeExecutors(), "test-executors")
    req = tiny_request(tmp_path, cache_dir, grid=("z_dim=2,3,4",), executor="reverse")
    events: list[object] = []
    result = run_grid(req, events.append)
    finished = [e.record.hyper["z_dim"] for e in events if isinstance(e, CellFinished)]
    assert finished == [4, 3, 2]  # they came back last to first...
    assert [r.hyper["z_dim"] for r in result.records] == [2, 3, 4]  # ...and are written in grid order
    assert list(pd.read_csv(tmp_path / "results.csv")["z_dim"]) == [2, 3, 4]
    for record in result.records:  # the files the workers packed were written by the driver, intact
        assert record.status == "ok" and intact(tmp_path, record)
        assert saved(tmp_path, record)
    assert json.loads((tmp_path / "run.json").read_text())["executor"]["name"] == "reverse"
    assert ReverseExecutor.locked_while_running is True

    class Unstartable(ReverseExecutor):
        def __enter__(self) -> Unstartable:
            raise AssertionError("started although every cell is reused")

    again = run_grid(dataclasses.replace(req, resume=True), executor=Unstartable(req))  # nothing to run: not started
    assert metrics(again.records) == metrics(result.records)
    # The built-in process executor refuses to run cells outside its `with` block: a resume that reuses
    # every cell must not ask it to (bench_scale --crash's last --resume failed with a traceback).
    resumed = dataclasses.replace(req, resume=True, executor="process")
    process = get_registry().executor("process")(resumed)
    assert metrics(run_grid(resumed, executor=process).records) == metrics(result.records)


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_a_resume_that_reuses_every_cell_on_a_pool_executor_starts_nothing_and_keeps_them(
    tmp_path: Path, cache_dir: Path, tiny_models: None, executor: str
) -> None:
    first = run_grid(tiny_request(tmp_path, cache_dir))
    # the same grid resumed with a pool executor: nothing to run, so no pool (it raised "run outside its `with`")
    again = run_grid(tiny_request(tmp_path, cache_dir, resume=True, executor=executor, workers=1))
    assert metrics(again.records) == metrics(first.records)
    assert [r.attempt for r in again.records] == [r.attempt for r in first.records]  # none recomputed


def test_a_plugin_executor_with_its_own_check_still_gets_unused_options_refused(
    tmp_path: Path, cache_dir: Path, tiny_models: None, use_plugin: Callable[[object, str], None]
) -> None:
    class Permissive(ReverseExecutor):
        @classmethod
        def check(cls, request: RunRequest) -> None:  # its own checks, none about --workers
            pass

    class Plugin:
        @genbench.hookimpl
        def register_executors(self, register: Callable[[type[Any]], None]) -> None:
            register(Permissive)

    use_plugin(Plugin(), "test-permissive")
    req = tiny_request(tmp_path, cache_dir, executor="reverse", workers=2)
    with pytest.raises(
        GenbenchError,
        match=r"^--workers 2: the 'reverse' executor does not use it; it is for --executor process or ray$",
    ):
        run_grid(req)
    assert not (tmp_path / "results.csv").exists()


def test_the_progress_display_has_a_bar_per_running_cell(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from genbench.console import ProgressReporter
    from genbench.run.events import Planned

    a, b = (CellSpec(c, "tiny", {}, 0, Protocol("digits", ()), tmp_path / c) for c in ("cell_a", "cell_b"))
    with ProgressReporter(Console(file=io.StringIO(), width=120), plain=False) as reporter:
        reporter(Planned((a, b), 2))
        reporter(CellStarted(0, 2, a))
        reporter(CellStarted(1, 2, b))
        reporter(CellProgress("cell_b", "epoch", (1, 3, {"loss": 0.5})))
        running = {t.description: t for t in reporter.progress.tasks if t.id in reporter.cells.values()}
        assert set(running) == {"cell_a", "cell_b"} and running["cell_b"].completed == 1
        reporter(CellFinished(0, 2, CellRecord("cell_a", "tiny", "digits", 0, {})))
        assert list(reporter.cells) == ["cell_b"]


def test_a_log_names_the_cell_of_every_line_when_cells_run_side_by_side(tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from genbench.console import ProgressReporter
    from genbench.run.events import Planned

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock, out = Clock(), io.StringIO()
    cells = [CellSpec(c, "tiny", {}, 0, Protocol("digits", ()), tmp_path / c) for c in ("cell_a", "cell_b", "cell_c")]
    reporter = ProgressReporter(Console(file=out, width=100), clock=clock, interval=0.0)  # not a terminal: lines
    reporter(Planned(tuple(cells), 3))
    reporter(CellStarted(0, 3, cells[0]))
    reporter(CellStarted(1, 3, cells[1]))  # two at once
    clock.now = 5.0
    reporter(CellProgress("cell_b", "epoch", (1, 2, {"loss": 0.5})))
    reporter(CellProgress("cell_a", "step", (1, 2, 3, 10)))
    clock.now = 10.0
    reporter(CellFinished(0, 3, CellRecord("cell_a", "tiny", "digits", 0, {})))
    lines = out.getvalue().splitlines()
    assert not reporter.cells  # no bar in a log
    assert lines[1:] == [
        "[1/3] cell_a: started",
        "[2/3] cell_b: started",
        "[2/3] cell_b: epoch 1/2 loss=0.5 (5s)",
        "[1/3] cell_a: epoch 1/2, step 3/10 (5s)",
        "[1/3] cell_a: ok in 10s; grid 1/3, ETA 10s",  # 2 cells left, 2 at a time: one cell's time
    ]


def test_the_guides_executor_example_runs_a_grid_with_the_serial_numbers(
    tmp_path: Path, cache_dir: Path, use_plugin: Callable[[object, str], None], one_thread: None
) -> None:
    section = (ROOT / "docs" / "plugins.md").read_text().split("## 10. Executor plugins", 1)[1].split("\n## ", 1)[0]
    guide = types.ModuleType("guide_executor")
    exec(compile(section.split("```python\n", 1)[1].split("```", 1)[0], "docs/plugins.md", "exec"), guide.__dict__)
    use_plugin(guide, "guide-executor")
    protocol = Protocol("digits", ("recon_mse",), eval_samples=100, epochs=1, cache_dir=cache_dir, device="cpu")
    serial = run_grid(RunRequest(("ae",), protocol, tmp_path / "serial", ("z_dim=2,3",)))
    pool = run_grid(RunRequest(("ae",), protocol, tmp_path / "pool", ("z_dim=2,3",), executor="pool", workers=2))
    assert metrics(pool.records) == metrics(serial.records) and all(r.status == "ok" for r in pool.records)
    assert all(intact(tmp_path / "pool", r) for r in pool.records)


def test_damaged_files_are_not_written_and_fail_their_cell(tmp_path: Path, cache_dir: Path, tiny_models: None) -> None:
    spec = CellSpec("tiny_x", "tiny", {}, 0, tiny_request(tmp_path, cache_dir).protocol, tmp_path / "cells" / "tiny_x")
    packed = run_packed(spec)
    assert packed.record.status == "ok" and set(packed.files) >= {"samples.png", "checkpoint.pt"}
    packed.files["checkpoint.pt"] = packed.files["checkpoint.pt"][:-1] + b"x"
    packed.files["../escape.txt"] = b"outside"
    record = land(packed, spec)
    assert (record.status, record.error) == ("failed", "files damaged in transfer: checkpoint")
    assert not (spec.out_dir / "checkpoint.pt").exists() and not (tmp_path / "cells" / "escape.txt").exists()
    assert (spec.out_dir / "samples.png").is_file() and saved(tmp_path, record)


# -- same numbers, dead workers, progress -----------------------------------------------------------------
@pytest.fixture
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers get as many torch threads as this process (one, see conftest), whatever the core count."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_process_executor_gives_the_serial_numbers_and_survives_a_dead_worker(
    tmp_path: Path,
    cache_dir: Path,
    tiny_models: None,
    use_plugin: Callable[[object, str], None],
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_plugin(FakeModels(KillerModel), "test-killer")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the workers' scratch folders go
    serial = run_grid(tiny_request(tmp_path / "serial", cache_dir))
    events: list[object] = []
    req = tiny_request(tmp_path / "process", cache_dir, ("tiny", "killer"), executor="process", workers=2)
    result = run_grid(req, events.append)
    by_model = {m: [r for r in result.records if r.model == m] for m in ("tiny", "killer")}
    assert metrics(by_model["tiny"]) == metrics(serial.records)  # the same metrics and losses, bit for bit
    for killed in by_model["killer"]:  # each killed worker failed its cell only; the grid went on
        assert killed.status == "failed"
        assert killed.error and "died: killed by SIGKILL (e.g. the out-of-memory killer)" in killed.error
        assert saved(tmp_path / "process", killed)
    assert len(pd.read_csv(tmp_path / "process" / "results.csv")) == 4
    started = [e.spec.cell_id for e in events if isinstance(e, CellStarted)]
    assert sorted(started) == sorted(r.cell_id for r in result.records)
    epochs = {e.cell_id for e in events if isinstance(e, CellProgress) and e.kind == "epoch"}
    assert epochs == {r.cell_id for r in by_model["tiny"]}  # progress came back from the workers
    work = {e.cell_id for e in events if isinstance(e, CellProgress) and e.kind == "work"}
    assert work == epochs  # and so did the long work inside a cell (FID's feature extraction), as in serial
    for record in by_model["tiny"]:  # each worker's share of the cores, recorded with the reason
        assert record.environment["threads"] == "1"
        assert record.environment["threads_reason"].startswith("process: 2 workers on ")
    assert multiprocessing.active_children() == []  # every worker was stopped
    assert list(scratch.iterdir()) == []  # and no temporary folder is left, not even a killed worker's


def test_ctrl_c_in_the_driver_stops_the_workers_and_keeps_finished_cells(
    tmp_path: Path, cache_dir: Path, tiny_models: None, one_thread: None
) -> None:
    def interrupt(event: object) -> None:
        if isinstance(event, CellFinished):
            raise KeyboardInterrupt

    req = tiny_request(tmp_path, cache_dir, grid=("z_dim=2,3,4",), executor="process", workers=2)
    with pytest.raises(KeyboardInterrupt):
        run_grid(req, interrupt)
    assert multiprocessing.active_children() == []
    assert len(pd.read_csv(tmp_path / "results.csv")) == 1
    with RunFolder(tmp_path):  # the lock was released
        pass


# -- a full disk stops the grid on every executor; plugins the workers cannot import -------------------------
def full_disk_grid(
    out: Path, cache: Path, use_plugin: Callable[[object, str], None], monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> tuple[Path, RunRequest]:
    """tiny z_dim=2,3 then fulldisk (its train_step raises ENOSPC) z_dim=2,3; workers' scratch under out/tmp."""
    use_plugin(FakeModels(FullDiskModel), "test-fulldisk")
    scratch = out / "tmp"
    scratch.mkdir(parents=True)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch, tiny_request(out / "run", cache, ("tiny", "fulldisk"), **kw)


def assert_stopped_as_on_serial(caught: DiskFull, out: Path, where: Path) -> None:
    message = str(caught)
    assert re.match(
        rf"no space left on device writing {re.escape(str(where))}/\S+/fulldisk_z_dim=[23]_\w+_s0; ", message
    )
    rows = pd.read_csv(out / "results.csv")  # with 2 workers the second tiny cell may still run: 1 or 2
    assert len(rows) >= 1 and set(rows["model"]) == {"tiny"} and set(rows["status"]) == {"ok"}
    kept = "1 finished cell is" if len(rows) == 1 else f"{len(rows)} finished cells are"
    assert message.endswith(f"{kept} kept in {out / 'results.csv'}; free some space and rerun "
                            "the same command with --resume")  # fmt: skip


def test_a_full_disk_in_a_process_worker_stops_the_grid_as_on_serial(
    tmp_path: Path, cache_dir: Path, tiny_models: None, use_plugin: Callable[[object, str], None],
    one_thread: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    scratch, req = full_disk_grid(tmp_path, cache_dir, use_plugin, monkeypatch)
    serial = tmp_path / "serial"
    with pytest.raises(DiskFull, match=rf"^no space left on device writing {re.escape(str(serial))}/cells/"):
        run_grid(dataclasses.replace(req, out_dir=serial))  # serial, for comparison
    started: list[str] = []
    with pytest.raises(DiskFull) as caught:  # not two failed cells and a run that "succeeded"
        run_grid(dataclasses.replace(req, executor="process", workers=2),
                 lambda e: started.append(e.spec.model) if isinstance(e, CellStarted) else None)  # fmt: skip
    assert_stopped_as_on_serial(caught.value, req.out_dir, scratch)  # the worker's scratch disk is the full one
    assert started.count("tiny") == 2 and 1 <= started.count("fulldisk") <= 2
    assert multiprocessing.active_children() == []  # the running workers were stopped
    assert list(scratch.iterdir()) == []
    code = main(["run", "--models", "tiny,fulldisk", "--dataset", "digits", "--grid", "z_dim=2,3", "--epochs", "1",
                 "--metrics", "fid", "--eval-samples", "20", "--device", "cpu", "--cache-dir", str(cache_dir),
                 "--out", str(tmp_path / "cli"), "--executor", "process", "--workers", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == DiskFull.exit_code == 74 and err.splitlines()[-1].startswith("error: no space left on device")


@pytest.mark.slow
def test_a_full_disk_in_a_ray_task_stops_the_grid_as_on_serial(
    tmp_path: Path, cache_dir: Path, tiny_models: None, use_plugin: Callable[[object, str], None],
    one_thread: None, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("RAY_TMPDIR", tempfile.gettempdir())  # Ray's own session files where they were
    scratch, req = full_disk_grid(tmp_path, cache_dir, use_plugin, monkeypatch, executor="ray", workers=1)
    with pytest.raises(DiskFull) as caught:  # ray.get raised RayTaskError(DiskFull): not a failed cell
        run_grid(req)
    assert_stopped_as_on_serial(caught.value, req.out_dir, scratch)
    assert not ray.is_initialized()


class DynModel(TinyModel):
    name = "dyn"


@genbench.hookimpl
def _register_dyn(register: Callable[[type[Any]], None]) -> None:
    register(DynModel)


@pytest.mark.parametrize("module", ["dynplug", "__main__"])
@pytest.mark.parametrize("executor", ["process", "ray"])
def test_a_plugin_module_workers_cannot_import_is_refused_before_any_work_and_works_on_serial(
    tmp_path: Path, cache_dir: Path, use_plugin: Callable[[object, str], None], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], module: str, executor: str,
) -> None:  # fmt: skip
    """A module built at run time, or a notebook's ``__main__``: workers import plugins by name and would lack it."""
    if executor == "ray":
        pytest.importorskip("ray")
    plugin = types.ModuleType(module)
    plugin.register_models = _register_dyn  # type: ignore[attr-defined]
    use_plugin(plugin, "dynplug")
    assert run_grid(tiny_request(tmp_path / "serial", cache_dir, ("dyn",), grid=())).records[0].status == "ok"

    def no_work(*_: object) -> None:
        raise AssertionError("the dataset was loaded")

    monkeypatch.setattr("genbench.run.runner.load_data", no_work)
    code = main(["run", "--models", "dyn", "--dataset", "digits", "--out", str(tmp_path / "out"),
                 "--executor", executor, "--workers", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err == (
        f"error: plugin 'dynplug' (test) is the module {module!r}, which workers cannot import: workers import "
        "plugins by module name; install it as a package, or use --executor serial\n"
    )
    assert not (tmp_path / "out").exists()


def test_a_worker_that_cannot_add_a_plugin_stops_the_run_in_one_line(
    tmp_path: Path, cache_dir: Path, tiny_models: None, one_thread: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module the driver could import but a worker cannot (another sys.path): it was dropped in silence,
    and every cell failed with "unknown model"."""
    import genbench.run.executors.process

    ghost = ShippedPlugin("ghost", "test", module="genbench_no_such_plugin")
    monkeypatch.setattr(genbench.run.executors.process, "shipped_plugins", lambda: [ghost])
    req = tiny_request(tmp_path, cache_dir, executor="process", workers=1)
    with pytest.raises(
        GenbenchError,
        match=r"^a worker process could not start: plugin 'ghost' \(test\) failed to load: ModuleNotFoundError: "
        r"No module named 'genbench_no_such_plugin'$",
    ):
        run_grid(req)
    assert multiprocessing.active_children() == [] and not (tmp_path / "results.csv").exists()


def test_a_ray_task_that_cannot_add_a_plugin_or_finds_the_disk_full_stops_the_grid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from genbench.run.executors.ray_tasks import task_error
    from genbench.run.executors.remote import PluginNotInstalled, install_plugins

    monkeypatch.setattr(get_registry(), "problems", list(get_registry().problems))  # this one is the task's
    with pytest.raises(PluginNotInstalled) as caught:  # what a task raises
        install_plugins([ShippedPlugin("ghost", "test", module="genbench_no_such_plugin")])

    class RayTaskError(Exception):  # what ray.get raises for it: the task's exception is its cause
        def __init__(self, cause: BaseException) -> None:
            super().__init__(f"ray_cell() (pid=1, ip=10.0.0.2)\n{cause!r}")
            self.cause = cause

    stop = task_error(RayTaskError(caught.value))
    assert type(stop) is GenbenchError and str(stop) == (
        "a Ray task could not start: plugin 'ghost' (test) failed to load: ModuleNotFoundError: "
        "No module named 'genbench_no_such_plugin'"
    )
    sent = pickle.loads(pickle.dumps(DiskFull("/scratch/genbench-cell-x")))  # as a task's exception travels
    assert (sent.folder, str(sent)) == (
        Path("/scratch/genbench-cell-x"),
        "no space left on device writing /scratch/genbench-cell-x",
    )
    full = task_error(RayTaskError(sent))
    assert isinstance(full, DiskFull) and str(full) == str(sent)
    assert task_error(RayTaskError(RuntimeError("boom"))) is None  # the cell fails, the grid goes on


@pytest.mark.slow
def test_ray_executor_gives_the_serial_numbers_on_a_local_instance_and_survives_a_dead_worker(
    tmp_path: Path,
    cache_dir: Path,
    tiny_models: None,
    use_plugin: Callable[[object, str], None],
    one_thread: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    use_plugin(FakeModels(KillerModel), "test-killer")
    from genbench.run.executors.process import scratch_prefix

    scratch = tmp_path / "tmp"  # the temporary folder of the driver and of the Ray workers it starts
    scratch.mkdir()
    monkeypatch.setenv("RAY_TMPDIR", tempfile.gettempdir())  # Ray's own session files where they were
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    monkeypatch.setenv("TMPDIR", str(scratch))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (scratch / f"{scratch_prefix(int(gone.stdout))}ab12_x" / "genbench-cell-x").mkdir(parents=True)  # a killed driver's
    serial = run_grid(tiny_request(tmp_path / "serial", cache_dir))
    events: list[object] = []
    req = tiny_request(tmp_path / "ray", cache_dir, ("tiny", "killer"), grid=("z_dim=2,3",), executor="ray", workers=2)
    result = run_grid(req, events.append)
    assert not ray.is_initialized()  # the local instance genbench started was shut down
    tiny = [r for r in result.records if r.model == "tiny"]
    assert metrics(tiny) == metrics(serial.records)
    for killed in (r for r in result.records if r.model == "killer"):
        assert killed.status == "failed" and killed.error and killed.error.startswith("Ray task failed: ")
    for record in tiny:
        assert intact(tmp_path / "ray", record)
    assert {e.cell_id for e in events if isinstance(e, CellProgress) and e.kind == "epoch"} == {r.cell_id for r in tiny}
    assert all(r.environment["threads_reason"].startswith("ray: 2 workers on ") for r in tiny)
    assert [p.name for p in scratch.glob("genbench-*")] == []  # not even a killed task's, nor the orphan


def test_executor_and_fast_path_options_are_suite_keys() -> None:
    from genbench.suite import parse_suite

    suite = parse_suite({"models": ["gan"], "executor": "process", "workers": 2, "gpus": [0, 1], "cells_per_gpu": 2,
                         "precision": "bf16", "compile": True, "channels_last": True})  # fmt: skip
    req = suite.request()
    assert (req.executor, req.workers, req.gpus, req.cells_per_gpu) == ("process", 2, (0, 1), 2)
    assert (req.protocol.precision, req.protocol.compile, req.protocol.channels_last) == ("bf16", True, True)
    with pytest.raises(GenbenchError, match=r"^x.toml: 'executor': unknown executor 'nope'; valid: 'process', 'ray',"):
        parse_suite({"executor": "nope"}, "x.toml")
    with pytest.raises(GenbenchError, match=r"^x.toml: 'gpus' must be an integer >= 0 or a list of them"):
        parse_suite({"gpus": [0, -1]}, "x.toml")


# -- planning workers -------------------------------------------------------------------------------
def test_threads_per_worker_never_oversubscribe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [resources.threads_per_worker(w, cores=8) for w in (1, 2, 3, 8)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert resources.threads_per_worker(1, cores=8) == 2  # never more than the user allows


def test_threads_given_to_parallel_workers_must_fit_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert resources.plan_threads(None, 2, "process", cores=8) == (4, "process: 2 workers on 8 cores")
    assert resources.plan_threads(3, 2, "process", cores=8) == (3, "--threads 3")
    assert resources.plan_threads(1, 16, "process", cores=8) == (1, "--threads 1")  # GPU workers: one each at least
    with pytest.raises(GenbenchError, match=r"^--threads 5 with 2 process workers: 10 threads on 8 CPU core\(s\) "
                                            r"would oversubscribe them; valid: 1 to 4"):  # fmt: skip
        resources.plan_threads(5, 2, "process", cores=8)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resources.plan_threads(None, 2, "ray", cores=8) == (1, "ray: 2 workers on 8 cores, OMP_NUM_THREADS=1")


def test_threads_over_the_default_workers_say_they_are_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("genbench.run.executors.process.cpu_cores", lambda: 2)
    req = RunRequest(("gan",), Protocol("digits", ()), tmp_path, executor="process", threads=4)
    with pytest.raises(GenbenchError, match=r"^--threads 4 with 2 process workers \(the default: one per core\): 8 "):
        plan_workers(req)
    with pytest.raises(GenbenchError, match=r"^--threads 4 with 2 process workers: 8 "):  # --workers 2 given
        plan_workers(RunRequest(("gan",), Protocol("digits", ()), tmp_path, executor="process", threads=4, workers=2))


def test_gpus_are_packed_k_workers_each(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resources, "gpu_count", lambda: 2)
    monkeypatch.setattr("genbench.run.executors.process.cpu_cores", lambda: 16)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    req = RunRequest(("gan",), Protocol("digits", ()), tmp_path, executor="process", gpus=(1, 0), cells_per_gpu=3)
    plan = plan_workers(req)
    assert plan.gpus == (1, 1, 1, 0, 0, 0) and plan.threads == 2
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # indices are the driver's: GPU 1 is device 7
    assert resources.visible_gpu(1) == "7"
    with pytest.raises(GenbenchError, match=r"^--workers 4 with --gpus 1,0 --cells-per-gpu 3: the GPUs take 2 x 3"):
        plan_workers(RunRequest(("gan",), Protocol("digits", ()), tmp_path, gpus=(1, 0), cells_per_gpu=3, workers=4))


# -- bad input: one line, exit 2, before any training -------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "nope"], "error: unknown executor 'nope'; valid: 'process', 'ray', 'serial'"),
        (["--executor", "process", "--workers", "0"], "error: --workers 0: must be an integer >= 1"),
        (["--executor", "process", "--cells-per-gpu", "0"], "error: --cells-per-gpu 0: must be an integer >= 1"),
        (["--executor", "process", "--gpus", "7"], "error: --gpus 7: "),
        (["--executor", "process", "--gpus", "x"], "error: --gpus 'x': expected comma-separated integers >= 0"),
        (["--executor", "process", "--workers", "100000"], "error: --workers 100000: more workers than the"),
        (["--executor", "process", "--cells-per-gpu", "2"], "error: --cells-per-gpu 2: packs cells on the GPUs"),
        (["--workers", "2"], "error: --workers 2: the 'serial' executor does not use it; it is for --executor"),
        (["--executor", "process", "--ray-address", "x:1"], "error: --ray-address x:1: the 'process' executor"),
        (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "error: --ray-address 127.0.0.1:1: no Ray cluster"),
        (["--executor", "ray", "--ray-address", "nohost"], "error: --ray-address 'nohost': expected host:port"),
        (
            ["--executor", "ray", "--cells-per-gpu", "2", "--device", "cpu"],
            "error: --cells-per-gpu 2 with --device cpu: no cell runs on a GPU",
        ),
        (["--precision", "fp8"], "error: --precision 'fp8'; valid: 'bf16', 'fp16', 'fp32'"),
    ],
)
def test_bad_executor_and_fast_path_options_are_one_line_exit_2_before_any_work(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], message: str
) -> None:
    def no_work(*_: object) -> None:
        raise AssertionError("the dataset was loaded")

    monkeypatch.setattr("genbench.run.runner.load_data", no_work)
    if "ray" in args:
        pytest.importorskip("ray")
    code = main(["run", "--models", "gan", "--dataset", "digits", "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message), err
    assert err.count("\n") == 1 and not (tmp_path / "out" / "results.csv").exists()


def test_an_unreachable_ray_address_from_the_environment_is_named(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    code = main(["run", "--models", "gan", "--executor", "ray", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: RAY_ADDRESS 127.0.0.1:1: no Ray cluster answers there (")


def test_ray_tasks_ask_for_a_gpu_share_when_cells_run_on_gpus(tmp_path: Path) -> None:
    from genbench.run.executors.ray_tasks import RayExecutor

    class FakeRay:  # what the executor reads of a cluster with one GPU
        @staticmethod
        def cluster_resources() -> dict[str, float]:
            return {"CPU": 16.0, "GPU": 1.0}

        @staticmethod
        def nodes() -> list[dict[str, Any]]:
            return [{"Alive": True, "Resources": FakeRay.cluster_resources()}]

    def resources(device: str, per_gpu: int | None) -> tuple[float, float, int]:
        protocol = Protocol("digits", (), device=device)
        executor = RayExecutor(RunRequest(("gan",), protocol, tmp_path, executor="ray", cells_per_gpu=per_gpu,
                                          ray_address="auto"))  # fmt: skip
        executor._ray = FakeRay()
        return executor._task_resources()

    assert resources("auto", 4) == (1.0, 0.25, 1)  # 4 cells share each GPU
    assert resources("cuda", None) == (1.0, 1.0, 1)
    assert resources("cpu", 4) == (1.0, 0.0, 1)


def test_ray_missing_says_how_to_install_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["run", "--models", "gan", "--executor", "ray", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "error: --executor ray: Ray is not installed; install it with pip install 'genbench[ray]'\n"


def test_a_precision_the_device_lacks_is_refused_naming_the_valid_ones(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr("genbench.run.fastpath.supported_precisions", lambda device: ("fp32", "fp16"))
    code = main(["run", "--models", "gan", "--device", "cpu", "--precision", "bf16", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: --precision bf16: not supported on cpu here; valid: 'fp16', 'fp32'\n"


# -- kill -9 of the driver, then --resume -------------------------------------------------------------------
DRIVER = """
import sys
from genbench.cli import main
from genbench.plugins import get_registry
from tests.conftest import FakeModels, SlowModel

get_registry().add_plugin("test-models", lambda: FakeModels(SlowModel), "test")
sys.exit(main(sys.argv[1:]))
"""


def finished(out: Path) -> dict[str, str]:
    """cell id -> attempt of every cell whose record and files check out (what --resume keeps)."""
    done = {}
    for folder in sorted((out / "cells").glob("*")) if (out / "cells").is_dir() else []:
        record = read_record(folder)
        if record is not None and record.status == "ok" and intact(out, record):
            done[record.cell_id] = record.attempt
    return done


@pytest.mark.slow
def test_kill_9_of_the_driver_at_any_moment_loses_no_finished_cell_and_resume_recomputes_none(
    tmp_path: Path, cache_dir: Path
) -> None:
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    args = ["run", "--models", "slow", "--dataset", "digits", "--grid", "z_dim=2,3,4,5,6", "--epochs", "1",
            "--device", "cpu", "--metrics", "fid", "--eval-samples", "100", "--cache-dir", str(cache_dir),
            "--out", str(out), "--executor", "process", "--workers", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    kept: dict[str, str] = {}
    rng = random.Random(13)
    for kill in range(3):  # the first kill once cells run (run.json written), then each after one more finished
        resume = ["--resume"] if out.exists() else []
        driver = subprocess.Popen([sys.executable, "-c", DRIVER, *args, *resume], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while driver.poll() is None and (
            len(finished(out)) < len(kept) + 1 if kill else not (out / "run.json").is_file()
        ):
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.3))  # then a random moment more
        driver.send_signal(signal.SIGKILL)
        assert driver.wait() == -signal.SIGKILL  # killed while it ran, not after it finished
        now = finished(out)
        assert all(now.get(cell) == attempt for cell, attempt in kept.items()), "a finished cell was redone or lost"
        kept = now
    final = subprocess.run([sys.executable, "-c", DRIVER, *args, "--resume"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert final.returncode == 0, final.stderr
    done = finished(out)
    assert len(done) == 5 and all(done[cell] == attempt for cell, attempt in kept.items())
    df = pd.read_csv(out / "results.csv")
    assert sorted(df["cell"]) == sorted(done) and list(df["status"]) == ["ok"] * 5  # every cell once
    json.loads((out / "run.json").read_text())
    leftovers = [p for p in out.rglob(".*") if p.name != ".genbench.lock"]
    assert leftovers == []  # no half-written temporary file is left in the folder
    assert list(tmp.iterdir()) == []  # nor a worker's private folder


def test_resume_removes_only_temporary_files_of_a_killed_writer(tmp_path: Path) -> None:
    spec = CellSpec("c", "tiny", {}, 0, Protocol("digits", ()), tmp_path / "cells" / "c")
    spec.out_dir.mkdir(parents=True)
    stale = [tmp_path / ".results.csv.ab3d_x9k.csv", spec.out_dir / ".record.json.0123abcd.json",
             spec.out_dir / ".checkpoint.pt.zzzzzzzz.pt"]  # fmt: skip
    kept = [tmp_path / ".notes.txt", spec.out_dir / ".record.json.short.json", spec.out_dir / "samples.png"]
    for path in stale + kept:
        path.write_text("x")
    with RunFolder(tmp_path) as folder:
        assert sorted(folder.remove_leftovers([spec])) == sorted(stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)


# -- the fast path runs on a CPU ----------------------------------------------------------------------------
def fast_request(out: Path, cache: Path, **protocol: Any) -> RunRequest:
    protocol_ = Protocol("digits", ("fid",), eval_samples=100, epochs=1, cache_dir=cache, **protocol)
    return RunRequest(("probe",), protocol_, out)


@pytest.fixture
def probe_models(use_plugin: Callable[[object, str], None]) -> None:
    from .conftest import ProbeModel

    use_plugin(FakeModels(ProbeModel, TinyModel), "test-probe")


def test_bf16_channels_last_and_compile_run_on_a_cpu_and_are_recorded(
    tmp_path: Path, cache_dir: Path, probe_models: None
) -> None:
    import torch._dynamo

    plain = run_grid(fast_request(tmp_path / "plain", cache_dir)).records[0]
    assert plain.status == "ok", plain.error
    assert {k: plain.history[0][k] for k in ("autocast", "bf16", "channels_last")} == {
        "autocast": 0.0, "bf16": 0.0, "channels_last": 0.0
    }  # fmt: skip
    torch._dynamo.reset()
    compiled_before = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    fast = run_grid(
        fast_request(tmp_path / "fast", cache_dir, precision="bf16", compile=True, channels_last=True)
    ).records[0]
    assert fast.status == "ok", fast.error
    assert {k: fast.history[0][k] for k in ("autocast", "bf16", "channels_last")} == {
        "autocast": 1.0, "bf16": 1.0, "channels_last": 1.0
    }  # fmt: skip
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > compiled_before  # the networks were compiled
    saved = read_record(tmp_path / "fast" / "cells" / fast.cell_id)
    assert saved is not None
    assert (saved.protocol["precision"], saved.protocol["compile"], saved.protocol["channels_last"]) == (
        "bf16", True, True
    )  # fmt: skip
    assert plain.protocol["precision"] == "fp32" and not plain.protocol["compile"]
    state = torch.load(tmp_path / "fast" / "cells" / fast.cell_id / "checkpoint.pt", weights_only=True)["state_dict"]
    assert set(state) == set(torch.load(tmp_path / "plain" / "cells" / plain.cell_id / "checkpoint.pt",
                                        weights_only=True)["state_dict"])  # fmt: skip


def test_compile_accepts_the_gans_with_their_r1_penalty_off(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--compile refuses a cell that differentiates a gradient (tests/test_bad_input.py), not the same model
    with the penalty off; validation only plans, so no compiler is needed (one is pretended)."""
    from genbench.run.runner import validate

    monkeypatch.setattr("genbench.run.fastpath.shutil.which", lambda name: f"/usr/bin/{name}")
    protocol = Protocol("digits", ("fid",), epochs=1, cache_dir=cache_dir, device="cpu", compile=True)
    cells = validate(RunRequest(("gan", "cgan", "dcgan"), protocol, tmp_path, ("gan.r1=0", "cgan.r1=0")))
    assert [(c.model, c.hyper["r1"], c.protocol.compile) for c in cells] == [
        ("gan", 0.0, True), ("cgan", 0.0, True), ("dcgan", 0.0, True)
    ]  # fmt: skip
    with pytest.raises(
        GenbenchError, match=r"^--compile: model 'cgan' takes a gradient of a gradient \(R1 penalty r1=10;"
    ):
        validate(RunRequest(("gan", "cgan"), protocol, tmp_path, ("gan.r1=0",)))  # gan's r1 is off, cgan's is not
    plain = dataclasses.replace(protocol, compile=False)  # without --compile, R1 is no problem
    assert [c.hyper["r1"] for c in validate(RunRequest(("gan",), plain, tmp_path))] == [10.0]


def test_workers_get_as_many_compile_threads_as_torch_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.compile starts a pool of compile workers per process, one per core by default: each executor's
    worker gets its own share (process: the environment it starts with; Ray: set in the task)."""
    import torch._inductor.config

    from genbench.run.executors import process, ray_tasks

    variable = resources.COMPILE_THREADS
    assert variable == "TORCHINDUCTOR_COMPILE_THREADS" and variable in resources.THREAD_VARIABLES
    started: list[dict[str, str]] = []

    class Started:
        def __init__(self, **_: object) -> None:
            pass

        def start(self) -> None:
            started.append(dict(os.environ))  # what a spawned worker inherits

    class Context:
        Process = Started

        def Pipe(self, duplex: bool) -> tuple[Any, Any]:
            return types.SimpleNamespace(close=lambda: None), types.SimpleNamespace(close=lambda: None)

    monkeypatch.setattr(process, "cpu_cores", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv(variable, raising=False)
    executor = process.ProcessExecutor(RunRequest(("gan",), Protocol("digits", ()), tmp_path, workers=2))
    executor._plan, executor._context = plan_workers(executor.request), Context()  # type: ignore[assignment]
    worker = executor._start(None)
    shutil.rmtree(worker.scratch)
    assert started[0][variable] == started[0]["OMP_NUM_THREADS"] == "2" and variable not in os.environ

    monkeypatch.setenv(variable, "7")  # restored after the test, as is the config below
    monkeypatch.setattr(torch._inductor.config, "compile_threads", 7)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    seen: list[tuple[str, int | None]] = []
    monkeypatch.setattr(
        ray_tasks, "run_packed", lambda *a: seen.append((os.environ[variable], torch._inductor.config.compile_threads))
    )
    ray_tasks.ray_cell(CellSpec("c", "gan", {}, 0, Protocol("digits", ()), tmp_path / "c"), [], None, 3)
    assert seen == [("3", 3)]  # the config too: a reused Ray worker may have read the environment already


def test_fp16_scales_the_loss_of_models_that_update_through_the_harness_and_flags_the_others(
    tmp_path: Path, cache_dir: Path, probe_models: None
) -> None:
    req = fast_request(tmp_path, cache_dir, precision="fp16")
    result = run_grid(RunRequest(("probe", "tiny"), req.protocol, tmp_path))
    probe, tiny = result.records
    assert probe.status == tiny.status == "ok"
    assert probe.history[0]["autocast"] == 1.0 and not any(f.startswith("fp16_unscaled") for f in probe.flags)
    assert any(f.startswith("fp16_unscaled") for f in tiny.flags)  # TinyModel calls loss.backward() itself


def test_update_is_zero_grad_backward_step_without_a_scaler() -> None:
    import copy

    import torch

    from genbench.plugins import get_registry

    from .conftest import TinyHyper

    model = TinyModel(TinyHyper(), get_registry().dataset("digits").info())
    twin = copy.deepcopy(model)
    x = torch.ones(8, 4)
    model.update(model.decoder(x).pow(2).mean(), model.opt)
    twin.opt.zero_grad(set_to_none=True)
    twin.decoder(x).pow(2).mean().backward()
    twin.opt.step()
    assert torch.equal(model.decoder.weight, twin.decoder.weight) and model.scaled_updates == 0


def test_failed_cell_records_the_reason_without_files(tmp_path: Path) -> None:
    spec = CellSpec("c", "tiny", {"z_dim": 2}, 1, Protocol("digits", ()), tmp_path / "cells" / "c")
    record = land(failed_cell(spec, "worker process 12 died: killed by SIGKILL"), spec)
    assert (record.status, record.error) == ("failed", "worker process 12 died: killed by SIGKILL")
    assert record.artifacts == {}
    assert record.attempt and record.checksums == {} and saved(tmp_path, record)


def test_a_process_run_ends_without_a_leaked_semaphore_warning(tmp_path: Path, cache_dir: Path) -> None:
    """Workers end with os._exit: the semaphore tqdm makes for torch-fidelity's KID loop was left to the
    resource tracker, which warned "There appear to be 1 leaked semaphore objects" after every run."""
    args = ["run", "--models", "vae", "--dataset", "digits", "--epochs", "1", "--metrics", "kid",
            "--eval-samples", "20", "--device", "cpu", "--cache-dir", str(cache_dir), "--out", str(tmp_path / "out"),
            "--executor", "process", "--workers", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "genbench.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "leaked semaphore" not in done.stderr, done.stderr


def test_a_pool_that_starts_removes_the_scratch_folders_of_drivers_killed_with_their_workers(tmp_path: Path) -> None:
    """``timeout -s KILL`` kills the driver's whole process group: no worker could remove its scratch folder."""
    from genbench.run.executors.process import remove_orphaned_scratch, scratch_prefix

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    folders = {
        "dead driver": tmp_path / f"{scratch_prefix(dead)}ab12_x",
        "live driver": tmp_path / f"{scratch_prefix(os.getppid())}cd34_y",
        "this driver": tmp_path / f"{scratch_prefix()}ef56_z",
        "another host": tmp_path / f"genbench-worker-00000000-{dead}-gh78",
        "old name": tmp_path / "genbench-worker-i9alit6m",
    }
    for path in folders.values():
        (path / "genbench-cell-1" / "cells" / "c").mkdir(parents=True)
    remove_orphaned_scratch(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for what, p in folders.items() if what != "dead driver"
    )


class StubRay:
    """What RayExecutor._task_resources reads of a Ray session: its nodes and their total."""

    def __init__(self, *node_cpus: int, dead: int = 0) -> None:
        self._nodes = [{"Alive": True, "Resources": {"CPU": float(c)}} for c in node_cpus]
        self._nodes += [{"Alive": False, "Resources": {"CPU": 64.0}}] * dead

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes

    def cluster_resources(self) -> dict[str, float]:
        return {"CPU": sum(n["Resources"]["CPU"] for n in self._nodes if n["Alive"])}


def test_a_ray_task_asks_for_no_more_cpus_than_its_largest_node_has(tmp_path: Path) -> None:
    """Two 1-CPU nodes make 2 CPUs in the cluster, but a 2-CPU task fits neither and would wait forever."""
    from genbench.run.executors.ray_tasks import RayExecutor

    request = RunRequest(("tiny",), Protocol("digits", ("fid",)), tmp_path, executor="ray",
                         ray_address="127.0.0.1:1", threads=2)  # fmt: skip
    executor = RayExecutor(request)
    executor._ray = StubRay(1, 1, dead=1)  # a dead node's CPUs do not count either
    assert executor._task_resources() == (1.0, 0.0, 1)
    assert executor._reason == "ray: 1 CPUs on the largest node"
    executor._ray = StubRay(1, 4)
    assert executor._task_resources() == (2.0, 0.0, 2) and executor._reason == "--threads 2"
    executor._ray = StubRay(0, 0)
    with pytest.raises(GenbenchError, match="no node of the Ray cluster has a CPU"):
        executor._task_resources()


@pytest.mark.slow
def test_sigterm_stops_the_driver_like_ctrl_c_keeping_finished_cells_and_cleaning_up(
    tmp_path: Path, cache_dir: Path
) -> None:
    """`kill` (SIGTERM) of `genbench run`: the workers are stopped and their scratch folders removed, every
    finished cell is kept, and the run says so (exit 130), where the default action would just end the driver."""
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    args = ["run", "--models", "slow", "--dataset", "digits", "--grid", "z_dim=2,3,4,5,6", "--epochs", "1",
            "--device", "cpu", "--metrics", "fid", "--eval-samples", "100", "--cache-dir", str(cache_dir),
            "--out", str(out), "--executor", "process", "--workers", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while driver.poll() is None and not (out / "results.csv").is_file() and time.monotonic() < deadline:
        time.sleep(0.02)  # until a cell is in results.csv
    kept = finished(out)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 130, err
    assert f"interrupted: finished cells are saved in {out / 'results.csv'}" in " ".join(err.split())
    assert kept and all(finished(out).get(cell) == attempt for cell, attempt in kept.items())
    assert not list(tmp.glob("genbench-*")), "a scratch folder of the stopped run was left behind"


def test_ray_progress_stops_quietly_when_the_queue_actor_is_lost(tmp_path: Path) -> None:
    """The queue actor died (killed, its node lost): the driver once crashed with ActorDiedError and lost every
    running cell; now progress stops and the cells' results still come back through ray.wait."""
    from genbench.run.executors.ray_tasks import ProgressRelay

    class Queue:
        def __init__(self) -> None:
            self.items: list[tuple[str, str, Any]] = []
            self.dead = False

        def size(self) -> int:
            if self.dead:
                raise RuntimeError("ActorDiedError: The actor died unexpectedly before finishing this task.")
            return len(self.items)

        def get_nowait_batch(self, n: int) -> list[tuple[str, str, Any]]:
            out, self.items = self.items[:n], self.items[n:]
            return out

    spec = CellSpec("tiny_c_s0", "tiny", {}, 0, Protocol("digits", ("fid",)), tmp_path / "cells" / "c")
    seen: list[object] = []
    queue = Queue()
    relay = ProgressRelay(queue, [spec], seen.append)
    queue.items = [("start", spec.cell_id, None), ("epoch", spec.cell_id, (1, 2, {})), ("start", "other", None)]
    relay.forward()
    assert [type(e).__name__ for e in seen] == ["CellStarted", "CellProgress"]
    queue.dead = True
    relay.forward()  # no exception: progress is best effort
    queue.dead, queue.items = False, [("epoch", spec.cell_id, (2, 2, {}))]
    relay.forward()  # a lost actor is not asked again
    assert len(seen) == 2


def test_ray_address_local_starts_a_local_instance_as_no_address_does(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Ray's own "local" means a new local instance: the cores here, not one CPU per task "on a cluster"."""
    from genbench.run.executors.ray_tasks import ray_address

    def request(address: str | None) -> RunRequest:
        return RunRequest(("gan",), Protocol("digits", ()), tmp_path, executor="ray", ray_address=address)

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert ray_address(request("local")) == (None, "--ray-address")
    assert ray_address(request("auto")) == ("auto", "--ray-address")
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert ray_address(request(None)) == (None, "RAY_ADDRESS")
    monkeypatch.setenv("RAY_ADDRESS", "head:6379")
    assert ray_address(request(None)) == ("head:6379", "RAY_ADDRESS")
