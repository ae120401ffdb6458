"""A results folder's integrity: one writer, no silent overwrite, resume trusts only whole attempts,
nothing read back escapes the folder, files follow the umask, CSV cells are never spreadsheet formulas."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from genbench.cli import main
from genbench.errors import GenbenchError
from genbench.folder import LOCK_NAME, RunFolder, lock_run_folder
from genbench.hyper import to_dict
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.table import comparison, render, to_markdown
from genbench.results import (
    RESULTS_CSV,
    atomic_write_json,
    current_umask,
    file_digest,
    read_record,
    read_results,
    write_results,
)
from genbench.run.grid import cell_id
from genbench.run.runner import CellFinished, Planned, RunRequest, run_grid
from tests.conftest import TinyHyper

ROOT = Path(__file__).resolve().parents[1]
# The id of the tiny model's one cell at its defaults (ids carry a digest of every hyper-parameter).
CELL = cell_id("tiny", to_dict(TinyHyper()), (), 0)


def tiny_request(out: Path, cache: Path, resume: bool = False, epochs: int = 1) -> RunRequest:
    """One cell of the conftest's tiny model on the packaged digits, no metrics: well under a second."""
    return RunRequest(
        ("tiny",), Protocol("digits", (), eval_samples=50, epochs=epochs, cache_dir=cache), out, resume=resume
    )


def planned(events: list[object]) -> int:
    first = events[0]
    assert isinstance(first, Planned)
    return first.to_run


def python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


# -- A. one writer per folder, nothing overwritten ---------------------------------------------------------
def test_a_second_run_into_a_locked_folder_refuses_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with RunFolder(out):
        cli = "import sys; from genbench.cli import main; sys.exit(main(sys.argv[1:]))"
        done = python(cli, "run", "--models", "gan", "--dataset", "digits", "--epochs", "1", "--out", str(out))
    assert done.returncode == 2, done.stderr
    line = f"error: {out} is in use by another genbench run (pid {os.getpid()} on {socket.gethostname()}, started "
    assert done.stderr.startswith(line), done.stderr
    assert done.stderr.rstrip().endswith("; wait for it or use another --out") and done.stderr.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # refused before any work


def test_the_lock_is_held_for_the_whole_run_and_released_after(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    out = tmp_path / "out"
    seen: list[str] = []

    def on_event(event: object) -> None:
        if isinstance(event, Planned | CellFinished):  # CellFinished comes after results.csv and run.json
            with pytest.raises(GenbenchError, match=f"pid {os.getpid()} on "):
                RunFolder(out).acquire()
            seen.append(type(event).__name__)

    run_grid(tiny_request(out, cache_dir), on_event)
    assert seen == ["Planned", "CellFinished"]
    with lock_run_folder(out) as folder:  # released: free again
        assert folder.locked and json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert (out / LOCK_NAME).read_text() == ""


def test_a_lock_file_left_by_a_killed_run_does_not_block(tmp_path: Path, cache_dir: Path, tiny_models: None) -> None:
    out = tmp_path / "out"
    died = python(
        "import os, sys; from genbench.folder import RunFolder; RunFolder(sys.argv[1]).acquire(); os._exit(9)", str(out)
    )
    assert died.returncode == 9, died.stderr
    assert json.loads((out / LOCK_NAME).read_text())["pid"] != os.getpid()  # its holder is gone, the file stays
    assert run_grid(tiny_request(out, cache_dir)).records[0].status == "ok"


@pytest.mark.parametrize("leftover", [RESULTS_CSV, "run.json", f"cells/{CELL}/record.json"])
def test_a_run_without_resume_into_a_folder_with_results_refuses_before_any_work(
    tmp_path: Path, cache_dir: Path, tiny_models: None, monkeypatch: pytest.MonkeyPatch, leftover: str
) -> None:
    out = tmp_path / "out"
    run_grid(tiny_request(out, cache_dir))
    for name in {RESULTS_CSV, "run.json", f"cells/{CELL}/record.json"} - {leftover}:
        (out / name).unlink()
    before = (out / leftover).read_bytes()

    def no_work(*_: object) -> None:
        raise AssertionError("the dataset was loaded")

    monkeypatch.setattr("genbench.run.runner.load_data", no_work)
    message = f"{out} already holds results ({leftover}); use --resume to continue that run or another --out"
    with pytest.raises(GenbenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_grid(tiny_request(out, cache_dir))
    assert (out / leftover).read_bytes() == before


def test_the_cli_refuses_a_used_folder_with_exit_2(
    tmp_path: Path, cache_dir: Path, tiny_models: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "--models", "tiny", "--dataset", "digits", "--epochs", "1", "--metrics", "fid",
            "--eval-samples", "50", "--cache-dir", str(cache_dir), "--out", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {tmp_path} already holds results (results.csv); use --resume") and err.count("\n") == 1
    )
    assert main([*args, "--resume"]) == 0


# -- B. resume trusts only complete, matching attempts -----------------------------------------------------
KILLED_RERUN = """
import os, sys
from pathlib import Path
import torch
import genbench.run.cell
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.runner import RunRequest, run_grid
from tests.conftest import FakeModels, TinyModel

get_registry().add_plugin("test-models", lambda: FakeModels(TinyModel), "test")
genbench.run.cell.evaluate = lambda *a, **k: os._exit(9)  # killed after samples and checkpoint, before the record
# Another attempt at the same cell (same id: same hyper-parameters and seed) under another protocol (more
# samples: not reusable), training other weights, as a changed plugin version or another machine would.
genbench.run.cell.seed_everything = lambda seed: torch.manual_seed(seed + 7)
out, cache = Path(sys.argv[1]), Path(sys.argv[2])
run_grid(RunRequest(("tiny",), Protocol("digits", (), eval_samples=60, epochs=1, cache_dir=cache), out, resume=True))
"""


def checkpoint_weights(cell: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(cell / "checkpoint.pt", weights_only=True)["state_dict"])


def same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_killed_rerun_leaves_no_record_that_resume_pairs_with_its_checkpoint(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    out, cell = tmp_path / "out", tmp_path / "out" / "cells" / CELL
    run_grid(tiny_request(out, cache_dir))
    attempt1, weights1 = (cell / "record.json").read_bytes(), checkpoint_weights(cell)
    killed = python(KILLED_RERUN, str(out), str(cache_dir))  # a rerun of the same cell, killed mid-cell
    assert killed.returncode == 9, killed.stderr
    assert not same_weights(checkpoint_weights(cell), weights1) and not (cell / "record.json").exists()

    events: list[object] = []
    result = run_grid(tiny_request(out, cache_dir, resume=True), events.append)
    assert planned(events) == 1 and same_weights(checkpoint_weights(cell), weights1)
    assert result.records[0].attempt != json.loads(attempt1)["attempt"]

    # Were attempt 1's record still there beside a killed attempt's files (left by an older genbench,
    # or copied back by hand), its checksums would not match them: rerun all the same.
    assert python(KILLED_RERUN, str(out), str(cache_dir)).returncode == 9
    (cell / "record.json").write_bytes(attempt1)
    events.clear()
    run_grid(tiny_request(out, cache_dir, resume=True), events.append)
    assert planned(events) == 1 and same_weights(checkpoint_weights(cell), weights1)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda cell: (cell / "checkpoint.pt").write_bytes((cell / "checkpoint.pt").read_bytes() + b"\0"),
        lambda cell: (cell / "samples.png").unlink(),
        lambda cell: (cell / "history.csv").write_text("epoch,loss\n1,0\n"),
    ],
    ids=["checkpoint-changed", "samples-missing", "history-rewritten"],
)
def test_a_changed_or_missing_file_is_rerun(
    tmp_path: Path, cache_dir: Path, tiny_models: None, tamper: Callable[[Path], Any]
) -> None:
    out = tmp_path / "out"
    run_grid(tiny_request(out, cache_dir))
    tamper(out / "cells" / CELL)
    events: list[object] = []
    assert run_grid(tiny_request(out, cache_dir, resume=True), events.append).records[0].status == "ok"
    assert planned(events) == 1
    events.clear()
    run_grid(tiny_request(out, cache_dir, resume=True), events.append)
    assert planned(events) == 0  # the rerun's own record and files are trusted


def test_the_record_lists_each_artifact_with_the_digest_of_its_bytes(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    (record,) = run_grid(tiny_request(tmp_path, cache_dir)).records
    figures = {"samples_over_training.png", "samples_over_training.gif"}  # what the tiny model can draw
    assert (
        set(record.artifacts)
        == set(record.checksums)
        == {"samples", "checkpoint", "history", "steps", "curves", *figures}
    )
    for name, rel in record.artifacts.items():
        assert record.checksums[name] == file_digest(tmp_path / rel)
    saved = read_record(tmp_path / "cells" / CELL)
    assert saved is not None and saved.checksums == record.checksums and len(saved.attempt) == 32


# -- B/C. a malformed, foreign or escaping record is not reused and never crashes ------------------------
def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path, Path], None]:
    def apply(out: Path, outside: Path) -> None:
        path = out / "cells" / CELL / "record.json"
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))

    return apply


def _raw(text: str | bytes) -> Callable[[Path, Path], None]:
    def apply(out: Path, outside: Path) -> None:
        path = out / "cells" / CELL / "record.json"
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    return apply


def _point_at(target: Callable[[Path, Path], str]) -> Callable[[Path, Path], None]:
    """The checkpoint artifact names another file, with that file's true digest: only the path can refuse it."""

    def apply(out: Path, outside: Path) -> None:
        path = out / "cells" / CELL / "record.json"
        data = json.loads(path.read_text())
        rel = target(out, outside)
        digest = file_digest(out / rel)  # an absolute rel replaces out
        data["artifacts"]["checkpoint"] = rel
        data["checksums"]["checkpoint"] = {"size": digest.size, "sha256": digest.sha256}
        path.write_text(json.dumps(data))

    return apply


def _symlinked_artifact(out: Path, outside: Path) -> None:
    checkpoint = out / "cells" / CELL / "checkpoint.pt"
    shutil.copy(checkpoint, outside)  # the same bytes: the digest would match if the link were followed
    checkpoint.unlink()
    checkpoint.symlink_to(outside)


def _symlinked_record(out: Path, outside: Path) -> None:
    record = out / "cells" / CELL / "record.json"
    shutil.copy(record, outside)
    record.unlink()
    record.symlink_to(outside)


BAD_RECORDS: dict[str, Callable[[Path, Path], None]] = {
    "list": _raw("[]"),
    "string": _raw('"ok"'),
    "number": _raw("42"),
    "null": _raw("null"),
    "truncated": _raw('{"cell_id": "tiny_s0", '),
    "not-utf8": _raw(b'{"cell_id": "\xff\xfe"}'),
    "deep": _raw("[" * 200_000 + "]" * 200_000),
    "huge-seed": lambda out, _: (out / "cells" / CELL / "record.json").write_text(
        (out / "cells" / CELL / "record.json").read_text().replace('"seed": 0', '"seed": ' + "9" * 5000, 1)
    ),
    "huge-float-seed": _edit(lambda d: d.update(seed=1e308)),
    "bool-seed": _edit(lambda d: d.update(seed=False)),
    "cell-id-mismatch": _edit(lambda d: d.update(cell_id="tiny_s1")),
    "unregistered-model": _edit(lambda d: d.update(model="no-such-model")),
    "metrics-string": _edit(lambda d: d.update(metrics="fid")),
    "metric-text": _edit(lambda d: d.update(metrics={"fid": "1.0"})),
    "timings-list": _edit(lambda d: d.update(timings=[])),
    "timing-number": _edit(lambda d: d.update(timings={"train": 5})),
    "history-numbers": _edit(lambda d: d.update(history=[1, 2])),
    "hyper-list": _edit(lambda d: d.update(hyper=[])),
    "status-unknown": _edit(lambda d: d.update(status="great")),
    "flags-string": _edit(lambda d: d.update(flags="none")),
    "backbones-list": _edit(lambda d: d.update(evaluation={"backbones": ["domain"]})),
    "hyper-deep": _edit(lambda d: d["hyper"].update(z_dim=json.loads("[" * 900 + "]" * 900))),
    "artifact-number": _edit(lambda d: d["artifacts"].update(samples=5)),
    "checksum-negative": _edit(lambda d: d["checksums"]["samples"].update(size=-1)),
    "checksum-not-hex": _edit(lambda d: d["checksums"]["samples"].update(sha256="../" * 21 + "x")),
    "no-checksums": _edit(lambda d: d.pop("checksums")),
    "no-attempt": _edit(lambda d: d.pop("attempt")),
    "no-checkpoint": _edit(lambda d: (d["artifacts"].pop("checkpoint"), d["checksums"].pop("checkpoint"))),
    "quality-text": _edit(lambda d: d.update(quality=[{"epoch": "1"}])),
    "figures-string": _edit(lambda d: d.update(figures={"samples_over_training": "samples_over_training.png"})),
    "figure-notes-list": _edit(lambda d: d.update(figure_notes=["failed"])),
    "figure-file-deleted": lambda out, outside: (out / "cells" / CELL / "samples_over_training.gif").unlink(),
    "dotdot": _point_at(lambda out, outside: os.path.relpath(outside, out)),
    "dotdot-in-cell": _point_at(lambda out, outside: f"cells/{CELL}/" + os.path.relpath(outside, out / "cells" / CELL)),
    "etc-passwd": _point_at(
        lambda out, outside: os.path.relpath("/etc/passwd" if os.path.isfile("/etc/passwd") else outside, out)
    ),
    "absolute": _point_at(lambda out, outside: str(outside)),
    "another-file-inside": _point_at(lambda out, outside: RESULTS_CSV),
    "symlinked-artifact": _symlinked_artifact,
    "symlinked-record": _symlinked_record,
}


@pytest.mark.parametrize("spoil", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_bad_record_is_rerun_not_reused_and_never_crashes(
    tmp_path: Path, cache_dir: Path, tiny_models: None, spoil: Callable[[Path, Path], None]
) -> None:
    out, outside = tmp_path / "run" / "out", tmp_path / "outside.bin"
    outside.write_bytes(b"not a checkpoint")
    run_grid(tiny_request(out, cache_dir))
    spoil(out, outside)
    events: list[object] = []
    (record,) = run_grid(tiny_request(out, cache_dir, resume=True), events.append).records
    assert planned(events) == 1 and record.status == "ok"
    assert all(rel.startswith(f"cells/{CELL}/") for rel in record.artifacts.values())


@pytest.mark.parametrize("linked", ["cells", f"cells/{CELL}"])
def test_a_linked_cell_folder_is_refused_and_nothing_is_written_through_it(
    tmp_path: Path, cache_dir: Path, tiny_models: None, linked: str
) -> None:
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    run_grid(tiny_request(out, cache_dir))
    shutil.copytree(out / linked, elsewhere)  # an identical copy: its record would pass every check
    shutil.rmtree(out / linked)
    (out / linked).symlink_to(elsewhere, target_is_directory=True)
    before = {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()}
    with pytest.raises(GenbenchError, match=f"{out / linked} is a symbolic link; genbench writes only inside"):
        run_grid(tiny_request(out, cache_dir, resume=True))
    assert {p: p.read_bytes() for p in elsewhere.rglob("*") if p.is_file()} == before


def test_run_cell_alone_does_not_write_through_a_linked_cell_folder(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    from genbench.run.cell import run_cell
    from genbench.run.runner import validate

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    (spec,) = validate(tiny_request(out, cache_dir))
    elsewhere.mkdir()
    (out / "cells").mkdir(parents=True)
    spec.out_dir.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(GenbenchError, match="is a symbolic link"):
        run_cell(spec)  # an executor calling cells directly gets the same guard
    assert list(elsewhere.iterdir()) == []


# -- D. files follow the umask -----------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_files_get_the_users_umask_not_0600(tmp_path: Path, cache_dir: Path, tiny_models: None, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert current_umask() == umask and os.umask(umask) == umask  # reading it changed nothing
        run_grid(tiny_request(tmp_path, cache_dir))
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"results.csv", "run.json", "record.json", "samples.png", "checkpoint.pt", "history.csv"} <= names
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}


# -- E. CSV cells are never formulas; numbers stay numbers --------------------------------------------------
def hostile_record() -> CellRecord:
    r = CellRecord("-cmd_s0", "=HYPERLINK(\"http://x\")", "@SUM(A1)", 0, {
        "act": "+relu", "neg": -3.5, "as_text": "-5", "tab": "\tx", "cr": "\rx", "quoted": "'kept", "plain": "relu",
    })  # fmt: skip
    r.error, r.flags = "=1+1", ["-flag: y"]
    r.metrics = {"fid_domain": -3.5, "=evil": 1.0}
    r.artifacts["samples"] = "cells/-cmd_s0/samples.png"
    return r


def test_results_csv_guards_formula_text_and_reads_back_the_original(tmp_path: Path) -> None:
    original = hostile_record()
    write_results(tmp_path, [original])
    with open(tmp_path / RESULTS_CSV, newline="") as f:  # no newline translation: a CR stays a CR
        header, row = list(csv.reader(f))
    cells = dict(zip(header, row, strict=True))
    assert (
        cells["model"] == '\'=HYPERLINK("http://x")' and cells["dataset"] == "'@SUM(A1)" and cells["cell"] == "'-cmd_s0"
    )
    assert (cells["error"], cells["flags"], cells["act"]) == ("'=1+1", "'-flag: y", "'+relu")
    assert (cells["tab"], cells["cr"], cells["quoted"], cells["plain"]) == ("'\tx", "'\rx", "''kept", "relu")
    assert (cells["neg"], cells["fid_domain"], cells["as_text"], cells["'=evil"]) == ("-3.5", "-3.5", "-5", "1")
    formulas = [c for c in [*header, *row] if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert formulas == ["-3.5", "-5", "-3.5"]  # neg, as_text, fid_domain: numbers

    back = read_results(tmp_path).iloc[0]
    assert back["model"] == original.model and back["cell"] == "-cmd_s0" and back["error"] == "=1+1"
    assert (back["act"], back["tab"], back["cr"], back["quoted"]) == ("+relu", "\tx", "\rx", "'kept")
    assert back["neg"] == -3.5 and back["fid_domain"] == -3.5 and back["=evil"] == 1.0


def test_plain_text_is_not_quoted_and_a_carriage_return_is(tmp_path: Path) -> None:
    plain = CellRecord("a_s0", "a", "digits", 0, {"act": "-relu"}, error="x, y")
    write_results(tmp_path, [plain])
    assert (tmp_path / RESULTS_CSV).read_text().splitlines()[1].startswith('a,digits,0,a_s0,ok,"x, y",,\'-relu,')
    plain.error = "line\rbreak"
    write_results(tmp_path, [plain])
    assert read_results(tmp_path)["error"].tolist() == ["line\rbreak"] and len(read_results(tmp_path)) == 1


def test_table_csv_guards_formula_text_and_keeps_numbers(tmp_path: Path) -> None:
    write_results(tmp_path, [hostile_record()])
    atomic_write_json(tmp_path / "run.json", {"metric_better": {"fid_domain": "lower", "=evil": "higher"},
                                              "protocol": {"dataset": "@SUM(A1)", "metrics": ["fid"]}})  # fmt: skip
    text = render(tmp_path, "csv")
    assert isinstance(text, str)
    header, row = list(csv.reader(io.StringIO(text)))
    cells = dict(zip(header, row, strict=True))
    assert cells["model"] == '\'=HYPERLINK("http://x")' and cells["'=evil"] == "1" and cells["FID (domain)"] == "-3.5"
    assert cells["status"] == "ok; -flag"
    assert not any(c.startswith(("=", "+", "@", "\t", "\r")) for c in [*header, *row])


# -- C. sample previews read from results.csv stay inside the folder ----------------------------------------
@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd.png", "/etc/passwd", "https://evil.example/pixel.png", "cells/x/../../../y.png",
     "cells/x/a.png)![x](http://e", "C:\\x.png", "javascript:alert(1)", "samples.png"],
)  # fmt: skip
def test_a_preview_path_outside_cells_is_never_linked(path: str) -> None:
    good, bad = CellRecord("a_s0", "a", "digits", 0, {"z": 1}), CellRecord("b_s0", "b", "digits", 0, {"z": 2})
    good.artifacts["samples"], bad.artifacts["samples"] = "cells/a_s0/samples.png", path
    df = pd.DataFrame([good.row(), bad.row()])
    table = comparison(df, {"metric_better": {}, "protocol": {"dataset": "digits"}})
    assert table.previews == ["cells/a_s0/samples.png", ""]
    md = to_markdown(table)
    assert md.count("![samples](") == 1 and f"]({path})" not in md


def test_a_hyper_parameter_or_metric_cannot_replace_a_rows_identity(tmp_path: Path) -> None:
    """A record.json whose hyper (or metrics) names an identity column still gives a row genbench reads back."""
    from genbench.protocol import CellRecord
    from genbench.results import read_results, write_results

    record = CellRecord("gan_s0", "gan", "digits", 0, {"z_dim": 8, "status": "bogus", "cell": "../x", "seed": "a"})
    record.metrics = {"model": 1.0, "fid_domain": 3.0}
    row = record.row()
    assert (row["model"], row["seed"], row["cell"], row["status"]) == ("gan", 0, "gan_s0", "ok")
    assert list(row)[:7] == ["model", "dataset", "seed", "cell", "status", "error", "flags"]
    write_results(tmp_path, [record])
    frame = read_results(tmp_path)
    assert list(frame["status"]) == ["ok"] and list(frame["cell"]) == ["gan_s0"] and list(frame["z_dim"]) == [8]
