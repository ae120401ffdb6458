"""What figures and the quality curve cost: every cell of a grid with them (the defaults) and without, paired.

Each cell of the grid (default: the README's quick-start grid, gan, vae, ae and dcgan at
z_dim 32 and 64, 5 epochs, mnist5k) runs ``genbench.run.cell.run_cell`` twice in one process:

``with``
    the defaults: the built-in figures (samples over training, reconstructions,
    interpolations, latent map, GAN-Lab views where they apply) and the quality curve
    (``eval_every`` unset: about four points);
``without``
    the built-in figure plugin removed from the registry and ``eval_every=0``.

The two runs of a cell follow each other, in alternating order (with first, then without
first, ...), so a slow drift of a shared machine falls on both. Each run's wall time is
the whole ``run_cell`` call (set-up, training, sampling, evaluation, figures, files); the
figures' and the curve's own phases (``figures_s``, ``quality_s`` in the record) are
printed too. A warm-up cell (not reported) first trains the domain classifier and fills
the reference cache, which every cell then shares. Nothing here asserts on time.

    python benchmarks/bench_figures.py                                   # the README grid, device auto
    python benchmarks/bench_figures.py --models ae,vae --repeats 3 --json figures.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TypedDict

import torch
from common import cpu_name, summary

from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.cell import run_cell
from genbench.run.runner import RunRequest, validate

BUILTIN_FIGURES = "genbench.reporting.figures.builtin"

# One cell's pair of runs: timed_cell's seconds "with" the figures and curve, "without" them, and the wall-time
# ratio; the functional form because "with" is a keyword
Row = TypedDict(
    "Row", {"cell": str, "repeat": int, "with": dict[str, float], "without": dict[str, float], "ratio": float}
)


def figures(on: bool) -> None:
    """Put the built-in figure plugin in the registry, or take it out."""
    registry = get_registry()
    loaded = BUILTIN_FIGURES in {p.name for p in registry.plugins}
    if on and not loaded:
        registry.add_plugin(BUILTIN_FIGURES, lambda: importlib.import_module(BUILTIN_FIGURES), "built-in")
    elif not on and loaded:
        registry.remove_plugin(BUILTIN_FIGURES)


def timed_cell(spec: Any, out: Path, watched: bool) -> dict[str, float]:
    figures(watched)
    protocol = spec.protocol if watched else dataclasses.replace(spec.protocol, eval_every=0)
    spec = dataclasses.replace(spec, protocol=protocol, out_dir=out / ("with" if watched else "without") / spec.cell_id)
    start = time.perf_counter()
    record = run_cell(spec)
    wall = time.perf_counter() - start
    if record.status != "ok":
        raise SystemExit(f"{spec.cell_id}: {record.status}: {record.error}")
    for name, note in {**record.figure_notes, **record.metric_notes}.items():
        if not note.startswith("not applicable"):
            print(f"  {spec.cell_id}: {name}: {note}", file=sys.stderr)
    t = record.timings
    return {
        "wall": wall,
        "train": t["train"].seconds,
        "figures": t["figures"].seconds if "figures" in t else 0.0,
        "quality": t["quality"].seconds if "quality" in t else 0.0,
        "points": float(len(record.quality)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gan,vae,ae,dcgan")
    parser.add_argument("--grid", action="append", default=None, help="key=v1,v2 (default z_dim=32,64)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-figures-") as tmp:
        out = Path(tmp)
        protocol = Protocol(args.dataset, ("all",), epochs=args.epochs, device=args.device)
        protocol = dataclasses.replace(protocol, metrics=tuple(get_registry().metrics))
        request = RunRequest(tuple(args.models.split(",")), protocol, out / "plan", tuple(args.grid or ["z_dim=32,64"]))
        specs = validate(request)
        print(f"warm-up ({specs[0].cell_id}) ...", file=sys.stderr)
        timed_cell(specs[0], out / "warmup", True)
        rows: list[Row] = []
        for r in range(args.repeats):
            for i, spec in enumerate(specs):
                order = (True, False) if (i + r) % 2 == 0 else (False, True)
                runs = {watched: timed_cell(spec, out / f"r{r}", watched) for watched in order}
                ratio = runs[True]["wall"] / runs[False]["wall"]
                row: Row = {
                    "cell": spec.cell_id,
                    "repeat": r,
                    "with": runs[True],
                    "without": runs[False],
                    "ratio": ratio,
                }
                rows.append(row)
                w, wo = runs[True], runs[False]
                print(
                    f"{spec.cell_id[:34]:34s} with {w['wall']:7.2f} s  without {wo['wall']:7.2f} s  "
                    f"ratio {row['ratio']:.3f}  (figures {w['figures']:.2f} s, curve {w['quality']:.2f} s "
                    f"for {w['points']:.0f} points; train {w['train']:.2f} vs {wo['train']:.2f} s)",
                    flush=True,
                )
        figures(True)

    ratios = [r["ratio"] for r in rows]
    total_with = sum(r["with"]["wall"] for r in rows)
    total_without = sum(r["without"]["wall"] for r in rows)
    share = [(r["with"]["figures"] + r["with"]["quality"]) / r["with"]["wall"] for r in rows]
    s, f = summary(ratios), summary(share)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    print(
        f"\n{len(rows)} cell runs on {device} ({cpu_name()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}): wall-time ratio with/without figures median {s['median']:.3f} "
        f"(min {s['min']:.3f}, max {s['max']:.3f}); grid total {total_with:.1f} s vs {total_without:.1f} s "
        f"({total_with / total_without:.3f}); figures + curve phases {statistics.median(share):.1%} of a cell's "
        f"wall time (median; max {f['max']:.1%}). Goal: at most 1.10."
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"rows": rows, "device": device, "cpu": cpu_name(), "python": platform.python_version()}, indent=2
            )
        )


if __name__ == "__main__":
    main()
