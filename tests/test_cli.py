"""The command line: one-line errors with exit 2, list/run/table as a user types them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from genbench.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--models", "gna"], "error: unknown model 'gna'; valid: 'ae', 'cdcgan', 'cgan', 'convvae',"),
        (["run", "--models", "gan", "--dataset", "mnits"], "error: unknown dataset 'mnits'; valid:"),
        (["run", "--models", "gan", "--grid", "z_dim=abc"], "error: --grid z_dim: 'abc' is not an int (model 'gan')"),
        (["run", "--models", "gan", "--grid", "zdim=3"], "error: --grid zdim: model 'gan' has no hyper-parameter"),
        (["run", "--models", "gan", "--grid", "lr="], "error: --grid 'lr=': no values given"),
        (["run", "--models", "gan", "--epochs", "-1"], "error: --epochs -1: must be an integer >= 1"),
        (["run", "--models", "gan", "--eval-every", "-1"], "error: --eval-every -1: must be an integer >= 0"),
        (["run", "--models", "gan", "--eval-every", "two"], "error: Invalid value for '--eval-every'"),
        (["run", "--models", "gan", "--metrics", "fdi"], "error: unknown metric 'fdi'; valid: 'cond_acc', 'coverage',"),
        (["run", "--models", "gan", "--backbone", "vgg"], "error: unknown backbone 'vgg'"),
        (["run", "--models", "gan", "--seeds", "x"], "error: --seeds 'x': expected comma-separated integers"),
        (["run"], "error: --models is required; valid:"),
        (["run", "--models", "gan", "--epochs", "abc"], "error: Invalid value for '--epochs'"),
        (["list", "things"], "error: Invalid value for 'kind'"),
        (["table", "/nonexistent"], "error: /nonexistent: no results.csv here"),
    ],
)
def test_bad_input_is_one_line_exit_2_no_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    if args[0] == "run":
        args = [*args, "--out", str(tmp_path / "out")]
    code, _, err = run_cli(capsys, *args)
    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out" / "results.csv").exists()


def test_list_models_json_shows_origin_and_typed_hyper_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "models", "--json")
    assert code == 0
    models = {m["name"]: m for m in json.loads(out)["models"]}
    assert {"ae", "vae", "gan", "dcgan"} <= set(models)
    assert models["gan"]["origin"] == "built-in"
    hyper = {h["name"]: h for h in models["gan"]["hyper"]}
    assert hyper["z_dim"] == {
        "name": "z_dim", "type": "int", "default": 100, "by_kind": {"points": 2}, "help": hyper["z_dim"]["help"]
    }  # fmt: skip
    assert hyper["loss"]["type"] == "bce|hinge" and hyper["lr_g"]["type"] == "float|None"
    assert "reconstruct" in models["vae"]["capabilities"]


def test_list_models_shows_defaults_for_points_next_to_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "models")
    assert code == 0
    flat = " ".join(out.replace("│", " ").split())  # rich wraps the column; compare the words
    assert "r1: float = 10.0 (points: 1.0)" in flat


@pytest.mark.parametrize("kind", ["models", "datasets", "metrics", "figures", "plugins"])
def test_list_renders_each_kind(capsys: pytest.CaptureFixture[str], kind: str) -> None:
    code, out, _ = run_cli(capsys, "list", kind)
    assert code == 0 and "built-in" in out


@pytest.mark.slow
def test_run_then_table_in_every_format(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "run"
    code, stdout, err = run_cli(
        capsys, "run", "--models", "gan,ae", "--dataset", "digits", "--grid", "z_dim=8,16", "--epochs", "1",
        "--eval-samples", "200", "--out", str(out), "--cache-dir", str(cache_dir), "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert "FID" in stdout and "4 cells, 0 not ok" in err
    df = pd.read_csv(out / "results.csv")
    assert len(df) == 4 and df["fid_domain"].notna().all()

    code, md, _ = run_cli(capsys, "table", str(out), "--format", "markdown")
    assert code == 0
    lines = md.splitlines()
    assert lines[0].startswith("_dataset digits; 200 generated vs 200 test examples; backbones domain")
    assert lines[2].startswith("| model | z_dim | lr | batch | epochs | FID (domain) | KID (domain) | precision")
    assert "| classes covered | class KL | recon MSE |" in lines[2]  # the default --metrics all
    assert sum("**" in line for line in lines[4:]) >= 1  # the best FID is bold
    assert re.search(r"!\[samples\]\(cells/gan_z_dim=8_[0-9a-f]{10}_s0/samples\.png\)", md)

    code, csv_text, _ = run_cli(capsys, "table", str(out), "--format", "csv")
    assert code == 0 and csv_text.splitlines()[0].startswith("model,z_dim,lr,batch,epochs,FID (domain)")
    code, rich_text, _ = run_cli(capsys, "table", str(out))
    assert code == 0 and "gan" in rich_text


def test_list_models_shows_all_nine_builtins_with_their_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "list", "models", "--json")
    assert code == 0
    models = {m["name"]: {h["name"] for h in m["hyper"]} for m in json.loads(out)["models"]}
    assert set(models) >= {"ae", "vae", "convvae", "gan", "dcgan", "cgan", "cdcgan", "wgan-gp", "vaegan"}
    for gan in ("gan", "dcgan", "cgan", "cdcgan", "wgan-gp"):
        assert {"lr_g", "lr_d", "beta1", "beta2", "d_steps", "g_steps", "noise", "z_dim", "width"} <= models[gan], gan
