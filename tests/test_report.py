"""Comparison tables: the best value per metric, failed rows, columns like the lab report's."""

from __future__ import annotations

import pandas as pd

from genbench.protocol import CellRecord
from genbench.report import comparison, to_markdown
from genbench.results import records_frame


def record(model: str, z: int, fid: float | None, status: str = "ok", elbo: float | None = None) -> CellRecord:
    r = CellRecord(f"{model}_{z}", model, "digits", 0, {"z_dim": z, "lr": 2e-4, "batch_size": 64, "epochs": 5})
    r.status = status  # type: ignore[assignment]
    if status != "ok":
        r.error = "RuntimeError: boom"
    if fid is not None:
        r.metrics["fid_domain"] = fid
    if elbo is not None:
        r.metrics["elbo"] = elbo
    return r


MANIFEST = {"metric_better": {"fid_domain": "lower", "elbo": "higher"}, "protocol": {"dataset": "digits"}}


def test_best_value_per_metric_is_marked_and_failed_rows_excluded() -> None:
    df = records_frame([
        record("gan", 32, 40.0), record("gan", 64, 12.5), record("vae", 16, 30.0, elbo=-90.0),
        record("vae", 32, 31.0, elbo=-80.0), record("gan", 128, 1.0, status="failed"),
    ])  # fmt: skip
    table = comparison(df, MANIFEST)
    assert table.headers[:5] == ["model", "z_dim", "lr", "batch", "epochs"]
    fid_col, elbo_col = table.headers.index("FID (domain)"), table.headers.index("ELBO")
    assert table.best == {(1, fid_col), (3, elbo_col)}  # lowest FID among ok rows, highest ELBO
    assert table.rows[4][-1] == "failed: RuntimeError: boom"
    assert table.rows[0][elbo_col] == "—"
    md = to_markdown(table)
    assert "| **12.5** |" in md and "| **-80** |" in md


def test_only_varied_hyper_parameters_join_the_lab_report_columns() -> None:
    a, b = record("gan", 32, 1.0), record("gan", 32, 2.0)
    a.hyper["loss"], b.hyper["loss"] = "bce", "hinge"
    a.hyper["beta2"] = b.hyper["beta2"] = 0.999
    table = comparison(records_frame([a, b]), MANIFEST)
    assert "loss" in table.headers and "beta2" not in table.headers
    assert isinstance(records_frame([a]), pd.DataFrame)
