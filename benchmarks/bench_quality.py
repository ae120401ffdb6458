"""Quality on a CPU budget: do the built-in models' defaults train well? Prints figures, asserts nothing.

Three checks from the model-zoo issue, each a small genbench grid on packaged data:

1. ``cdcgan`` on ``mnist5k``: conditional accuracy (share of samples the domain
   classifier assigns to the class asked for). Goal: at least 90%.
2. ``dcgan`` against ``gan`` on ``mnist5k`` at the same epochs and seeds: domain FID.
   Goal: dcgan lower.
3. ``gan`` on the 8-Gaussian ring (``toy2d``), with its defaults for 2-D points: modes
   covered (VEEGAN's definition) and the share of high-quality samples, for each of
   several seeds. Goal: all 8 modes in every seed.

Usage::

    python benchmarks/bench_quality.py                 # all three, defaults below
    python benchmarks/bench_quality.py --only ring --ring-epochs 60 --ring-seeds 0,1,2
    python benchmarks/bench_quality.py --json quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.stats import summarize
from genbench.run.grid import parse_seeds
from genbench.run.runner import RunRequest, run_grid


@dataclass
class Check:
    name: str
    goal: str
    command: str
    values: dict[str, list[float]] = field(default_factory=dict)
    met: bool | None = None
    seconds: float = 0.0


def grid(
    models: tuple[str, ...],
    dataset: str,
    metrics: tuple[str, ...],
    epochs: int,
    seeds: tuple[int, ...],
    axes: tuple[str, ...],
    cache: Path,
    out: Path,
) -> list[CellRecord]:
    protocol = Protocol(dataset, metrics, epochs=epochs, cache_dir=cache)
    result = run_grid(RunRequest(models, protocol, out, axes, seeds))
    bad = [f"{r.cell_id}: {r.status} {r.error}" for r in result.records if r.status != "ok"]
    if bad:
        raise GenbenchError(f"cells did not finish: {'; '.join(bad)}")
    return result.records


def values_of(records: list[CellRecord], model: str, key: str) -> list[float]:
    return [r.metrics[key] for r in records if r.model == model and key in r.metrics]


def fmt(values: list[float]) -> str:
    s = summarize(values)
    if s.n < 2:
        return f"{s.mean:.4g}"
    per_seed = ", ".join(f"{v:.3g}" for v in values)
    return f"{s.mean:.4g} ± {s.std:.2g} (n={s.n}: {per_seed})"


def run(args: argparse.Namespace, cache: Path, out: Path) -> list[Check]:
    seeds = parse_seeds(args.seeds)
    checks = []
    only = set(args.only.split(","))
    if "cond" in only:
        c = Check(
            "cdcgan conditional accuracy",
            ">= 0.90",
            f"genbench run --models cdcgan --metrics cond_acc --epochs {args.mnist_epochs} --seeds {args.seeds}",
        )
        t = time.perf_counter()
        recs = grid(("cdcgan",), "mnist5k", ("cond_acc",), args.mnist_epochs, seeds, (), cache, out / "cond")
        c.seconds = time.perf_counter() - t
        c.values["cdcgan conditional_accuracy"] = values_of(recs, "cdcgan", "conditional_accuracy")
        c.met = summarize(c.values["cdcgan conditional_accuracy"]).mean >= 0.90
        checks.append(c)
    if "dcgan" in only:
        c = Check(
            "dcgan vs gan, domain FID",
            "dcgan < gan",
            f"genbench run --models dcgan,gan --metrics fid,coverage --epochs {args.mnist_epochs} --seeds {args.seeds}",
        )
        t = time.perf_counter()
        recs = grid(("dcgan", "gan"), "mnist5k", ("fid", "coverage"), args.mnist_epochs, seeds, (), cache, out / "fid")
        c.seconds = time.perf_counter() - t
        for model in ("dcgan", "gan"):
            c.values[f"{model} fid_domain"] = values_of(recs, model, "fid_domain")
            c.values[f"{model} classes_covered"] = values_of(recs, model, "classes_covered")
        c.met = summarize(c.values["dcgan fid_domain"]).mean < summarize(c.values["gan fid_domain"]).mean
        checks.append(c)
    if "ring" in only:
        ring_seeds = parse_seeds(args.ring_seeds)
        c = Check(
            "gan on the 8-Gaussian ring",
            "8/8 modes in every seed",
            f"genbench run --models gan --dataset toy2d --metrics modes,hist2d "
            f"--epochs {args.ring_epochs} --seeds {args.ring_seeds}",
        )
        t = time.perf_counter()
        recs = grid(("gan",), "toy2d", ("modes", "hist2d"), args.ring_epochs, ring_seeds, (), cache, out / "ring")
        c.seconds = time.perf_counter() - t
        for key in ("modes_covered", "high_quality", "js_hist"):
            c.values[f"gan {key}"] = values_of(recs, "gan", key)
        c.met = min(c.values["gan modes_covered"]) >= 8
        checks.append(c)
    return checks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="cond,dcgan,ring", help="comma-separated: cond, dcgan, ring")
    p.add_argument("--mnist-epochs", type=int, default=10)
    p.add_argument("--ring-epochs", type=int, default=30)
    p.add_argument("--seeds", default="0", help="seeds of the two mnist5k checks")
    p.add_argument("--ring-seeds", default="0,1,2,3,4", help="seeds of the ring check (each must cover 8/8)")
    p.add_argument("--cache-dir", type=Path, default=None, help="genbench cache (default: a temporary folder)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache_dir or Path(tmp) / "cache"
        try:
            checks = run(args, cache, Path(tmp) / "out")
        except GenbenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for c in checks:
        verdict = "met" if c.met else "NOT met"
        print(f"\n{c.name}: goal {c.goal}: {verdict}  ({c.seconds:.0f} s)\n  {c.command}")
        for key, values in c.values.items():
            print(f"  {key:32s} {fmt(values)}")
    if args.json:
        data: list[dict[str, Any]] = [c.__dict__ for c in checks]
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
