"""Comparison tables from ``results.csv``: Rich for the terminal, CSV, Markdown.

The table reads like the lab reports' GAN-vs-VAE table: model, the
hyper-parameters that matter (z_dim, lr, batch size, epochs, plus any that the
grid varied), every metric, training time, status, and the sample preview. The
best value of each metric among successful rows is bold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from genbench.results import read_manifest, read_results

Format = Literal["rich", "csv", "markdown"]
ALWAYS_HYPER = ("z_dim", "lr", "batch_size", "epochs")
IDENTITY = {
    "model",
    "dataset",
    "seed",
    "cell",
    "status",
    "error",
    "params",
    "device",
    "samples_png",
    "peak_mem_mb",
}
LABELS = {
    "batch_size": "batch",
    "train_s": "train s",
    "train_items_per_s": "img/s",
    "fid_domain": "FID (domain)",
    "fid_inception": "FID (inception)",
    "recon_mse": "recon MSE",
    "elbo": "ELBO",
}


@dataclass
class ComparisonTable:
    """A rendered-agnostic table: headers, cell strings, which cells are best, a caption."""

    headers: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)
    caption: str = ""
    previews: list[str] = field(default_factory=list)  # samples.png path per row, relative to the run folder


def _fmt(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def comparison(df: pd.DataFrame, manifest: dict[str, Any]) -> ComparisonTable:
    """Choose columns and mark the best value of each metric."""
    better: dict[str, str] = manifest.get("metric_better", {})
    metric_cols = [c for c in better if c in df.columns]
    timing = [c for c in ("train_s",) if c in df.columns]
    hyper_cols = [
        c for c in df.columns if c not in IDENTITY and c not in metric_cols and not c.endswith(("_s", "_items_per_s"))
    ]
    # The lab-report columns, plus any hyper-parameter the grid varied within one model.
    varied = {c for c in hyper_cols if (df.groupby("model")[c].nunique() > 1).any()}
    shown_hyper = [c for c in hyper_cols if c in ALWAYS_HYPER or c in varied]
    cols = ["model"]
    if df["dataset"].nunique() > 1:
        cols.append("dataset")
    cols += shown_hyper
    if df["seed"].nunique() > 1:
        cols.append("seed")
    cols += metric_cols + timing + ["status"]

    ok = df["status"] == "ok"
    best: set[tuple[int, int]] = set()
    for col in metric_cols:
        values = pd.to_numeric(df[col], errors="coerce").where(ok)
        if values.notna().any():
            target = values.min() if better[col] == "lower" else values.max()
            for i in values.index[values == target]:
                best.add((df.index.get_loc(i), cols.index(col)))

    rows = []
    for _, r in df.iterrows():
        row = [_fmt(r.get(c)) for c in cols]
        if r["status"] != "ok" and isinstance(r.get("error"), str) and r["error"]:
            row[-1] = f"{r['status']}: {r['error'][:60]}"
        rows.append(row)
    protocol = manifest.get("protocol", {})
    facts = manifest.get("facts", {})
    caption_bits = [
        f"dataset {protocol.get('dataset', '?')}",
        f"{protocol.get('eval_samples', '?')} generated vs {manifest.get('n_reference', '?')} "
        f"{protocol.get('reference_split', '?')} examples",
    ]
    if any(c.startswith("fid_") for c in metric_cols):
        caption_bits.append(f"backbones {', '.join(protocol.get('backbones', []))}")
    if "domain_accuracy" in facts:
        caption_bits.append(f"domain classifier accuracy {facts['domain_accuracy']:.1%}")
    headers = [LABELS.get(c, c) for c in cols]
    previews = [str(p) if isinstance(p, str) else "" for p in df.get("samples_png", [""] * len(df))]
    return ComparisonTable(headers, rows, best, "; ".join(caption_bits), previews)


def load_table(out_dir: Path) -> ComparisonTable:
    return comparison(read_results(out_dir), read_manifest(out_dir))


def to_markdown(table: ComparisonTable) -> str:
    headers = [*table.headers, "preview"]
    lines = [f"_{table.caption}_", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for i, row in enumerate(table.rows):
        cells = [f"**{v}**" if (i, j) in table.best else v for j, v in enumerate(row)]
        preview = f"![samples]({table.previews[i]})" if table.previews[i] else ""
        lines.append("| " + " | ".join([*cells, preview]) + " |")
    return "\n".join(lines) + "\n"


def to_csv(table: ComparisonTable) -> str:
    frame = pd.DataFrame(table.rows, columns=table.headers)
    frame["preview"] = table.previews
    return str(frame.to_csv(index=False))


def to_rich(table: ComparisonTable, out_dir: Path | None = None) -> Any:
    """A ``rich.table.Table`` (rich is imported here only: the library never needs it)."""
    from rich.table import Table

    rich_table = Table(caption=table.caption, show_lines=False)
    for h in table.headers:
        rich_table.add_column(h, justify="left" if h in ("model", "dataset", "status") else "right")
    for i, row in enumerate(table.rows):
        styled = [f"[bold green]{v}[/]" if (i, j) in table.best else v for j, v in enumerate(row)]
        status = row[-1]
        if status != "ok":
            styled[-1] = f"[red]{status}[/]"
        rich_table.add_row(*styled)
    return rich_table


def render(out_dir: Path, fmt: str) -> str | Any:
    table = load_table(out_dir)
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    return to_rich(table, out_dir)
