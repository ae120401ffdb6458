"""Threads on a busy CPU: torch's default against genbench's, on a machine another process keeps busy.

One timed run is one grid cell (``genbench.run.cell.run_cell``: build the model, train
``--epochs`` epochs, draw the evaluation samples; no metrics), each in a fresh
Python process so that the OpenMP runtime starts with the settings under test:

``old``
    torch's default: one intra-op thread per core, the OpenMP runtime's default
    wait policy (idle threads spin for a while at every barrier). What genbench
    did before ``--threads``.
``new``
    what ``genbench run`` does now: the CLI's :func:`genbench.threads.prefer_passive_wait`
    before torch loads (``OMP_WAIT_POLICY=PASSIVE``) and the automatic thread
    count of :func:`genbench.threads.decide`.
``one``
    (``--with-one``) ``--threads 1``, for reference.

Phases: ``busy`` runs ``--competitors`` other torch processes (each a loop of
matrix products with torch's default threads, as another training job would) for
the whole phase; ``quiet`` (``--quiet``) runs without them, to show what the new
default costs when nothing competes. In each phase, ``--rounds`` rounds run every
variant once, in alternating order (A B, then B A), so slow drifts of a shared
machine fall on both alike. Reported: per variant the median cell and train
seconds, and the median of the paired per-round ratio old/new (> 1: the new
default was faster). Every run reports the images it trained on, its optimiser
steps and its loss keys, and the script checks that all variants did the same
work. Nothing here asserts on time.

    python benchmarks/bench_threads.py                         # dcgan, 1 epoch, mnist5k, 5 rounds
    python benchmarks/bench_threads.py --quiet --with-one --json threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import cpu_name, summary

HERE = Path(__file__).resolve()
COMPETITOR = """
import torch
a = torch.randn(384, 384)
while True:
    for _ in range(50):
        b = a @ a
    a = b / b.norm()
"""


def child(variant: str, model: str, dataset: str, epochs: int, out: str) -> dict[str, Any]:
    """One timed cell in this (fresh) process; returns what it measured."""
    if variant == "new":
        from genbench.threads import prefer_passive_wait

        prefer_passive_wait()  # what genbench.cli.main does first
    import torch  # the OpenMP runtime starts here, with the environment set above

    default_threads = torch.get_num_threads()
    from genbench.protocol import CellSpec, Protocol
    from genbench.run.cell import run_cell

    threads = {"old": default_threads, "new": None, "one": 1}[variant]
    protocol = Protocol(dataset=dataset, metrics=(), epochs=epochs, download=False, eval_samples=500, device="cpu")
    spec = CellSpec(f"{model}_{variant}", model, {"epochs": epochs}, 0, protocol, Path(out) / variant, threads)
    start = time.perf_counter()
    record = run_cell(spec)
    wall = time.perf_counter() - start
    if record.status != "ok":
        raise SystemExit(f"{variant}: cell {record.status}: {record.error}")
    return {
        "variant": variant,
        "cell_s": wall,
        "train_s": record.timings["train"].seconds,
        "images": record.timings["train"].items,
        "epochs": len(record.history),
        "loss_keys": sorted(record.history[0]),
        "hyper": record.hyper,
        "threads": int(record.environment["threads"]),
        "threads_reason": record.environment["threads_reason"],
        "wait_policy": os.environ.get("OMP_WAIT_POLICY", "(runtime default)"),
    }


def timed_run(variant: str, args: argparse.Namespace, out: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    cmd = [sys.executable, str(HERE), "--child", variant, "--model", args.model, "--dataset", args.dataset,
           "--epochs", str(args.epochs), "--out", out]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def start_competitors(n: int) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    procs = [subprocess.Popen([sys.executable, "-c", COMPETITOR], env=env) for _ in range(n)]
    time.sleep(3.0)  # let them import torch and start computing
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        p.wait(timeout=30)


def phase(name: str, variants: list[str], args: argparse.Namespace, out: str) -> dict[str, Any]:
    procs = start_competitors(args.competitors) if name == "busy" else []
    runs: list[dict[str, Any]] = []
    try:
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else variants[::-1]
            for v in order:
                run = timed_run(v, args, out)
                run["round"] = r
                runs.append(run)
                print(f"  {name} round {r} {v:>3}: cell {run['cell_s']:7.2f} s  train {run['train_s']:7.2f} s  "
                      f"threads {run['threads']} ({run['threads_reason']}; wait {run['wait_policy']})",
                      flush=True)  # fmt: skip
    finally:
        stop(procs)
    per = {v: [x for x in runs if x["variant"] == v] for v in variants}
    work = {json.dumps([x["images"], x["epochs"], x["loss_keys"], x["hyper"]], sort_keys=True) for x in runs}
    ratios = [
        old["cell_s"] / new["cell_s"] for old, new in zip(per["old"], per["new"], strict=True) if new["cell_s"] > 0
    ]
    return {
        "phase": name,
        "competitors": len(procs),
        "same_work": len(work) == 1,
        "images": runs[0]["images"],
        "cell_s": {v: summary([x["cell_s"] for x in xs]) for v, xs in per.items()},
        "train_s": {v: summary([x["train_s"] for x in xs]) for v, xs in per.items()},
        "threads": {v: sorted({x["threads"] for x in xs}) for v, xs in per.items()},
        "old_over_new": summary(ratios),
        "runs": runs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dcgan")
    ap.add_argument("--dataset", default="mnist5k")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--competitors", type=int, default=1, help="other torch processes in the busy phase")
    ap.add_argument("--quiet", action="store_true", help="also measure with no competitor")
    ap.add_argument("--with-one", action="store_true", help="also time --threads 1")
    ap.add_argument("--json", type=Path, help="write every run and the summary here")
    ap.add_argument("--child", choices=["old", "new", "one"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.model, args.dataset, args.epochs, args.out)))
        return
    variants = ["old", "new", *(["one"] if args.with_one else [])]
    load = os.getloadavg()
    print(f"{cpu_name()}, {os.cpu_count()} cores, load before {load[0]:.1f}; {args.model}, {args.epochs} epoch(s) "
          f"on {args.dataset}, {args.rounds} rounds", flush=True)  # fmt: skip
    phases = []
    with tempfile.TemporaryDirectory() as out:
        timed_run("one", args, out)  # warm-up: page cache, dataset files (not recorded; one thread: cheap when busy)
        for name in (["quiet"] if args.quiet else []) + ["busy"]:
            phases.append(phase(name, variants, args, out))
    for ph in phases:
        cells = ", ".join(f"{v} {s['median']:.2f} s (threads {ph['threads'][v]})" for v, s in ph["cell_s"].items())
        r = ph["old_over_new"]
        print(f"{ph['phase']} ({ph['competitors']} competitor(s)): median cell {cells}; old/new median "
              f"{r['median']:.2f}x (min {r['min']:.2f}, max {r['max']:.2f}); same work: {ph['same_work']} "
              f"({ph['images']} images)")  # fmt: skip
        if not ph["same_work"]:
            raise SystemExit("the variants did not do the same work: the comparison is void")
    if args.json:
        meta = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "load_before": load}
        args.json.write_text(json.dumps({"machine": meta, "phases": phases}, indent=2) + "\n")


if __name__ == "__main__":
    main()
