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

Intervals are clipped to the range each metric declares (``metric_bounds`` in
run.json, from :meth:`genbench.Metric.bounds`): two seeds of a share never show
an interval past 1. When a GAN trains its generator or discriminator at a rate
other than ``lr`` (``lr_g``, ``lr_d``), the ``lr`` column gives way to ``lr G``
and ``lr D``, the rates the optimisers used (``lr_g or lr``, ``lr_d or lr``).
``columns`` (``genbench table --columns``) picks and orders the columns; in a
terminal, :mod:`genbench.richtable` lays the table out for the console's width.
CSV leaves a value a row does not have empty, so readers parse the column as numbers.

The evaluation protocol (dataset, sample counts, feature backbones and their
weights, layers, resizing, KID/IS/precision-recall settings, library versions,
seeds) is shown once above the table: the Rich title, the Markdown paragraph
before the table, and, in the CSV (which has no place above a header that every
CSV reader understands), a trailing ``protocol`` column repeating that line.
The CSV guards text that a spreadsheet would run as a formula
(:func:`genbench.results.csv_safe`); the sample previews are only ever paths
inside the run's ``cells/`` folder.

The table itself (:class:`ComparisonTable`) and its Markdown and CSV text live in
:mod:`genbench.reporting.table_output`; their names are importable from here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from genbench.errors import GenbenchError
from genbench.folder import CELLS, safe_relative
from genbench.protocol import IDENTITY_COLUMNS
from genbench.reporting.stats import Direction, Mark, Summary, rank, summarize
from genbench.reporting.table_output import MISSING as MISSING
from genbench.reporting.table_output import TIE, ComparisonTable, _fmt, _missing, format_summary, to_csv, to_markdown
from genbench.results import read_run

Format = Literal["rich", "csv", "markdown"]
ALWAYS_HYPER = ("z_dim", "lr", "batch_size", "epochs")
IDENTITY = IDENTITY_COLUMNS
LR_SPLIT = ("lr_g", "lr_d")  # GANs: each network's learning rate; unset means lr
LABELS = {
    "lr_g": "lr G",
    "lr_d": "lr D",
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
LEGEND_ONE_SEED = "one seed per cell: no confidence interval; bold: the best value"
LEGEND_SEEDS = (
    "mean ± std over the ok seeds [95% CI of the mean, t distribution]; n=k: only k seeds ok",
    "bold: best, its 95% CI clear of every other row",
    f"{TIE} tied within 95% CI (intervals overlap the best's)",
)
LEGEND_LR = "lr G / lr D: the learning rate the generator / discriminator trained at (lr_g / lr_d, else lr)"


def _distinct_digits(values: Iterable[Any]) -> int:
    """Significant digits (at least 4) that print the column's distinct floats distinctly: two rows never look alike."""
    floats = {v for v in values if isinstance(v, float) and not _missing(v)}
    return next((d for d in range(4, 17) if len({f"{v:.{d}g}" for v in floats}) == len(floats)), 17)


def _metric_columns(df: pd.DataFrame, manifest: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The ranked metric columns, and every metric-valued column (informational keys such as a spread included)."""
    better: dict[str, str] = manifest.get("metric_better", {})
    ranked = [c for c in better if c in df.columns]
    names = [str(m) for m in manifest.get("protocol", {}).get("metrics", [])]
    valued = set(ranked) | {c for c in df.columns if any(c == m or c.startswith(f"{m}_") for m in names)}
    valued |= {c for c in manifest.get("metric_bounds") or {} if c in df.columns}  # classes_total, modes_total
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
            bits.append(f"backbones {', '.join(map(str, protocol.get('backbones', [])))}")
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


def _numbers(values: pd.Series) -> pd.Series:
    """A column as float64 (NaN where missing or not a number), whatever dtype pandas gave it."""
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _rates_differ(df: pd.DataFrame) -> bool:
    """Whether some row trains its generator or discriminator at a rate other than its ``lr``."""
    if "lr" not in df.columns or not any(c in df.columns for c in LR_SPLIT):
        return False
    lr = _numbers(df["lr"])
    for c in LR_SPLIT:
        if c in df.columns:
            rate = _numbers(df[c]).fillna(lr)
            if ((rate - lr).abs() > 1e-12 * lr.abs()).any():
                return True
    return False


def _bounds(manifest: dict[str, Any], column: str) -> tuple[float | None, float | None]:
    """The range the run's metric plugin declared for ``column`` (run.json ``metric_bounds``), else unbounded."""
    b = (manifest.get("metric_bounds") or {}).get(column) or {}
    low, high = b.get("low"), b.get("high")
    return (None if low is None else float(low), None if high is None else float(high))


def select_columns(available: list[str], labels: list[str], wanted: Sequence[str]) -> list[str]:
    """The keys ``wanted`` names (a results column such as ``fid_domain``, or its header), in that order.

    An unknown name raises GenbenchError naming every valid column.
    """
    by_label = {lab.lower(): key for key, lab in zip(available, labels, strict=True)}
    out: list[str] = []
    for name in wanted:
        key = name if name in available else by_label.get(name.strip().lower())
        if key is None:
            raise GenbenchError(f"--columns {name!r}: no such column; valid: {', '.join(available)}")
        if key not in out:
            out.append(key)
    if not out:
        raise GenbenchError(f"--columns: no column given; valid: {', '.join(available)}")
    return out


def comparison(df: pd.DataFrame, manifest: dict[str, Any], columns: Sequence[str] | None = None) -> ComparisonTable:
    """Choose columns, aggregate seeds, and mark the best (or tied) group of each ranked metric.

    ``columns`` picks and orders the columns (keys of results.csv such as ``fid_domain``,
    ``z_dim``, ``train_s``, ``status``, or their headers); by default the lab-report set.
    """
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
    split_lr = _rates_differ(df)
    if split_lr:  # the rates each network trains at: lr_g / lr_d where set, else lr (what the optimisers use)
        df = df.copy()
        lr = _numbers(df["lr"])
        for c in LR_SPLIT:
            df[c] = _numbers(df[c]).fillna(lr) if c in df.columns else lr
            if c not in hyper_cols:
                hyper_cols.append(c)
    # The lab-report columns, plus any hyper-parameter the grid varied within one model.
    varied = {c for c in hyper_cols if (df.groupby("model")[c].nunique() > 1).any()}
    always = [*ALWAYS_HYPER]
    if split_lr:
        always[always.index("lr") : always.index("lr") + 1] = LR_SPLIT
        varied -= {"lr"}
    shown_hyper = [c for c in always if c in hyper_cols]
    shown_hyper += [c for c in hyper_cols if c in varied and c not in shown_hyper]
    default = ["model"]
    if df["dataset"].nunique() > 1:
        default.append("dataset")
    default += shown_hyper + metric_cols + timing + ["status"]
    evaluation = manifest.get("evaluation") or {}
    backbones = [*(evaluation.get("backbones") or {}), *manifest.get("protocol", {}).get("backbones", [])]
    if columns is None:
        cols = default
    else:
        extra = [c for c in ("train_items_per_s", "params", "seed", "cell") if c in df.columns]
        available = list(dict.fromkeys(["model", "dataset", *hyper_cols, *metric_cols, *timing, *extra, "status"]))
        cols = select_columns(available, [label(c, backbones) for c in available], columns)
    shown_metrics = [c for c in metric_cols if c in cols]
    metric_pos = [cols.index(c) for c in shown_metrics]
    status_pos = cols.index("status") if "status" in cols else None
    priority = [
        0 if c in ("model", "dataset") or c in varied
        else 1 if c == "status"
        else 2 if c in metric_cols
        else 3 if c in timing
        else 4
        for c in cols
    ]  # fmt: skip

    keys = ["model", "dataset", *hyper_cols]
    groups = [g for _, g in df.groupby(keys, dropna=False, sort=False)] if len(df) else []
    seeds_run = max((len(g) for g in groups), default=1)

    rows: list[list[str]] = []
    previews: list[str] = []
    group_keys: list[dict[str, Any]] = []
    group_cells: list[list[str]] = []
    ok_seeds: list[tuple[int, int]] = []
    intervals: dict[tuple[int, int], str] = {}
    summaries: dict[tuple[int, int], Summary] = {}
    digits = {c: _distinct_digits(df[c]) for c in shown_hyper}
    for i, g in enumerate(groups):
        ok = g[g["status"] == "ok"]
        first = g.iloc[0]
        row = [_fmt(first.get(c), digits.get(c, 4)) for c in cols]
        for col, j in zip(shown_metrics, metric_pos, strict=True):
            values = pd.to_numeric(ok[col], errors="coerce").astype("float64").tolist()
            s = summarize(values, bounds=_bounds(manifest, col))
            summaries[(i, j)] = s
            row[j], interval = format_summary(s)
            if seeds_run > 1 and s.n < len(g) and s.n > 0:
                interval = f"n={s.n} {interval}".rstrip()
            if interval:
                intervals[(i, j)] = interval
        for c in timing:
            if c in cols:
                row[cols.index(c)] = _fmt(_mean(ok[c]) if len(ok) else _mean(g[c]))
        if status_pos is not None:
            row[status_pos] = _status(g)
        ok_seeds.append((len(ok), len(g)))
        rows.append(row)
        # read from a file: only a plain path inside the run's cells/ becomes a link (no "..", "/x", "http:")
        shown = [p for p in (ok if len(ok) else g).get("samples_png", []) if safe_relative(p, (CELLS,))]
        previews.append(shown[0] if shown else "")
        group_keys.append({k: None if _missing(first.get(k)) else first.get(k) for k in keys})
        group_cells.append([str(c) for c in g["cell"]] if "cell" in g.columns else [])

    best: set[tuple[int, int]] = set()
    ties: set[tuple[int, int]] = set()
    for col, j in zip(shown_metrics, metric_pos, strict=True):
        if better[col] not in ("lower", "higher"):
            continue
        direction: Direction = "lower" if better[col] == "lower" else "higher"
        marks: dict[int, Mark] = rank([summaries[(i, j)] for i in range(len(rows))], direction)
        best |= {(i, j) for i, m in marks.items() if m == "best"}
        ties |= {(i, j) for i, m in marks.items() if m == "tie"}

    with_interval = any(summaries[(i, j)].interval is not None for i in range(len(rows)) for j in metric_pos)
    legend = list(LEGEND_SEEDS) if with_interval else [LEGEND_ONE_SEED]
    if with_interval and any(_bounds(manifest, c) != (None, None) for c in shown_metrics):
        legend[0] += "; intervals clipped to each metric's range"
    if any(c in cols for c in LR_SPLIT) and split_lr:
        legend.append(LEGEND_LR)
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
        keys=list(cols),
        priority=priority,
        status_column=status_pos,
        backbones=list(dict.fromkeys(backbones)),
        groups=group_keys,
        cells=group_cells,
        metric_keys=metric_cols,
        varied=[c for c in shown_hyper if c in varied],
    )


def load_table(out_dir: Path, columns: Sequence[str] | None = None) -> ComparisonTable:
    return comparison(*read_run(out_dir), columns)


def to_rich(table: ComparisonTable, out_dir: Path | None = None, chosen: bool = False) -> Any:
    """A Rich renderable laid out for the console's width when printed (:class:`genbench.richtable.FittedTable`).

    The protocol is its title, the legend its caption, intervals sit under the means; in
    a narrow terminal it turns on its side or leaves out the least important columns and
    says which. ``chosen``: the columns were picked by the user and are never dropped.
    rich is imported only when the table is printed: the library never needs it.
    """
    from genbench.richtable import FittedTable

    return FittedTable(table, chosen)


def render(out_dir: Path, fmt: str, columns: Sequence[str] | None = None, links_from: Path | None = None) -> str | Any:
    """The table of the run in ``out_dir`` as Markdown or CSV text, or a Rich renderable.

    ``columns`` picks the columns (see :func:`comparison`); ``links_from`` is the folder
    the Markdown will be read from, so its image links resolve (default: the run folder).
    """
    table = comparison(*read_run(out_dir), columns)
    if fmt == "markdown":
        return to_markdown(table, out_dir, links_from)
    if fmt == "csv":
        return to_csv(table)
    return to_rich(table, out_dir, chosen=columns is not None)
