"""What ``genbench compare`` and ``genbench check`` print and write: Rich, Markdown, JSON, CSV, JUnit XML.

One row model (:func:`figure_rows`) feeds every format, so a figure reads the same in a
terminal, a CI job summary, a JSON file and a JUnit report. rich is imported only by
:func:`compare_rich`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any
from xml.etree import ElementTree as ET

import pandas as pd

from genbench.reporting.cellset import SPEED_UNITS, Cell
from genbench.reporting.check import CheckResult, figure_message
from genbench.reporting.compare import Comparison, Figure
from genbench.reporting.significance import MAX_SEEDS
from genbench.reporting.stats import summarize
from genbench.reporting.table import format_summary
from genbench.reporting.table_output import _md
from genbench.reporting.tolerance import SPEED_FIGURES
from genbench.results import safe_csv_text

WORDS = {"better": "better", "worse": "worse", "same": "no significant change", "refused": "refused"}


def values_text(values: Sequence[float]) -> str:
    """``674.2 ± 46.4 (3 seeds)``, or the bare value for one seed."""
    text, _ = format_summary(summarize(values))
    return f"{text} ({len(values)} seeds)" if len(values) > 1 else text


def change_text(f: Figure) -> str:
    if f.change is None:
        return "—"
    if f.kind == "speed":
        return f"{abs(f.change):.1%} {'slower' if f.change > 0 else 'faster'}" if f.change else "0%"
    return f"{f.change:+.1%}"


def seeds_text(f: Figure) -> str:
    """What more seeds would settle, for a "no significant change"."""
    if f.verdict != "same":
        return ""
    size = f"{f.tolerance}" if f.kind == "metric" else f"{f.tolerance} in time"
    if f.seeds_needed is not None:
        return f"{f.seeds_needed} seeds a side would detect a change of {size} (80% power)"
    if len(f.a) == 1 and len(f.b) == 1:
        return "run 2+ seeds a side for a test"
    if f.tolerance.size(summarize(f.a).mean) > 0:
        return f"over {MAX_SEEDS} seeds a side would be needed to detect {size}"
    return ""


def evidence_text(f: Figure) -> str:
    more = seeds_text(f)
    return f"{f.why()}; {more}" if more else f.why()


def figure_rows(c: Comparison) -> list[dict[str, Any]]:
    """One dict per figure: the cell, the figure, both sides, the change, the verdict and its evidence."""
    rows = []
    for f in c.figures:
        sa, sb = f.summary_a, f.summary_b
        rows.append(
            {
                "cell": f.label,
                "key": f.cell,
                "figure": f.name,
                "kind": f.kind,
                "better": f.better,
                "a": values_text(f.a),
                "b": values_text(f.b),
                "a_values": list(f.a),
                "b_values": list(f.b),
                "a_mean": sa.mean,
                "b_mean": sb.mean,
                "a_std": None if math.isnan(sa.std) else sa.std,
                "b_std": None if math.isnan(sb.std) else sb.std,
                "change": f.change,
                "change_text": change_text(f),
                "tolerance": str(f.tolerance),
                "verdict": f.verdict,
                "verdict_text": WORDS[f.verdict],
                "test": f.test,
                "p": f.p_value,
                "q": f.q_value,
                "seeds_needed": f.seeds_needed,
                "evidence": evidence_text(f),
            }
        )
    return rows


def _speed_line(c: Comparison) -> str:
    if c.speed == "calibrated":
        return "speed as ratios to each run's calibration (median of the workload timed in every cell)"
    return "speed in images per second (" + ", ".join(f"{n}: {SPEED_UNITS[p]}" for n, p in SPEED_FIGURES.items()) + ")"


def _family_sizes(c: Comparison) -> str:
    tested = [f for f in c.figures if f.p_value is not None]
    if not tested and any(f.verdict != "refused" for f in c.figures):  # p None: one seed a side (no spread)
        return "one seed a side: no test is possible, only the tolerances decide"
    metric = sum(f.kind == "metric" for f in tested)
    speed = sum(f.kind == "speed" for f in tested)
    sided = "one-sided Welch t" if c.directional else "Welch t"
    families = f"{_count(metric, 'metric')} and {_count(speed, 'speed figure')}"
    return f"alpha {c.alpha:g}, {sided}, Benjamini-Hochberg over {families}"


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _cells_line(cells: Sequence[Cell]) -> str:
    return ", ".join(f"`{c.label}`" for c in cells)


def _table_md(rows: Sequence[dict[str, Any]], a: str, b: str) -> list[str]:
    lines = [f"| cell | figure | {a} | {b} | change | verdict | evidence |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = f"**{r['verdict_text']}**" if r["verdict"] in ("worse", "refused") else r["verdict_text"]
        cells = [r["cell"], r["figure"], r["a"], r["b"], r["change_text"], verdict, r["evidence"]]
        lines.append("| " + " | ".join(_md(str(x)) for x in cells) + " |")
    return lines


def _extras_md(c: Comparison, a: str, b: str) -> list[str]:
    lines = []
    if c.only_a:
        lines.append(f"- only in {a}: {_cells_line(c.only_a)}")
    if c.only_b:
        lines.append(f"- only in {b}: {_cells_line(c.only_b)}")
    lines += [f"- {_md(x)}" for x in c.one_sided]
    lines += [f"- note: {_md(x)}" for x in c.notes]
    return lines


# -- compare --------------------------------------------------------------------------------
def compare_markdown(c: Comparison) -> str:
    head = (
        f"**genbench compare**: A `{c.a.source}`, B `{c.b.source}`; {_count(len(c.matched), 'matched cell')}; "
        f"{_speed_line(c)}; {_family_sizes(c)}"
    )
    lines = [head, "", *_table_md(figure_rows(c), "A", "B")]
    extras = _extras_md(c, "A", "B")
    return "\n".join([*lines, *(["", *extras] if extras else [])]) + "\n"


def compare_json(c: Comparison) -> str:
    out = {
        "a": c.a.source,
        "b": c.b.source,
        "alpha": c.alpha,
        "speed": c.speed,
        "figures": figure_rows(c),
        "only_a": [x.label for x in c.only_a],
        "only_b": [x.label for x in c.only_b],
        "one_sided": c.one_sided,
        "notes": c.notes,
    }
    return json.dumps(out, indent=2, default=_json_default) + "\n"


def compare_csv(c: Comparison) -> str:
    rows = figure_rows(c)
    keys = ["cell", "figure", "kind", "better", "a_mean", "a_std", "b_mean", "b_std", "change", "tolerance"]
    keys += ["verdict", "test", "p", "q", "seeds_needed", "evidence"]
    frame = pd.DataFrame([{k: r[k] for k in keys} for r in rows], columns=keys)
    frame["a_seeds"] = [len(r["a_values"]) for r in rows]
    frame["b_seeds"] = [len(r["b_values"]) for r in rows]
    return safe_csv_text(frame)


def compare_rich(c: Comparison) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=escape(f"A {c.a.source}  vs  B {c.b.source}: {_speed_line(c)}; {_family_sizes(c)}"),
        title_justify="left",
    )
    for col in ("cell", "figure", "A", "B", "change", "verdict", "evidence"):
        table.add_column(col, justify="right" if col in ("A", "B", "change") else "left")
    style = {"better": "green", "worse": "bold red", "same": "dim", "refused": "yellow"}
    for r in figure_rows(c):
        verdict = f"[{style[r['verdict']]}]{escape(r['verdict_text'])}[/]"
        table.add_row(
            *(escape(str(r[k])) for k in ("cell", "figure", "a", "b", "change_text")), verdict, escape(r["evidence"])
        )
    extras = [Text(x.removeprefix("- ")) for x in _extras_md(c, "A", "B")]
    return Group(table, *extras)


# -- check ----------------------------------------------------------------------------------
def check_markdown(r: CheckResult) -> str:
    c = r.comparison
    ref = "baseline" if r.mode == "baseline" else "reference run"
    n = len(r.regressions)
    verdict = f"{n} regression{'s' if n != 1 else ''}" if n else ("missing cells" if r.missing else "passed")
    lines = [
        f"## genbench check: {'❌' if not r.passed else '✅'} {verdict}",
        "",
        f"Run `{c.b.source}` against {ref} `{c.a.source}`: {_count(len(c.matched), 'cell')}, "
        f"{_count(len(c.figures), 'figure')}; "
        f"{_speed_line(c)}; {_family_sizes(c)}.",
    ]
    if r.regressions:
        lines += ["", "### Regressions", "", "| cell | what | detail |", "|---|---|---|"]
        lines += [f"| {_md(x.cell)} | {_md(x.what)} | {_md(x.message)} |" for x in r.regressions]
    if r.missing:
        lines += ["", f"### Cells of the {ref} missing from the run", "", _cells_line(r.missing)]
    if r.improvements:
        lines += ["", "### Improvements", ""]
        lines += [f"- `{f.label}` {_md(figure_message(f))}" for f in r.improvements]
    extras = [x for x in _extras_md(c, ref, "run") if f"only in {ref}" not in x]
    if extras:
        lines += ["", *extras]
    rows = figure_rows(c)
    lines += [
        "",
        f"<details><summary>All {len(rows)} figures</summary>",
        "",
        *_table_md(rows, ref, "run"),
        "",
        "</details>",
    ]
    return "\n".join(lines) + "\n"


def check_json(r: CheckResult) -> str:
    c = r.comparison
    out = {
        "passed": r.passed,
        "exit_code": r.exit_code,
        "mode": r.mode,
        "reference": c.a.source,
        "run": c.b.source,
        "alpha": c.alpha,
        "speed": c.speed,
        "regressions": [{"cell": x.cell, "what": x.what, "message": x.message} for x in r.regressions],
        "missing": [x.label for x in r.missing],
        "new_cells": [x.label for x in c.only_b],
        "figures": figure_rows(c),
        "notes": [*c.one_sided, *c.notes],
    }
    return json.dumps(out, indent=2, default=_json_default) + "\n"


def check_junit(r: CheckResult) -> str:
    """JUnit XML: one test case per cell x figure, plus each cell's status and flags, and each missing cell."""
    c = r.comparison
    suite = ET.Element("testsuite", name=f"genbench check {c.b.source} vs {c.a.source}")
    failures = errors = skipped = 0
    labels = {f.cell: f.label for f in c.figures}
    for f in c.figures:
        case = ET.SubElement(suite, "testcase", classname=f.label, name=f.name)
        if f.verdict == "worse":
            ET.SubElement(case, "failure", message=figure_message(f), type="regression").text = evidence_text(f)
            failures += 1
        elif f.verdict == "refused":
            ET.SubElement(case, "skipped", message=f.reason)
            skipped += 1
        ET.SubElement(case, "system-out").text = f"{WORDS[f.verdict]}: {figure_message(f)}"
    for key in c.matched:
        label = labels[key]
        for name, prefix in (("status", "status"), ("flags", "flag:")):
            case = ET.SubElement(suite, "testcase", classname=label, name=name)
            found = [x.message for x in r.regressions if x.cell == label and x.what.startswith(prefix)]
            if found:
                ET.SubElement(case, "failure", message=found[0], type="regression").text = "\n".join(found)
                failures += 1
    for cell in r.missing:
        case = ET.SubElement(suite, "testcase", classname=cell.label, name="present")
        ET.SubElement(case, "error", message="in the reference, missing from the run", type="missing")
        errors += 1
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name="genbench check", tests=suite.get("tests", "0"))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
