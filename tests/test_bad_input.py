"""The bad-input catalogue: every malformed invocation is one line, exit status 2, before any work.

Each case is an argv for ``genbench.cli.main`` run in-process, and a phrase the one-line
``error: ...`` must contain. ``run`` cases get cheap defaults first (digits, one epoch, 60
samples, the session cache, ``--out`` in a fresh folder); an option the case gives again
wins (click keeps the last value). After a ``run`` case, the ``--out`` folder must hold no
``cells/``: nothing trained. ``table`` cases read a run folder damaged in one way.

Placeholders in argv: ``{out}`` the run folder, ``{tmp}`` the test's folder (with the files
that :func:`files` writes), ``{cache}`` the session cache.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genbench.cli import main
from genbench.errors import DiskFull, GenbenchError
from genbench.protocol import CellRecord, Protocol
from genbench.results import atomic_write_json, write_results


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    phrase: str
    defaults: bool = True  # prepend the cheap run defaults (run cases only)
    loads: bool = False  # needs the dataset's split sizes: found after loading it (progress shown), before training


def run(id: str, *argv: str, phrase: str, defaults: bool = True, loads: bool = False) -> Case:
    return Case(id, ("run", *argv), phrase, defaults, loads)


def table(id: str, *argv: str, phrase: str) -> Case:
    return Case(id, ("table", *argv), phrase, False)


RUN_DEFAULTS = (
    "--models", "gan", "--dataset", "digits", "--epochs", "1", "--eval-samples", "60", "--metrics", "fid",
    "--device", "cpu", "--cache-dir", "{cache}", "--out", "{out}",
)  # fmt: skip

# fmt: off
CASES = [
    # -- models and datasets
    run("model-unknown", "--models", "gna", phrase="unknown model 'gna'; valid: 'ae', 'cdcgan'"),
    run("model-one-unknown", "--models", "gan,gna", phrase="unknown model 'gna'"),
    run("model-empty", "--models", "", phrase="--models: none given; valid:"),
    run("model-missing", "--out", "{out}", phrase="--models is required", defaults=False),
    run("dataset-unknown", "--dataset", "mnits", phrase="unknown dataset 'mnits'; valid:"),
    run("dataset-empty", "--dataset", "", phrase="unknown dataset ''"),
    run("conditional-unlabelled", "--models", "cgan", "--dataset", "toy2d-spiral", phrase="needs a labelled dataset"),
    run("image-model-on-points", "--models", "dcgan", "--dataset", "toy2d", phrase="cannot train on points data"),
    # -- grid
    run("grid-not-int", "--grid", "z_dim=abc", phrase="--grid z_dim: 'abc' is not an int (model 'gan')"),
    run("grid-unknown-key", "--grid", "zdim=3", phrase="model 'gan' has no hyper-parameter 'zdim'"),
    run("grid-no-values", "--grid", "lr=", phrase="--grid 'lr=': no values given"),
    run("grid-no-equals", "--grid", "z_dim", phrase="expected key=v1,v2"),
    run("grid-empty-value", "--grid", "z_dim=8,,16", phrase="empty value in the list"),
    run("grid-bad-key", "--grid", "1z=3", phrase="is not a key"),
    run("grid-zero", "--grid", "z_dim=0", phrase="z_dim must be > 0"),
    run("grid-negative-lr", "--grid", "lr=-1", phrase="lr must be > 0"),
    run("grid-inf", "--grid", "lr=inf", phrase="'inf' is not a finite float"),
    run("grid-nan", "--grid", "lr=nan", phrase="'nan' is not a finite float"),
    run("grid-beta1", "--grid", "beta1=1", phrase="beta1 must be in [0, 1)"),
    run("grid-bad-choice", "--grid", "loss=mse", phrase="'mse' is not one of"),
    run("grid-scope-not-run", "--grid", "vae.z_dim=8", phrase="model 'vae' is not among --models"),
    run("grid-epochs-and-epochs", "--grid", "epochs=2", phrase="conflicts with --epochs"),
    run("grid-huge-gan", "--grid", "z_dim=100000000", phrase="more than the"),
    run("grid-huge-vae", "--models", "vae", "--grid", "hidden=100000000", phrase="parameters"),
    # -- seeds and epochs
    run("seeds-text", "--seeds", "x", phrase="--seeds 'x': expected comma-separated integers"),
    run("seeds-float", "--seeds", "1.5", phrase="expected comma-separated integers"),
    run("seeds-empty", "--seeds", "", phrase="expected comma-separated integers"),
    run("seeds-hole", "--seeds", "0,,1", phrase="expected comma-separated integers"),
    run("seeds-negative", "--seeds", "-1", phrase="seeds must be integers >= 0"),
    run("seeds-2**64", "--seeds", str(2**64), phrase="seeds must be integers >= 0 and < 2**63"),
    run("seeds-2**63", "--seeds", f"0,{2**63}", phrase="seeds must be integers >= 0 and < 2**63"),
    run("epochs-negative", "--epochs", "-1", phrase="--epochs -1: must be an integer >= 1"),
    run("epochs-zero", "--epochs", "0", phrase="--epochs 0: must be an integer >= 1"),
    run("epochs-text", "--epochs", "abc", phrase="Invalid value for '--epochs'"),
    # -- device
    run("device-unknown", "--device", "tpu", phrase="--device 'tpu' is not a device"),
    run("device-empty", "--device", "", phrase="--device '' is not a device"),
    run("device-meta", "--device", "meta", phrase="--device meta: genbench cannot train on it"),
    run("device-hpu", "--device", "hpu", phrase="--device hpu: genbench cannot train on it"),
    run("device-mps", "--device", "mps", phrase="--device mps: no MPS device"),
    run("device-xpu", "--device", "xpu", phrase="--device xpu: no XPU device"),
    run("device-cuda-index", "--device", "cuda:3", phrase="--device cuda:3: "),
    # -- metrics and backbones
    run("metric-unknown", "--metrics", "fdi", phrase="unknown metric 'fdi'; valid: 'cond_acc', 'coverage',"),
    run("metric-empty", "--metrics", "", phrase="--metrics: none given"),
    run("metric-commas", "--metrics", ",", phrase="--metrics: none given"),
    run("metric-all-and-more", "--metrics", "all,fid", phrase="'all' stands alone"),
    run("metric-applies-to-none", "--metrics", "elbo", phrase="--metrics elbo: applies to none of the models"),
    run("backbone-unknown", "--backbone", "vgg", phrase="unknown backbone 'vgg'"),
    run("backbone-empty", "--backbone", "", phrase="--backbone: none given"),
    run("feature-layer-unknown", "--feature-layer", "nope", phrase="--feature-layer 'nope': backbone 'domain' has"),
    run("feature-layer-empty", "--feature-layer", "", phrase="--feature-layer '': backbone 'domain' has"),
    run("weights-no-equals", "--backbone-weights", "inception", phrase="expected NAME=PATH"),
    run("weights-unknown-backbone", "--backbone-weights", "foo={tmp}/afile", phrase="unknown backbone 'foo'"),
    run("weights-no-file", "--backbone-weights", "inception={tmp}/none.pth", phrase="none.pth: no such file"),
    # -- sample counts and sizes
    run("eval-samples-one", "--eval-samples", "1", phrase="--eval-samples 1: must be an integer >= 2"),
    run("eval-samples-text", "--eval-samples", "many", phrase="Invalid value for '--eval-samples'"),
    run("eval-samples-huge", "--eval-samples", str(10**15), phrase="--eval-samples 1000000000000000:"),
    run("split-unknown", "--reference-split", "val", phrase="--reference-split 'val'; valid: 'test', 'train'"),
    run("kid-subsets-zero", "--kid-subsets", "0", phrase="--kid-subsets 0: must be an integer >= 1"),
    run("kid-subsets-huge", "--kid-subsets", "100000000", phrase="--kid-subsets 100000000: at most"),
    run("kid-size-over-samples", "--metrics", "kid", "--kid-subset-size", "500",
        phrase="--kid-subset-size 500 is larger"),
    run("kid-size-over-reference", "--metrics", "kid", "--eval-samples", "1000", "--kid-subset-size", "500",
        phrase="(1000 generated, 300 reference)", loads=True),
    run("kid-size-one", "--metrics", "kid", "--kid-subset-size", "1", phrase="subsets of at least 2 samples"),
    run("isc-splits-zero", "--isc-splits", "0", phrase="--isc-splits 0: must be an integer >= 1"),
    run("isc-splits-over-samples", "--isc-splits", "100", phrase="more splits than the 60 samples"),
    run("prc-zero", "--prc-neighborhood", "0", phrase="--prc-neighborhood 0: must be an integer >= 1"),
    run("prc-equal-samples", "--metrics", "prc", "--prc-neighborhood", "60", phrase="--prc-neighborhood 60: "),
    run("prc-over-reference", "--metrics", "prc", "--eval-samples", "1000", "--prc-neighborhood", "400",
        phrase="300 reference", loads=True),
    run("eval-batch-zero", "--eval-batch-size", "0", phrase="--eval-batch-size 0: must be an integer >= 1"),
    run("cell-timeout-zero", "--cell-timeout", "0", phrase="--cell-timeout 0: must be a number of seconds > 0"),
    run("cell-timeout-negative", "--cell-timeout", "-5", phrase="--cell-timeout -5: must be a number of seconds > 0"),
    run("cell-timeout-nan", "--cell-timeout", "nan", phrase="--cell-timeout nan: must be a number of seconds > 0"),
    run("cell-timeout-text", "--cell-timeout", "soon", phrase="Invalid value for '--cell-timeout'"),
    run("eval-every-negative", "--eval-every", "-1", phrase="--eval-every -1: must be an integer >= 0"),
    run("eval-every-text", "--eval-every", "often", phrase="Invalid value for '--eval-every'"),
    run("threads-zero", "--threads", "0", phrase="--threads 0: must be an integer >= 1"),
    run("threads-negative", "--threads", "-1", phrase="--threads -1: must be an integer >= 1"),
    run("threads-text", "--threads", "two", phrase="Invalid value for '--threads'"),
    run("eval-batch-huge", "--eval-batch-size", str(10**12), phrase="--eval-batch-size 1000000000000: at most"),
    # -- executors and the fast path
    run("executor-unknown", "--executor", "nope", phrase="unknown executor 'nope'; valid: 'process', 'ray', 'serial'"),
    run("workers-zero", "--executor", "process", "--workers", "0", phrase="--workers 0: must be an integer >= 1"),
    run("workers-over-cores", "--executor", "process", "--workers", "100000",
        phrase="--workers 100000: more workers than the"),
    run("workers-serial", "--workers", "2", phrase="--workers 2: the 'serial' executor does not use it"),
    run("threads-over-worker-share", "--executor", "process", "--workers", "1", "--threads", "100000",
        phrase="--threads 100000 with 1 process worker: 100000 threads on"),
    run("threads-over-default-workers", "--executor", "process", "--threads", "100000",
        phrase="process workers (the default: one per core): "),
    run("gpus-absent", "--executor", "process", "--gpus", "7", phrase="--gpus 7: "),
    run("gpus-text", "--executor", "process", "--gpus", "x", phrase="--gpus 'x': expected comma-separated integers"),
    run("cells-per-gpu-zero", "--executor", "process", "--cells-per-gpu", "0",
        phrase="--cells-per-gpu 0: must be an integer >= 1"),
    run("cells-per-gpu-without-gpus", "--executor", "process", "--cells-per-gpu", "2",
        phrase="--cells-per-gpu 2: packs cells on the GPUs given with --gpus"),
    run("ray-address-unreachable", "--executor", "ray", "--ray-address", "127.0.0.1:1",
        phrase="--ray-address 127.0.0.1:1: no Ray cluster answers there"),
    run("ray-address-not-an-address", "--executor", "ray", "--ray-address", "nohost",
        phrase="--ray-address 'nohost': expected host:port"),
    run("ray-address-without-ray", "--executor", "process", "--ray-address", "x:1",
        phrase="--ray-address x:1: the 'process' executor does not use it"),
    run("precision-unknown", "--precision", "fp8", phrase="--precision 'fp8'; valid: 'bf16', 'fp16', 'fp32'"),
    run("cuda-graphs-on-cpu", "--cuda-graphs", phrase="--cuda-graphs needs a CUDA device; --device cpu is cpu here"),
    run("cuda-graphs-fp16", "--cuda-graphs", "--precision", "fp16",
        phrase="--cuda-graphs with --precision fp16: fp16's loss scaling (GradScaler)"),
    run("cuda-graphs-compile", "--cuda-graphs", "--compile",
        phrase="--cuda-graphs with --compile: torch.compile cannot"),
    run("cuda-graphs-not-graph-safe", "--models", "gan,ae", "--cuda-graphs",
        phrase="--cuda-graphs: model 'ae' is not graph-safe"),
    # -- reference statistics
    run("stats-missing", "--reference-stats", "{tmp}/none.npz", phrase="none.npz: no such file"),
    run("stats-text", "--reference-stats", "{tmp}/text.npz", phrase="not an .npz archive"),
    run("stats-npy", "--reference-stats", "{tmp}/arr.npy", phrase="not an .npz archive"),
    run("stats-no-mu", "--reference-stats", "{tmp}/nomu.npz", phrase="holds no 'mu'"),
    run("stats-nan", "--reference-stats", "{tmp}/nan.npz", phrase="NaN or inf"),
    run("stats-pickle", "--reference-stats", "{tmp}/pickled.npz", phrase="pickled"),
    run("stats-dim", "--reference-stats", "{tmp}/wrongdim.npz", phrase="dimension 64; backbone 'domain'"),
    run("stats-not-square", "--reference-stats", "{tmp}/nonsquare.npz", phrase="do not form FID statistics"),
    run("stats-asymmetric", "--reference-stats", "{tmp}/asymmetric.npz", phrase="sigma is not symmetric"),
    run("stats-without-fid", "--metrics", "kid", "--reference-stats", "{tmp}/good.npz", phrase="add fid to --metrics"),
    run("stats-two-backbones", "--backbone", "domain,inception", "--reference-stats", "{tmp}/good.npz",
        phrase="give exactly one --backbone"),
    # -- folders
    run("out-is-file", "--out", "{tmp}/afile", phrase="afile: is a file, not a folder"),
    run("out-below-file", "--out", "{tmp}/afile/run", phrase="afile is a file, so no folder can be made below"),
    run("out-empty", "--out", "", phrase="--out '.': the current folder"),
    run("cache-is-file", "--cache-dir", "{tmp}/afile", phrase="--cache-dir {tmp}/afile: is a file"),
    run("data-is-file", "--data-dir", "{tmp}/afile", phrase="--data-dir {tmp}/afile: is a file"),
    # -- suite files: the same checks
    run("config-missing", "--config", "{tmp}/none.toml", phrase="none.toml: no such file"),
    run("config-unknown-key", "--config", "{tmp}/badkey.toml", phrase="unknown key 'modles'"),
    run("config-huge", "--config", "{tmp}/huge.toml", phrase="more than the"),
    run("config-stats-dim", "--config", "{tmp}/stats.toml", phrase="dimension 64; backbone 'domain'"),
    run("config-out-file", "--config", "{tmp}/outfile.toml", phrase="is a file, not a folder", defaults=False),
    run("option-unknown", "--modles", "gan", phrase="No such option: --modles"),
    # -- genbench table on folders that are not (whole) runs
    table("table-nowhere", "{tmp}/none", phrase="none: no results.csv here"),
    table("table-not-a-run", "{tmp}", phrase="no results.csv here"),
    table("table-format", "{run}", "--format", "xml", phrase="Invalid value for '--format'"),
    table("table-columns", "{run}", "--columns", "nope", phrase="--columns 'nope': no such column; valid: model,"),
    table("table-output-dir", "{run}", "--output", "{tmp}", phrase="-o {tmp}: is a folder; give a file"),
    table("table-output-suffix", "{run}", "--output", "{tmp}/t.xlsx", phrase="writes markdown or csv; add --format"),
    table("csv-empty", "{run}", phrase="results.csv: empty"),
    table("csv-binary", "{run}", phrase="results.csv: not a CSV table (binary data)"),
    table("csv-latin1", "{run}", phrase="results.csv: not a CSV table (not UTF-8 text)"),
    table("csv-truncated", "{run}", phrase="results.csv: truncated"),
    table("csv-header-only", "{run}", phrase="results.csv: a header and no rows"),
    table("csv-extra-field", "{run}", phrase="results.csv: line 3 has"),
    table("csv-no-status", "{run}", phrase="results.csv: no 'status' column"),
    table("csv-metric-text", "{run}", phrase="results.csv: line 2, column 'fid_domain': 'abc' is not a number"),
    table("csv-seed-text", "{run}", phrase="results.csv: line 3, column 'seed': 'one' is not an integer"),
    table("csv-status-unknown", "{run}", phrase="results.csv: line 2, column 'status': 'great'"),
    table("json-truncated", "{run}", phrase="run.json: not valid JSON"),
    table("json-empty", "{run}", phrase="run.json: not valid JSON"),
    table("json-binary", "{run}", phrase="run.json: not JSON text (binary data)"),
    table("json-list", "{run}", phrase="run.json: holds a JSON array, expected an object"),
    table("json-protocol-text", "{run}", phrase="run.json: 'protocol' is a JSON string, expected an object"),
    table("json-better-bad", "{run}", phrase="run.json: 'metric_better'"),
]
# fmt: on


def _records() -> list[CellRecord]:
    out = []
    for model, fid in (("gan", 80.0), ("vae", 60.0)):
        r = CellRecord(f"{model}_s0", model, "digits", 0, {"z_dim": 8, "lr": 2e-4, "batch_size": 64, "epochs": 1})
        r.metrics["fid_domain"] = fid
        out.append(r)
    return out


MANIFEST: dict[str, Any] = {"metric_better": {"fid_domain": "lower"}, "protocol": {"dataset": "digits"}}


def damage(run_dir: Path, case: str) -> None:
    """Write a whole run into ``run_dir``, then damage one file the way ``case`` names."""
    write_results(run_dir, _records())
    atomic_write_json(run_dir / "run.json", MANIFEST)
    csv_path, json_path = run_dir / "results.csv", run_dir / "run.json"
    text = csv_path.read_text()
    lines = text.splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    edits: dict[str, tuple[Path, bytes]] = {
        "csv-empty": (csv_path, b""),
        "csv-binary": (csv_path, b"PK\x03\x04\x00\x00\x00binary\x00\xff"),
        "csv-latin1": (csv_path, text.replace("gan", "g\xe4n").encode("latin-1")),
        "csv-truncated": (csv_path, text[: len(text) - len(lines[-1]) // 2].encode()),
        "csv-header-only": (csv_path, lines[0].encode()),
        "csv-extra-field": (csv_path, (lines[0] + lines[1] + lines[2].rstrip("\n") + ",x,y\n").encode()),
        "csv-no-status": (csv_path, text.replace("status", "state", 1).encode()),
        "csv-metric-text": (csv_path, _set(lines, header, 1, "fid_domain", "abc")),
        "csv-seed-text": (csv_path, _set(lines, header, 2, "seed", "one")),
        "csv-status-unknown": (csv_path, _set(lines, header, 1, "status", "great")),
        "json-truncated": (json_path, json_path.read_bytes()[:20]),
        "json-empty": (json_path, b""),
        "json-binary": (json_path, b"\x89PNG\r\n\x1a\n\x00\x00"),
        "json-list": (json_path, b"[1, 2]"),
        "json-protocol-text": (json_path, json.dumps({**MANIFEST, "protocol": "digits"}).encode()),
        "json-better-bad": (json_path, json.dumps({**MANIFEST, "metric_better": {"fid_domain": "up"}}).encode()),
    }
    if case in edits:
        path, data = edits[case]
        path.write_bytes(data)


def _set(lines: list[str], header: list[str], row: int, column: str, value: str) -> bytes:
    cells = lines[row].rstrip("\n").split(",")
    cells[header.index(column)] = value
    return "".join([*lines[:row], ",".join(cells) + "\n", *lines[row + 1 :]]).encode()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The inputs the catalogue points at: a plain file, statistics files good and bad, suite files."""
    (tmp_path / "afile").write_text("not a folder")
    dim = 128  # the domain backbone's penultimate layer
    np.savez(tmp_path / "good.npz", mu=np.zeros(dim), sigma=np.eye(dim))
    np.savez(tmp_path / "wrongdim.npz", mu=np.zeros(64), sigma=np.eye(64))
    np.savez(tmp_path / "nan.npz", mu=np.full(dim, np.nan), sigma=np.eye(dim))
    np.savez(tmp_path / "nomu.npz", sigma=np.eye(dim))
    np.savez(tmp_path / "nonsquare.npz", mu=np.zeros(dim), sigma=np.zeros((dim, 64)))
    asymmetric = np.eye(dim)
    asymmetric[0, 1] = 5.0
    np.savez(tmp_path / "asymmetric.npz", mu=np.zeros(dim), sigma=asymmetric)
    np.savez(tmp_path / "pickled.npz", mu=np.array([{"code": 1}], dtype=object), sigma=np.eye(dim))
    (tmp_path / "text.npz").write_text("mu, sigma")
    np.save(tmp_path / "arr.npy", np.zeros(dim))
    (tmp_path / "badkey.toml").write_text('modles = ["gan"]\n')
    (tmp_path / "huge.toml").write_text('models = ["gan"]\n[grid]\nz_dim = [100000000]\n')
    (tmp_path / "stats.toml").write_text(f'models = ["gan"]\nreference_stats = "{tmp_path / "wrongdim.npz"}"\n')
    (tmp_path / "outfile.toml").write_text(f'models = ["gan"]\ndataset = "digits"\nout = "{tmp_path / "afile"}"\n')
    return tmp_path


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_before_any_work(
    case: Case, files: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, run_dir = files / "out", files / "run"
    if case.id.startswith(("csv-", "json-", "table-")) and case.id not in ("table-nowhere", "table-not-a-run"):
        run_dir.mkdir()
        damage(run_dir, case.id)
    places = {"out": str(out), "tmp": str(files), "cache": str(cache_dir), "run": str(run_dir)}
    argv = [*(RUN_DEFAULTS if case.defaults else ()), *case.argv[1:]]
    argv = [case.argv[0], *(a.format(**places) for a in argv)]
    code = main(argv)
    _, err = capsys.readouterr()
    phrase = case.phrase.format(**places)
    assert code == 2, err
    message = err.splitlines()[-1] if case.loads else err.rstrip("\n")
    assert message.startswith("error: ") and err.endswith(f"{message}\n") and "\n" not in message, err
    assert phrase in message, err
    assert "Traceback" not in err
    assert not (out / "cells").exists() and not (out / "results.csv").exists()


def test_the_catalogue_covers_every_option_of_run_and_table() -> None:
    import inspect

    from genbench.cli import app
    from genbench.protocol import run_options

    commands = {c.name or c.callback.__name__: c.callback for c in app.registered_commands}  # type: ignore[union-attr]
    # run: every declared option with a value to get wrong (--download/--no-download, --resume/... have none)
    expected = {"run": {"--config"} | {o.flag for o in run_options() if o.cli and o.kind != "bool"}}
    params = inspect.signature(commands["table"]).parameters  # type: ignore[arg-type]
    expected["table"] = {"--" + p.replace("_", "-") for p in params if p != "out"}  # table's folder: every case has one
    for name, options in expected.items():
        tried = {a for c in CASES if c.argv[0] == name for a in c.argv if a.startswith("--")}
        for option in sorted(options):
            assert option in tried, f"no bad-input case for genbench {name} {option}"


# -- folders that cannot be written ------------------------------------------------------------
def test_an_unwritable_out_folder_is_refused_before_the_dataset_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Permission bits do not stop root, so the write probe itself is made to fail."""
    import genbench.checks

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs.get("dir")))

    monkeypatch.setattr(genbench.checks.tempfile, "mkstemp", refuse)
    loaded: list[str] = []
    monkeypatch.setattr("genbench.run.runner.load_data", lambda *a, **k: loaded.append("data"))
    code = main(["run", "--models", "gan", "--dataset", "digits", "--out", str(tmp_path / "ro" / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"error: --out {tmp_path / 'ro' / 'run'}: cannot create files in {tmp_path} (Permission denied)" in err
    assert loaded == [] and not (tmp_path / "ro").exists()


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes into a 0o500 folder")
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    from genbench.checks import check_output_folder

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(GenbenchError, match=r"cannot create files in .*locked"):
            check_output_folder(locked / "run", "--out")
    finally:
        locked.chmod(0o700)


def test_the_write_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    from genbench.checks import check_output_folder

    check_output_folder(tmp_path / "a" / "b", "--out")
    assert list(tmp_path.iterdir()) == []


# -- the memory estimate ------------------------------------------------------------------------
def test_the_memory_estimate_counts_parameters_without_allocating_them() -> None:
    from genbench.checks import training_bytes
    from genbench.hyper import build
    from genbench.plugins import get_registry

    registry = get_registry()
    cls, info = registry.model("gan"), registry.dataset("digits").info()
    small = cls(build(cls.Hyper, {"z_dim": 8}, "gan", "image"), info)
    params, buffers = (sum(t.numel() for t in ts) for ts in (small.parameters(), small.buffers()))
    # float32 weights, their gradients and Adam's two moments; buffers (batch-norm statistics) once
    assert training_bytes(cls, {"z_dim": 8}, info) == 4 * (4 * params + buffers)
    huge = training_bytes(cls, {"z_dim": 10**9}, info)
    assert huge is not None and huge > 10**12  # counted on the meta device: nothing was allocated


def test_a_plugin_that_cannot_be_built_on_meta_is_not_estimated(
    tiny_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from genbench.checks import training_bytes
    from genbench.plugins import get_registry

    registry = get_registry()
    cls = registry.model("tiny")
    original = cls.__init__

    def needs_data(self: Any, hp: Any, data: Any) -> None:
        original(self, hp, data)
        torch.zeros(1).item()  # data-dependent set-up fails on the meta device

    monkeypatch.setattr(cls, "__init__", needs_data)
    assert training_bytes(cls, {}, registry.dataset("digits").info()) is None


def test_memory_limits_come_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from genbench.checks import memory_limit

    total = memory_limit(torch.device("cpu"))
    assert total is None or total > 2**27
    monkeypatch.setattr("genbench.checks.host_memory", lambda: 2**30)
    assert memory_limit(torch.device("cpu")) == 2**30


# -- disk full: the grid stops, finished cells stay ------------------------------------------------
def _no_space_on(cell: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make writing the record of the cell matching ``cell`` (a regex) fail with ENOSPC; return the cells saved."""
    import genbench.run.cell

    saved: list[str] = []
    real = genbench.run.cell.save_cell_files

    def save(record: CellRecord, out_dir: Path, *rest: Any) -> None:
        if re.fullmatch(cell, record.cell_id):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(record, out_dir, *rest)
        saved.append(record.cell_id)

    monkeypatch.setattr(genbench.run.cell, "save_cell_files", save)
    return saved


def test_disk_full_stops_the_grid_after_that_cell_and_keeps_the_finished_ones(
    tiny_models: None, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genbench.run.runner import CellStarted, RunRequest, run_grid

    saved = _no_space_on(r"tiny_z_dim=8_[0-9a-f]+_s0", monkeypatch)
    started: list[str] = []
    protocol = Protocol("digits", ("fid",), eval_samples=20, epochs=1, cache_dir=cache_dir, device="cpu")
    request = RunRequest(("tiny",), protocol, tmp_path, ("z_dim=4,8,16",))
    with pytest.raises(DiskFull) as caught:
        run_grid(request, lambda e: started.append(e.spec.cell_id) if isinstance(e, CellStarted) else None)
    message = str(caught.value)
    assert re.match(
        rf"no space left on device writing {re.escape(str(tmp_path / 'cells'))}/tiny_z_dim=8_\w+_s0;", message
    )
    assert "1 finished cell is kept in" in message and "--resume" in message and "\n" not in message
    readable = [re.sub(r"_[0-9a-f]{10}_", "_", c) for c in started]  # ids carry a digest of the hyper-parameters
    assert readable == ["tiny_z_dim=4_s0", "tiny_z_dim=8_s0"]  # z_dim=16 never started
    assert saved == started[:1]
    rows = (tmp_path / "results.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(f"tiny,digits,0,{started[0]},ok")


def test_disk_full_writing_the_results_table_stops_the_grid(
    tiny_models: None, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import genbench.run.runner
    from genbench.run.runner import RunRequest, run_grid

    calls: list[int] = []

    def full(out_dir: Path, records: Any) -> Path:
        calls.append(len(records))
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(genbench.run.runner, "write_results", full)
    protocol = Protocol("digits", ("fid",), eval_samples=20, epochs=1, cache_dir=cache_dir, device="cpu")
    with pytest.raises(DiskFull, match=f"no space left on device writing {tmp_path}; no finished cell is in"):
        run_grid(RunRequest(("tiny",), protocol, tmp_path, ("z_dim=4,8",)))
    assert calls == [1]


def test_disk_full_is_one_line_and_its_own_exit_status(
    tiny_models: None, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _no_space_on(r"tiny_[0-9a-f]+_s0", monkeypatch)
    code = main([
        "run", "--models", "tiny", "--dataset", "digits", "--metrics", "fid", "--eval-samples", "20",
        "--device", "cpu", "--cache-dir", str(cache_dir), "--out", str(tmp_path / "run"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == DiskFull.exit_code == 74
    assert err.endswith("\n") and err.splitlines()[-1].startswith("error: no space left on device writing")


def test_other_write_errors_still_fail_only_their_cell(
    tiny_models: None, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import genbench.run.cell
    from genbench.run.runner import RunRequest, run_grid

    real = genbench.run.cell.images.save_samples

    def broken(samples: Any, info: Any, reference: Any, path: Path, columns: int) -> None:
        if "z_dim=4" in str(path):
            raise OSError(errno.EIO, "Input/output error")
        real(samples, info, reference, path, columns)

    monkeypatch.setattr(genbench.run.cell.images, "save_samples", broken)
    protocol = Protocol("digits", ("fid",), eval_samples=20, epochs=1, cache_dir=cache_dir, device="cpu")
    result = run_grid(RunRequest(("tiny",), protocol, tmp_path, ("z_dim=4,8",)))
    assert [r.status for r in result.records] == ["failed", "ok"]


def test_a_full_disk_reported_by_torch_as_a_runtime_error_stops_the_grid_too(
    tiny_models: None, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's checkpoint writer wraps the OSError in a RuntimeError; its context still says ENOSPC."""
    import genbench.run.cell
    from genbench.run.runner import RunRequest, run_grid

    def save(obj: Any, f: Any) -> None:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    monkeypatch.setattr(genbench.run.cell.torch, "save", save)
    protocol = Protocol("digits", ("fid",), eval_samples=20, epochs=1, cache_dir=cache_dir, device="cpu")
    cells = re.escape(str(tmp_path / "cells"))
    with pytest.raises(DiskFull, match=rf"writing {cells}/tiny_z_dim=4_[0-9a-f]+_s0; no finished cell"):
        run_grid(RunRequest(("tiny",), protocol, tmp_path, ("z_dim=4,8",)))
    assert not list((tmp_path / "cells").glob("tiny_z_dim=8_*"))
