"""What a grid run and ``genbench eval`` share before their first cell: the metrics' shared
resources and the keys of ``run.json``.

Both write the same kind of results folder, and every reader (``table``, ``compare``,
``check``, ``report``) reads ``run.json`` the same way whoever wrote it; one function for
its keys keeps the two writers from drifting apart (they had: an evaluated folder once
lacked keys a run's had).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genbench.datasets.base import LoadedData
from genbench.metrics.base import Metric
from genbench.metrics.features import evaluation_manifest
from genbench.plugins import get_registry
from genbench.progress import reporting
from genbench.protocol import Protocol
from genbench.run.cell import environment
from genbench.run.timing import resolve_device

# what is being prepared, how much is done, out of how much (None: a new step begins)
Say = Callable[[str, int | None, int | None], None]


@dataclass
class Prepared:
    """The metrics' shared resources: ``facts`` (what their ``prepare`` returned, e.g. reference
    statistics' cache keys) and the feature backbones they use, in order, each once."""

    facts: dict[str, Any] = field(default_factory=dict)
    backbones: tuple[str, ...] = ()


def prepare_metrics(protocol: Protocol, data: LoadedData, applies: Callable[[Metric], bool], say: Say) -> Prepared:
    """Run ``prepare`` of every metric of ``protocol`` that ``applies`` (to at least one model to judge),
    forwarding the progress its long steps report (training the domain classifier, reference features)."""
    registry = get_registry()
    prepared = Prepared()
    used: dict[str, None] = {}
    for name in protocol.metrics:
        metric = registry.metric(name)()
        if not applies(metric):
            continue
        say(f"preparing metric {name!r}", None, None)
        with reporting(lambda what, done, total: say(what, done, total)):
            prepared.facts.update(metric.prepare(protocol, data))
        used.update(dict.fromkeys(metric.backbones(protocol)))
    prepared.backbones = tuple(used)
    return prepared


def run_manifest(protocol: Protocol, data: LoadedData, prepared: Prepared, **run: Any) -> dict[str, Any]:
    """``run.json``'s keys: the protocol, the data and the metrics' resources, what ran them, and ``run``
    (the grid's ``models``, ``grid``, ``seeds``, ``cells``, ``cell_timeout``, ``executor``; an evaluation
    gives its own). The directions and ranges of the metrics start empty: each record adds its own."""
    registry = get_registry()
    return {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "models": [],
        "grid": [],
        "seeds": [],
        "protocol": protocol.manifest(),
        "n_reference": protocol.n_reference(len(data.split(protocol.reference_split))),
        "dataset_fingerprint": data.fingerprint,
        "facts": prepared.facts,
        "evaluation": evaluation_manifest(protocol, data, prepared.backbones),
        "environment": environment(resolve_device(protocol.device)),
        "plugins": [dataclasses.asdict(x) for x in registry.plugins],
        "plugin_problems": list(registry.problems),
        "metric_better": {},
        "metric_bounds": {},  # key -> {low, high, integer}: the tables clip intervals to these
        "cells": 0,
        "cell_timeout": None,
    } | run
