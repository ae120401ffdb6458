"""Built-in datasets: packaged real digits, toy 2-D distributions, torchvision sets offline."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch

from genbench.datasets.base import LoadOptions
from genbench.datasets.torchvision_sets import MNIST
from genbench.datasets.toy2d import grid, ring, spiral
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


def test_fingerprint_changes_with_content() -> None:
    data = load_data("digits", Path("unused"))
    changed = dict(data.splits)
    changed["test"] = type(data.splits["test"])(data.splits["test"].x + 1e-3, data.splits["test"].y)
    assert fingerprint(changed) != data.fingerprint


def test_toy_distributions_have_their_modes() -> None:
    g = torch.Generator().manual_seed(0)
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
