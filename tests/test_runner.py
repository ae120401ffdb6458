"""The grid runner end to end on the packaged 8x8 digits: records, files, failures, resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from genbench.errors import GenbenchError
from genbench.protocol import Protocol
from genbench.results import read_record
from genbench.run.runner import CellFinished, CellProgress, CellStarted, Planned, RunRequest, run_grid


def readable(cell_id: str) -> str:
    """A cell id without its hyper-parameter digest: ``tiny_z_dim=2_0123456789_s0`` -> ``tiny_z_dim=2_s0``."""
    return re.sub(r"_[0-9a-f]{10}(_s\d+)$", r"\1", cell_id)


def request(out: Path, cache: Path, models: tuple[str, ...], grid: tuple[str, ...] = (), **kw) -> RunRequest:  # type: ignore[no-untyped-def]
    protocol = Protocol(
        "digits", kw.pop("metrics", ("fid", "recon_mse", "elbo")), eval_samples=200, epochs=1, cache_dir=cache
    )
    return RunRequest(models, protocol, out, grid, **kw)


@pytest.mark.slow
def test_grid_runs_every_cell_and_writes_all_artifacts(tmp_path: Path, cache_dir: Path) -> None:
    events: list[object] = []
    result = run_grid(request(tmp_path, cache_dir, ("gan", "vae"), ("z_dim=8,16",)), events.append)
    assert [r.status for r in result.records] == ["ok"] * 4, [r.error for r in result.records]

    df = pd.read_csv(tmp_path / "results.csv")
    assert len(df) == 4 and set(df["model"]) == {"gan", "vae"} and set(df["z_dim"]) == {8, 16}
    assert df["fid_domain"].notna().all() and (df["fid_domain"] > 0).all()
    assert df.loc[df.model == "vae", "elbo"].notna().all() and df.loc[df.model == "gan", "elbo"].isna().all()
    for col in ("train_s", "sample_s", "evaluate_s", "train_items_per_s", "peak_mem_mb", "params", "seed", "lr"):
        assert col in df.columns

    for record in result.records:
        cell = tmp_path / "cells" / record.cell_id
        for name in ("record.json", "samples.png", "curves.png", "history.csv", "checkpoint.pt"):
            assert (cell / name).is_file(), (cell, name)
        saved = read_record(cell)
        assert saved is not None and saved.metrics == record.metrics and saved.history == record.history
        assert record.environment["torch_fidelity"] and record.protocol["eval_samples"] == 200
        assert record.timings["train"].items == 1497 // record.hyper["batch_size"] * record.hyper["batch_size"]
        assert record.extras["domain_accuracy"] > 0.9
    gan = next(r for r in result.records if r.model == "gan")
    assert {"loss_d", "loss_g", "d_x", "d_g_z"} <= set(gan.history[0])
    assert "elbo" in gan.metric_notes and "not applicable" in gan.metric_notes["elbo"]

    manifest = json.loads((tmp_path / "run.json").read_text())
    assert manifest["metric_better"] == {"fid_domain": "lower", "recon_mse": "lower", "elbo": "higher"}
    evaluation = manifest["evaluation"]
    assert evaluation["backbones"]["domain"]["layer"] == "penultimate"
    assert evaluation["backbones"]["domain"]["resize"] == "none (native 8x8)"
    assert (
        len(evaluation["backbones"]["domain"]["weights"]) == 16 and evaluation["backbones"]["domain"]["accuracy"] > 0.9
    )
    assert (evaluation["n_generated"], evaluation["n_reference"], evaluation["reference_split"]) == (200, 200, "test")
    assert evaluation["torch_fidelity"] and evaluation["torch"]
    assert all(r.evaluation == evaluation for r in result.records)
    assert set(df["n_reference"]) == {200} and df["backbones"].str.startswith("domain:penultimate@").all()
    assert isinstance(events[0], Planned) and events[0].to_run == 4
    assert sum(isinstance(e, CellStarted) for e in events) == 4
    assert sum(isinstance(e, CellFinished) for e in events) == 4
    assert any(isinstance(e, CellProgress) and e.kind == "epoch" for e in events)


@pytest.mark.slow
def test_same_seed_on_cpu_gives_identical_numbers_twice(tmp_path: Path, cache_dir: Path) -> None:
    metrics = ("fid", "kid", "prc", "isc", "coverage")
    first, second = (
        run_grid(request(tmp_path / name, cache_dir, ("gan",), metrics=metrics)).records[0] for name in ("a", "b")
    )
    assert first.status == second.status == "ok"
    assert first.metrics == second.metrics and first.history == second.history
    assert {"fid_domain", "kid_domain", "precision_domain", "isc_domain", "classes_covered"} <= set(first.metrics)


def test_failing_and_diverging_cells_are_recorded_and_the_grid_goes_on(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    result = run_grid(request(tmp_path, cache_dir, ("exploding", "nan", "tiny"), metrics=("fid",)))
    status = {r.model: (r.status, r.error) for r in result.records}
    assert status["exploding"] == ("failed", "RuntimeError: boom in train_step")
    assert status["nan"][0] == "diverged" and "loss 'loss' became nan in epoch 1" in (status["nan"][1] or "")
    assert status["tiny"][0] == "ok"
    df = pd.read_csv(tmp_path / "results.csv")
    assert list(df["status"]) == ["failed", "diverged", "ok"]
    exploding = next(r for r in result.records if r.model == "exploding")
    assert (tmp_path / "cells" / exploding.cell_id / "record.json").is_file()
    nan = next(r for r in result.records if r.model == "nan")
    assert nan.timings["train"].seconds > 0 and nan.history == []  # timed even though it diverged


def test_interrupt_keeps_finished_cells_and_resume_reuses_them(
    tmp_path: Path, cache_dir: Path, tiny_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import genbench.run.cell as runner_mod  # the serial executor calls run_cell from here, when a cell runs

    real_run_cell = runner_mod.run_cell
    calls: list[str] = []

    def interrupt_second(spec, on_event=None):  # type: ignore[no-untyped-def]
        calls.append(spec.cell_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_cell(spec, on_event)

    monkeypatch.setattr(runner_mod, "run_cell", interrupt_second)
    req = request(tmp_path, cache_dir, ("tiny",), ("z_dim=2,3,4",), metrics=("fid",))
    with pytest.raises(KeyboardInterrupt):
        run_grid(req)
    df = pd.read_csv(tmp_path / "results.csv")
    assert [readable(c) for c in df["cell"]] == ["tiny_z_dim=2_s0"]  # the finished cell survived, the CSV is whole

    monkeypatch.setattr(runner_mod, "run_cell", real_run_cell)
    events: list[object] = []
    result = run_grid(RunRequest(req.models, req.protocol, req.out_dir, req.grid, resume=True), events.append)
    assert isinstance(events[0], Planned) and events[0].to_run == 2
    assert [readable(r.cell_id) for r in result.records] == ["tiny_z_dim=2_s0", "tiny_z_dim=3_s0", "tiny_z_dim=4_s0"]
    assert len(pd.read_csv(tmp_path / "results.csv")) == 3


def test_cells_whose_values_round_alike_keep_their_own_folders_through_resume(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    req = request(tmp_path, cache_dir, ("tiny",), ("lr=0.0002,0.0002000001",), metrics=("fid",))
    first = run_grid(req)
    assert [r.hyper["lr"] for r in first.records] == [0.0002, 0.0002000001]
    events: list[object] = []
    again = run_grid(RunRequest(req.models, req.protocol, req.out_dir, req.grid, resume=True), events.append)
    assert isinstance(events[0], Planned) and events[0].to_run == 0  # both found on disk, neither retrained
    assert [r.cell_id for r in again.records] == [r.cell_id for r in first.records]
    for record in first.records:
        saved = read_record(tmp_path / "cells" / record.cell_id)
        assert saved is not None and saved.hyper["lr"] == record.hyper["lr"] and saved.status == "ok"
    assert list(pd.read_csv(tmp_path / "results.csv")["lr"]) == [0.0002, 0.0002000001]


def test_ctrl_c_inside_a_cell_is_never_recorded_as_ok(tmp_path: Path, cache_dir: Path, tiny_models: None) -> None:
    from genbench.results import read_record

    req = request(tmp_path, cache_dir, ("tiny", "interrupted"), metrics=("fid",))
    with pytest.raises(KeyboardInterrupt):
        run_grid(req)
    (folder,) = (tmp_path / "cells").glob("interrupted_*")
    saved = read_record(folder)
    assert saved is not None and (saved.status, saved.error) == ("failed", "interrupted")
    assert [readable(c) for c in pd.read_csv(tmp_path / "results.csv")["cell"]] == ["tiny_s0"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": ("gna",)}, "unknown model 'gna'; valid:"),
        ({"models": ()}, "--models: no model given"),
        ({"dataset": "mnits"}, "unknown dataset 'mnits'; valid:"),
        ({"metrics": ("fdi",)}, "unknown metric 'fdi'; valid:"),
        ({"backbones": ("vgg",)}, "unknown backbone 'vgg'; valid: 'clip-rn101', "),
        ({"backbones": ()}, "--backbone: none given; valid:"),
        ({"kid_subsets": 0}, "--kid-subsets 0: must be an integer >= 1"),
        ({"isc_splits": 5000}, "--isc-splits 5000: more splits than the 1000 samples"),
        ({"reference_stats": Path("/nonexistent.npz")}, "--reference-stats /nonexistent.npz: no such file"),
        ({"epochs": -1}, "--epochs -1: must be an integer >= 1"),
        ({"eval_samples": 1}, "--eval-samples 1: must be an integer >= 2"),
        ({"device": "tpu"}, "--device 'tpu' is not a device"),
        ({"reference_split": "val"}, "--reference-split 'val'; valid: 'test', 'train'"),
        ({"dataset": "toy2d", "models": ("dcgan",)}, "model 'dcgan' cannot train on points data"),
    ],
)
def test_bad_input_fails_before_any_training(tmp_path: Path, change: dict[str, object], message: str) -> None:
    models = change.pop("models", ("gan",))
    protocol = Protocol(**{"dataset": "digits", "metrics": ("fid",), **change})  # type: ignore[arg-type]
    with pytest.raises(GenbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_grid(RunRequest(models, protocol, tmp_path))  # type: ignore[arg-type]
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize("seed", [-1, 2**63])
def test_a_seed_torch_cannot_take_fails_before_any_training(tmp_path: Path, seed: int) -> None:
    protocol = Protocol("digits", ("fid",))
    with pytest.raises(GenbenchError, match=rf"^--seeds {seed}: must be integers >= 0 and < 2\*\*63$"):
        run_grid(RunRequest(("gan",), protocol, tmp_path, seeds=(seed,)))
    assert not (tmp_path / "results.csv").exists()


def test_kid_subset_too_large_fails_before_training(tmp_path: Path, cache_dir: Path) -> None:
    protocol = Protocol("digits", ("kid",), eval_samples=200, kid_subset_size=250, cache_dir=cache_dir)
    with pytest.raises(GenbenchError, match="--kid-subset-size 250 is larger than the samples compared"):
        run_grid(RunRequest(("gan",), protocol, tmp_path))
    assert not (tmp_path / "results.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match="--device cuda: no CUDA device is available here"):
        run_grid(RunRequest(("gan",), Protocol("digits", ("fid",), device="cuda"), tmp_path))


def test_toy2d_grid_runs_with_points_and_notes_inapplicable_metrics(tmp_path: Path, cache_dir: Path) -> None:
    protocol = Protocol("toy2d", ("fid", "modes", "hist2d", "mmd"), eval_samples=200, epochs=1, cache_dir=cache_dir)
    result = run_grid(RunRequest(("gan",), protocol, tmp_path, ("batch_size=256",)))
    (record,) = result.records
    assert record.status == "ok", record.error
    assert "not applicable" in record.metric_notes["fid"]
    assert {"modes_covered", "high_quality", "kl_hist", "js_hist", "mmd", "energy"} <= set(record.metrics)
    assert record.metrics["modes_total"] == 8 and "modes_total" not in record.metric_better
    assert (tmp_path / "cells" / record.cell_id / "samples.png").is_file()
