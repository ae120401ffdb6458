"""Value objects of a run: the protocol, the run request, one cell's spec.

A :class:`CellSpec` is everything one grid cell needs and a :class:`CellRecord`
(:mod:`genbench.record`, importable from here too) everything it produced. Both are
plain, picklable dataclasses with no reference to shared state, so a cell can run in
this process, another process, another GPU or on a cluster node and come back the same.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genbench.options import Option, declared, option
from genbench.record import CellRecord as CellRecord
from genbench.record import FileDigest as FileDigest
from genbench.record import PhaseTiming as PhaseTiming
from genbench.record import Status as Status


def default_cache_dir() -> Path:
    """``$GENBENCH_CACHE``, else ``$XDG_CACHE_HOME/genbench`` (``~/.cache/genbench``)."""
    if "GENBENCH_CACHE" in os.environ:
        return Path(os.environ["GENBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "genbench"


def default_data_dir() -> Path:
    """``$GENBENCH_DATA``, else ``data/`` inside the cache folder."""
    return Path(os.environ["GENBENCH_DATA"]) if "GENBENCH_DATA" in os.environ else default_cache_dir() / "data"


PHASES = (
    "calibrate",
    "train",
    "sample",
    "evaluate",
    "figures",
    "quality",
)  # calibrate: the speed yardstick (genbench.run.calibrate); figures and quality: outside train's clock
# Columns of results.csv that are neither hyper-parameters nor metrics: one list, used by the
# table to tell hyper-parameters apart and by the registry to reserve these names.
IDENTITY_COLUMNS = frozenset(
    {"model", "dataset", "seed", "cell", "status", "error", "flags", "params", "device", "samples_png", "peak_mem_mb"}
    | {"threads"}  # the torch threads a cell trained with (train_s depends on it)
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
        "for domain a classifier genbench trained (its cache keeps them under backbones/; checks across machines "
        "need none: its recipe identifies it); never unpickled, so it cannot run code",
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
    # Read by genbench.run.watch: the quality curve is recorded (record, quality.csv, history.csv), so it is here.
    eval_every: int | None = option(
        "quality over training: a quick metric on 200 samples after epochs 1, 1+K, 1+2K, ... and the last "
        "(FID on the domain backbone for labelled images, the toy metrics for 2-D points); 0: off",
        "int",
        None,
        minimum=0,
        nullable=True,
        default_text="ceil((epochs - 1) / 3): about 4 points",
    )
    # The fast path (genbench.run.fastpath): opt-in, and recorded, since each can change the numbers.
    precision: Literal["fp32", "bf16", "fp16"] = option(
        "training and sampling arithmetic through autocast: fp32, bf16 or fp16 (fp16 with loss scaling)",
        "str",
        "fp32",
        choices=("fp32", "bf16", "fp16"),
    )
    compile: bool = option("torch.compile the model's networks (the first steps are slower: compiling)", "bool", False)
    channels_last: bool = option("channels_last memory format for conv nets' weights and images", "bool", False)
    cuda_graphs: bool = option(
        "capture the whole training step as one CUDA graph and replay it (CUDA only; fp32/bf16; models that "
        "declare graph_safe)",
        "bool",
        False,
    )

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
    resume: bool = option(
        "continue the run in --out: reuse its finished cells whose record and files check out, run the rest "
        "(without it, a folder that holds results is refused)",
        "bool",
        False,
    )
    threads: int | None = option(
        "torch threads per cell; left out: $OMP_NUM_THREADS, else the cores other processes leave free, chosen "
        "again for every cell (torch's default of every core can make a busy machine dozens of times slower)",
        "int",
        None,
        minimum=1,
        nullable=True,
        default_text="automatic",
    )
    # Enforced by genbench.run.guard (a SIGALRM in the main thread, and checks between steps everywhere).
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
    # Where cells run (genbench.run.executors): the executor and its resources. Same numbers everywhere.
    executor: str = option(
        "how cells run: serial (one after the other), process (local worker processes), ray (Ray tasks), "
        "or a plugin's (see genbench list executors)",
        "str",
        "serial",
        registry="executors",
    )
    workers: int | None = option(
        "cells at once (process, ray); each gets max(1, cores // workers) torch threads",
        "int",
        None,
        minimum=1,
        nullable=True,
        default_text="the CPU cores (GPUs x cells per GPU with --gpus)",
    )
    gpus: tuple[int, ...] = option("process: GPUs to pack cells on, e.g. 0,1 (each worker sees one)", "ints", ())
    cells_per_gpu: int | None = option(
        "cells that share one GPU at once (process with --gpus; ray: a 1/K GPU share per cell)",
        "int",
        None,
        minimum=1,
        nullable=True,
        default_text="1",
    )
    ray_address: str | None = option(
        "ray: join this Ray cluster (host:port, ray://host:port or auto)",
        "str",
        None,
        nullable=True,
        default_text="$RAY_ADDRESS, else a local Ray instance",
    )


def run_options() -> tuple[Option, ...]:
    """Every option of ``genbench run``: the run's (models, grid, seeds, ...), then the protocol's.

    Read from the two classes at each call, so that a declaration is the only thing to add.
    """
    return declared(RunRequest, "run") + declared(Protocol, "protocol")


# Protocol fields about training: genbench eval trains nothing. The fast path's fields (precision, compile,
# channels_last, cuda_graphs) are how a model trains and samples in a cell; an evaluated generator runs as
# given, in float32.
TRAINING_ONLY = ("epochs", "eval_every", "precision", "compile", "channels_last", "cuda_graphs")


def eval_options() -> tuple[Option, ...]:
    """The options ``genbench eval`` shares with ``genbench run``: ``--out`` and the protocol's (but
    those about training, :data:`TRAINING_ONLY`: nothing is trained)."""
    out = tuple(o for o in declared(RunRequest, "run") if o.name == "out_dir")
    return out + tuple(o for o in declared(Protocol, "protocol") if o.name not in TRAINING_ONLY)


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
    # Torch intra-op threads (None: genbench.threads chooses when the cell starts); not part of the protocol.
    threads: int | None = None
    # Why ``threads`` is what it is, when an executor chose it for its workers (recorded; "": --threads)
    threads_reason: str = ""
