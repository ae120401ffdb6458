"""Comparison tables from ``results.csv``: Rich for the terminal, CSV, Markdown.

The table reads like the lab reports' GAN-vs-VAE table: model, the
hyper-parameters that matter (z_dim, lr, batch size, epochs, plus any that the
grid varied), every metric, training time, status, and the sample preview.

One row per grid cell. When a cell was trained on several seeds, its rows are
aggregated (grouped by model, dataset and every hyper-parameter value): each
metric shows ``mean ± std`` over the seeds whose status is ok (sample std) and,
under it, the 95% confidence interval of the mean from the t distribution
(:mod:`genbench.reporting.stats`), preceded by ``n=k`` when fewer seeds than were run went
into it. A column whose value differs between the seeds of one cell (an
informational metric key, a protocol column) is never a grouping key. The
status column says ``2/3 ok; s1 failed: ...`` when some seeds failed, and the
error when all did. ``train s`` is the mean over ok seeds.

The best group of each ranked metric is **bold** when its interval overlaps no
other group's; otherwise it and the groups whose intervals overlap it are marked
``≈`` (tied within the 95% CI). With one seed per cell there is no interval and
the best value is bold, as a legend line under the table says.

The evaluation protocol (dataset, sample counts, feature backbones and their
weights, layers, resizing, KID/IS/precision-recall settings, library versions,
seeds) is shown once above the table: the Rich title, the Markdown paragraph
before the table, and, in the CSV (which has no place above a header that every
CSV reader understands), a trailing ``protocol`` column repeating that line.
The CSV guards text that a spreadsheet would run as a formula
(:func:`genbench.results.csv_safe`); the sample previews are only ever paths
inside the run's ``cells/`` folder.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from genbench.folder import CELLS, safe_relative
from genbench.protocol import IDENTITY_COLUMNS
from genbench.reporting.stats import Direction, Mark, Summary, rank, summarize
from genbench.results import read_manifest, read_results, safe_csv_text

Format = Literal["rich", "csv", "markdown"]
ALWAYS_HYPER = ("z_dim", "lr", "batch_size", "epochs")
IDENTITY = IDENTITY_COLUMNS
LABELS = {
    "batch_size": "batch",
    "train_s": "train s",
    "train_items_per_s": "img/s",
    "fid_domain": "FID (domain)",
    "fid_inception": "FID (inception)",
    "recon_mse": "recon MSE",
    "elbo": "ELBO",
    "classes_covered": "classes covered",
    "class_kl": "class KL",
    "conditional_accuracy": "cond. accuracy",
}
# Per-backbone keys ``<prefix>_<backbone>`` read as "FID (domain)", "KID (inception)", ...
BACKBONE_LABELS = {
    "fid": "FID",
    "kid": "KID",
    "isc": "IS",
    "precision": "precision",
    "recall": "recall",
    "f_score": "F",
    "density": "density",
    "coverage": "coverage",
    "fd_inf": "FD∞",
    "vendi": "Vendi",
}
SEED_SUFFIX = re.compile(r"_s-?\d+$")  # cell ids end in _s<seed>
TIE = "≈"
LEGEND_ONE_SEED = "one seed per cell: no confidence interval; bold: the best value"
LEGEND_SEEDS = (
    "mean ± std over the ok seeds [95% CI of the mean, t distribution]; n=k: only k seeds ok",
    "bold: best, its 95% CI clear of every other row",
    f"{TIE} tied within 95% CI (intervals overlap the best's)",
)


@dataclass
class ComparisonTable:
    """A renderer-agnostic table: headers, cell strings, which cells are best or tied, protocol, legend.

    ``rows`` hold the main text of each cell (``mean ± std`` over seeds, or the
    bare value); ``intervals`` the confidence-interval text of metric cells over
    several seeds; ``summaries`` the numbers behind every metric cell.
    """

    headers: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)  # clear best: bold
    caption: str = ""  # the legend in one line, shown under the table
    previews: list[str] = field(default_factory=list)  # samples.png path per row, relative to the run folder
    ties: set[tuple[int, int]] = field(default_factory=set)  # tied for best within the 95% CI
    intervals: dict[tuple[int, int], str] = field(default_factory=dict)
    summaries: dict[tuple[int, int], Summary] = field(default_factory=dict)
    protocol: str = ""  # the evaluation protocol, shown once above the table
    seeds: int = 1  # the most seeds any row aggregates
    metric_columns: list[int] = field(default_factory=list)  # column positions of the metrics
    ok_seeds: list[tuple[int, int]] = field(default_factory=list)  # (ok seeds, seeds run) per row
    legend: list[str] = field(default_factory=list)  # the legend's lines


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, digits: int = 4) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _distinct_digits(values: Iterable[Any]) -> int:
    """Significant digits (at least 4) that print the column's distinct floats distinctly: two rows never look alike."""
    floats = {v for v in values if isinstance(v, float) and not _missing(v)}
    return next((d for d in range(4, 17) if len({f"{v:.{d}g}" for v in floats}) == len(floats)), 17)


def _decimals(x: float, significant: int) -> int:
    """Decimals that show ``x`` to ``significant`` significant digits (0 for large numbers)."""
    if x == 0 or not math.isfinite(x):
        return 0
    return max(0, significant - 1 - math.floor(math.log10(abs(x))))


def format_summary(s: Summary) -> tuple[str, str]:
    """``("12.3 ± 1.2", "[10.1, 14.5]")``: the mean to 4 significant digits, the std to 2, on common decimals.

    One value gives the bare value (as with one seed) and no interval text; no value gives "—".
    """
    if s.n == 0:
        return "—", ""
    if s.interval is None:
        return _fmt(s.mean), ""
    lo, hi = s.interval
    if not 1e-4 <= max(abs(s.mean), abs(s.std)) < 1e6:
        return f"{s.mean:.4g} ± {s.std:.2g}", f"[{lo:.4g}, {hi:.4g}]"
    d = min(8, max(_decimals(s.mean, 4), _decimals(s.std, 2)))
    return f"{s.mean:.{d}f} ± {s.std:.{d}f}", f"[{lo:.{d}f}, {hi:.{d}f}]"


def _metric_columns(df: pd.DataFrame, manifest: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The ranked metric columns, and every metric-valued column (informational keys such as a spread included)."""
    better: dict[str, str] = manifest.get("metric_better", {})
    ranked = [c for c in better if c in df.columns]
    names = [str(m) for m in manifest.get("protocol", {}).get("metrics", [])]
    valued = set(ranked) | {c for c in df.columns if any(c == m or c.startswith(f"{m}_") for m in names)}
    return ranked, valued


def label(column: str, backbones: list[str]) -> str:
    """The header of a results column: ``fid_domain`` -> ``FID (domain)``, ``batch_size`` -> ``batch``."""
    if column in LABELS:
        return LABELS[column]
    for prefix, name in BACKBONE_LABELS.items():
        for b in backbones:
            if column == f"{prefix}_{b}":
                return f"{name} ({b})"
    return column


def _measured(df: pd.DataFrame, columns: list[str]) -> set[str]:
    """Columns whose value differs between the seeds of one grid cell (same cell id but the ``_s<seed>``).

    A hyper-parameter is the same for every seed of a cell by construction, so such a
    column is a measurement (an informational metric key, say), never a grouping key.
    """
    if "cell" not in df.columns or not len(df) or not columns:
        return set()
    base = df["cell"].astype(str).str.replace(SEED_SUFFIX, "", regex=True)
    varies = df.groupby(base, sort=False)[columns].nunique(dropna=False).max()
    return {c for c in columns if varies[c] > 1}


def _protocol_columns(manifest: dict[str, Any]) -> set[str]:
    """Protocol settings that a results.csv may carry as columns: not hyper-parameters, never grouped on."""
    keys = set(manifest.get("protocol", {})) | set(manifest.get("evaluation") or {})
    return keys - set(ALWAYS_HYPER) - {"model", "dataset"}


def _status(group: pd.DataFrame) -> str:
    """``ok``; ``2/3 ok; s1 failed: <error>``; one seed: ``failed: <error>``; none ok: ``0/3 ok; failed: ...``."""
    n, statuses = len(group), list(group["status"])
    errors = [e for e in group.get("error", pd.Series(dtype=object)) if isinstance(e, str) and e]
    n_ok = statuses.count("ok")
    flags = [f.split(":", 1)[0] for fl in group.get("flags", pd.Series(dtype=object)) if isinstance(fl, str)
             for f in fl.split("; ") if f]  # fmt: skip
    if n_ok == n:
        return "ok" if not flags else "ok; " + ", ".join(dict.fromkeys(flags))
    if n == 1:
        return f"{statuses[0]}: {errors[0][:60]}" if errors else str(statuses[0])
    bad = group[group["status"] != "ok"]
    if n_ok:
        what = ", ".join(f"s{seed} {status}" for seed, status in zip(bad["seed"], bad["status"], strict=True))
        limit = 40
    else:
        what = ", ".join(dict.fromkeys(str(s) for s in bad["status"]))
        limit = 60
    text = f"{n_ok}/{n} ok; {what}"
    return f"{text}: {errors[0][:limit]}" if errors else text


def _mean(values: pd.Series) -> float | None:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return float(numbers.mean()) if len(numbers) else None


_BACKBONE_DETAILS = (("weights", "weights"), ("layer", "layer"), ("logits_layer", "logits"), ("resize", "resize"))
_VERSIONS = (("torch_fidelity", "torch-fidelity"), ("torch", "torch"))


def protocol_line(manifest: dict[str, Any], metric_cols: list[str], seeds: list[Any]) -> str:
    """The evaluation protocol in one line: ``manifest["evaluation"]``, else (older runs) ``protocol`` and ``facts``."""
    protocol = manifest.get("protocol", {}) or {}
    evaluation = manifest.get("evaluation", {}) or {}
    facts = manifest.get("facts", {}) or {}
    n_gen = evaluation.get("n_generated", protocol.get("eval_samples", "?"))
    n_ref = evaluation.get("n_reference", manifest.get("n_reference", "?"))
    split = evaluation.get("reference_split", protocol.get("reference_split", "?"))
    bits = [f"dataset {protocol.get('dataset', '?')}", f"{n_gen} generated vs {n_ref} {split} examples"]
    backbones = evaluation.get("backbones")
    if isinstance(backbones, dict) and backbones:
        described = []
        for backbone, b in backbones.items():
            b = b if isinstance(b, dict) else {}
            details = [str(b["extractor"])] if b.get("extractor") else []
            details += [f"{name} {b[key]}" for key, name in _BACKBONE_DETAILS if b.get(key) not in (None, "")]
            if isinstance(b.get("accuracy"), int | float):
                details.append(f"accuracy {b['accuracy']:.1%}")
            described.append(f"{backbone} ({', '.join(details)})" if details else str(backbone))
        bits.append(f"backbones {'; '.join(described)}")
    else:
        if any(c.startswith("fid_") for c in metric_cols):
            bits.append(f"backbones {', '.join(protocol.get('backbones', []))}")
        if "domain_accuracy" in facts:
            bits.append(f"domain classifier accuracy {facts['domain_accuracy']:.1%}")
    metrics = [str(m) for m in protocol.get("metrics", [])]

    def used(*prefixes: str) -> bool:
        return any(c.startswith(prefixes) for c in [*metric_cols, *metrics])

    if used("kid") and "kid_subsets" in evaluation:
        size = evaluation.get("kid_subset_size")
        bits.append(f"KID {evaluation['kid_subsets']} subsets" + (f" of {size}" if size else ""))
    if used("isc", "is_", "inception_score") and "isc_splits" in evaluation:
        bits.append(f"IS {evaluation['isc_splits']} splits")
    if used("prc", "precision", "recall") and "prc_neighborhood" in evaluation:
        bits.append(f"precision/recall k={evaluation['prc_neighborhood']}")
    versions = [f"{name} {evaluation[key]}" for key, name in _VERSIONS if evaluation.get(key)]
    if versions:
        bits.append(", ".join(versions))
    if len(seeds) > 1:
        bits.append(f"{len(seeds)} seeds ({', '.join(str(s) for s in seeds)})")
    return "; ".join(bits)


def comparison(df: pd.DataFrame, manifest: dict[str, Any]) -> ComparisonTable:
    """Choose columns, aggregate seeds, and mark the best (or tied) group of each ranked metric."""
    better: dict[str, str] = manifest.get("metric_better", {})
    metric_cols, metric_valued = _metric_columns(df, manifest)
    protocol_cols = _protocol_columns(manifest)
    timing = [c for c in ("train_s",) if c in df.columns]
    hyper_cols = [
        c
        for c in df.columns
        if c not in IDENTITY
        and c not in metric_valued
        and c not in protocol_cols
        and not c.endswith(("_s", "_items_per_s"))
    ]
    hyper_cols = [c for c in hyper_cols if c not in _measured(df, hyper_cols)]
    # The lab-report columns, plus any hyper-parameter the grid varied within one model.
    varied = {c for c in hyper_cols if (df.groupby("model")[c].nunique() > 1).any()}
    shown_hyper = [c for c in hyper_cols if c in ALWAYS_HYPER or c in varied]
    cols = ["model"]
    if df["dataset"].nunique() > 1:
        cols.append("dataset")
    cols += shown_hyper
    cols += metric_cols + timing + ["status"]
    metric_pos = [cols.index(c) for c in metric_cols]

    keys = ["model", "dataset", *hyper_cols]
    groups = [g for _, g in df.groupby(keys, dropna=False, sort=False)] if len(df) else []
    seeds_run = max((len(g) for g in groups), default=1)

    rows: list[list[str]] = []
    previews: list[str] = []
    ok_seeds: list[tuple[int, int]] = []
    intervals: dict[tuple[int, int], str] = {}
    summaries: dict[tuple[int, int], Summary] = {}
    digits = {c: _distinct_digits(df[c]) for c in shown_hyper}
    for i, g in enumerate(groups):
        ok = g[g["status"] == "ok"]
        first = g.iloc[0]
        row = [_fmt(first.get(c), digits.get(c, 4)) for c in cols]
        for col, j in zip(metric_cols, metric_pos, strict=True):
            s = summarize(pd.to_numeric(ok[col], errors="coerce").astype("float64").tolist())
            summaries[(i, j)] = s
            row[j], interval = format_summary(s)
            if seeds_run > 1 and s.n < len(g) and s.n > 0:
                interval = f"n={s.n} {interval}".rstrip()
            if interval:
                intervals[(i, j)] = interval
        for c in timing:
            row[cols.index(c)] = _fmt(_mean(ok[c]) if len(ok) else _mean(g[c]))
        row[-1] = _status(g)
        ok_seeds.append((len(ok), len(g)))
        rows.append(row)
        # read from a file: only a plain path inside the run's cells/ becomes a link (no "..", "/x", "http:")
        shown = [p for p in (ok if len(ok) else g).get("samples_png", []) if safe_relative(p, (CELLS,))]
        previews.append(shown[0] if shown else "")

    best: set[tuple[int, int]] = set()
    ties: set[tuple[int, int]] = set()
    for col, j in zip(metric_cols, metric_pos, strict=True):
        if better[col] not in ("lower", "higher"):
            continue
        direction: Direction = "lower" if better[col] == "lower" else "higher"
        marks: dict[int, Mark] = rank([summaries[(i, j)] for i in range(len(rows))], direction)
        best |= {(i, j) for i, m in marks.items() if m == "best"}
        ties |= {(i, j) for i, m in marks.items() if m == "tie"}

    with_interval = any(summaries[(i, j)].interval is not None for i in range(len(rows)) for j in metric_pos)
    legend = list(LEGEND_SEEDS) if with_interval else [LEGEND_ONE_SEED]
    evaluation = manifest.get("evaluation") or {}
    backbones = [*(evaluation.get("backbones") or {}), *manifest.get("protocol", {}).get("backbones", [])]
    seeds = sorted(df["seed"].dropna().unique().tolist()) if "seed" in df.columns else []
    return ComparisonTable(
        headers=[label(c, backbones) for c in cols],
        rows=rows,
        best=best,
        caption="; ".join(legend),
        previews=previews,
        ties=ties,
        intervals=intervals,
        summaries=summaries,
        protocol=protocol_line(manifest, metric_cols, seeds),
        seeds=seeds_run,
        metric_columns=metric_pos,
        ok_seeds=ok_seeds,
        legend=legend,
    )


def load_table(out_dir: Path) -> ComparisonTable:
    return comparison(read_results(out_dir), read_manifest(out_dir))


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: ComparisonTable) -> str:
    """The protocol paragraph, the table (``**best**``, ``value ≈`` for a tie, the interval after it), the legend."""
    headers = [*table.headers, "preview"]
    lines = [f"_{_md(table.protocol)}_", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for i, row in enumerate(table.rows):
        cells = []
        for j, v in enumerate(row):
            text = _md(v)
            if (i, j) in table.best:
                text = f"**{text}**"
            elif (i, j) in table.ties:
                text = f"{text} {TIE}"
            if (i, j) in table.intervals:
                text = f"{text} {table.intervals[(i, j)]}"
            cells.append(text)
        preview = f"![samples]({table.previews[i]})" if table.previews[i] else ""
        lines.append("| " + " | ".join([*cells, preview]) + " |")
    lines += ["", _md(table.caption)]
    return "\n".join(lines) + "\n"


def to_csv(table: ComparisonTable) -> str:
    """One row per cell. Over several seeds each metric is its mean followed by ``std``, ``CI low``,
    ``CI high`` and ``n`` columns; ``best`` names the metrics where a row is best (``≈`` tied);
    ``protocol`` repeats the protocol line on every row."""
    columns: dict[str, list[str]] = {}
    for j, header in enumerate(table.headers):
        columns[header] = [row[j] for row in table.rows]
        if table.seeds > 1 and j in table.metric_columns:
            stats = [table.summaries[(i, j)] for i in range(len(table.rows))]
            columns[header] = [_fmt(s.mean, 6) for s in stats]
            columns[f"{header} std"] = [_fmt(s.std, 6) for s in stats]
            columns[f"{header} CI low"] = [_fmt(s.ci_low, 6) for s in stats]
            columns[f"{header} CI high"] = [_fmt(s.ci_high, 6) for s in stats]
            columns[f"{header} n"] = [str(s.n) for s in stats]
    frame = pd.DataFrame(columns)
    frame["best"] = [
        ", ".join(
            (table.headers[j] if (i, j) in table.best else f"{TIE} {table.headers[j]}")
            for j in table.metric_columns
            if (i, j) in table.best or (i, j) in table.ties
        )
        for i in range(len(table.rows))
    ]
    frame["preview"] = table.previews
    frame["protocol"] = table.protocol
    return safe_csv_text(frame)  # text that a spreadsheet would run as a formula is guarded


def to_rich(table: ComparisonTable, out_dir: Path | None = None) -> Any:
    """A ``rich.table.Table``: the protocol as its title, the legend as its caption, intervals under the means.

    rich is imported here only: the library never needs it.
    """
    from rich.markup import escape
    from rich.table import Table

    rich_table = Table(
        title=escape(table.protocol),
        caption=escape("\n".join(table.legend) if table.legend else table.caption),
        title_justify="left",
        caption_justify="left",
        show_lines=table.seeds > 1,
    )
    for j, h in enumerate(table.headers):
        # In a narrow terminal the metric and status cells wrap (at " ± " and ", "); short columns stay whole.
        wraps = j in table.metric_columns or j == len(table.headers) - 1
        rich_table.add_column(h, justify="left" if h in ("model", "dataset", "status") else "right", no_wrap=not wraps)
    for i, row in enumerate(table.rows):
        styled = []
        for j, v in enumerate(row):
            text = escape(v)
            if (i, j) in table.best:
                text = f"[bold green]{text}[/]"
            elif (i, j) in table.ties:
                text = f"[yellow]{text} {TIE}[/]"
            if (i, j) in table.intervals:
                text = f"{text}\n[dim]{escape(table.intervals[(i, j)])}[/]"
            styled.append(text)
        n_ok, n = table.ok_seeds[i] if i < len(table.ok_seeds) else (int(row[-1] == "ok"), 1)
        if n_ok < n:
            styled[-1] = f"[{'yellow' if n_ok else 'red'}]{escape(row[-1])}[/]"
        rich_table.add_row(*styled)
    return rich_table


def render(out_dir: Path, fmt: str) -> str | Any:
    table = load_table(out_dir)
    if fmt == "markdown":
        return to_markdown(table)
    if fmt == "csv":
        return to_csv(table)
    return to_rich(table, out_dir)
