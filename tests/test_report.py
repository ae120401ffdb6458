"""Comparison tables: the best value per metric, failed rows, columns like the lab report's, seeds aggregated."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from genbench.protocol import CellRecord
from genbench.reporting.stats import Summary
from genbench.reporting.table import comparison, format_summary, load_table, render, to_csv, to_markdown, to_rich
from genbench.results import atomic_write_json, records_frame, write_results

T_975_DF2 = 4.302652729911275  # Student's t, 97.5th percentile, 2 degrees of freedom (tables)


def record(
    model: str,
    z: int,
    fid: float | None,
    status: str = "ok",
    elbo: float | None = None,
    seed: int = 0,
) -> CellRecord:
    r = CellRecord(
        f"{model}_{z}_s{seed}", model, "digits", seed, {"z_dim": z, "lr": 2e-4, "batch_size": 64, "epochs": 5}
    )
    r.status = status  # type: ignore[assignment]
    if status != "ok":
        r.error = "RuntimeError: boom"
    if fid is not None:
        r.metrics["fid_domain"] = fid
    if elbo is not None:
        r.metrics["elbo"] = elbo
    r.artifacts["samples"] = f"cells/{r.cell_id}/samples.png"
    return r


def seeds(model: str, z: int, fids: list[float], statuses: list[str] | None = None) -> list[CellRecord]:
    statuses = statuses or ["ok"] * len(fids)
    return [record(model, z, f, s, seed=i) for i, (f, s) in enumerate(zip(fids, statuses, strict=True))]


MANIFEST: dict[str, Any] = {
    "metric_better": {"fid_domain": "lower", "elbo": "higher"},
    "protocol": {"dataset": "digits"},
}
EVALUATION = {
    "backbones": {
        "domain": {
            "extractor": "genbench-domain",
            "weights": "ab12cd34ef56",
            "layer": "penultimate",
            "logits_layer": "logits",
            "resize": "none (native 28x28)",
            "accuracy": 0.971,
        },
    },
    "n_generated": 1000,
    "n_reference": 900,
    "reference_split": "test",
    "kid_subsets": 100,
    "kid_subset_size": 1000,
    "isc_splits": 10,
    "prc_neighborhood": 3,
    "torch_fidelity": "0.4.0",
    "torch": "2.14.1",
}


def rich_text(table: Any, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


# -- one seed: the table as before -------------------------------------------------------------------
def test_best_value_per_metric_is_marked_and_failed_rows_excluded() -> None:
    df = records_frame([
        record("gan", 32, 40.0), record("gan", 64, 12.5), record("vae", 16, 30.0, elbo=-90.0),
        record("vae", 32, 31.0, elbo=-80.0), record("gan", 128, 1.0, status="failed"),
    ])  # fmt: skip
    table = comparison(df, MANIFEST)
    assert table.headers[:5] == ["model", "z_dim", "lr", "batch", "epochs"]
    assert table.headers[-2:] == ["ELBO", "status"] and "seed" not in table.headers
    fid_col, elbo_col = table.headers.index("FID (domain)"), table.headers.index("ELBO")
    assert table.best == {(1, fid_col), (3, elbo_col)}  # lowest FID among ok rows, highest ELBO
    assert not table.ties and not table.intervals
    assert table.rows[4][-1] == "failed: RuntimeError: boom"
    assert table.rows[0][elbo_col] == "—"
    assert table.rows[1][fid_col] == "12.5"  # the bare value, as always with one seed
    md = to_markdown(table)
    assert "| **12.5** |" in md and "| **-80** |" in md
    assert "one seed per cell: no confidence interval" in table.caption
    assert md.rstrip().splitlines()[-1] == table.caption and "≈" not in md.split("\n\n")[1]


def test_only_varied_hyper_parameters_join_the_lab_report_columns() -> None:
    a, b = record("gan", 32, 1.0), record("gan", 32, 2.0)
    a.hyper["loss"], b.hyper["loss"] = "bce", "hinge"
    a.cell_id, b.cell_id = "gan_loss=bce_s0", "gan_loss=hinge_s0"
    a.hyper["beta2"] = b.hyper["beta2"] = 0.999
    table = comparison(records_frame([a, b]), MANIFEST)
    assert "loss" in table.headers and "beta2" not in table.headers
    assert len(table.rows) == 2  # different hyper-parameters: two cells, not two seeds of one
    assert isinstance(records_frame([a]), pd.DataFrame)


def test_cells_whose_values_round_alike_are_two_rows_that_read_apart(tmp_path: Path) -> None:
    records = []
    for lr, digest in ((2e-4, "53c2a767e6"), (0.0002000001, "67bbe4b6ec")):
        for i, fid in enumerate((10.0, 12.0) if lr == 2e-4 else (20.0, 22.0)):
            r = record("gan", 32, fid, seed=i)
            r.hyper["lr"], r.cell_id = lr, f"gan_lr=0.0002_{digest}_s{i}"  # one readable part, two digests
            records.append(r)
    write_results(tmp_path, records)
    atomic_write_json(tmp_path / "run.json", MANIFEST)
    table = load_table(tmp_path)
    lr, fid = table.headers.index("lr"), table.headers.index("FID (domain)")
    assert [(row[lr], row[fid]) for row in table.rows] == [("0.0002", "11.00 ± 1.41"), ("0.0002000001", "21.00 ± 1.41")]


# -- several seeds ------------------------------------------------------------------------------------
def test_three_seeds_aggregate_to_mean_std_and_t_interval() -> None:
    df = records_frame([*seeds("gan", 32, [10.0, 12.0, 14.0]), *seeds("vae", 16, [20.0, 21.0, 22.0])])
    table = comparison(df, MANIFEST)
    assert len(table.rows) == 2 and table.seeds == 3
    fid = table.headers.index("FID (domain)")
    s = table.summaries[(0, fid)]
    half = T_975_DF2 * 2.0 / math.sqrt(3)  # std of 10, 12, 14 is 2 (ddof=1)
    assert (s.n, s.mean, s.std) == (3, pytest.approx(12.0), pytest.approx(2.0))
    assert (s.ci_low, s.ci_high) == (pytest.approx(12.0 - half), pytest.approx(12.0 + half))
    assert table.rows[0][fid] == "12.00 ± 2.00"
    assert table.intervals[(0, fid)] == "[7.03, 16.97]"
    assert table.rows[0][-1] == "ok"
    assert table.previews == ["cells/gan_32_s0/samples.png", "cells/vae_16_s0/samples.png"]


def test_clear_best_when_intervals_do_not_overlap() -> None:
    df = records_frame([*seeds("gan", 32, [10.0, 12.0, 14.0]), *seeds("vae", 16, [30.0, 31.0, 32.0])])
    table = comparison(df, MANIFEST)
    fid = table.headers.index("FID (domain)")
    assert table.best == {(0, fid)} and not table.ties
    md = to_markdown(table)
    assert "| **12.00 ± 2.00** [7.03, 16.97] |" in md
    assert "31.00 ± 1.00 [28.52, 33.48]" in md


def test_overlapping_intervals_are_a_tie_not_a_best() -> None:
    df = records_frame([
        *seeds("gan", 32, [10.0, 12.0, 14.0]),  # [7.0, 17.0]
        *seeds("gan", 64, [11.0, 13.0, 15.0]),  # mean 13: better than nothing, but within the interval
        *seeds("vae", 16, [40.0, 41.0, 42.0]),  # clearly worse: unmarked
    ])  # fmt: skip
    table = comparison(df, MANIFEST)
    fid = table.headers.index("FID (domain)")
    assert not table.best and table.ties == {(0, fid), (1, fid)}
    md = to_markdown(table)
    assert "| 12.00 ± 2.00 ≈ [7.03, 16.97] |" in md and "| 13.00 ± 2.00 ≈ [8.03, 17.97] |" in md
    assert "**" not in md.split("\n\n")[1]  # nothing bold in the table body
    assert "≈ tied within 95% CI" in md.rstrip().splitlines()[-1]
    text = rich_text(to_rich(table))
    assert "12.00 ± 2.00 ≈" in text and "[7.03, 16.97]" in text and "≈ tied within 95% CI" in text
    csv = pd.read_csv(io.StringIO(to_csv(table)))
    assert list(csv["best"].fillna("")) == ["≈ FID (domain)", "≈ FID (domain)", ""]


def test_failed_seed_is_excluded_but_visible_as_two_of_three() -> None:
    df = records_frame([
        *seeds("gan", 32, [10.0, 1.0, 14.0], ["ok", "failed", "ok"]),  # the failed seed's 1.0 must not count
        *seeds("vae", 16, [30.0, 31.0, 32.0]),
        *seeds("gan", 64, [5.0, 5.0, 5.0], ["diverged", "failed", "failed"]),
    ])  # fmt: skip
    table = comparison(df, MANIFEST)
    fid = table.headers.index("FID (domain)")
    s = table.summaries[(0, fid)]
    assert s.n == 2 and s.mean == pytest.approx(12.0) and s.std == pytest.approx(math.sqrt(8))
    assert table.rows[0][-1] == "2/3 ok; s1 failed: RuntimeError: boom"
    assert table.intervals[(0, fid)].startswith("n=2 [")
    assert table.rows[2][-1] == "0/3 ok; diverged, failed: RuntimeError: boom"
    assert table.rows[2][fid] == "—" and (2, fid) not in table.intervals
    assert table.ok_seeds == [(2, 3), (3, 3), (0, 3)]
    assert (2, fid) not in table.best | table.ties  # a group without an ok seed never competes
    text = rich_text(to_rich(table))
    assert "2/3 ok; s1 failed" in text and "0/3 ok" in text


def test_hyper_parameters_missing_for_some_models_still_group_their_seeds() -> None:
    gans, vaes = seeds("gan", 32, [10.0, 12.0, 14.0]), seeds("vae", 16, [20.0, 21.0, 22.0])
    for r in gans:
        r.hyper["loss"] = "bce"  # only the GAN has it: NA for the VAE
    for r in vaes:
        r.hyper["hidden"] = 400  # only the VAE has it
    table = comparison(records_frame([*gans, *vaes]), MANIFEST)
    assert [row[0] for row in table.rows] == ["gan", "vae"]
    assert [s.n for (i, j), s in sorted(table.summaries.items()) if table.headers[j] == "FID (domain)"] == [3, 3]


def test_informational_metric_keys_do_not_split_seeds_into_cells() -> None:
    rows = seeds("gan", 32, [10.0, 12.0, 14.0])
    for i, r in enumerate(rows):
        r.metrics["kid_mean"], r.metrics["kid_std"] = 0.01 * (i + 1), 0.001 * (i + 1)  # kid_std is not ranked
    manifest = {**MANIFEST, "metric_better": {"fid_domain": "lower", "kid_mean": "lower"}}
    manifest["protocol"] = {"dataset": "digits", "metrics": ["fid", "kid"]}
    table = comparison(records_frame(rows), manifest)
    assert len(table.rows) == 1 and "kid_std" not in table.headers and "kid_mean" in table.headers


def test_a_value_that_differs_between_seeds_of_one_cell_is_not_a_hyper_parameter() -> None:
    rows = seeds("gan", 32, [10.0, 12.0, 14.0], ["ok", "ok", "failed"])
    for r in rows[:2]:
        r.metrics["classes_total"] = 10.0  # informational, unprefixed, missing where the seed failed
    table = comparison(records_frame(rows), MANIFEST)
    assert len(table.rows) == 1 and table.rows[0][-1] == "2/3 ok; s2 failed: RuntimeError: boom"


def test_per_backbone_metric_keys_get_readable_headers() -> None:
    r = record("gan", 32, 10.0)
    r.metrics.update(kid_domain=0.1, kid_domain_std=0.01, precision_inception=0.5, isc_domain=2.0)
    manifest = {
        "metric_better": {
            "fid_domain": "lower",
            "kid_domain": "lower",
            "precision_inception": "higher",
            "isc_domain": "higher",
        },
        "protocol": {
            "dataset": "digits",
            "metrics": ["fid", "kid", "prc", "isc"],
            "backbones": ["domain", "inception"],
        },
    }
    headers = comparison(records_frame([r]), manifest).headers
    assert headers[5:9] == ["FID (domain)", "KID (domain)", "precision (inception)", "IS (domain)"]
    assert "kid_domain_std" not in headers


def test_one_ok_seed_of_three_shows_the_bare_value_and_n() -> None:
    df = records_frame([
        *seeds("gan", 32, [10.0, 12.0, 14.0], ["ok", "failed", "failed"]),
        *seeds("vae", 16, [30.0, 31.0, 32.0]),
    ])  # fmt: skip
    table = comparison(df, MANIFEST)
    fid = table.headers.index("FID (domain)")
    assert table.rows[0][fid] == "10" and table.intervals[(0, fid)] == "n=1"
    assert table.ties == {(0, fid), (1, fid)}  # one seed has no interval: it cannot be told apart


# -- the protocol, once above the table -----------------------------------------------------------------
def test_protocol_line_appears_once_in_every_format(tmp_path: Path) -> None:
    manifest = {**MANIFEST, "evaluation": EVALUATION}
    manifest["protocol"] = {"dataset": "digits", "metrics": ["fid", "kid"], "eval_samples": 1000}
    write_results(tmp_path, [*seeds("gan", 32, [10.0, 12.0, 14.0]), *seeds("vae", 16, [30.0, 31.0, 32.0])])
    atomic_write_json(tmp_path / "run.json", manifest)
    line = comparison(records_frame(seeds("gan", 32, [1.0, 2.0, 3.0])), manifest).protocol
    assert line == (
        "dataset digits; 1000 generated vs 900 test examples; backbones domain (genbench-domain, "
        "weights ab12cd34ef56, layer penultimate, logits logits, resize none (native 28x28), accuracy 97.1%); "
        "KID 100 subsets of 1000; torch-fidelity 0.4.0, torch 2.14.1; 3 seeds (0, 1, 2)"
    )  # no IS or precision/recall settings: those metrics are not in this run

    md = render(tmp_path, "markdown")
    assert md.count("genbench-domain") == 1 and md.splitlines()[0] == f"_{line}_"
    assert md.splitlines()[2].startswith("| model | z_dim | lr | batch | epochs | FID (domain) |")

    text = rich_text(render(tmp_path, "rich"), width=400)
    assert text.count("genbench-domain") == 1 and text.index("genbench-domain") < text.index("model")

    csv_text = render(tmp_path, "csv")
    assert not csv_text.startswith("#")
    frame = pd.read_csv(io.StringIO(csv_text))
    assert list(frame.columns[:6]) == ["model", "z_dim", "lr", "batch", "epochs", "FID (domain)"]
    assert list(frame.columns[-3:]) == ["best", "preview", "protocol"] and set(frame["protocol"]) == {line}
    assert frame["FID (domain) std"].tolist() == [2.0, 1.0] and frame["FID (domain) n"].tolist() == [3, 3]
    assert frame["FID (domain) CI low"][0] == pytest.approx(12 - T_975_DF2 * 2 / math.sqrt(3), abs=1e-4)


def test_protocol_line_of_an_old_run_falls_back_to_protocol_and_facts() -> None:
    manifest = {
        **MANIFEST,
        "protocol": {"dataset": "digits", "eval_samples": 200, "reference_split": "test", "backbones": ["domain"]},
        "n_reference": 200,
        "facts": {"domain_accuracy": 0.98},
    }
    table = comparison(records_frame([record("gan", 32, 10.0)]), manifest)
    assert table.protocol == (
        "dataset digits; 200 generated vs 200 test examples; backbones domain; domain classifier accuracy 98.0%"
    )


def test_one_metric_over_three_seeds_fits_an_80_column_terminal() -> None:
    df = records_frame([*seeds("gan", 32, [638.76, 757.12, 775.9]), *seeds("vae", 16, [615.6, 627.3, 620.0])])
    table = comparison(df, {"metric_better": {"fid_domain": "lower"}, "protocol": {"dataset": "digits"}})
    text = rich_text(to_rich(table), width=80)
    assert "…" not in text and max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "723.9 ± 74.4 ≈" in text and "[539.2, 908.6]" in text


def test_summary_formatting() -> None:
    assert format_summary(Summary(0, math.nan, math.nan)) == ("—", "")
    assert format_summary(Summary(1, 12.5, math.nan)) == ("12.5", "")
    assert format_summary(Summary(3, -32.8049, 0.07678, -32.9957, -32.6142)) == (
        "-32.805 ± 0.077",
        "[-32.996, -32.614]",
    )
    assert format_summary(Summary(3, 2.5e-7, 1e-8, 2.3e-7, 2.7e-7)) == ("2.5e-07 ± 1e-08", "[2.3e-07, 2.7e-07]")
