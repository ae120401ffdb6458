"""Reference statistics, computed once and shared by every cell, run and process.

Each entry is a standard ``.npz`` holding ``mu`` and ``sigma`` (the FID
statistics, as pytorch-fid and torch-fidelity compute them) and ``features``
(the raw reference features KID and precision/recall need). Its file name is a
content address: dataset bytes, split, sample count, backbone, its weights and
the layer all go into it, so a changed input can never reuse a stale entry. The
key is also stored inside the file and checked on every read: a corrupt,
truncated or mismatched file is recomputed, never used.

Two processes filling the cache at once are safe: the first takes an exclusive
lock on ``<entry>.lock`` and computes; the other waits and then reads the file,
which is written to a temporary name and renamed into place.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

CACHE_VERSION = 1  # bump when what is stored changes


@dataclass(frozen=True)
class ReferenceKey:
    """Everything the reference features depend on."""

    dataset: str
    fingerprint: str  # sha256 of the dataset's tensors
    split: str
    n: int
    backbone: str
    extractor: str
    weights: str  # content tag of the backbone weights
    layer: str

    def digest(self) -> str:
        text = json.dumps({**asdict(self), "version": CACHE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def filename(self) -> str:
        return f"{self.dataset}-{self.split}-n{self.n}-{self.backbone}-{self.layer}-{self.digest()[:16]}.npz"


@dataclass(frozen=True)
class ReferenceStats:
    """FID statistics and raw features of the reference examples."""

    mu: np.ndarray  # (d,)
    sigma: np.ndarray  # (d, d)
    features: torch.Tensor  # (n, d), float32
    path: Path | None = None
    note: str = ""  # why the entry was recomputed, if it was


def statistics(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance, with torch-fidelity's own function (float64)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    stats = fid_features_to_statistics(features.double())
    return np.asarray(stats["mu"], dtype=np.float64), np.asarray(stats["sigma"], dtype=np.float64)


def check_stats(mu: np.ndarray, sigma: np.ndarray, dim: int | None = None) -> str | None:
    """What is wrong with ``mu``/``sigma`` (shapes, finiteness, dimension), or None."""
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        return f"mu {mu.shape} and sigma {sigma.shape} do not form FID statistics"
    if dim is not None and mu.shape[0] != dim:
        return f"statistics have dimension {mu.shape[0]}, the features have {dim}"
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        return "statistics contain NaN or inf"
    return None


def read_entry(path: Path, key: ReferenceKey) -> tuple[ReferenceStats | None, str]:
    """The entry at ``path`` if it is whole and matches ``key``; else None and the reason."""
    try:
        with np.load(path, allow_pickle=False) as data:
            stored_key = str(data["key"])
            mu, sigma, features = data["mu"], data["sigma"], data["features"]
    except Exception as exc:  # truncated zip, missing array, not an npz at all
        return None, f"unreadable ({type(exc).__name__})"
    if stored_key != key.digest():
        return None, "its key does not match (a different dataset, backbone or layer)"
    if features.ndim != 2 or features.shape[0] != key.n:
        return None, f"it holds features of shape {features.shape}, expected ({key.n}, d)"
    problem = check_stats(mu, sigma, features.shape[1]) or (
        None if np.isfinite(features).all() else "features contain NaN or inf"
    )
    if problem:
        return None, problem
    return ReferenceStats(mu, sigma, torch.from_numpy(np.array(features, dtype=np.float32)), path), ""


def write_entry(path: Path, key: ReferenceKey, stats: ReferenceStats) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, key=np.array(key.digest()), mu=stats.mu, sigma=stats.sigma, features=stats.features.numpy())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock on ``path`` (created if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_compute(cache_dir: Path, key: ReferenceKey, compute: Callable[[], torch.Tensor]) -> ReferenceStats:
    """The cached entry for ``key``, or compute the features, store them and return them."""
    path = Path(cache_dir) / "reference" / key.filename()
    with locked(path.with_suffix(".lock")):
        note = ""
        if path.exists():
            stats, problem = read_entry(path, key)
            if stats is not None:
                return stats
            note = f"reference cache {path.name} was recomputed: {problem}"
        features = compute().float().cpu()
        mu, sigma = statistics(features)
        stats = ReferenceStats(mu, sigma, features, path, note)
        write_entry(path, key, stats)
        return stats


def load_user_stats(path: Path, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``mu``/``sigma`` from an ``.npz`` computed elsewhere (``--reference-stats``), checked (against ``dim`` if given).

    The file is read with ``allow_pickle=False``: a pickled array is refused, never executed.
    Every problem is one GenbenchError naming the file, so it can be checked before training.
    """
    from genbench.errors import GenbenchError, choices

    label = f"--reference-stats {path}"
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise GenbenchError(f"{label}: cannot read ({exc.strerror})") from None
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip archive, as numpy.savez writes
        raise GenbenchError(f"{label}: not an .npz archive (numpy.savez(path, mu=..., sigma=...) writes one)")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in ("mu", "sigma"):
                if key not in data.files:
                    raise GenbenchError(f"{label}: holds no {key!r} (its arrays: {choices(data.files)})")
                arrays[key] = data[key]
    except GenbenchError:
        raise
    except ValueError:  # object arrays: loading them would unpickle, that is run code from the file
        raise GenbenchError(
            f"{label}: it holds Python objects (they need pickle, which genbench refuses: it could run code); "
            "save float arrays with numpy.savez(path, mu=mu, sigma=sigma)"
        ) from None
    except Exception as exc:  # a truncated or damaged zip
        raise GenbenchError(f"{label}: a damaged .npz archive ({type(exc).__name__})") from None
    for key, value in arrays.items():
        if value.dtype.kind not in "biuf":
            raise GenbenchError(f"{label}: {key!r} holds {value.dtype} values, not numbers")
    mu, sigma = np.asarray(arrays["mu"], np.float64), np.asarray(arrays["sigma"], np.float64)
    problem = check_stats(mu, sigma, dim)
    if problem is None and not np.allclose(
        sigma, sigma.T, rtol=1e-5, atol=1e-8 * max(1.0, float(np.abs(sigma).max(initial=0.0)))
    ):
        problem = "sigma is not symmetric, so it is no covariance matrix"
    if problem:
        raise GenbenchError(f"{label}: {problem}")
    return mu, sigma
