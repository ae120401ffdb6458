"""The terminal table fits 100 and 80 columns, says what it left out, and shows the learning rates used."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from genbench.cli import main
from genbench.protocol import CellRecord, PhaseTiming
from genbench.reporting.table import LEGEND_LR, comparison, to_csv, to_markdown, to_rich
from genbench.results import atomic_write_json, records_frame, write_results
from genbench.richtable import plan

METRICS = {  # key: (direction, value for model i, bounds)
    "fid_domain": ("lower", lambda i: 20.0 + 41.3 * i, (0, None)),
    "kid_domain": ("lower", lambda i: 0.01 * i - 0.004, (None, None)),
    "precision_domain": ("higher", lambda i: 0.9 - 0.07 * i, (0, 1)),
    "recall_domain": ("higher", lambda i: 0.2 + 0.05 * i, (0, 1)),
    "f_score_domain": ("higher", lambda i: 0.3 + 0.04 * i, (0, 1)),
    "isc_domain": ("higher", lambda i: 2.0 + 0.9 * i, (1, None)),
    "classes_covered": ("higher", lambda i: float(10 - i), (0, 10)),
    "class_kl": ("lower", lambda i: 0.05 * (i + 1), (0, None)),
    "recon_mse": ("lower", lambda i: 0.01 * (i + 1), (0, None)),
    "elbo": ("higher", lambda i: -100.0 - i, (None, None)),
}
MANIFEST: dict[str, Any] = {
    "metric_better": {k: v[0] for k, v in METRICS.items()},
    "metric_bounds": {
        k: {"low": low, "high": high, "integer": k == "classes_covered"} for k, (_, _, (low, high)) in METRICS.items()
    },
    "protocol": {
        "dataset": "mnist5k",
        "metrics": ["fid", "kid", "prc", "isc", "coverage", "recon_mse", "elbo"],
        "backbones": ["domain"],
    },
}


def quickstart(seeds: int = 1, models: tuple[str, ...] = ("gan", "vae", "ae", "dcgan")) -> list[CellRecord]:
    """The README's quick start: four models x two latent sizes, every metric of `--metrics all`."""
    out = []
    for m, model in enumerate(models):
        for z in (32, 64):
            for seed in range(seeds):
                gan = "gan" in model
                hyper: dict[str, Any] = {"z_dim": z, "lr": 2e-4 if gan else 3e-3, "batch_size": 64, "epochs": 5}
                if gan:
                    hyper.update(lr_g=1e-3 if model == "dcgan" else None, lr_d=None)
                r = CellRecord(f"{model}_z_dim={z}_s{seed}", model, "mnist5k", seed, hyper)
                i = 2 * m + (z == 64)
                for key, (_, value, _) in METRICS.items():
                    if key in ("recon_mse", "elbo") and model not in ("vae", "ae"):
                        continue
                    if key == "elbo" and model != "vae":
                        continue
                    r.metrics[key] = value(i) * (1 + 0.03 * seed) if key != "classes_covered" else value(i) - seed
                r.timings["train"] = PhaseTiming(10.0 + i, 4000)
                r.artifacts["samples"] = f"cells/{r.cell_id}/samples.png"
                out.append(r)
    return out


def printed(renderable: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("seeds", [1, 2])
@pytest.mark.parametrize("width", [100, 80])
def test_every_metric_value_shown_is_whole_and_the_rest_are_named(seeds: int, width: int) -> None:
    table = comparison(records_frame(quickstart(seeds)), MANIFEST)
    text = printed(to_rich(table), width)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    layout = plan(table, width)
    shown = [j for j in table.metric_columns if j in layout.columns]
    assert shown, "no metric fits"
    for i in range(len(table.rows)):
        for j in shown:
            words = [*table.rows[i][j].split(), *table.intervals.get((i, j), "").split()]
            assert all(w in text for w in words), (table.keys[j], words)
    left_out = [table.keys[j] for j in table.metric_columns if j not in layout.columns]
    assert left_out or width == 100  # 8 rows x 10 metrics never fit in 80 columns whole
    if left_out:  # a line under the table names what is not shown, and how to choose
        note = " ".join(text.split()[text.split().index("shown:") + 1 :])
        assert "not shown:" in text and "use --columns" in note
        assert all(key in note for key in left_out)


def test_a_few_rows_with_many_metrics_turn_on_their_side_rather_than_drop_any() -> None:
    table = comparison(records_frame(quickstart(1, ("dcgan",))), MANIFEST)
    layout = plan(table, 80)
    assert layout.transposed and not layout.dropped
    text = printed(to_rich(table), 80)
    assert "…" not in text and "not shown" not in text
    for header in ("FID", "KID", "precision", "recall", "IS", "classes covered", "class KL", "status"):
        assert header in text
    assert text.count("dcgan") >= 2  # one column per row of the table


def test_a_wide_terminal_shows_every_column_unchanged() -> None:
    table = comparison(records_frame(quickstart(2)), MANIFEST)
    text = printed(to_rich(table), 400)
    assert "not shown" not in text and "…" not in text
    assert "FID" in text and "classes covered" in text and "ELBO" in text


def test_gan_learning_rates_show_what_each_network_trained_at() -> None:
    """A DCGAN's generator trains at lr_g=1e-3 while its lr is 2e-4: the table must not say 0.0002 alone."""
    table = comparison(records_frame(quickstart(1)), MANIFEST)
    assert "lr" not in table.headers and table.headers[2:4] == ["lr G", "lr D"]
    rows = {(r[0], r[1]): r for r in table.rows}
    assert rows[("dcgan", "32")][2:4] == ["0.001", "0.0002"]  # lr_g, and D on lr (lr_d unset)
    assert rows[("gan", "32")][2:4] == ["0.0002", "0.0002"]
    assert rows[("vae", "32")][2:4] == ["0.003", "0.003"]  # one optimiser: its lr
    assert LEGEND_LR in table.legend
    same = comparison(records_frame(quickstart(1, ("gan", "vae"))), MANIFEST)
    assert "lr" in same.headers and "lr G" not in same.headers  # every rate equals lr: one column


def test_columns_picks_and_orders_columns_by_key_or_header() -> None:
    df = records_frame(quickstart(1))
    table = comparison(df, MANIFEST, ["model", "z_dim", "FID (domain)", "status"])
    assert table.headers == ["model", "z_dim", "FID (domain)", "status"] and table.metric_columns == [2]
    assert table.rows[0][-1] == "ok" and table.best  # the best FID is still marked
    narrow = printed(to_rich(table, chosen=True), 60)
    assert "not shown" not in narrow


def test_csv_leaves_missing_values_empty_so_readers_see_numbers() -> None:
    for seeds in (1, 2):
        table = comparison(records_frame(quickstart(seeds)), MANIFEST)
        frame = pd.read_csv(io.StringIO(to_csv(table)))
        assert frame["ELBO"].dtype.kind == "f" and frame["ELBO"].isna().sum() == 6  # only the two VAE rows have one
        assert "—" not in to_csv(table)


def run_folder(path: Path, seeds: int = 1) -> Path:
    write_results(path, quickstart(seeds))
    atomic_write_json(path / "run.json", MANIFEST)
    return path


def test_cli_table_columns_and_a_bad_column(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = run_folder(tmp_path / "run")
    assert main(["table", str(run), "--columns", "model,z_dim,fid_domain,status", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("model,z_dim,FID (domain),status,best")
    assert main(["table", str(run), "--columns", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --columns 'nope': no such column; valid: model, dataset, z_dim, lr,")
    assert "fid_domain" in err and "status" in err and err.count("\n") == 1


def test_markdown_written_elsewhere_links_its_previews_from_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = run_folder(tmp_path / "results" / "run")
    report = tmp_path / "docs" / "report.md"
    assert main(["table", str(run), "-o", str(report)]) == 0  # the format from the suffix
    links = [line.split("![samples](")[1].split(")")[0] for line in report.read_text().splitlines() if "![" in line]
    assert len(links) == 8 and links[0] == "../results/run/cells/gan_z_dim=32_s0/samples.png"
    for link in links:
        assert (report.parent / link).resolve() == (run / "cells" / link.split("cells/")[1]).resolve()
    md = to_markdown(comparison(records_frame(quickstart(1)), MANIFEST))  # no destination: relative to the run
    assert "![samples](cells/gan_z_dim=32_s0/samples.png)" in md
    assert main(["table", str(run), "-o", str(tmp_path / "t.txt")]) == 2
    assert "writes markdown or csv" in capsys.readouterr().err
