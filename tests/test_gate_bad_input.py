"""Bad input to compare / baseline / check: one line naming the problem and the valid choices, exit 2.

Table-driven: each row is the command line (``{name}`` stands for a file or folder made by the
fixture), and the start of the message the user must read. Nothing is ever reported as passed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genbench.cli import main
from tests.gate_fakes import GAN, VAE, seeds, write_run

GOOD = {"fid_domain": [100.0, 103.0, 97.0], "precision_domain": [0.70, 0.74, 0.72]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate-bad-input")
    run = write_run(root / "run", seeds("gan", GAN, GOOD))
    write_run(root / "other", seeds("vae", VAE, GOOD))
    elsewhere = write_run(root / "elsewhere", seeds("gan", GAN, GOOD), fingerprint="0" * 64)
    assert main(["baseline", str(run), "-o", str(root / "baseline.json")]) == 0
    assert main(["baseline", str(elsewhere), "-o", str(root / "other-data.json")]) == 0
    good = json.loads((root / "baseline.json").read_text())
    files = {
        "truncated.json": (root / "baseline.json").read_text()[:300],
        "garbage.json": "this is not json",
        "list.json": "[1, 2, 3]",
        "foreign.json": json.dumps({"format": "something-else", "cells": []}),
        "newer.json": json.dumps({**good, "version": 99}),
        "badfield.json": json.dumps(
            {**good, "cells": [{**good["cells"][0], "seeds": [{"seed": "zero", "status": "ok"}]}]}
        ),
        "badmetric.json": json.dumps(
            {
                **good,
                "cells": [
                    {**good["cells"][0], "seeds": [{**good["cells"][0]["seeds"][0], "metrics": {"fid_domain": "x"}}]}
                ],
            }
        ),
        "nan.json": (root / "baseline.json").read_text().replace('"fid_domain": 100.0', '"fid_domain": NaN'),
        "badsuite.toml": 'models = ["gan"]\n[check]\nalpah = 0.1\n',
        "badtol.toml": 'models = ["gan"]\n[check.tolerance]\nfid_domain = "lots"\n',
        "plain.txt": "hello",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "empty").mkdir()
    (root / "half").mkdir()
    (root / "half" / "results.csv").write_text("cell\nx_0123456789_s0\n")
    (root / "half" / "run.json").write_text("{}")
    return {p.stem if p.is_file() else p.name: p for p in root.iterdir()}


CASES = [
    # compare
    (
        ["compare", "{run}", "{other}"],
        "error: {run} and {other} share no cell (same model and hyper-parameters); run has gan_",
    ),
    (
        ["compare", "{run}", "{empty}"],
        "error: {empty}: no results.csv here; pass the folder a `genbench run --out` wrote",
    ),
    (["compare", "{run}", "{plain}"], "error: {plain}: not a folder; pass a folder"),
    (["compare", "{run}", "/nonexistent/run"], "error: /nonexistent/run: no such folder"),
    (
        ["compare", "{run}", "{half}"],
        "error: {half}/results.csv: no 'model' column; not a results table genbench wrote",
    ),
    (
        ["compare", "{run}", "{run}", "--tolerance", "fdi_domain=5%"],
        "error: --tolerance fdi_domain: not a metric of these runs or a speed figure; valid: 'evaluate_speed', "
        "'fid_domain'",
    ),
    (
        ["compare", "{run}", "{run}", "--tolerance", "fid=abc"],
        "error: --tolerance fid=abc: 'abc' is not a percentage or a number",
    ),
    (
        ["compare", "{run}", "{run}", "--tolerance", "fid_domain=-5%"],
        "error: --tolerance fid_domain=-5%: a tolerance cannot be negative",
    ),
    (["compare", "{run}", "{run}", "--alpha", "2"], "error: --alpha 2.0: must be a number between 0 and 1"),
    (["compare", "{run}", "{run}", "--format", "html"], "error: Invalid value for '--format'"),
    (["compare", "{run}", "{run}", "--speed", "fast"], "error: Invalid value for '--speed'"),
    # baseline
    (["baseline", "{empty}", "-o", "{empty}/b.json"], "error: {empty}: no results.csv here"),
    (["baseline", "{run}", "-o", "{empty}/b.txt"], "error: -o {empty}/b.txt: a baseline is a .json file"),
    (
        ["baseline", "{run}", "-o", "{empty}/b.json", "--tolerance", "speed=3"],
        "error: --tolerance speed=3: speed tolerances are percentages",
    ),
    (
        ["baseline", "{run}", "-o", "{empty}/b.json", "--config", "{badsuite}"],
        "error: {badsuite}: [check] unknown key 'alpah'; valid: 'alpha', 'tolerance'",
    ),
    (
        ["baseline", "{run}", "-o", "{empty}/b.json", "--config", "{badtol}"],
        "error: {badtol}: [check.tolerance]: fid_domain: 'lots' is not a percentage",
    ),
    # check
    (["check", "{run}"], "error: genbench check: give exactly one of --baseline FILE and --against RUN"),
    (["check", "{run}", "--baseline", "{baseline}", "--against", "{run}"], "error: genbench check: give exactly one"),
    (["check", "{run}", "--baseline", "{other-data}"], "error: {other-data} was measured differently: gan_"),
    (
        ["check", "{run}", "--baseline", "/nonexistent/b.json"],
        "error: /nonexistent/b.json: no such file; make one with: genbench baseline RUN -o",
    ),
    (["check", "{run}", "--baseline", "{truncated}"], "error: {truncated}: not valid JSON (truncated or damaged?"),
    (["check", "{run}", "--baseline", "{garbage}"], "error: {garbage}: not valid JSON"),
    (["check", "{run}", "--baseline", "{list}"], "error: {list}: the document: expected an object"),
    (
        ["check", "{run}", "--baseline", "{foreign}"],
        'error: {foreign}: not a genbench baseline (no "format": "genbench-baseline")',
    ),
    (
        ["check", "{run}", "--baseline", "{newer}"],
        "error: {newer}: version 99 is newer than this genbench reads (1); upgrade genbench",
    ),
    (["check", "{run}", "--baseline", "{badfield}"], "error: {badfield}: cells[0].seeds[0].seed: expected an integer"),
    (
        ["check", "{run}", "--baseline", "{badmetric}"],
        "error: {badmetric}: cells[0].seeds[0].metrics.fid_domain: expected a finite number",
    ),
    (
        ["check", "{run}", "--baseline", "{nan}"],
        "error: {nan}: not a genbench baseline (NaN is not a number JSON allows)",
    ),
    (
        ["check", "{run}", "--baseline", "{baseline}", "--tolerance", "fid_domain=abc%"],
        "error: --tolerance fid_domain=abc%: 'abc%' is not",
    ),
    (
        ["check", "{run}", "--baseline", "{baseline}", "--tolerance", "nope=5%"],
        "error: --tolerance nope: not a metric of these runs",
    ),
    (["check", "{run}", "--against", "{other}"], "error: {other} and {run} share no cell"),
    (["check", "{empty}", "--against", "{run}"], "error: {empty}: no results.csv here"),
]


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(a[:1] + a[2:4]) for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], world: dict[str, Path], argv: list[str], message: str
) -> None:
    def fill(text: str) -> str:
        for name, path in world.items():
            text = text.replace("{" + name + "}", str(path))
        return text

    code = main([fill(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.startswith(fill(message)), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "passed" not in out
