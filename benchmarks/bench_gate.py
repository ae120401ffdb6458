"""How reliable is the regression gate? False alarms (A/A), power against injected regressions, cost.

Runs the CI suite (``benchmarks/ci.toml``: its dataset, epochs, metrics, sample counts, seeds per
run and ``[check]`` settings) many times and checks runs against each other exactly as
``genbench check`` does:

* **A/A** (``--pairs``, default 20): the same code checked against itself, each pair with seeds
  that no other run uses (identical seeds give identical metrics and would prove nothing). A
  regression reported here is a false alarm. Quality (metrics, status, flags) and speed are
  counted apart, and speed both ways a check can read it: as ratios to the calibration
  workload (``--baseline``: the reference side goes through ``genbench baseline`` and back) and
  as raw images per second (``--against``).
* **power**: the reference side of the first ``--power`` A/A pairs against a run of an injected
  regression made right after it (as base and head in one CI job), with fresh seeds: ``worse``
  (each model gets a tenth of its training budget: nine ``train_step`` calls in ten return at
  once) and ``slower`` (each ``train_step`` does a quarter more work: every fourth call also
  trains a copy of the model, made with it outside the clock, which leaves the real one's
  training as it was). A check that reports the injected regression caught it.
* **cost**: ``benchmarks/ci-gate.sh`` (the suite plus the check, as CI runs them) in a fresh
  process with an empty genbench cache, timed end to end.

The models are ``gate-gan`` and ``gate-vae``: the built-in ``gan`` and ``vae`` under another name,
registered by this script, switching to the injected variant when told (a commit, in effect).
They are the CI suite's models, so the A/A figures are those of the CI gate.

Speed is judged at several tolerances (``--speed-tolerances``), since the figure that matters is
the trade-off: a tolerance below the injected 25% catches it, one close to it invites alarms.

``--busy N`` keeps N more processes doing plain PyTorch work for the whole measurement, so that
the 2-core machine is "busy with other work" whatever else runs; the load average is printed
before and after. ``--rejudge DIR`` checks the runs an earlier call kept (``--keep DIR``) again,
in seconds. Nothing here asserts: it prints the figures (``--json`` writes every check's
regressions).

    python benchmarks/bench_gate.py                                    # 20 A/A pairs, 10 + 10 power, cost (~15 min)
    python benchmarks/bench_gate.py --pairs 4 --power 2 --cost 0       # a quick look
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

import genbench
from genbench.models.autoencoders import VAE
from genbench.models.gans import GAN
from genbench.plugins import get_registry
from genbench.reporting.baseline import load_baseline, make_baseline, write_baseline
from genbench.reporting.cellset import CellSet, load_run
from genbench.reporting.check import check
from genbench.reporting.compare import SpeedMode
from genbench.reporting.tolerance import SPEED_FIGURES, CheckSettings, Tolerance, parse_items
from genbench.run.runner import run_grid
from genbench.suite import load_suite

if TYPE_CHECKING:  # what Injected is mixed into (a GAN or a VAE); at run time it adds no base of its own
    from genbench.models.base import GenerativeModel as _Model
else:
    _Model = object

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("gate-gan", "gate-vae")
VARIANT = {"name": "same"}  # which code the gate models run: "same", "worse" or "slower"


# -- the models under test --------------------------------------------------------------------
class Injected(_Model):
    """``train_step`` as the built-in does it, or with the injected regression of :data:`VARIANT`."""

    calls = 0
    last: Mapping[str, torch.Tensor]  # the built-in's losses of the last step that trained

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if VARIANT["name"] == "slower":  # the copy is made with the model, outside the timed training
            self.__dict__["_shadow"] = [copy.deepcopy(self)]  # in a list: not a sub-module of the model

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        self.calls += 1
        variant = VARIANT["name"]
        if variant == "worse" and self.calls % 10 != 1:  # a tenth of the training budget
            return self.last
        # super() below is GAN's or VAE's train_step (Injected comes before them in the bases); mypy only knows
        # the abstract GenerativeModel.train_step, hence the two ignores
        if variant == "slower" and self.calls % 4 == 0:  # a quarter more work: every 4th step also trains the copy
            super(Injected, self.__dict__["_shadow"][0]).train_step(x, y)  # type: ignore[safe-super]
        self.last = super().train_step(x, y)  # type: ignore[safe-super]
        return self.last


class GateGAN(Injected, GAN):
    name = "gate-gan"
    description = "gan, with an injectable regression (benchmarks/bench_gate.py)"


class GateVAE(Injected, VAE):
    name = "gate-vae"
    description = "vae, with an injectable regression (benchmarks/bench_gate.py)"


class GatePlugin:
    @genbench.hookimpl
    def register_models(self, register: Callable[[type[Any]], None]) -> None:
        register(GateGAN)
        register(GateVAE)


# -- runs and checks ----------------------------------------------------------------------------
@dataclass
class Settings:
    suite: Any
    alpha: float
    tolerance: dict[str, Tolerance]
    speed_tolerances: list[Tolerance]
    seeds: int  # per run
    work: Path
    rejudge: bool = False


def run_suite(s: Settings, name: str, seeds: Sequence[int], variant: str) -> Path:
    out = s.work / name
    if s.rejudge:  # the runs of an earlier measurement, checked again (e.g. after a change to the checks)
        if not (out / "results.csv").is_file():
            raise SystemExit(f"bench_gate: --rejudge: {out} is not a finished run")
        return out
    VARIANT["name"] = variant
    request = s.suite.override(models=MODELS, seeds=tuple(seeds), out=out).request()
    t0 = time.perf_counter()
    result = run_grid(request)
    bad = [r.cell_id for r in result.records if r.status != "ok"]
    print(f"  run {name:14s} {variant:6s} seeds {seeds[0]}-{seeds[-1]}: {time.perf_counter() - t0:5.1f} s"
          + (f"  NOT OK: {bad}" if bad else ""), flush=True)  # fmt: skip
    VARIANT["name"] = "same"
    return out


@dataclass
class Verdicts:
    """What one check reported: quality regressions, and speed regressions per mode and tolerance."""

    quality: list[str] = field(default_factory=list)
    speed: dict[str, list[str]] = field(default_factory=dict)  # "calibrated 15%" -> regressions


def judge(s: Settings, reference: Path, run: Path) -> Verdicts:
    """Check ``run`` against ``reference`` as CI does: through a baseline file (calibrated) and as a run (raw)."""
    baseline = s.work / f"{reference.name}.baseline.json"
    if not baseline.exists():
        write_baseline(make_baseline(load_run(reference), s.tolerance, s.alpha), baseline)
    from_file, _ = load_baseline(baseline)
    as_run, side = load_run(reference), load_run(run)
    out = Verdicts()
    for tol in s.speed_tolerances:
        layers = [{"speed": tol}, s.tolerance]
        modes: tuple[tuple[SpeedMode, CellSet], ...] = (("calibrated", from_file), ("raw", as_run))
        for mode, ref in modes:
            result = check(side, ref, "baseline" if mode == "calibrated" else "against", layers, s.alpha, mode)
            found = [f"{r.cell}: {r.what}" for r in result.regressions]
            out.speed[f"{mode} {tol}"] = [x for x in found if x.split(": ")[1] in SPEED_FIGURES]
            out.quality = [x for x in found if x.split(": ")[1] not in SPEED_FIGURES]
    return out


def cost(s: Settings, repeats: int) -> list[dict[str, Any]]:
    """Wall time of benchmarks/ci-gate.sh in a fresh process with an empty cache (as a CI job starts)."""
    out = []
    for i in range(repeats):
        env = dict(os.environ)
        env.update(
            GENBENCH_CACHE=str(s.work / f"cost-cache-{i}"),
            OUT=str(s.work / f"cost-{i}"),
            GENBENCH=f"{sys.executable} -m genbench.cli",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        )
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "ci-gate.sh")], cwd=ROOT, env=env,
                              capture_output=True, text=True)  # fmt: skip
        seconds = time.perf_counter() - t0
        last = (proc.stdout.strip().splitlines() or [""])[0:1]
        print(f"  ci-gate.sh #{i + 1}: {seconds:.1f} s, exit {proc.returncode}", flush=True)
        out.append({"seconds": seconds, "exit": proc.returncode, "stderr_tail": proc.stderr[-400:], "first": last})
    return out


def busy(n: int) -> list[subprocess.Popen[bytes]]:
    code = "import torch\ntorch.set_num_threads(1)\na = torch.randn(384, 384)\nwhile True:\n    a = torch.tanh(a @ a)\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(n)]


# -- report ---------------------------------------------------------------------------------------
def count(checks: Sequence[Verdicts], key: str | None) -> int:
    return sum(bool(c.quality if key is None else c.speed[key]) for c in checks)


def slowdown(reference: Path, run: Path) -> dict[str, float]:
    """Per model: median training time of ``run`` over that of ``reference`` (the clock the gate reads)."""

    def median_train(path: Path) -> dict[str, float]:
        out = {}
        for cell in load_run(path).cells.values():
            times = [s.seconds["train"] for s in cell.ok() if "train" in s.seconds]
            if times:
                out[cell.model] = statistics.median(times)
        return out

    a, b = median_train(reference), median_train(run)
    return {m: b[m] / a[m] for m in b if m in a}


def report(s: Settings, aa: list[Verdicts], worse: list[Verdicts], slower: list[Verdicts]) -> dict[str, Any]:
    print()
    print(f"A/A false alarms over {len(aa)} checks, {s.seeds} seeds a side, alpha {s.alpha:g}, tolerances "
          f"{ {k: str(v) for k, v in s.tolerance.items()} }")  # fmt: skip
    print(f"  quality (metrics, status, flags): {count(aa, None)}/{len(aa)}   target <= 1/20")
    keys = list(aa[0].speed) if aa else []
    for key in keys:
        print(f"  speed {key:16s}: {count(aa, key)}/{len(aa)}   target <= 1/20")
    if worse:
        print(f"power, a tenth of the training budget: {count(worse, None)}/{len(worse)} caught   target >= 9/10")
    for key in keys if slower else []:
        print(
            f"power, 25% slower train_step, speed {key:16s}: {count(slower, key)}/{len(slower)} caught   target >= 9/10"
        )
    return {
        "aa": [c.__dict__ for c in aa],
        "worse": [c.__dict__ for c in worse],
        "slower": [c.__dict__ for c in slower],
        "false_alarms": {"quality": count(aa, None), **{f"speed {k}": count(aa, k) for k in keys}},
        "power": {"worse": count(worse, None), **{f"slower {k}": count(slower, k) for k in keys}},
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--suite", type=Path, default=ROOT / "benchmarks" / "ci.toml")
    p.add_argument("--pairs", type=int, default=20, help="A/A checks, each with seeds no other run uses")
    p.add_argument("--power", type=int, default=10, help="checks of each injected regression")
    p.add_argument("--speed-tolerances", default="10%,15%,20%", help="speed tolerances to judge at")
    p.add_argument("--cost", type=int, default=1, help="timed runs of benchmarks/ci-gate.sh (0: skip)")
    p.add_argument(
        "--busy",
        type=int,
        default=0,
        help="extra processes doing PyTorch work meanwhile (default: none; the load average says how busy)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (benchmarks/ci-gate.sh uses 1)")
    p.add_argument("--json", type=Path, default=None, help="also write every check's regressions here")
    p.add_argument("--keep", type=Path, default=None, help="keep the runs in this folder")
    p.add_argument("--rejudge", type=Path, default=None, help="check the runs kept (--keep) by an earlier call again")
    args = p.parse_args(argv)
    if args.pairs < 1 or args.power < 0 or args.power > args.pairs or args.cost < 0 or args.busy < 0:
        p.error("--pairs >= 1, 0 <= --power <= --pairs, --cost >= 0, --busy >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the busy helpers are stopped on a kill
    torch.set_num_threads(args.threads)
    registry = get_registry()
    registry.add_plugin("bench-gate", GatePlugin, "benchmarks/bench_gate.py")
    suite = load_suite(args.suite)
    settings = suite.check or CheckSettings()  # no [check] table: genbench check's defaults, as the gate reads it
    speed_tols = [parse_items([f"speed={t}"])["speed"] for t in args.speed_tolerances.split(",")]
    if "speed" in settings.tolerance and settings.tolerance["speed"] not in speed_tols:
        speed_tols.append(settings.tolerance["speed"])  # the suite's own: what CI gates with
    work = args.rejudge or args.keep or Path(tempfile.mkdtemp(prefix="bench_gate-"))
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("*.baseline.json") if args.rejudge else ():
        stale.unlink()  # made by the earlier checks: made again by these
    n = len(suite.seeds)
    s = Settings(suite, settings.alpha or 0.01, dict(settings.tolerance), speed_tols, n, work, args.rejudge is not None)
    helpers = busy(args.busy)
    load = [os.getloadavg()]
    t0 = time.perf_counter()
    print(f"bench_gate: suite {args.suite.name} ({', '.join(MODELS)}), {n} seeds per run, {args.pairs} A/A pairs, "
          f"{args.power} + {args.power} power checks, {args.busy} busy process(es), torch threads {args.threads}, "
          f"{os.cpu_count()} CPUs; load average {load[0]}", flush=True)  # fmt: skip
    try:
        seed = iter(range(10**6))
        aa: list[Verdicts] = []
        worse: list[Verdicts] = []
        slower: list[Verdicts] = []
        slowdowns: dict[str, list[float]] = {}
        for i in range(args.pairs):
            # Pair i: its reference, then (for the first --power pairs) the slowed run right after it, the
            # A/A partner, and the worsened run: every check compares runs made minutes apart, as in one CI job.
            ref = run_suite(s, f"aa{i}-a", [next(seed) for _ in range(n)], "same")
            if i < args.power:
                sl = run_suite(s, f"slower{i}", [next(seed) for _ in range(n)], "slower")
                slower.append(judge(s, ref, sl))
                for model, ratio in slowdown(ref, sl).items():
                    slowdowns.setdefault(model, []).append(ratio)
                print(f"  slower {i + 1}: speed { {k: len(v) for k, v in slower[-1].speed.items()} }", flush=True)
            other = run_suite(s, f"aa{i}-b", [next(seed) for _ in range(n)], "same")
            aa.append(judge(s, ref, other))
            print(f"  A/A {i + 1}: quality {aa[-1].quality or 'ok'}; speed "
                  f"{ {k: len(v) for k, v in aa[-1].speed.items()} }", flush=True)  # fmt: skip
            if i < args.power:
                w = run_suite(s, f"worse{i}", [next(seed) for _ in range(n)], "worse")
                worse.append(judge(s, ref, w))
                print(f"  worse {i + 1}: {len(worse[-1].quality)} quality regressions", flush=True)
        injected = {m: statistics.median(v) - 1 for m, v in slowdowns.items()}
        minutes = (time.perf_counter() - t0) / 60
        load.append(os.getloadavg())
        costs = cost(s, 0 if args.rejudge else args.cost)
    finally:
        for proc in helpers:
            proc.terminate()
            proc.wait()
    out = report(s, aa, worse, slower)
    if injected:
        shown = ", ".join(f"{m} {v:+.0%}" for m, v in injected.items())
        print(
            f"the injected slowdown as the gate's clock saw it (slowed run vs its reference, median over checks): "
            f"{shown}"
        )
    out["injected_slowdown"] = injected
    for c in costs:
        print(f"cost: benchmarks/ci-gate.sh (suite + check, fresh process, empty cache): {c['seconds']:.0f} s, "
              f"exit {c['exit']}   target < 300 s")  # fmt: skip
    print(f"measurement {minutes:.1f} min; load average at start {load[0]}, at end {load[1]}")
    out.update(
        cost=costs, minutes=minutes, load=load, seeds_per_run=n, alpha=s.alpha, cpu_count=os.cpu_count(),
        torch=torch.__version__, python=platform.python_version(), busy=args.busy, threads=args.threads,
    )  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=1, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
