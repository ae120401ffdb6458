"""genbench compare / baseline / check through the command line, on run folders with chosen numbers.

The folders are written by genbench's own writers (tests/gate_fakes.py), so each verdict can be
asserted exactly; test_gate_e2e.py runs the same commands on real runs of the digits dataset.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from genbench.cli import main
from genbench.reporting.significance import seeds_for_power
from tests.gate_fakes import GAN, VAE, evaluation, record, seeds, write_run

GOOD = {"fid_domain": [100.0, 103.0, 97.0], "precision_domain": [0.70, 0.74, 0.72]}
WORSE = {"fid_domain": [150.0, 148.0, 155.0], "precision_domain": [0.71, 0.73, 0.72]}


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(markdown: str) -> dict[tuple[str, str], list[str]]:
    """The figure table of a Markdown output: (cell, figure) -> cells."""
    out = {}
    for line in markdown.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 7 and parts[0] not in ("cell", "---"):
            out[(parts[0], parts[1])] = parts
    return out


def label(model: str, hyper: dict[str, object]) -> str:
    return record(model, hyper, 0, {}).cell_id.removesuffix("_s0")


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_run(tmp_path / "base", seeds("gan", GAN, GOOD) + seeds("vae", VAE, GOOD))


def test_compare_calls_a_clear_worsening_worse_and_noise_no_significant_change(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path
) -> None:
    head = write_run(tmp_path / "head", seeds("gan", GAN, WORSE) + seeds("vae", VAE, GOOD, first_seed=3))
    code, out, _ = cli(capsys, "compare", base, head, "--format", "markdown")
    assert code == 0
    table = rows(out)
    gan, vae = label("gan", GAN), label("vae", VAE)
    assert table[(gan, "fid_domain")][5] == "**worse**" and table[(gan, "fid_domain")][4] == "+51.0%"
    assert table[(gan, "fid_domain")][2] == "100.0 ± 3.0 (3 seeds)"
    assert "Welch t, q=" in table[(gan, "fid_domain")][6]
    assert table[(gan, "precision_domain")][5] == "no significant change"
    assert table[(vae, "fid_domain")][5] == "no significant change"
    assert "within tolerance (5%)" in table[(vae, "fid_domain")][6]
    # the reverse is better
    _, out, _ = cli(capsys, "compare", head, base, "--format", "markdown")
    assert rows(out)[(gan, "fid_domain")][5] == "better"


def test_compare_lists_cells_on_one_side_and_matches_cells_named_differently(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = write_run(tmp_path / "a", seeds("gan", GAN, GOOD, readable="gan_z_dim=64") + seeds("vae", VAE, GOOD))
    other = {**VAE, "z_dim": 32}
    b = write_run(tmp_path / "b", seeds("gan", GAN, GOOD, readable="gan") + seeds("vae", other, GOOD))
    code, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    assert code == 0
    assert {cell for cell, _ in rows(out)} == {label("gan", GAN).replace("gan_", "gan_z_dim=64_")}
    assert f"- only in A: `{label('vae', VAE)}`" in out and f"- only in B: `{label('vae', other)}`" in out


def test_one_seed_a_side_is_judged_by_the_tolerance_alone_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = write_run(tmp_path / "a", seeds("gan", GAN, {"fid_domain": [100.0], "precision_domain": [0.7]}))
    b = write_run(tmp_path / "b", seeds("gan", GAN, {"fid_domain": [120.0], "precision_domain": [0.71]}))
    _, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    fid, precision = rows(out)[(label("gan", GAN), "fid_domain")], rows(out)[(label("gan", GAN), "precision_domain")]
    assert fid[5] == "**worse**" and fid[6] == "1 seed a side: tolerance only"
    assert precision[5] == "no significant change" and "run 2+ seeds a side for a test" in precision[6]
    # no test at all: the header says so, instead of "Benjamini-Hochberg over 0 metrics and 0 speed figures"
    assert "one seed a side: no test is possible, only the tolerances decide" in out and "Benjamini" not in out
    _, out, _ = cli(capsys, "check", b, "--against", a)
    assert "one seed a side: no test is possible, only the tolerances decide" in out and "Benjamini" not in out


def test_a_tie_says_how_many_seeds_would_settle_it(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fa, fb = [100.0, 110.0, 90.0], [104.0, 114.0, 94.0]
    a = write_run(tmp_path / "a", seeds("gan", GAN, {"fid_domain": fa}))
    b = write_run(tmp_path / "b", seeds("gan", GAN, {"fid_domain": fb}))
    _, out, _ = cli(capsys, "compare", a, b, "--format", "markdown", "--tolerance", "fid_domain=2%")
    fid = rows(out)[(label("gan", GAN), "fid_domain")]
    # spread 10, a 2% change of 100 is 2; one metric is tested, so the adjustment asks alpha / 1 of it
    expected = seeds_for_power(10.0, 2.0, 0.01 / 1)
    assert fid[5] == "no significant change"
    assert f"{expected} seeds a side would detect a change of 2% (80% power)" in fid[6], fid


def test_compare_formats_json_and_csv_carry_the_numbers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path
) -> None:
    head = write_run(tmp_path / "head", seeds("gan", GAN, WORSE) + seeds("vae", VAE, GOOD))
    _, out, _ = cli(capsys, "compare", base, head, "--format", "json")
    doc = json.loads(out)
    fid = next(f for f in doc["figures"] if f["figure"] == "fid_domain" and f["cell"].startswith("gan"))
    assert fid["a_values"] == GOOD["fid_domain"] and fid["verdict"] == "worse" and 0 < fid["q"] < 0.01
    assert {f["figure"] for f in doc["figures"]} == {"fid_domain", "precision_domain", "train_speed", "evaluate_speed"}
    # sampling 200 images took 4 ms: too short to time, so it is not judged, and a note says so
    assert (
        "sample_speed not judged: the phase lasted 4 ms, 4 ms (median per cell, reference side), too short"
        in " ".join(doc["notes"])
    )
    _, out, _ = cli(capsys, "compare", base, head, "--format", "csv")
    frame = pd.read_csv(pd.io.common.StringIO(out))
    assert {"cell", "figure", "a_mean", "b_mean", "verdict", "q", "seeds_needed", "a_seeds"} <= set(frame.columns)
    assert frame.loc[(frame.figure == "fid_domain") & frame.cell.str.startswith("gan"), "verdict"].item() == "worse"
    _, out, _ = cli(capsys, "compare", base, head)  # rich, in a pipe
    assert "worse" in out and "fid_domain" in out


@pytest.mark.parametrize(
    ("change", "refused", "compared", "phrase"),
    [
        (
            {"domain": {"weights": "c3d4e5f60718293a"}},
            ["fid_domain", "precision_domain"],
            ["train_speed"],
            "fid_domain: backbone domain weights differ (9a808de91941… vs c3d4e5f60718…)",
        ),
        (
            {"n_generated": 1000},
            ["fid_domain"],
            ["train_speed"],
            "fid_domain: generated sample counts differ (200 vs 1000)",
        ),
        ({"reference_split": "train"}, ["fid_domain"], [], "fid_domain: reference split differs ('test' vs 'train')"),
        ({"torch": "2.15.0"}, ["fid_domain", "train_speed"], [], "torch version differs ('2.14.1+cu130' vs '2.15.0')"),
        ({"kid_subsets": 50}, ["kid_domain"], ["fid_domain"], "kid_domain: kid subsets differ (100 vs 50)"),
    ],
)
def test_what_was_measured_differently_is_refused_by_name(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    change: dict[str, object],
    refused: list[str],
    compared: list[str],
    phrase: str,
) -> None:
    values = {**GOOD, "kid_domain": [1.0, 1.1, 0.9]}
    a = write_run(tmp_path / "a", seeds("gan", GAN, values))
    b = write_run(tmp_path / "b", seeds("gan", GAN, values, ev=evaluation(**change)))
    code, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    assert code == 0
    table = rows(out)
    cell = label("gan", GAN)
    for name in refused:
        assert table[(cell, name)][5] == "**refused**", name
    for name in compared:
        assert table[(cell, name)][5] != "**refused**", name
    assert phrase in out
    # the gate never compares such numbers: a check against them is bad input
    code, _, err = cli(capsys, "check", b, "--against", a)
    assert code == 2 and phrase in err and err.count("\n") == 1


def test_other_dataset_content_and_device_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    a = write_run(tmp_path / "a", seeds("gan", GAN, GOOD))
    b = write_run(tmp_path / "b", seeds("gan", GAN, GOOD), fingerprint="0" * 64)
    _, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    assert "fid_domain: dataset content differs (fingerprint 410aa8a7290c… vs 000000000000…)" in out
    c = write_run(tmp_path / "c", seeds("gan", GAN, GOOD, device="cuda:0"))
    _, out, _ = cli(capsys, "compare", a, c, "--format", "markdown")
    table = rows(out)
    assert table[(label("gan", GAN), "train_speed")][5] == "**refused**"
    assert table[(label("gan", GAN), "fid_domain")][5] == "no significant change"  # quality is comparable
    assert "train_speed: device differs (cpu vs cuda:0)" in out


RECIPE = {"version": 2, "dataset": "digits", "data": "410aa8a7290ce535" + "0" * 48, "seed": 0, "epochs": 14}


def test_a_domain_classifier_retrained_from_the_same_recipe_is_compared_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Other weights from one recipe are float drift of the training (another CPU): compared, and said."""
    values = {**GOOD, "kid_domain": [1.0, 1.1, 0.9]}
    a = write_run(tmp_path / "a", seeds("gan", GAN, values, ev=evaluation(domain={"recipe": RECIPE})))
    retrained = evaluation(domain={"weights": "c3d4e5f60718293a", "recipe": dict(RECIPE)})
    b = write_run(tmp_path / "b", seeds("gan", GAN, values, first_seed=3, ev=retrained))
    note = (
        "fid_domain, precision_domain, kid_domain: backbone domain retrained from the same recipe (another CPU or "
        "thread count rounds differently); weights differ (9a808de91941… vs c3d4e5f60718…), compared within the "
        "tolerances"
    )
    code, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    assert code == 0 and f"- note: {note}" in out
    assert all(r[5] == "no significant change" for r in rows(out).values())
    baseline = tmp_path / "baseline.json"
    assert cli(capsys, "baseline", a, "-o", baseline)[0] == 0
    assert json.loads(baseline.read_text())["evaluation"]["backbones"]["domain"]["recipe"] == RECIPE
    report = tmp_path / "check.json"
    code, out, _ = cli(capsys, "check", b, "--baseline", baseline, "--json", report)
    assert code == 0 and "✅ passed" in out and f"- note: {note}" in out
    assert note in json.loads(report.read_text())["notes"]
    # the same weights need no note
    same = write_run(tmp_path / "same", seeds("gan", GAN, values, ev=evaluation(domain={"recipe": RECIPE})))
    assert "retrained" not in cli(capsys, "compare", a, same, "--format", "markdown")[1]


@pytest.mark.parametrize(
    ("theirs", "phrase"),
    [
        (  # another recipe: another classifier
            {"recipe": {**RECIPE, "epochs": 10}},
            "fid_domain: backbone domain weights differ (9a808de91941… vs c3d4e5f60718…): trained from another "
            "recipe (epochs 14 vs 10)",
        ),
        (  # a weights file the user gave (no recipe): its hash alone decides
            {},
            "fid_domain: backbone domain weights differ (9a808de91941… vs c3d4e5f60718…) (and 1 more)",
        ),
    ],
)
def test_a_domain_classifier_of_another_recipe_or_a_given_file_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, theirs: dict[str, object], phrase: str
) -> None:
    a = write_run(tmp_path / "a", seeds("gan", GAN, GOOD, ev=evaluation(domain={"recipe": RECIPE})))
    other = evaluation(domain={"weights": "c3d4e5f60718293a", **theirs})
    b = write_run(tmp_path / "b", seeds("gan", GAN, GOOD, ev=other))
    _, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    assert rows(out)[(label("gan", GAN), "fid_domain")][5] == "**refused**" and "retrained" not in out
    baseline = tmp_path / "baseline.json"
    assert cli(capsys, "baseline", a, "-o", baseline)[0] == 0
    code, _, err = cli(capsys, "check", b, "--baseline", baseline)
    assert code == 2 and phrase in err and err.count("\n") == 1


def test_baseline_then_check_passes_on_noise_and_fails_on_a_regression_with_every_report(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = tmp_path / "benchmarks" / "baseline.json"
    code, out, _ = cli(capsys, "baseline", base, "-o", baseline, "--tolerance", "speed=20%")
    assert code == 0 and f"wrote {baseline}: 2 cells, 6 seeds" in out
    doc = json.loads(baseline.read_text())
    assert doc["format"] == "genbench-baseline" and doc["version"] == 1
    assert doc["check"]["tolerance"] == {"speed": "20%"}
    gan = next(c for c in doc["cells"] if c["model"] == "gan")
    assert gan["hyper"] == GAN and [s["metrics"]["fid_domain"] for s in gan["seeds"]] == GOOD["fid_domain"]
    assert gan["seeds"][0]["speed"]["train"] == pytest.approx(2000.0) and gan["seeds"][0]["calibration"] == 20000.0
    assert "data_dir" not in doc["protocol"] and doc["environment"]["calibration"].startswith("v1")

    noise = write_run(tmp_path / "noise", seeds("gan", GAN, GOOD, first_seed=7) + seeds("vae", VAE, GOOD))
    code, out, _ = cli(capsys, "check", noise, "--baseline", baseline)
    assert code == 0 and "## genbench check: ✅ passed" in out

    head = write_run(tmp_path / "head", seeds("gan", GAN, WORSE) + seeds("vae", VAE, GOOD))
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md, js, junit = tmp_path / "r" / "check.md", tmp_path / "r" / "check.json", tmp_path / "r" / "junit.xml"
    code, out, _ = cli(capsys, "check", head, "--baseline", baseline, "--markdown", md, "--json", js, "--junit", junit)
    assert code == 1
    assert "## genbench check: ❌ 1 regression" in out
    line = "fid_domain worse: 100 -> 151 (+51.0%; tolerance 5%; Welch t, one-sided, q="
    assert f"| {label('gan', GAN)} | fid_domain | {line}" in out
    assert md.read_text() == out and summary.read_text() == out + "\n"
    result = json.loads(js.read_text())
    assert result["exit_code"] == 1 and not result["passed"]
    assert [(r["cell"], r["what"]) for r in result["regressions"]] == [(label("gan", GAN), "fid_domain")]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == [(label("gan", GAN), "fid_domain")]
    names = {(c.get("classname"), c.get("name")) for c in suite.iter("testcase")}
    assert (label("vae", VAE), "precision_domain") in names and (label("vae", VAE), "status") in names


def test_baseline_writes_no_weights_and_names_backbones_read_from_a_given_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path
) -> None:
    manifest = json.loads((base / "run.json").read_text())
    manifest["protocol"]["backbone_weights"] = {"domain": "w/domain.pt"}
    (base / "run.json").write_text(json.dumps(manifest))
    out_dir = tmp_path / "benchmarks"
    code, out, _ = cli(capsys, "baseline", base, "-o", out_dir / "baseline.json")
    assert code == 0 and [p.name for p in out_dir.iterdir()] == ["baseline.json"]
    assert out.splitlines()[1] == (
        "backbone domain was read from w/domain.pt: a check compares only runs made with the same weights "
        "(--backbone-weights domain=w/domain.pt, or backbone_weights in the suite)"
    )
    assert "backbone_weights" not in json.loads((out_dir / "baseline.json").read_text())["protocol"]


def test_failed_seeds_and_new_flags_are_regressions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", seeds("gan", GAN, GOOD) + seeds("vae", VAE, GOOD))
    broken = seeds("gan", GAN, GOOD)
    broken[1] = record("gan", GAN, 1, {}, status="failed")
    collapse = ["collapse: 1/10 classes covered"]
    flagged = [record("vae", VAE, i, {k: v[i] for k, v in GOOD.items()}, flags=collapse if i else []) for i in range(3)]
    head = write_run(tmp_path / "head", broken + flagged)
    code, out, _ = cli(capsys, "check", head, "--against", base)
    assert code == 1
    assert f"| {label('gan', GAN)} | status | 1/3 seeds failed (reference: all ok); s1: RuntimeError: boom |" in out
    assert (
        f"| {label('vae', VAE)} | flag:collapse | newly flagged collapse in 2/3 seeds (reference: 0/3): "
        "collapse: 1/10 classes covered |" in out
    )
    # a flag in one seed of three is noise, not a new state
    one = [
        record("vae", VAE, i, {k: v[i] for k, v in GOOD.items()}, flags=collapse if i == 2 else []) for i in range(3)
    ]
    head = write_run(tmp_path / "head2", seeds("gan", GAN, GOOD) + one)
    code, out, _ = cli(capsys, "check", head, "--against", base)
    assert code == 0, out


def test_speed_against_a_baseline_is_judged_as_ratios_to_the_calibration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = write_run(tmp_path / "base", seeds("gan", GAN, {**GOOD, "train": [2000.0, 2050.0, 1950.0]}))
    baseline = tmp_path / "baseline.json"
    assert cli(capsys, "baseline", base, "-o", baseline)[0] == 0
    # a machine twice as slow: the model and the calibration alike -> no regression
    slow_machine = {**GOOD, "train": [1000.0, 1020.0, 980.0], "calibration": [10000.0, 10100.0, 9900.0]}
    code, out, _ = cli(
        capsys, "check", write_run(tmp_path / "m", seeds("gan", GAN, slow_machine)), "--baseline", baseline
    )
    assert code == 0, out
    # the model 40% slower per image on the same machine -> a speed regression
    slower = {**GOOD, "train": [1430.0, 1400.0, 1450.0]}
    code, out, _ = cli(capsys, "check", write_run(tmp_path / "s", seeds("gan", GAN, slower)), "--baseline", baseline)
    assert code == 1 and f"| {label('gan', GAN)} | train_speed | train_speed worse:" in out and "time per image" in out
    # raw figures of two runs: the slow machine reads as slower
    code, out, _ = cli(capsys, "check", tmp_path / "m", "--against", base)
    assert code == 1 and "train_speed" in out


def test_a_cell_missing_from_the_run_is_bad_input_but_a_regression_wins(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path
) -> None:
    only_gan = write_run(tmp_path / "head", seeds("gan", GAN, GOOD))
    code, out, _ = cli(capsys, "check", only_gan, "--against", base)
    assert code == 2 and "### Cells of the reference run missing from the run" in out and label("vae", VAE) in out
    worse = write_run(tmp_path / "worse", seeds("gan", GAN, WORSE))
    assert cli(capsys, "check", worse, "--against", base)[0] == 1


def test_tolerances_from_the_command_line_win_over_the_suite_and_the_baseline(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, base: Path
) -> None:
    baseline = tmp_path / "baseline.json"
    assert cli(capsys, "baseline", base, "-o", baseline, "--tolerance", "fid_domain=80%")[0] == 0
    head = write_run(tmp_path / "head", seeds("gan", GAN, WORSE) + seeds("vae", VAE, GOOD))
    assert cli(capsys, "check", head, "--baseline", baseline)[0] == 0  # +50% is within the baseline's 80%
    suite = tmp_path / "suite.toml"
    suite.write_text('models = ["gan"]\n[check]\nalpha = 0.05\n[check.tolerance]\nfid_domain = "10%"\n')
    assert cli(capsys, "check", head, "--baseline", baseline, "--config", suite)[0] == 1
    code, out, _ = cli(
        capsys, "check", head, "--baseline", baseline, "--config", suite, "--tolerance", "fid_domain=60%"
    )
    assert code == 0 and "alpha 0.05" in out


def test_speed_of_other_thread_counts_or_clocks_is_refused_and_quality_still_compared(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    a = write_run(tmp_path / "a", seeds("gan", GAN, GOOD), environment={"torch_threads": "1"})
    b = write_run(tmp_path / "b", seeds("gan", GAN, GOOD), environment={"torch_threads": "2"})
    _, out, _ = cli(capsys, "compare", a, b, "--format", "markdown")
    table = rows(out)
    assert table[(label("gan", GAN), "train_speed")][5] == "**refused**"
    assert "train_speed: torch threads differ (1 vs 2)" in out
    assert table[(label("gan", GAN), "fid_domain")][5] == "no significant change"
    cpu = seeds("gan", GAN, GOOD)
    for r in cpu:
        for t in r.timings.values():
            t.cpu_seconds = t.seconds  # timings with the process's CPU time: speed on the CPU clock
    c = write_run(tmp_path / "c", cpu, environment={"torch_threads": "1"})
    code, _, err = cli(capsys, "check", c, "--against", a)
    assert code == 2 and "train_speed: clocks differ (wall time vs cpu time)" in err


def test_calibrated_speed_without_a_calibration_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    records = seeds("gan", GAN, GOOD)
    for r in records:
        del r.timings["calibrate"]  # a run made before genbench timed the calibration workload
    old = write_run(tmp_path / "old", records)
    new = write_run(tmp_path / "new", seeds("gan", GAN, GOOD))
    _, out, _ = cli(capsys, "compare", old, new, "--format", "markdown", "--speed", "calibrated")
    assert f"train_speed: no calibration timed in {old}; compare raw figures (--speed raw)" in out
    _, out, _ = cli(capsys, "compare", old, new, "--format", "markdown")  # raw figures need none
    assert rows(out)[(label("gan", GAN), "train_speed")][5] == "no significant change"


def test_a_baseline_with_evaluated_rows_needs_them_in_the_run_as_docs_ci_says(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path
) -> None:
    """A `genbench eval` row in the baseline's folder is a baseline cell: a run without it is "missing cells"
    (exit 2), which docs/ci.md tells CI users, naming the heading the check prints."""
    import numpy as np

    base = write_run(tmp_path / "base", seeds("gan", GAN, GOOD))
    head = write_run(tmp_path / "head", seeds("gan", GAN, GOOD))
    images = np.random.default_rng(0).integers(0, 255, (200, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "s.npz", images=images)
    assert main(["eval", "--images", str(tmp_path / "s.npz"), "--out", str(base), "--cache-dir", str(cache_dir)]) == 0
    assert cli(capsys, "baseline", base, "-o", tmp_path / "b.json")[0] == 0
    code, out, _ = cli(capsys, "check", head, "--baseline", tmp_path / "b.json")
    heading = "### Cells of the baseline missing from the run"
    assert code == 2 and "missing cells" in out and heading in out and "`s_" in out.split(heading)[1]
    doc = " ".join((Path(__file__).resolve().parents[1] / "docs" / "ci.md").read_text(encoding="utf-8").split())
    said = "`genbench eval` added to it as well: a checked run must then hold them too, else the check reports them as"
    assert f"{said} `{heading}`" in doc
