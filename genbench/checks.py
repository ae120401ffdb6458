"""Checks that need the file system or the machine, run before any work.

Flags and suite files both become a :class:`~genbench.run.runner.RunRequest`, and
:func:`genbench.run.runner.validate` calls these on it, so a value that torch or the
OS would accept and then fail on in every cell (a folder below a file, a seed
torch cannot take, a model too large for this machine's memory, statistics of
the wrong width) is one line and exit status 2 before the dataset loads.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError, choices
from genbench.hyper import build
from genbench.models.base import GenerativeModel
from genbench.protocol import CellSpec, Protocol

MAX_SEED = 2**63 - 1  # results.csv holds seeds as int64; torch takes < 2**64 and sampling adds ~1e6
# Feature extraction batches are at most the sample count anyway; past 65,536 images a batch only risks running
# out of memory in every cell's evaluation (one Inception input is 1 MB), which would leave the cells without metrics.
MAX_EVAL_BATCH = 2**16
MAX_KID_SUBSETS = 10_000  # 100x torch-fidelity's default; each subset costs a (size x size) kernel
TRAINING_COPIES = 4  # float weights, their gradients and Adam's two moments: what training holds per parameter


# -- folders ----------------------------------------------------------------------------------------
def check_output_folder(path: Path, option: str) -> None:
    """``path`` is, or can become, a folder this process can write in; else a one-line error.

    Permission bits do not stop root, so writability is tried, not read from the mode: a
    temporary file is created (and removed) in ``path`` or its nearest existing ancestor.
    """
    try:
        if path.exists() and not path.is_dir():
            raise GenbenchError(f"{option} {path}: is a file, not a folder")
        existing = next((p for p in itertools.chain([path], path.parents) if p.exists()), Path(path.anchor or "."))
    except OSError as exc:  # a parent this process may not even look into
        raise GenbenchError(f"{option} {path}: cannot look into it ({exc.strerror})") from None
    if not existing.is_dir():
        raise GenbenchError(f"{option} {path}: {existing} is a file, so no folder can be made below it")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".genbench-write-test-")
    except OSError as exc:
        raise GenbenchError(f"{option} {path}: cannot create files in {existing} ({exc.strerror})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def check_folders(out_dir: Path, protocol: Protocol) -> None:
    """``--out`` and ``--cache-dir`` are written; ``--data-dir``, when it exists, must be a folder."""
    if out_dir == Path():
        raise GenbenchError(
            f"--out {str(out_dir)!r}: the current folder (an empty --out is the current folder too); "
            "a run needs a folder of its own, e.g. --out results/run1"
        )
    check_output_folder(out_dir, "--out")
    check_output_folder(Path(protocol.cache_dir), "--cache-dir")
    data_dir = Path(protocol.data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise GenbenchError(f"--data-dir {data_dir}: is a file, not a folder")


# -- values ---------------------------------------------------------------------------------------
def check_seeds(seeds: Iterable[int]) -> None:
    """At least one seed, each an integer (the range, [0, 2**63), is the seeds option's own check)."""
    seeds = list(seeds)
    if not seeds:
        raise GenbenchError("--seeds: none given; e.g. --seeds 0,1,2")
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise GenbenchError(f"--seeds {seed!r}: seeds must be integers >= 0 and < 2**63")


def check_sizes(p: Protocol) -> None:
    """Evaluation sizes that would hang every cell or can never be met."""
    if p.eval_batch_size > MAX_EVAL_BATCH:
        raise GenbenchError(f"--eval-batch-size {p.eval_batch_size}: at most {MAX_EVAL_BATCH} (the default is 256)")
    if p.kid_subsets > MAX_KID_SUBSETS:
        raise GenbenchError(f"--kid-subsets {p.kid_subsets}: at most {MAX_KID_SUBSETS} (the default is 100)")
    if "kid" in p.metrics and p.kid_subset_size is not None:
        if p.kid_subset_size < 2:
            raise GenbenchError(f"--kid-subset-size {p.kid_subset_size}: KID needs subsets of at least 2 samples")
        if p.kid_subset_size > p.eval_samples:
            raise GenbenchError(
                f"--kid-subset-size {p.kid_subset_size} is larger than the samples compared ({p.eval_samples} "
                f"generated); use at most {p.eval_samples} or raise --eval-samples"
            )
    if "prc" in p.metrics and p.prc_neighborhood >= p.eval_samples:
        raise GenbenchError(
            f"--prc-neighborhood {p.prc_neighborhood}: must be smaller than the {p.eval_samples} generated "
            f"samples (--eval-samples)"
        )


# -- reference statistics -------------------------------------------------------------------------
def check_reference_stats(p: Protocol, info: DataInfo) -> None:
    """``--reference-stats``: read by FID, for one backbone, whole, and as wide as that backbone's layer."""
    from genbench.metrics.backbones import backbone_layers, layer_dim
    from genbench.metrics.refcache import load_user_stats

    if p.reference_stats is None:
        return
    path = Path(p.reference_stats)
    if not path.is_file():
        raise GenbenchError(f"--reference-stats {path}: no such file")
    if "fid" not in p.metrics:
        raise GenbenchError(f"--reference-stats {path}: only FID reads it; add fid to --metrics")
    if len(p.backbones) != 1:
        raise GenbenchError("--reference-stats: give exactly one --backbone (the statistics' feature space)")
    mu, _ = load_user_stats(path)
    backbone = p.backbones[0]
    layer = p.feature_layer or backbone_layers(backbone)[1]
    dim = layer_dim(backbone, layer, info.num_classes)
    if dim is not None and mu.shape[0] != dim:
        raise GenbenchError(
            f"--reference-stats {path}: statistics of dimension {mu.shape[0]}; backbone {backbone!r} "
            f"layer {layer!r} has {dim} features"
        )


def check_backbone_options(p: Protocol) -> None:
    """``--feature-layer`` exists in every backbone; every ``--backbone-weights`` names one and a file."""
    from genbench.metrics.backbones import BACKBONES, backbone_layers

    for name in p.backbones:
        layers, _ = backbone_layers(name)
        if p.feature_layer is not None and p.feature_layer not in layers:
            raise GenbenchError(
                f"--feature-layer {p.feature_layer!r}: backbone {name!r} has no such layer; valid: {choices(layers)}"
            )
    for name, weights in p.backbone_weights:
        if name not in BACKBONES:
            raise GenbenchError(f"--backbone-weights {name}={weights}: unknown backbone {name!r}; "
                                f"valid: {choices(BACKBONES)}")  # fmt: skip
        if not Path(weights).is_file():
            raise GenbenchError(f"--backbone-weights {name}={weights}: no such file")


# -- memory ---------------------------------------------------------------------------------------
def host_memory() -> int | None:
    """This machine's RAM in bytes, capped by a cgroup (container) limit; None if unknown."""
    try:
        total: int | None = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(int(text), total) if total else int(text)
    return total


def memory_limit(device: torch.device) -> int | None:
    """Bytes the device can hold at most: a GPU's total memory, or the host's RAM for the CPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[1])
    if device.type == "cpu":
        return host_memory()
    return None


def training_bytes(cls: type[GenerativeModel], hyper: dict[str, Any], info: DataInfo) -> int | None:
    """A lower bound of what training ``cls`` holds: parameters x 4 copies (weights, gradients, Adam) + buffers.

    The model is built on torch's ``meta`` device, which records shapes and allocates
    nothing, so a 25 GB model costs microseconds to measure. A plugin that cannot be
    built there (it reads tensor values while building) is not estimated: None.
    """
    sizes = parameter_bytes(cls, hyper, info)
    return None if sizes is None else TRAINING_COPIES * sizes[0] + sizes[1]


def parameter_bytes(cls: type[GenerativeModel], hyper: dict[str, Any], info: DataInfo) -> tuple[int, int] | None:
    """``(parameters, buffers)`` bytes of ``cls`` built on torch's ``meta`` device (nothing is allocated);
    None when the plugin cannot be built there."""
    try:
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.simplefilter("ignore")
            model = cls(build(cls.Hyper, dict(hyper), f"model {cls.name!r}", info.kind), info)
        params = sum(t.numel() * t.element_size() for t in model.parameters())
        buffers = sum(t.numel() * t.element_size() for t in model.buffers())
    except (Exception, SystemExit):  # plugin code: its failure is the cell's to report, when it runs
        return None
    return params, buffers


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover - the loop returns


def check_memory(cells: Iterable[CellSpec], p: Protocol, info: DataInfo, device: torch.device) -> None:
    """Refuse a cell whose parameters, or whose generated samples, cannot fit in this machine's memory."""
    from genbench.plugins import get_registry

    host = host_memory()
    sample_bytes = p.eval_samples * info.dim * 4  # float32 samples, held on the CPU for every metric
    if host is not None and sample_bytes > host:
        raise GenbenchError(
            f"--eval-samples {p.eval_samples}: the generated samples alone take {_size(sample_bytes)}, "
            f"more than the {_size(host)} of memory here"
        )
    limit = memory_limit(device)
    if limit is None:
        return
    registry = get_registry()
    seen: set[tuple[str, str]] = set()
    for cell in cells:
        key = (cell.model, repr(sorted(cell.hyper.items())))
        if key in seen:
            continue
        seen.add(key)
        need = training_bytes(registry.model(cell.model), cell.hyper, info)
        if need is not None and need > limit:
            raise GenbenchError(
                f"cell {cell.cell_id}: training model {cell.model!r} needs about {_size(need)} for its parameters "
                f"(weights, gradients, Adam state), more than the {_size(limit)} of {device} memory here; "
                "lower its sizes (z_dim, width, hidden)"
            )
