"""Loading datasets through the registry, once per process."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch

from genbench.datasets.base import SPLITS, LoadedData, LoadOptions, Split
from genbench.errors import GenbenchError
from genbench.plugins import get_registry


def fingerprint(splits: dict[str, Split]) -> str:
    """sha256 over every split's tensors (shape, dtype and bytes)."""
    h = hashlib.sha256()
    for name in sorted(splits):
        for t in (splits[name].x, splits[name].y):
            if t is None:
                h.update(b"none")
                continue
            t = t.contiguous()
            h.update(f"{name}{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.numpy().tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=4)
def load_data(name: str, data_dir: Path, download: bool = True) -> LoadedData:
    """Load dataset ``name`` (cached per process: every cell of a grid shares one copy)."""
    cls = get_registry().dataset(name)
    try:
        splits = cls().load(LoadOptions(data_dir=data_dir, download=download))
    except GenbenchError:
        raise
    except Exception as exc:
        raise GenbenchError(f"dataset {name!r} failed to load: {type(exc).__name__}: {exc}") from exc
    missing = [s for s in SPLITS if s not in splits]
    if missing:
        raise GenbenchError(f"dataset {name!r} returned no {missing[0]!r} split; a dataset must return {SPLITS}")
    info = cls.info()
    for split_name, split in splits.items():
        if tuple(split.x.shape[1:]) != info.shape:
            raise GenbenchError(
                f"dataset {name!r}: {split_name} examples have shape {tuple(split.x.shape[1:])}, declared {info.shape}"
            )
        if split.x.dtype != torch.float32:
            splits[split_name] = Split(split.x.float(), split.y)
    return LoadedData(info, splits, fingerprint(splits))
