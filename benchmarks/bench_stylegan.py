"""StyleGAN-like plugin against dcgan at the same wall-clock budget. Prints figures, asserts nothing.

Needs the plugin installed (``pip install -e plugins/genbench-stylegan``, or on the path
with its entry point). For each seed:

1. **Calibration**: one epoch of each model (``--dataset``, their shipped defaults) gives
   its training seconds per epoch on this machine (``record.timings["train"]``: the
   training loop alone, see README "What the timings cover").
2. **Same budget**: each model trains for ``round(budget / seconds per epoch)`` epochs
   (at least 1), so both spend about ``--budget`` seconds training, then both are
   evaluated by the same protocol: domain FID, FD-infinity, density, coverage, classes
   covered, Vendi.

The actual training seconds of each cell are printed next to its figures: the budget is
met only as well as the calibration epoch predicts the others (a shared machine drifts).

    python benchmarks/bench_stylegan.py                          # mnist5k, 240 s each, seed 0
    python benchmarks/bench_stylegan.py --budget 120 --seeds 0,1 --json stylegan.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from genbench.errors import GenbenchError
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, Protocol
from genbench.reporting.stats import summarize
from genbench.run.grid import parse_seeds
from genbench.run.runner import RunRequest, run_grid

MODELS = ("stylegan", "dcgan")
METRICS = ("fid", "fd_inf", "density_coverage", "coverage", "vendi")
SHOWN = {
    "fid_domain": "FID",
    "fd_inf_domain": "FD∞",
    "density_domain": "density",
    "coverage_domain": "coverage",
    "classes_covered": "classes",
    "vendi_domain": "Vendi",
}


def train(
    models: tuple[str, ...], axes: tuple[str, ...], seed: int, args: argparse.Namespace, out: Path
) -> list[CellRecord]:
    protocol = Protocol(args.dataset, METRICS, eval_samples=args.eval_samples, cache_dir=Path(args.cache_dir))
    result = run_grid(RunRequest(models, protocol, out, axes, (seed,)))
    bad = [f"{r.cell_id}: {r.status} {r.error}" for r in result.records if r.status != "ok"]
    if bad:
        raise GenbenchError(f"cells did not finish: {'; '.join(bad)}")
    return result.records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds per model and seed")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--eval-samples", type=int, default=1000)
    parser.add_argument("--cache-dir", default=str(Path.home() / ".cache" / "genbench"))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        if "stylegan" not in get_registry().models:
            raise GenbenchError("model 'stylegan' is not installed: pip install -e plugins/genbench-stylegan")
        rows: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in seeds:
                calibration = train(MODELS, ("epochs=1",), seed, args, Path(tmp) / f"calibrate-{seed}")
                per_epoch = {r.model: r.timings["train"].seconds for r in calibration}
                epochs = {m: max(1, round(args.budget / per_epoch[m])) for m in MODELS}
                axes = tuple(f"{m}.epochs={epochs[m]}" for m in MODELS)
                start = time.perf_counter()
                for record in train(MODELS, axes, seed, args, Path(tmp) / f"budget-{seed}"):
                    rows.append({
                        "model": record.model, "seed": seed, "epochs": epochs[record.model],
                        "seconds_per_epoch": per_epoch[record.model], "train_s": record.timings["train"].seconds,
                        **{key: record.metrics.get(key) for key in SHOWN},
                    })  # fmt: skip
                print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    except GenbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.dataset}, budget {args.budget:g} s of training per model and seed, seeds {args.seeds}")
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        parts = [f"{len(mine)} seeds", f"epochs {[r['epochs'] for r in mine]}",
                 f"train s {[round(r['train_s']) for r in mine]}"]  # fmt: skip
        for key, label in SHOWN.items():
            values = [r[key] for r in mine if r[key] is not None]
            s = summarize(values)
            parts.append(f"{label} {s.mean:.4g}" + (f" ± {s.std:.2g}" if s.n > 1 else ""))
        print(f"{model}: " + "; ".join(parts))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
