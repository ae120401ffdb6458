"""Suites as files: ``genbench run --config benchmarks/<name>.toml``; command-line flags win."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from genbench.cli import main
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.runner import ALL_METRICS, RunRequest, validate
from genbench.suite import Suite, load_suite, parse_suite

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
LAB_REPORT = BENCHMARKS / "lab-report.toml"
SMOKE = BENCHMARKS / "smoke.toml"


def write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


class Captured(Exception):
    """Raised by the stand-in for run_grid: the CLI built this request (nothing trains)."""

    def __init__(self, request: RunRequest) -> None:
        self.request = request


@pytest.fixture
def cli_request(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """``cli_request(*args)``: the RunRequest ``genbench run *args`` would run."""

    def fake_run_grid(request: RunRequest, on_event: Any = None) -> None:
        raise Captured(request)

    monkeypatch.setattr("genbench.run.runner.run_grid", fake_run_grid)

    def call(*args: str) -> RunRequest:
        with pytest.raises(Captured) as caught:
            main(["run", *args])
        return caught.value.request

    return call


# -- the shipped suites ---------------------------------------------------------------------------
def test_lab_report_suite_expands_to_the_reports_15_cells(tmp_path: Path) -> None:
    suite = load_suite(LAB_REPORT).override(out=tmp_path)
    cells = validate(suite.request())
    assert Counter(c.model for c in cells) == {"gan": 12, "vae": 3}
    gan = {(c.hyper["z_dim"], c.hyper["lr"], c.hyper["batch_size"]) for c in cells if c.model == "gan"}
    assert gan == {(z, lr, b) for z in (32, 64, 128) for lr in (1e-4, 2e-4) for b in (64, 128)}
    assert sorted(c.hyper["z_dim"] for c in cells if c.model == "vae") == [8, 16, 32]
    assert {c.hyper["epochs"] for c in cells} == {5}  # epochs = 5 is the same budget for every model
    assert {c.protocol.dataset for c in cells} == {"mnist5k"} and {c.seed for c in cells} == {0}
    assert cells[0].protocol.metrics == tuple(get_registry().metrics)  # metrics = "all"
    ids = {re.sub(r"_[0-9a-f]{10}(_s\d+)$", r"\1", c.cell_id) for c in cells}  # without the hyper digest
    assert "gan_z_dim=32_lr=0.0001_batch_size=64_s0" in ids


def test_smoke_suite_is_small() -> None:
    suite = load_suite(SMOKE)
    assert suite.models == ("gan", "vae", "ae", "dcgan") and suite.dataset == "digits"
    assert (suite.epochs, suite.eval_samples, suite.seeds) == (1, 200, (0,))
    assert suite.metrics == ("fid", "kid", "prc", "coverage") and suite.grid == ()
    assert len(validate(suite.request())) == 4


# -- one source of defaults -----------------------------------------------------------------------
def test_suite_defaults_are_the_protocols_and_the_clis(cli_request: Any, tmp_path: Path) -> None:
    assert Suite().metrics == (ALL_METRICS,)
    request = cli_request("--models", "gan", "--out", str(tmp_path))
    assert request.protocol == Protocol(dataset="mnist5k", metrics=tuple(get_registry().metrics))
    assert (request.models, request.grid, request.seeds, request.resume) == (("gan",), (), (0,), False)
    assert request.out_dir == tmp_path


def test_without_out_the_folder_is_timestamped() -> None:
    out = Suite(models=("gan",)).request().out_dir
    assert out.parent == Path("results") and out.name[:8].isdigit()


# -- command-line flags win -----------------------------------------------------------------------
def test_file_values_are_used_when_no_flag_is_given(cli_request: Any) -> None:
    request = cli_request("--config", str(SMOKE))
    assert request.models == ("gan", "vae", "ae", "dcgan")
    assert (request.protocol.dataset, request.protocol.epochs, request.protocol.eval_samples) == ("digits", 1, 200)
    assert request.protocol.metrics == ("fid", "kid", "prc", "coverage")


def test_explicit_flags_override_the_file(cli_request: Any, tmp_path: Path) -> None:
    request = cli_request(
        "--config", str(LAB_REPORT), "--models", "gan", "--epochs", "1", "--seeds", "0,1", "--metrics", "fid",
        "--eval-samples", "300", "--no-download", "--resume", "--out", str(tmp_path), "--device", "cpu",
    )  # fmt: skip
    assert request.models == ("gan",) and request.seeds == (0, 1) and request.resume
    p = request.protocol
    assert (p.epochs, p.metrics, p.eval_samples, p.download, p.device) == (1, ("fid",), 300, False, "cpu")
    assert p.dataset == "mnist5k"  # not given: the file's
    # --models gan drops [grid.vae]
    assert request.grid == ("gan.z_dim=32,64,128", "gan.lr=0.0001,0.0002", "gan.batch_size=64,128")
    cells = validate(request)
    assert len(cells) == 12 * 2 and {c.hyper["epochs"] for c in cells} == {1}


@pytest.mark.parametrize(
    ("grid", "cells"),
    [
        (["gan.lr=5e-4"], {"gan": 3 * 1 * 2, "vae": 3}),  # replaces [grid.gan] lr, keeps the other axes
        (["z_dim=8"], {"gan": 1 * 2 * 2, "vae": 1}),  # an unscoped key replaces it in every table
        (["vae.hidden=100,200"], {"gan": 12, "vae": 3 * 2}),  # a new axis is added
        (["gan.epochs=2"], {"gan": 12, "vae": 3}),  # wins over the file's epochs = 5
    ],
)
def test_grid_flags_replace_the_files_axes_of_the_same_key(
    cli_request: Any, grid: list[str], cells: dict[str, int]
) -> None:
    args = [a for g in grid for a in ("--grid", g)]
    planned = validate(cli_request("--config", str(LAB_REPORT), *args))
    assert Counter(c.model for c in planned) == cells
    if grid == ["gan.epochs=2"]:
        assert {c.hyper["epochs"] for c in planned if c.model == "gan"} == {2}
        assert {c.hyper["epochs"] for c in planned if c.model == "vae"} == {5}  # the VAE's own default
    if grid == ["gan.lr=5e-4"]:
        assert {c.hyper["lr"] for c in planned if c.model == "gan"} == {5e-4}


def test_epochs_flag_wins_over_an_epochs_axis_in_the_file(tmp_path: Path) -> None:
    suite = parse_suite({"models": ["gan"], "grid": {"gan": {"epochs": [1, 2], "z_dim": [8]}}}, "x.toml")
    over = suite.override(epochs=3, out=tmp_path)
    assert over.epochs == 3 and [a.option for a in over.grid] == ["gan.z_dim=8"]
    assert {c.hyper["epochs"] for c in validate(over.request())} == {3}


def test_backbone_weights_merge_by_backbone(tmp_path: Path) -> None:
    suite = parse_suite({"backbone_weights": {"inception": "a.pth", "vgg16": "b.pth"}}, "x.toml")
    over = suite.override(backbone_weights=(("inception", Path("c.pth")),))
    assert dict(over.backbone_weights) == {"inception": Path("c.pth"), "vgg16": Path("b.pth")}


def test_strings_and_lists_are_both_accepted() -> None:
    suite = parse_suite({"models": "gan, vae", "metrics": "all", "backbones": "domain", "seeds": 3}, "x.toml")
    assert suite.models == ("gan", "vae") and suite.metrics == ("all",) and suite.seeds == (3,)
    grid = parse_suite({"models": ["gan"], "grid": {"lr": 1e-4, "gan": {"loss": ["bce", "hinge"]}}}, "x.toml").grid
    assert [a.option for a in grid] == ["lr=0.0001", "gan.loss=bce,hinge"]  # unscoped axes first


# -- bad input: one line naming the file, the key and the valid choices; exit 2; nothing written --
BAD = [
    ('modles = ["gan"]', "unknown key 'modles'; valid: 'backbone_weights', 'backbones', 'cache_dir', 'cell_timeout',"),
    ('models = ["gan"]\nepochs = "five"', "'epochs' must be an integer, got 'five'"),
    ('models = ["gan"]\nepochs = 0', "'epochs' must be an integer >= 1, got 0"),
    ('models = ["gan"]\neval_samples = 1.5', "'eval_samples' must be an integer, got 1.5"),
    ('models = ["gan"]\nseeds = [0, -1]', "'seeds' must be an integer >= 0 or a list of them"),
    ("models = 3", "'models' must be a list of strings"),
    ('models = ["gna"]', "'models': unknown model 'gna'; valid: "),
    ('models = ["gan"]\ndataset = "mnits"', "'dataset': unknown dataset 'mnits'; valid: "),
    ('models = ["gan"]\nmetrics = ["fdi"]', "'metrics': unknown metric 'fdi'; valid: 'all', "),
    ('models = ["gan"]\nmetrics = ["fid", "all"]', "'metrics': 'all' stands alone"),
    ('models = ["gan"]\nbackbones = ["vgg"]', "'backbones': unknown backbone 'vgg'; valid: "),
    ('models = ["gan"]\nreference_split = "val"', "'reference_split' must be one of 'test', 'train', got 'val'"),
    ('models = ["gan"]\ndownload = "yes"', "'download' must be true or false, got 'yes'"),
    ('models = ["gan"]\nbackbone_weights = "w.pth"', "'backbone_weights' must be a table of backbone = \"path\""),
    ('models = ["gan"]\nbackbone_weights = {incept = "w.pth"}', "'backbone_weights': unknown backbone 'incept'"),
    ('models = ["gan"]\nreference_stats = "nope.npz"', "'reference_stats': no such file 'nope.npz'"),
    ('models = ["gan"]\ngrid = 3', "'grid' must be a table"),
    ('models = ["gan"]\n[grid.gan]\nzdim = [3]', "[grid.gan] zdim: model 'gan' has no hyper-parameter 'zdim'; valid: "),
    ('models = ["gan", "vae"]\n[grid]\nhidden = [3]', "[grid] hidden: model 'gan' has no hyper-parameter 'hidden'"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = ["abc"]', "[grid.gan] z_dim: 'abc' is not an int (model 'gan')"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = 32.0', "[grid.gan] z_dim: '32.0' is not an int (model 'gan')"),
    ('models = ["gan"]\n[grid.gan]\nloss = ["bce", "mse"]', "[grid.gan] loss: 'mse' is not one of 'bce', 'hinge'"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = [-1]', "[grid.gan] z_dim (model 'gan'): z_dim must be > 0, got -1"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = []', "[grid.gan] z_dim: must be a value or a non-empty list of values"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = [[1]]', "[grid.gan] z_dim: must be a value or a non-empty list of values"),
    ('models = ["gan"]\n[grid.gan]\nloss = "bce,hinge"', "[grid.gan] loss: value 'bce,hinge' contains a comma"),
    ('models = ["gan"]\n[grid.vea]\nz_dim = [8]', "[grid.vea]: unknown model 'vea'; valid: "),
    ('models = ["gan"]\n[grid.vae]\nz_dim = [8]', "[grid.vae]: model 'vae' is not in 'models'; valid: 'gan'"),
    ('models = ["gan"]\nepochs = 5\n[grid.gan]\nepochs = [1, 2]', "[grid.gan] epochs: conflicts with epochs = 5"),
    ("models = [gan]", "invalid TOML: Invalid value (at line 1, column 11)"),
    ('models = ["gan"]\n[grid.gan]\nz_dim = [8]\nz_dim = [16]', "invalid TOML: Cannot overwrite a value"),
    ('dataset = "digits"', "--models is required (or models = [...] in {path}); valid: "),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_suite_is_one_line_naming_the_file_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    code = main(["run", "--config", str(path), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2, err
    expected = f"error: {message.format(path=path)}" if message.startswith("--") else f"error: {path}: {message}"
    assert err.startswith(expected), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "gan"], "{path}: [grid] hidden: model 'gan' has no hyper-parameter 'hidden'; valid: "),
        (["--models", "vae", "--epochs", "-1"], "--epochs -1: must be an integer >= 1"),  # a flag's own message
        (["--models", "vae", "--grid", "zdim=3"], "--grid zdim: model 'vae' has no hyper-parameter 'zdim'"),
        (["--models", "vae", "--grid", "z_dim=2", "--grid", "z_dim=3"], "--grid z_dim: given twice (z_dim=2 and"),
        (["--models", "vae", "--grid", "vae.hidden=5", "--grid", "vae.hidden=6"], "--grid vae.hidden: given twice"),
    ],
)
def test_file_values_are_checked_against_the_models_given_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    path = write(tmp_path, "[grid]\nhidden = [100, 200]  # only the VAE has it\n")
    code = main(["run", "--config", str(path), *args, "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith(f"error: {message.format(path=path)}"), err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


def test_missing_file_lists_the_suites_next_to_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write(tmp_path, 'models = ["gan"]', "smoke.toml")
    missing = tmp_path / "smoek.toml"
    assert main(["run", "--config", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file; suites in {tmp_path}: 'smoke.toml'\n"
    assert main(["run", "--config", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path}: not a file; expected a TOML suite")


def test_invalid_utf8_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'models = ["\xff"]\n')
    assert main(["run", "--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: invalid TOML")


# -- end to end -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smoke_suite_runs_end_to_end(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "smoke"
    code = main(["run", "--config", str(SMOKE), "--out", str(out), "--cache-dir", str(cache_dir), "--device", "cpu"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "4 cells, 0 not ok" in err
    df = pd.read_csv(out / "results.csv")
    assert list(df["model"]) == ["gan", "vae", "ae", "dcgan"] and (df["status"] == "ok").all()
    assert (df["epochs"] == 1).all() and (df["dataset"] == "digits").all() and (df["n_generated"] == 200).all()
    for column in ("fid_domain", "kid_domain", "precision_domain", "recall_domain", "classes_covered"):
        assert df[column].notna().all(), column
    assert "isc_domain" not in df  # only the suite's metrics
