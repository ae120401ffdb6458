"""Two sides, cell by cell: better, worse or no significant change, with the evidence.

:func:`compare` matches the cells of two :class:`~genbench.reporting.cellset.CellSet` (two runs,
or a baseline and a run) by model and hyper-parameters, and judges every ranked metric and
every speed figure of every matched cell, over the seeds each side ran (ok seeds only):

* **better / worse** needs both a change larger than the figure's tolerance
  (:mod:`genbench.reporting.tolerance`) in that direction *and* statistical evidence: the
  Benjamini-Hochberg adjusted p-value (q) of a t-test on the per-seed values below ``alpha``
  (:mod:`genbench.reporting.significance`; metrics and speed figures are adjusted as two
  separate families). Metrics get Welch's test; speed figures Student's pooled test on the
  logarithm of their throughput, as their noise is the machine's and multiplicative, and
  their change is a change of time per image (``+25%``: a quarter slower), the geometric
  means of the two sides compared.
* ``genbench check`` tests one-sided, in the direction each figure moved (its question is "worse?"),
  which halves the p-value of a change; ``genbench compare`` asks "which way, if any?" and tests
  two-sided.
* A speed figure whose phase lasted under :data:`MIN_TIMED` (0.2 s, the reference side's median)
  is not judged: the clock of a 5 ms phase measures the machine's mood, not the code. A note
  says which.
* With one seed on each side there is no spread to test against: the tolerance alone decides,
  and the figure says ``1 seed a side: tolerance only``. With one seed on one side only, that
  value is tested against the other side's spread.
* **no significant change** otherwise; it then says how many seeds per side a t-test would
  need for an 80% chance to see a true change of the tolerance's size at the spread observed,
  at the level a single real change needs after the adjustment (alpha over the family's size).

Speed figures are compared ``raw`` (images per second: two runs on one machine, e.g. base and
head in the same CI job) or ``calibrated`` (each divided by the median throughput of the
calibration workload timed in every cell of its side, :mod:`genbench.run.calibrate` and
:meth:`~genbench.reporting.cellset.CellSet.calibration`: runs on different machines, e.g.
against a committed baseline).

What was measured differently is refused by name rather than compared: a different dataset
(name or content), split, sample count, library version, KID/IS/precision-recall setting, or a
backbone whose weights, layer, extractor or resizing differ (that backbone's metrics, and the
metrics that name no backbone, such as classes covered, since they read a backbone too), and
for speed a different device, clock, number of torch threads, machine (raw) or calibration
workload (calibrated).

A backbone genbench trained itself (the domain classifier) is identified by its recipe
(:func:`genbench.metrics.backbones.domain_recipe`), recorded beside its weights' hash. Trained
from the same recipe on another CPU it has other weights (each instruction set rounds float sums
its own way, and training amplifies it) yet is the same classifier by construction: its metrics
are compared, with a note naming both hashes, and the tolerances absorb the drift (measured in
docs/ci.md: FID and KID moved by 3% at most, noisier figures by up to one seed's worth). A
different recipe is refused, naming what differs; a weights file given by the user has no
recipe, so its hash alone decides, as for every other backbone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from genbench.errors import GenbenchError
from genbench.reporting.cellset import PROTOCOL_WITHOUT_EFFECT, Cell, CellSet, describe
from genbench.reporting.significance import adjust, difference_test, pooled_sd, seeds_for_power
from genbench.reporting.stats import Summary, summarize
from genbench.reporting.tolerance import SPEED_FIGURES, Tolerance, resolve

Verdict = Literal["better", "worse", "same", "refused"]
SpeedMode = Literal["raw", "calibrated"]
ALPHA = 0.01  # the chance of any false alarm over a comparison's metrics (and, apart, its speed figures)
MIN_TIMED = 0.2  # seconds: a phase shorter than this (on the reference side, median) is not timed meaningfully
# Evaluation settings that concern some metrics only, by key prefix; any other difference concerns them all.
_SETTING_SCOPE: dict[str, tuple[str, ...]] = {
    "kid_subsets": ("kid_",),
    "kid_subset_size": ("kid_",),
    "isc_splits": ("isc_",),
    "prc_neighborhood": ("precision_", "recall_", "f_score_"),
    "reference_stats": ("fid_",),
}
_BACKBONE_FIELDS = ("extractor", "weights", "layer", "logits_layer", "resize")
_NAMES = {
    "n_generated": "generated sample counts",
    "n_reference": "reference sample counts",
    "reference_split": "reference split",
    "torch": "torch version",
    "torch_fidelity": "torch-fidelity version",
    "reference_stats": "reference statistics",
}


@dataclass(frozen=True)
class Figure:
    """One metric or speed figure of one matched cell, on both sides, and the verdict."""

    cell: str  # the cell key
    label: str  # the cell's name for people
    name: str  # metric key or speed figure
    kind: Literal["metric", "speed"]
    better: Literal["lower", "higher"]
    a: tuple[float, ...]  # per-seed values (ok seeds); speed: throughput (raw or calibrated)
    b: tuple[float, ...]
    tolerance: Tolerance
    verdict: Verdict = "same"
    change: float | None = None  # metrics: (B - A) / |A|; speed: time per image, B over A, minus 1
    p_value: float | None = None
    q_value: float | None = None  # Benjamini-Hochberg adjusted within the family
    test: str = ""
    seeds_needed: int | None = None  # per side, for a "same"
    reason: str = ""  # why it was refused

    @property
    def summary_a(self) -> Summary:
        return summarize(self.a)

    @property
    def summary_b(self) -> Summary:
        return summarize(self.b)

    @property
    def exceeds(self) -> bool:
        """Whether the change is larger than the tolerance (in either direction)."""
        return _beyond(self) is not None

    def why(self) -> str:
        """A few words on the verdict: the evidence, or why there is none."""
        if self.verdict == "refused":
            return self.reason
        q = "" if self.q_value is None else f"q={self.q_value:.2g}"
        if self.verdict in ("better", "worse"):
            return f"{self.test}, {q}" if q else self.test
        if not self.exceeds:
            return f"within tolerance ({self.tolerance})"
        return f"not significant ({self.test}, {q})" if q else self.test


@dataclass
class Comparison:
    """Everything :func:`compare` found, for the renderers and :mod:`genbench.reporting.check`."""

    a: CellSet
    b: CellSet
    figures: list[Figure]
    alpha: float
    speed: SpeedMode
    only_a: list[Cell] = field(default_factory=list)  # cells on one side only: listed, never dropped
    only_b: list[Cell] = field(default_factory=list)
    one_sided: list[str] = field(default_factory=list)  # "gan_...: isc_domain only in B"
    notes: list[str] = field(default_factory=list)
    directional: bool = False  # one-sided tests (a check), else two-sided (compare)

    @property
    def matched(self) -> list[str]:
        return list(dict.fromkeys(f.cell for f in self.figures))

    def refused(self) -> list[Figure]:
        return [f for f in self.figures if f.verdict == "refused"]


# -- what was measured differently ----------------------------------------------------------------
Applies = Callable[[str], bool]


def _everything(_name: str) -> bool:
    return True


def _metrics_only(name: str) -> bool:
    return name not in SPEED_FIGURES


def _prefixes(prefixes: tuple[str, ...]) -> Applies:
    return lambda name: name.startswith(prefixes)


def _backbone(backbone: str, all_backbones: Sequence[str]) -> Applies:
    suffixes = tuple(f"_{b}" for b in all_backbones)

    def applies(name: str) -> bool:  # its own metrics, and metrics that name no backbone (they read one too)
        return name not in SPEED_FIGURES and (name.endswith(f"_{backbone}") or not name.endswith(suffixes))

    return applies


def _differs(x: object, y: object) -> bool:
    return x != y and not (isinstance(x, int | float) and isinstance(y, int | float) and float(x) == float(y))


def differences(a: CellSet, ca: Cell, b: CellSet, cb: Cell, speed: SpeedMode) -> list[tuple[Applies, str]]:
    """What was measured differently between two matched cells, each with the figures it concerns."""
    out: list[tuple[Applies, str]] = []
    if ca.dataset != cb.dataset:
        out.append((_everything, f"dataset differs ({ca.dataset!r} vs {cb.dataset!r})"))
    elif a.dataset_fingerprint and b.dataset_fingerprint and a.dataset_fingerprint != b.dataset_fingerprint:
        fa, fb = describe(a.dataset_fingerprint), describe(b.dataset_fingerprint)
        out.append((_everything, f"dataset content differs (fingerprint {fa} vs {fb})"))
    ea, eb = ca.evaluation, cb.evaluation
    if ea and eb:
        for key in sorted(set(ea) & set(eb) - {"backbones"}):
            if _differs(ea[key], eb[key]):
                scope = _SETTING_SCOPE.get(key)
                everything = key in ("torch", "torch_fidelity")  # versions: every number, speed included
                applies = _prefixes(scope) if scope else _everything if everything else _metrics_only
                what = _NAMES.get(key, key.replace("_", " "))
                verb = "differ" if what.endswith("s") else "differs"
                out.append((applies, f"{what} {verb} ({describe(ea[key])} vs {describe(eb[key])})"))
        ba, bb = ea.get("backbones") or {}, eb.get("backbones") or {}
        names = sorted(set(ba) | set(bb))
        for name in sorted(set(ba) & set(bb)):
            da, db = ba[name] or {}, bb[name] or {}
            for key in _BACKBONE_FIELDS:
                x, y = da.get(key), db.get(key)
                if key == "weights" and _same_recipe(da, db):
                    continue  # trained again from the same recipe: float drift, noted by retrained()
                if _differs(x, y):
                    verb = "differ" if key == "weights" else "differs"
                    what = f"backbone {name} {key.replace('_', ' ')} {verb} ({describe(x)} vs {describe(y)})"
                    out.append((_backbone(name, names), what + _other_recipe(da, db)))
                    break
    for key in sorted(set(a.protocol) & set(b.protocol) - PROTOCOL_WITHOUT_EFFECT - {"dataset", "epochs"}):
        if _differs(a.protocol[key], b.protocol[key]):  # after the evaluation's own words
            what = f"protocol setting {key} differs ({describe(a.protocol[key])} vs {describe(b.protocol[key])})"
            out.append((_metrics_only, what))
    clock_a, clock_b = _clock(ca), _clock(cb)
    if clock_a and clock_b and clock_a != clock_b:
        out.append((lambda n: n in SPEED_FIGURES, f"clocks differ ({clock_a} time vs {clock_b} time)"))
    threads_a, threads_b = a.environment.get("torch_threads"), b.environment.get("torch_threads")
    if threads_a and threads_b and threads_a != threads_b:
        out.append((lambda n: n in SPEED_FIGURES, f"torch threads differ ({threads_a} vs {threads_b})"))
    device_a, device_b = ca.device.split(":")[0], cb.device.split(":")[0]
    if device_a != device_b:
        out.append((lambda n: n in SPEED_FIGURES, f"device differs ({ca.device} vs {cb.device})"))
    elif speed == "raw":
        for key, what in (("platform", "machine"), ("gpu", "GPU")):
            x, y = a.environment.get(key), b.environment.get(key)
            if x and y and x != y:
                hint = "; compare speed as ratios to the calibration (--speed calibrated)"
                out.append((lambda n: n in SPEED_FIGURES, f"{what} differs ({x} vs {y}){hint}"))
                break
    else:
        x, y = a.environment.get("calibration"), b.environment.get("calibration")
        if x != y and x and y:
            out.append((lambda n: n in SPEED_FIGURES, f"calibration workload differs ({x!r} vs {y!r})"))
    return out


def _clock(cell: Cell) -> str | None:
    return next((s.clock for s in cell.ok()), None)


def _recipe(backbone: Mapping[str, object]) -> dict[str, object] | None:
    recipe = backbone.get("recipe")
    return recipe if isinstance(recipe, dict) and recipe else None


def _same_recipe(x: Mapping[str, object], y: Mapping[str, object]) -> bool:
    """Whether both sides trained this backbone themselves, from one recipe (weights may differ by float drift)."""
    rx, ry = _recipe(x), _recipe(y)
    return rx is not None and rx == ry


def _other_recipe(x: Mapping[str, object], y: Mapping[str, object]) -> str:
    """``: trained from another recipe (epochs 20 vs 10)``, when both sides recorded recipes that differ."""
    rx, ry = _recipe(x), _recipe(y)
    if rx is None or ry is None or rx == ry:
        return ""
    keys = [k for k in dict.fromkeys([*rx, *ry]) if _differs(rx.get(k), ry.get(k))]
    return (
        ": trained from another recipe ("
        + ", ".join(f"{k} {describe(rx.get(k))} vs {describe(ry.get(k))}" for k in keys)
        + ")"
    )


def retrained(ca: Cell, cb: Cell) -> list[tuple[str, str, str]]:
    """Backbones both cells trained from the same recipe, with other weights: (name, weights A, weights B)."""
    ba, bb = ca.evaluation.get("backbones") or {}, cb.evaluation.get("backbones") or {}
    out = []
    for name in sorted(set(ba) & set(bb)):
        da, db = ba[name] or {}, bb[name] or {}
        if _same_recipe(da, db) and _differs(da.get("weights"), db.get("weights")):
            out.append((name, str(da.get("weights")), str(db.get("weights"))))
    return out


# -- judging one figure ------------------------------------------------------------------------
def _gmean(xs: Sequence[float]) -> float:
    return math.exp(math.fsum(math.log(x) for x in xs) / len(xs))


def _change(f: Figure) -> float | None:
    if f.kind == "speed":
        return _gmean(f.a) / _gmean(f.b) - 1  # time per image, B over A: +0.25 is a quarter slower
    mean_a, mean_b = math.fsum(f.a) / len(f.a), math.fsum(f.b) / len(f.b)
    return (mean_b - mean_a) / abs(mean_a) if mean_a else None


def _beyond(f: Figure) -> Literal["better", "worse"] | None:
    """The direction in which the change exceeds the tolerance, if it does."""
    tol = f.tolerance
    if f.kind == "speed":
        ratio = _gmean(f.a) / _gmean(f.b)  # > 1: B is slower
        if ratio - 1 > tol.value:
            return "worse"
        return "better" if 1 / ratio - 1 > tol.value else None
    mean_a, mean_b = math.fsum(f.a) / len(f.a), math.fsum(f.b) / len(f.b)
    worse_by = (mean_b - mean_a) if f.better == "lower" else (mean_a - mean_b)
    size = tol.size(mean_a)
    if worse_by > size:
        return "worse"
    return "better" if -worse_by > size else None


def _values(f: Figure) -> tuple[list[float], list[float]]:
    """What the test sees: speed on a log scale (multiplicative noise), metrics as they are."""
    if f.kind == "speed":
        return [math.log(x) for x in f.a], [math.log(x) for x in f.b]
    return list(f.a), list(f.b)


def _judge(figures: list[Figure], alpha: float, one_sided: bool) -> list[Figure]:
    """p-values, Benjamini-Hochberg q-values within the family, verdicts and seeds needed."""
    from dataclasses import replace

    tests = [
        difference_test(*_values(f), equal_var=f.kind == "speed") if f.verdict != "refused" else (None, "")
        for f in figures
    ]
    if one_sided:  # the p-value of the observed direction: a check asks "worse?", one question per figure
        tests = [(None if p is None else p / 2, f"{test}, one-sided" if p is not None else test) for p, test in tests]
    qs = adjust([p for p, _ in tests])
    family = max(1, sum(p is not None for p, _ in tests))
    out = []
    for f, (p, test), q in zip(figures, tests, qs, strict=True):
        if f.verdict == "refused":
            out.append(f)
            continue
        direction = _beyond(f)
        evident = q is None or q < alpha  # q None: one seed a side, the tolerance alone decides
        verdict: Verdict = direction if direction is not None and evident else "same"
        needed = None
        if verdict == "same":
            va, vb = _values(f)
            sd = pooled_sd(va, vb)
            mean_a = math.fsum(f.a) / len(f.a)
            delta = math.log1p(f.tolerance.value) if f.kind == "speed" else f.tolerance.size(mean_a)
            level = 2 * alpha / family if one_sided else alpha / family  # the two-sided level of the same test
            needed = seeds_for_power(sd, delta, level) if sd is not None else None
        out.append(replace(f, verdict=verdict, change=_change(f), p_value=p, q_value=q, test=test, seeds_needed=needed))
    return out


# -- the comparison ---------------------------------------------------------------------------
def compare(
    a: CellSet,
    b: CellSet,
    tolerances: Sequence[Mapping[str, Tolerance]] = (),
    alpha: float = ALPHA,
    speed: SpeedMode = "raw",
    one_sided: bool = False,
) -> Comparison:
    """Match cells, refuse what was measured differently, judge the rest; GenbenchError if no cell matches.

    ``one_sided``: test each figure in the direction it moved (what a check asks: did it get worse?);
    two-sided otherwise (``compare``: which way, if any?).
    """
    if not 0 < alpha < 1:
        raise GenbenchError(f"--alpha {alpha}: must be between 0 and 1, e.g. 0.01")
    keys = [k for k in a.cells if k in b.cells]
    if not keys:
        raise GenbenchError(
            f"{a.source} and {b.source} share no cell (same model and hyper-parameters); "
            f"{a.kind} has {_names(a)}, {b.kind} has {_names(b)}"
        )
    better = {**b.metric_better, **a.metric_better}
    metrics = [m for m in dict.fromkeys([*a.metrics(), *b.metrics()]) if better.get(m) in ("lower", "higher")]
    figures: list[Figure] = []
    only_one_side: list[str] = []
    untimed: dict[str, list[str]] = {}  # speed figure -> how long its phase lasted, per cell
    drift: dict[tuple[str, str, str], list[str]] = {}  # (backbone, weights A, weights B) -> metrics compared
    # calibrated: each side's throughputs over the median of its calibration timings (None: not timed)
    scale_a, scale_b = (a.calibration(), b.calibration()) if speed == "calibrated" else (1.0, 1.0)
    for key in keys:
        ca, cb = a.cells[key], b.cells[key]
        diffs = differences(a, ca, b, cb, speed)
        rows: list[tuple[str, Literal["metric", "speed"], Literal["lower", "higher"], list[float], list[float]]] = []
        for m in metrics:
            direction: Literal["lower", "higher"] = "lower" if better[m] == "lower" else "higher"
            rows.append((m, "metric", direction, _metric(ca, m), _metric(cb, m)))
        for name, phase in SPEED_FIGURES.items():
            lasted = sorted(s.seconds[phase] for s in ca.ok() if phase in s.seconds)
            if lasted and lasted[len(lasted) // 2] < MIN_TIMED:
                untimed.setdefault(name, []).append(f"{lasted[len(lasted) // 2] * 1e3:.0f} ms")
                continue
            rows.append((name, "speed", "higher", _speed(ca, phase, scale_a or 1.0), _speed(cb, phase, scale_b or 1.0)))
        for name, kind, direction, va, vb in rows:
            if not va or not vb:
                if va or vb:
                    only_one_side.append(f"{ca.label}: {name} only in {'A' if va else 'B'}")
                continue
            tol = resolve(name, *tolerances)
            reason = next((f"{name}: {what}" for applies, what in diffs if applies(name)), "")
            if kind == "speed" and not reason and (scale_a is None or scale_b is None):
                side = a if scale_a is None else b
                reason = f"{name}: no calibration timed in {side.source}; compare raw figures (--speed raw)"
            verdict: Verdict = "refused" if reason else "same"
            figures.append(
                Figure(key, ca.label, name, kind, direction, tuple(va), tuple(vb), tol, verdict, reason=reason)
            )
        names = sorted({*(ca.evaluation.get("backbones") or {}), *(cb.evaluation.get("backbones") or {})})
        for backbone, wa, wb in retrained(ca, cb):
            read = _backbone(backbone, names)
            compared = drift.setdefault((backbone, wa, wb), [])
            compared += [f.name for f in figures if f.cell == key and f.verdict != "refused" and read(f.name)]
    judged_metrics = _judge([f for f in figures if f.kind == "metric"], alpha, one_sided)
    judged_speed = _judge([f for f in figures if f.kind == "speed"], alpha, one_sided)
    by_id = {(f.cell, f.name): f for f in [*judged_metrics, *judged_speed]}
    return Comparison(
        a=a,
        b=b,
        figures=[by_id[(f.cell, f.name)] for f in figures],
        alpha=alpha,
        speed=speed,
        only_a=[c for k, c in a.cells.items() if k not in b.cells],
        only_b=[c for k, c in b.cells.items() if k not in a.cells],
        one_sided=only_one_side,
        directional=one_sided,
        notes=_notes(a, b, speed)
        + [_drift_note(*k, v) for k, v in drift.items() if v]
        + [
            f"{name} not judged: the phase lasted {', '.join(times)} (median per cell, reference side), too short "
            f"to time (< {MIN_TIMED:g} s)"
            for name, times in untimed.items()
        ],
    )


def _metric(cell: Cell, name: str) -> list[float]:
    return [s.metrics[name] for s in cell.ok() if name in s.metrics]


def _speed(cell: Cell, phase: str, scale: float) -> list[float]:
    values = (s.speed_value(phase, scale) for s in cell.ok())
    return [v for v in values if v is not None]


def _names(side: CellSet, limit: int = 3) -> str:
    labels = [c.label for c in side.cells.values()]
    more = f" and {len(labels) - limit} more" if len(labels) > limit else ""
    return ", ".join(labels[:limit]) + more


def _drift_note(backbone: str, wa: str, wb: str, metrics: list[str]) -> str:
    """``fid_domain, kid_domain: backbone domain retrained from the same recipe ...; weights differ (a vs b)``."""
    return (
        f"{', '.join(dict.fromkeys(metrics))}: backbone {backbone} retrained from the same recipe (another CPU "
        f"or thread count rounds differently); weights differ ({describe(wa)} vs {describe(wb)}), compared within "
        "the tolerances"
    )


def _notes(a: CellSet, b: CellSet, speed: SpeedMode) -> list[str]:
    """Environment differences that are not refusals, said once."""
    notes = []
    for key in ("platform", "gpu", "python", "torchvision", "genbench"):
        x, y = a.environment.get(key), b.environment.get(key)
        if x and y and x != y and not (speed == "raw" and key in ("platform", "gpu")):
            notes.append(f"{key} differs ({x} vs {y})")
    return notes
