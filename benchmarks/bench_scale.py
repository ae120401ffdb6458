"""Scale-out: executors side by side, GPU packing, the fast path, and kill -9 / --resume.

Three modes, each measured in one run of this script (nothing here asserts on time):

``cpu`` (default)
    The README's grid (``--models gan,vae,ae,dcgan --grid z_dim=32,64``, 8 cells on mnist5k,
    ``--epochs`` 5) run with every executor in ``--executors`` (default ``serial,process,ray``),
    each as its own ``genbench run`` command (a fresh process, timed end to end: start-up,
    worker processes or the local Ray instance, every cell, the files). ``process`` and
    ``ray`` get ``--workers`` (default: the cores); ``process:1`` names a variant with its own
    worker count (one worker: what the executor itself costs). A warm-up run first fills the shared
    cache (domain classifier, reference statistics), so no variant pays for it. With
    ``--rounds`` > 1 the order alternates (A B C, C B A, ...). Reported per variant: wall
    seconds and the ratio serial/variant measured in the same round (> 1: faster). Every
    variant must give the serial run's metrics and loss histories exactly, cell by cell; if
    one does not, the script says which and exits 1.

    Every command runs with ``OMP_NUM_THREADS=1`` (``--threads`` to change it): the serial
    run then uses one thread, as each worker does (``max(1, cores // workers)``), so the
    numbers can be identical; on this 2-core machine PyTorch's two spin-waiting threads
    made a serial cell slower, not faster, whenever anything else ran. ``--threads 0`` leaves
    the variable unset, as a user would: genbench then chooses (serial: the free cores), and
    the metrics are reported as the largest relative difference instead of required identical.
    Each run also prints its cells' seconds of work (their records' timed phases) and how far
    the wall time lies beyond work / workers: start-up, preparing, idle workers.

``gpu`` (``--gpu``)
    (a) 8 DCGAN cells on mnist5k (``--grid z_dim=16,32,64,128 --seeds 0,1``) one at a time
    (``serial --device cuda``) against packed on one GPU (``process --gpus 0
    --cells-per-gpu 8``), end to end; and (b) the fast path against today's eager loop on
    one DCGAN cell, in this process: images/s of ``genbench.run.train.train`` over
    ``--timed-epochs`` epochs after a warm-up epoch (compiling happens there), CUDA
    synchronised, for eager fp32, bf16, bf16 + channels_last, and bf16 + channels_last +
    compile. GPU kernels are not bit-reproducible, so (a) reports the largest relative
    metric difference instead of requiring identity.

``crash`` (``--crash N``)
    The README's grid with ``--executor process``: the driver is killed with SIGKILL ``N``
    times at random moments (``--seed``), resumed each time with ``--resume``, then run to
    the end. Checked: every finished cell kept with its attempt id (none recomputed), every
    cell once in results.csv, every file readable (record.json, PNGs, history.csv,
    checkpoint.pt with ``weights_only=True``), no temporary file left. Exits 1 otherwise.

    python benchmarks/bench_scale.py                         # cpu: serial vs process vs ray, 5 epochs
    python benchmarks/bench_scale.py --epochs 2 --executors serial,process
    python benchmarks/bench_scale.py --crash 3
    python benchmarks/bench_scale.py --gpu --json gpu.json   # on a CUDA machine (benchmarks/gpu_scale.sh)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_name, summary  # noqa: E402

README_GRID = ["--models", "gan,vae,ae,dcgan", "--grid", "z_dim=32,64"]
GPU_GRID = ["--models", "dcgan", "--grid", "z_dim=16,32,64,128", "--seeds", "0,1"]


# -- running genbench ---------------------------------------------------------------------------------
def genbench(args: Sequence[str], env: dict[str, str], timeout: float | None = None) -> tuple[float, str]:
    """Run ``python -m genbench.cli run ...``; return its wall seconds and stderr's tail. Raises on failure."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "genbench.cli", "run", *args], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)  # fmt: skip
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        command = " ".join(args)
        raise SystemExit(f"bench_scale: genbench run {command} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stderr[-500:]


def records(out: Path) -> dict[str, dict[str, Any]]:
    """cell id -> its record.json (the metrics and loss history to compare)."""
    from genbench.results import read_record

    found = {}
    for folder in sorted((out / "cells").iterdir()):
        record = read_record(folder)
        if record is not None:
            found[record.cell_id] = record.to_json()
    return found


def cell_seconds(recs: dict[str, dict[str, Any]]) -> float:
    """Seconds the cells themselves took (every phase of every cell, as their records time them)."""
    return sum(sum(t["seconds"] for t in r["timings"].values()) for r in recs.values())


def differences(base: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]], exact: bool) -> list[str]:
    """Cells whose status, metrics or history differ (exact), or by more than nothing relative (reported)."""
    problems = []
    if set(base) != set(other):
        return [f"cells differ: {sorted(set(base) ^ set(other))}"]
    for cell, a in base.items():
        b = other[cell]
        if a["status"] != b["status"]:
            problems.append(f"{cell}: status {a['status']} vs {b['status']}")
        elif exact and (a["metrics"] != b["metrics"] or a["history"] != b["history"]):
            keys = [k for k in a["metrics"] if a["metrics"][k] != b["metrics"].get(k)]
            problems.append(f"{cell}: metrics {keys or '(history)'} differ")
    return problems


def largest_relative_difference(base: dict[str, dict[str, Any]], other: dict[str, dict[str, Any]]) -> float:
    worst = 0.0
    for cell, a in base.items():
        for key, value in a["metrics"].items():
            theirs = other.get(cell, {}).get("metrics", {}).get(key)
            if theirs is not None and value:
                worst = max(worst, abs(theirs - value) / abs(value))
    return worst


def environment(threads: int, tmp: Path) -> dict[str, str]:
    """The commands' environment: ``OMP_NUM_THREADS=threads``, or (0) unset: genbench's own choice."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.update(GENBENCH_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        env.pop("OMP_NUM_THREADS", None)
    return env


# -- cpu: executors side by side ----------------------------------------------------------------------
def bench_cpu(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from genbench.run.executors.resources import cpu_cores

    env = environment(args.threads, work)
    base = [*README_GRID, "--epochs", str(args.epochs), "--dataset", args.dataset, "--device", "cpu"]
    workers = args.workers or cpu_cores()

    def options(variant: str) -> list[str]:
        name, _, count = variant.partition(":")
        return ["--executor", name] + ([] if name == "serial" else ["--workers", count or str(workers)])

    warm, _ = genbench(["--models", "ae", "--epochs", "1", "--dataset", args.dataset, "--device", "cpu",
                        "--out", str(work / "warm")], env)  # fmt: skip
    print(f"warm-up (domain classifier, reference statistics): {warm:.1f} s", flush=True)
    rounds: list[dict[str, float]] = []
    problems: list[str] = []
    for r in range(args.rounds):
        order = args.executors if r % 2 == 0 else args.executors[::-1]
        seconds: dict[str, float] = {}
        for name in order:
            out = work / f"r{r}-{name}"
            seconds[name], _ = genbench([*base, *options(name), "--out", str(out)], env)
            cells = cell_seconds(records(out))
            lanes = 1 if name == "serial" else int(name.partition(":")[2] or workers)
            beyond = seconds[name] - cells / lanes
            seconds[f"{name} cells"] = cells
            print(
                f"round {r + 1}: {name:8s} {seconds[name]:7.1f} s  (cells {cells:5.1f} s of work; "
                f"{beyond:4.1f} s beyond work / {lanes}: start-up, preparing, idle workers)",
                flush=True,
            )
        rounds.append(seconds)
        reference = records(work / f"r{r}-{args.executors[0]}")
        for name in args.executors[1:]:
            other = records(work / f"r{r}-{name}")
            if args.threads:  # one thread everywhere: the same arithmetic, so the same numbers
                problems += [f"round {r + 1} {name}: {p}" for p in differences(reference, other, True)]
            else:  # serial on the cores' threads, workers on one each: float sums in another order
                worst = largest_relative_difference(reference, other)
                print(f"round {r + 1}: {name}: largest relative metric difference to serial {worst:.1e}")
                if set(other) != set(reference):
                    problems.append(f"round {r + 1} {name}: other cells than serial's")
    first = args.executors[0]
    figures: dict[str, Any] = {"rounds": rounds, "warm_up_s": warm, "workers": workers}
    for name in args.executors[1:]:
        ratios = [rnd[first] / rnd[name] for rnd in rounds]
        figures[f"{first}/{name}"] = summary(ratios)
        print(f"{first}/{name}: {summary(ratios)['median']:.2f}x (median of {len(ratios)} rounds; goal >= 1.7)")
    if any(v.startswith("ray") for v in args.executors):
        figures["ray_start_s"] = ray_start_seconds(workers)
        print(f"a local Ray instance alone starts and stops in {figures['ray_start_s']:.1f} s")
    if problems:
        print("METRICS DIFFER between executors:\n  " + "\n  ".join(problems), file=sys.stderr)
    else:
        if args.threads:
            print(f"identical metrics and loss histories on every executor ({len(reference)} cells per run)")
        else:  # float sums in another order, which training (a GAN above all) amplifies
            print(f"the same {len(reference)} cells on every executor; their numbers differ, as threads do")
    figures["identical"] = not problems
    return figures


def ray_start_seconds(cpus: int) -> float:
    code = (f"import time, ray; t = time.perf_counter(); ray.init(num_cpus={cpus}, include_dashboard=False, "
            "logging_level='ERROR'); ray.shutdown(); print(time.perf_counter() - t)")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else float("nan")


# -- gpu: packing and the fast path ------------------------------------------------------------------
def bench_gpu(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if "packing" not in args.gpu_parts:
        return {"fast_path": fast_path(args, "cuda")}
    env = environment(args.threads, work)
    base = [*GPU_GRID, "--epochs", str(args.epochs), "--dataset", args.dataset, "--device", "cuda"]
    warm, _ = genbench(["--models", "dcgan", "--epochs", "1", "--dataset", args.dataset, "--device", "cuda",
                        "--out", str(work / "warm")], env)  # fmt: skip
    print(f"warm-up: {warm:.1f} s", flush=True)
    serial, _ = genbench([*base, "--out", str(work / "serial")], env)
    print(f"8 cells one at a time: {serial:.1f} s", flush=True)
    packed, _ = genbench([*base, "--executor", "process", "--gpus", "0", "--cells-per-gpu", "8",
                          "--out", str(work / "packed")], env)  # fmt: skip
    print(f"8 cells packed on one GPU: {packed:.1f} s; ratio {serial / packed:.2f}x (goal >= 4)", flush=True)
    a, b = records(work / "serial"), records(work / "packed")
    figures: dict[str, Any] = {
        "serial_s": serial,
        "packed_s": packed,
        "packed_ratio": serial / packed,
        "status": {name: sorted({r["status"] for r in recs.values()}) for name, recs in (("serial", a), ("packed", b))},
        "largest_relative_metric_difference": largest_relative_difference(a, b),
        "train_items_per_s": {
            name: sum(r["timings"]["train"]["items_per_s"] for r in recs.values())
            for name, recs in (("serial", a), ("packed", b))
        },
    }
    if "fastpath" in args.gpu_parts:
        figures["fast_path"] = fast_path(args, "cuda")
    return figures


def fast_path(args: argparse.Namespace, device_name: str) -> dict[str, Any]:
    """Images/s of the harness loop on one DCGAN cell: eager fp32 against the fast path variants (synchronised).

    A variant that fails is reported (its error) and skipped: the others still give their figures."""
    import torch

    from genbench.hyper import build
    from genbench.plugins import get_registry
    from genbench.protocol import Protocol
    from genbench.run.cell import _on_device, seed_everything
    from genbench.run.data import load_data
    from genbench.run.fastpath import prepare_model, prepare_split, training_step
    from genbench.run.timing import synchronize
    from genbench.run.train import train

    device = torch.device(device_name)
    data = load_data(args.dataset, Path(os.environ.get("GENBENCH_DATA", "data")), False)
    cls = get_registry().model("dcgan")
    hyper = build(cls.Hyper, {}, "dcgan", "image")
    # compile last: its warm-up is the longest (a time limit cuts it, not the others)
    variants: dict[str, dict[str, Any]] = {
        "eager fp32": {},
        "cuda graphs": {"cuda_graphs": True},
        "bf16 + channels_last + cuda graphs": {"precision": "bf16", "channels_last": True, "cuda_graphs": True},
        "bf16": {"precision": "bf16"},
        "bf16 + channels_last": {"precision": "bf16", "channels_last": True},
        "bf16 + channels_last + compile": {"precision": "bf16", "channels_last": True, "compile": True},
    }
    out: dict[str, Any] = {}
    for name, options in variants.items():
        protocol = Protocol(args.dataset, (), device=device_name, **options)
        try:
            seed_everything(0)
            model = cls(hyper, data.info).to(device)
            prepare_model(model, protocol, device)
            split = prepare_split(_on_device(data.split("train"), device), protocol)
            step, amp = training_step(model, protocol, device)  # one step callable (a graph's) for both runs
            t0 = time.perf_counter()
            train(model, split, 1, hyper.batch_size, 0, autocast=amp, step=step)  # warm-up (compiling, capture)
            synchronize(device)
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = train(model, split, args.timed_epochs, hyper.batch_size, 1, autocast=amp, step=step)
            synchronize(device)
            seconds = time.perf_counter() - t0
            losses = {k: round(v, 3) for k, v in result.history[-1].items() if k in ("loss_d", "loss_g")}
        except Exception as exc:  # one failing variant must not cost the others' figures
            out[name] = {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"}
            print(f"{name:36s} failed: {out[name]['error']}", flush=True)
            continue
        speed = result.images_seen / seconds
        out[name] = {"images_per_s": speed, "warm_up_s": warm, "seconds": seconds, "last_epoch_losses": losses}
        eager = out.get("eager fp32", {}).get("images_per_s")
        if eager and name != "eager fp32":
            out[name]["vs_eager"] = speed / eager
        ratio = f"{speed / eager:5.2f}x eager" if eager and name != "eager fp32" else " " * 11
        print(f"{name:36s} {speed:10.0f} images/s {ratio} (warm-up epoch {warm:.1f} s) {losses}", flush=True)
    timed = [n for n in out if "vs_eager" in out[n]]
    if timed:
        best = max(timed, key=lambda n: out[n]["vs_eager"])
        print(f"fast path / eager: {out[best]['vs_eager']:.2f}x at best ({best}; goal >= 5)")
    return out


# -- crash: kill -9 and --resume ----------------------------------------------------------------------
def bench_crash(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from genbench.folder import intact
    from genbench.results import read_record, read_results

    env = environment(args.threads, work)
    out = work / "crash"
    cmd = [sys.executable, "-m", "genbench.cli", "run", *README_GRID, "--epochs", str(args.epochs),
           "--dataset", args.dataset, "--device", "cpu", "--executor", "process", "--out", str(out)]  # fmt: skip
    rng = random.Random(args.seed)

    def finished() -> dict[str, str]:
        done = {}
        for folder in sorted((out / "cells").glob("*")) if (out / "cells").is_dir() else []:
            record = read_record(folder)
            if record is not None and record.status == "ok" and intact(out, record):
                done[record.cell_id] = record.attempt
        return done

    kept: dict[str, str] = {}
    kills = []
    for k in range(args.crash):
        driver = subprocess.Popen([*cmd, *(["--resume"] if out.exists() else [])], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        delay = rng.uniform(args.crash_min, args.crash_max)
        time.sleep(delay)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        now = finished()
        lost = [c for c, attempt in kept.items() if now.get(c) != attempt]
        kills.append({"after_s": round(delay, 1), "finished": len(now), "lost_or_redone": lost})
        print(f"kill {k + 1} after {delay:.1f} s: {len(now)} cells finished, {len(lost)} lost or redone", flush=True)
        kept = now
    seconds, _ = genbench([*cmd[4:], "--resume"], env)
    now = finished()
    problems = [f"{c}: lost or recomputed" for c, attempt in kept.items() if now.get(c) != attempt]
    problems += [f"{k['lost_or_redone']} after kill {i + 1}" for i, k in enumerate(kills) if k["lost_or_redone"]]
    table = read_results(out)
    if sorted(table["cell"]) != sorted(now) or len(now) != 8:
        problems.append(f"results.csv has {len(table)} rows for {len(now)} finished cells (8 planned)")
    problems += unreadable(out)
    leftovers = [str(p) for p in out.rglob(".*") if p.name != ".genbench.lock"]
    problems += [f"temporary file left: {p}" for p in leftovers]
    print(f"final --resume: {seconds:.1f} s; {len(now)} cells, each once in results.csv")
    if problems:
        print("CRASH CHECK FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
    else:
        print("every finished cell kept (same attempt), none recomputed, every file readable")
    return {"kills": kills, "cells": len(now), "problems": problems}


def unreadable(out: Path) -> list[str]:
    """Files of the run that do not read back as what they claim to be."""
    import pandas as pd
    import torch
    from PIL import Image

    problems = []
    json.loads((out / "run.json").read_text())
    for path in sorted(out.rglob("*")):
        try:
            if path.suffix == ".png":
                with Image.open(path) as img:
                    img.load()
            elif path.suffix == ".pt":
                torch.load(path, weights_only=True)
            elif path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".csv":
                pd.read_csv(path)
        except Exception as exc:
            problems.append(f"{path.relative_to(out)}: {type(exc).__name__}: {exc}")
    return problems


# -- main -----------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--gpu", action="store_true", help="GPU mode: packing 8 DCGAN cells on one GPU, and the fast path")
    p.add_argument("--gpu-parts", default="packing,fastpath", type=lambda v: set(v.split(",")),
                   help="gpu mode: which parts to measure (packing, fastpath; default both)")  # fmt: skip
    p.add_argument("--crash", type=int, default=0, metavar="N", help="crash mode: kill -9 the driver N times")
    p.add_argument(
        "--executors",
        default="serial,process,ray",
        help="cpu mode: executors to compare (NAME or NAME:WORKERS), serial first",
    )
    p.add_argument("--workers", type=int, default=None, help="process/ray workers (default: the cores)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per cell (cpu and crash: 5, gpu: 10)")
    p.add_argument("--timed-epochs", type=int, default=3, help="gpu fast path: epochs timed after the warm-up one")
    p.add_argument("--rounds", type=int, default=1, help="cpu mode: rounds, alternating the order")
    p.add_argument("--dataset", default="mnist5k", choices=["mnist5k", "digits"])
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS of every genbench command; 0: unset (genbench's own choice: serial takes the "
        "free cores, each worker cores // workers; metrics then not required identical: the largest relative "
        "difference is printed)",
    )
    p.add_argument("--crash-min", type=float, default=20.0, help="crash mode: earliest kill, seconds after start")
    p.add_argument("--crash-max", type=float, default=90.0, help="crash mode: latest kill, seconds after start")
    p.add_argument("--seed", type=int, default=0, help="crash mode: seed of the kill moments")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    args = p.parse_args(argv)
    args.executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    args.epochs = args.epochs or (10 if args.gpu else 5)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import shutil

    import torch

    args = parse_args(argv)
    # `timeout` sends SIGTERM: leave through SystemExit, so that subprocess.run kills the genbench run in
    # progress (its workers die with it) instead of leaving it to load the machine.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(124))
    work = Path(tempfile.mkdtemp(prefix="bench_scale-"))
    mode = "gpu" if args.gpu else "crash" if args.crash else "cpu"
    print(f"bench_scale {mode}: {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load {os.getloadavg()[0]:.1f}, work folder {work}", flush=True)  # fmt: skip
    try:
        figures = {"gpu": bench_gpu, "crash": bench_crash, "cpu": bench_cpu}[mode](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    figures.update(mode=mode, cpu=cpu_name(), cpus=os.cpu_count(), torch=torch.__version__, epochs=args.epochs)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    failed = (mode == "cpu" and not figures["identical"]) or (mode == "crash" and figures["problems"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
