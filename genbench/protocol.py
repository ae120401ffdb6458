"""Value objects of a run: the protocol, one cell's spec, one cell's record.

A :class:`CellSpec` is everything one grid cell needs and a :class:`CellRecord`
everything it produced. Both are plain, picklable dataclasses with no reference
to shared state, so a cell can run in this process, another process, another
GPU or on a cluster node and come back the same.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from genbench.options import option

Status = Literal["ok", "failed", "diverged"]


def default_cache_dir() -> Path:
    """``$GENBENCH_CACHE``, else ``$XDG_CACHE_HOME/genbench`` (``~/.cache/genbench``)."""
    if "GENBENCH_CACHE" in os.environ:
        return Path(os.environ["GENBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genbench"


def default_data_dir() -> Path:
    """``$GENBENCH_DATA``, else ``data/`` inside the cache folder."""
    return Path(os.environ["GENBENCH_DATA"]) if "GENBENCH_DATA" in os.environ else default_cache_dir() / "data"


PHASES = ("train", "sample", "evaluate")
# Columns of results.csv that are neither hyper-parameters nor metrics: one list, used by the
# table to tell hyper-parameters apart and by the registry to reserve these names.
IDENTITY_COLUMNS = frozenset(
    {"model", "dataset", "seed", "cell", "status", "error", "flags", "params", "device", "samples_png", "peak_mem_mb"}
)
PROTOCOL_COLUMNS = frozenset({"n_generated", "n_reference", "reference_split", "backbones", "torch_fidelity", "torch"})
TIMING_COLUMNS = frozenset({f"{phase}_s" for phase in PHASES} | {f"{phase}_items_per_s" for phase in PHASES})


@dataclass(frozen=True)
class Protocol:
    """What is held equal for every model and cell of a run.

    Same dataset and split, same number of generated and reference samples, same
    metrics and feature backbones, same device policy. ``epochs`` (when set)
    overrides every model's own ``epochs`` so all train on the same budget.

    Each field is a ``genbench run`` option declared with :func:`genbench.options.option`:
    its flag, suite key, help, checks and README row all come from the declaration.
    """

    dataset: str = option(
        "dataset name (see `genbench list datasets`)", "str", cli_default="mnist5k", registry="datasets"
    )
    metrics: tuple[str, ...] = option(
        "comma-separated metrics (fid,kid,prc), or all: every one that applies "
        "(one that does not apply to a model, ELBO for a GAN, is noted, not fatal)",
        "names",
        cli_default=("all",),
        registry="metrics",
    )
    backbones: tuple[str, ...] = option(
        "feature networks for FID, KID, precision/recall and IS: domain, inception, vgg16, clip-*, ...",
        "names",
        ("domain",),
        flag_name="--backbone",
        registry="backbones",
    )
    eval_samples: int = option(
        "generated samples per cell; the reference is as many images of the reference split",
        "int",
        1000,
        minimum=2,
        why="FID needs a covariance",
    )
    reference_split: Literal["train", "test"] = option(
        "reference split: test or train", "str", "test", choices=("test", "train")
    )
    epochs: int | None = option(
        "the same training budget for every model (overrides each model's own epochs)",
        "int",
        None,
        minimum=1,
        nullable=True,
        default_text="each model's own",
    )
    device: str = option("auto (a GPU when there is one), cpu or cuda", "str", "auto")
    data_dir: Path = option(
        "where torchvision datasets live", "path", default_factory=default_data_dir, default_text="$GENBENCH_DATA"
    )
    cache_dir: Path = option(
        "domain backbones and reference statistics",
        "path",
        default_factory=default_cache_dir,
        default_text="~/.cache/genbench",
    )
    download: bool = option("whether torchvision datasets may be downloaded", "bool", True)
    # Evaluation details that change the numbers, so they are explicit and recorded:
    feature_layer: str | None = option(
        "the layer FID/KID/PR read (it changes the numbers, so it is recorded)",
        "str",
        None,
        nullable=True,
        default_text="each backbone's standard",
    )  # None = each backbone's standard layer
    backbone_weights: tuple[tuple[str, Path], ...] = option(
        "NAME=PATH: a backbone's weights file, for offline machines; repeatable. For inception and vgg16 a plain "
        "state dict of tensors (torch.save(model.state_dict()), or .safetensors with the safetensors package); "
        "never unpickled, so it cannot run code",
        "weights",
        (),
    )
    reference_stats: Path | None = option(
        "an .npz with mu and sigma computed elsewhere (float arrays, read without pickle): FID against them "
        "(one backbone)",
        "file",
        None,
        nullable=True,
    )
    eval_batch_size: int = option("feature extraction batch size (results do not depend on it)", "int", 256, minimum=1)
    kid_subsets: int = option("KID: number of random subsets", "int", 100, minimum=1)
    kid_subset_size: int | None = option(
        "KID subset size (torch-fidelity's 1000, capped by the sample counts)",
        "int",
        None,
        minimum=1,
        nullable=True,
        default_text="min(1000, samples)",
    )
    isc_splits: int = option("Inception Score: number of splits", "int", 10, minimum=1)
    prc_neighborhood: int = option("precision/recall: k nearest neighbours", "int", 3, minimum=1)

    def weights_for(self, backbone: str) -> Path | None:
        """The weights file given for ``backbone``, if any."""
        return dict(self.backbone_weights).get(backbone)

    def n_reference(self, available: int) -> int:
        """Reference examples used: as many as generated, at most what the split holds."""
        return min(self.eval_samples, available)

    def kid_subset(self, n_reference: int) -> int:
        """KID's subset size: the one asked for, else torch-fidelity's 1000 capped by the sample counts."""
        return self.kid_subset_size or min(1000, self.eval_samples, n_reference)

    def manifest(self) -> dict[str, Any]:
        """A JSON-ready description written next to every result."""
        out = dataclasses.asdict(self)
        out["backbone_weights"] = {name: str(path) for name, path in self.backbone_weights}
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in out.items()}


@dataclass(frozen=True)
class RunRequest:
    """What ``genbench run`` asks for, as a library call: the selection and how the run is steered.

    Its option fields only steer the run (which cells, where they go); everything that can
    change a number is in :class:`Protocol`.
    """

    models: tuple[str, ...] = option(
        "models to compare, comma-separated (see `genbench list models`)", "names", registry="models"
    )
    protocol: Protocol  # type: ignore[misc]  # not an option itself (its fields are); mypy reads option() as a default
    out_dir: Path = option(
        "output folder", "path", key_name="out", flag_name="--out", default_text="results/<timestamp>"
    )
    grid: tuple[str, ...] = option(
        "key=v1,v2 (every model) or model.key=v1,v2 (one model); repeatable: the Cartesian product is run, "
        "values parsed into the type the model declares",
        "grid",
        (),
    )
    seeds: tuple[int, ...] = option("training seeds, e.g. 0,1,2: each cell is trained once per seed", "seeds", (0,))
    resume: bool = option("reuse finished cells already in --out", "bool", False)
    # Enforced by genbench.guard (a SIGALRM in the main thread, and checks between steps everywhere).
    cell_timeout: float | None = option(
        "seconds one cell (setup, training, sampling, evaluation) may run before it is stopped as failed "
        "and the grid goes on",
        "float",
        None,
        above=0,
        unit="seconds",
        nullable=True,
        default_text="no limit",
    )


@dataclass(frozen=True)
class CellSpec:
    """One unit of work: train model ``model`` with ``hyper`` on ``seed``, evaluate, save to ``out_dir``."""

    cell_id: str
    model: str
    hyper: dict[str, Any]
    seed: int
    protocol: Protocol
    out_dir: Path
    # Seconds the cell may run before it is stopped as failed (None: no limit). Not part of the
    # protocol: it changes no number, so a cell finished under another limit is reused by --resume.
    cell_timeout: float | None = None


@dataclass
class PhaseTiming:
    """Wall time of one phase (CUDA-synchronised), throughput and peak memory."""

    seconds: float
    items: int = 0  # images seen (train) or generated (sample)
    peak_mem_mb: float = 0.0  # CUDA: peak allocated in the phase; CPU: process peak RSS so far

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 and self.items else 0.0


@dataclass
class CellRecord:
    """Everything a cell produced; serialised to ``record.json`` and one row of ``results.csv``."""

    cell_id: str
    model: str
    dataset: str
    seed: int
    hyper: dict[str, Any]
    status: Status = "ok"
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metric_better: dict[str, Literal["lower", "higher"]] = field(default_factory=dict)
    metric_notes: dict[str, str] = field(default_factory=dict)  # metric -> why not computed
    flags: list[str] = field(default_factory=list)  # training health: "d_wins: ...", "collapse: ..."
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. domain backbone accuracy
    timings: dict[str, PhaseTiming] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    environment: dict[str, str] = field(default_factory=dict)
    protocol: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)  # backbones, layers, weights, sample counts
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run folder

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["timings"] = {k: {**dataclasses.asdict(t), "items_per_s": t.items_per_s} for k, t in self.timings.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRecord:
        data = dict(data)
        data["timings"] = {
            k: PhaseTiming(v["seconds"], v.get("items", 0), v.get("peak_mem_mb", 0.0))
            for k, v in data.get("timings", {}).items()
        }
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def row(self) -> dict[str, Any]:
        """The flat ``results.csv`` row: identity, hyper-parameters, metrics, timings, status."""
        row: dict[str, Any] = {
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "cell": self.cell_id,
            "status": self.status,
            "error": self.error or "",
            "flags": "; ".join(self.flags),
        }
        row.update(self.hyper)
        row.update(self.metrics)
        for phase, t in self.timings.items():
            row[f"{phase}_s"] = round(t.seconds, 4)
            if t.items:
                row[f"{phase}_items_per_s"] = round(t.items_per_s, 1)
        if self.timings:
            row["peak_mem_mb"] = round(max(t.peak_mem_mb for t in self.timings.values()), 1)
        row["params"] = self.params.get("total", 0)
        row["device"] = self.device
        row["samples_png"] = self.artifacts.get("samples", "")
        row.update(self.protocol_columns())
        return row

    def protocol_columns(self) -> dict[str, Any]:
        """The evaluation protocol, flat, so that every row of results.csv says how its numbers were made."""
        ev = self.evaluation
        if not ev:
            return {}
        backbones = ";".join(
            f"{name}:{b.get('layer')}@{str(b.get('weights'))[:12]}" for name, b in ev.get("backbones", {}).items()
        )
        return {
            "n_generated": ev.get("n_generated"),
            "n_reference": ev.get("n_reference"),
            "reference_split": ev.get("reference_split"),
            "backbones": backbones,
            "torch_fidelity": ev.get("torch_fidelity"),
            "torch": ev.get("torch"),
        }
