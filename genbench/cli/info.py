"""``genbench list``: what is registered (models, datasets, metrics, figures, executors, plugins) and
``genbench run``'s options, as a table or as JSON.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from genbench.protocol import run_options


class Kind(StrEnum):
    models = "models"
    datasets = "datasets"
    metrics = "metrics"
    figures = "figures"
    executors = "executors"
    plugins = "plugins"
    options = "options"


def _rows(kind: Kind) -> list[dict[str, Any]]:
    from genbench.hyper import describe
    from genbench.plugins import get_registry

    registry = get_registry()
    if kind is Kind.plugins:
        return [{"name": p.name, "origin": p.origin, "description": p.description} for p in registry.plugins]
    if kind is Kind.options:
        return [
            {"name": o.flag, "key": o.key, "kind": o.kind, "group": o.group, "default": o.shown_default, "help": o.help}
            for o in run_options()
        ]
    tables: dict[Kind, dict[str, Any]] = {
        Kind.models: registry.models,
        Kind.datasets: registry.datasets,
        Kind.metrics: registry.metrics,
        Kind.figures: registry.figures,
        Kind.executors: registry.executors,
    }
    rows = []
    for name, entry in tables[kind].items():
        cls: Any = entry.cls
        row: dict[str, Any] = {
            "name": name,
            "plugin": entry.plugin.name,
            "origin": entry.plugin.origin,
            "description": cls.description,
        }
        if kind is Kind.models:
            row["capabilities"] = sorted(c.value for c in cls.capabilities)
            row["hyper"] = [
                {"name": f.name, "type": f.type, "default": f.default, "by_kind": f.by_kind, "help": f.help}
                for f in describe(cls.Hyper)
            ]
        elif kind is Kind.datasets:
            row.update(shape=list(cls.shape), kind=cls.kind, classes=cls.num_classes)
        elif kind is Kind.figures:
            row.update(
                requires=sorted(c.value for c in cls.requires),
                data_kinds=sorted(cls.data_kinds),
                every_epoch=cls.every_epoch,
            )
        elif kind is Kind.executors:
            row["options"] = sorted(cls.uses)
        else:
            row.update(
                better="higher" if cls.higher_is_better else "lower",
                requires=sorted(c.value for c in cls.requires),
            )
        rows.append(row)
    return rows


def _default_text(h: dict[str, Any]) -> str:
    """``256``, or with defaults for some data kinds ``256 (points: 64)``."""
    extra = ", ".join(f"{kind}: {value}" for kind, value in h["by_kind"].items())
    return f"{h['default']} ({extra})" if extra else str(h["default"])


def list_(
    kind: Annotated[Kind, typer.Argument(help="what to list")] = Kind.models,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show registered models (with hyper-parameters), datasets, metrics, figures, executors or plugins."""
    from genbench.plugins import get_registry

    rows = _rows(kind)
    problems = get_registry().problems
    if as_json:
        typer.echo(json.dumps({kind.value: rows, "problems": problems}, indent=2, default=str))
        return
    from rich.table import Table

    console = Console()
    table = Table(title=f"genbench {kind.value}")
    if kind is Kind.options:  # genbench run's options: flag, suite key, default, what it records or steers
        for col in ("option", "suite key", "default", "group", "meaning"):
            table.add_column(col)
        for row in rows:
            table.add_row(row["name"], row["key"], row["default"], row["group"], row["help"])
        console.print(table)
        return
    for col in ("name", "origin", "description"):
        table.add_column(col)
    if kind is Kind.models:
        table.add_column("hyper-parameters (type = default)")
    for row in rows:
        cells = [row["name"], row["origin"], row.get("description", "")]
        if kind is Kind.models:
            cells.append("\n".join(f"{h['name']}: {h['type']} = {_default_text(h)}" for h in row["hyper"]))
        table.add_row(*cells)
    console.print(table)
    for problem in problems:
        Console(stderr=True).print(f"[yellow]plugin problem:[/] {problem}")
