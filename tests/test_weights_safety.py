"""Nothing from a weights or statistics file can execute code: booby-trapped files are refused, unrun.

Each bait, unpickled, creates a marker file. genbench must stop with a one-line
error before any training and the marker must never appear; a plain state dict is
accepted, and torch-fidelity (which unpickles fully) only ever reads genbench's copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import pickle
import urllib.error
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP
from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from genbench.cli import main
from genbench.datasets.base import LoadedData
from genbench.errors import GenbenchError
from genbench.metrics.backbones import BACKBONES, HubBackbone, resolve_backbone
from genbench.metrics.fidelity import FID
from genbench.metrics.weights import read_state_dict
from genbench.protocol import Protocol
from genbench.run.data import load_data


class Bait:
    """Unpickling it creates ``marker``: stands for any code a crafted file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def bait_file(path: Path, marker: Path, how: str) -> Path:
    """A 'weights' file that runs code when unpickled: torch.save zip or a bare pickle."""
    payload = {"Conv2d_1a_3x3.conv.weight": torch.zeros(1), "trap": Bait(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)
    return path


@pytest.fixture(scope="module")
def digits() -> LoadedData:
    return load_data("digits", Path("unused"))


def weights_protocol(backbone: str, weights: Path, cache_dir: Path) -> Protocol:
    return Protocol(
        "digits", ("fid",), backbones=(backbone,), backbone_weights=((backbone, weights),), cache_dir=cache_dir
    )


def run_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str]:
    """Exit status and the last line on stderr (progress lines come before it)."""
    code = main(
        ["run", "--models", "tiny", "--dataset", "digits", "--metrics", "fid", "--out", str(tmp_path / "out"), *args]
    )
    return code, capsys.readouterr().err.rstrip("\n").splitlines()[-1]


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_the_bait_does_run_code_when_fully_unpickled(tmp_path: Path, how: str) -> None:
    """Control: without genbench's guard the file really runs code, so the marker tests below mean something."""
    marker = tmp_path / "ran"
    with contextlib.suppress(RuntimeError):  # a bare pickle is read as torch's legacy format's magic number
        torch.load(bait_file(tmp_path / "w.pth", marker, how), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
@pytest.mark.parametrize("backbone", ["inception", "vgg16"])
def test_booby_trapped_backbone_weights_are_refused_before_training_and_never_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_models: None, backbone: str, how: str
) -> None:
    marker = tmp_path / "ran"
    weights = bait_file(tmp_path / "w.pth", marker, how)
    code, err = run_cli(
        capsys, tmp_path, "--backbone", backbone, "--backbone-weights", f"{backbone}={weights}",
        "--cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    assert not marker.exists()
    assert code == 2
    assert err.startswith(f"error: --backbone-weights {backbone}={weights}: not a plain tensor file (it needs pickle")
    assert err.endswith("save it with torch.save(state_dict) of tensors or as .safetensors")
    assert not (tmp_path / "out" / "results.csv").exists()  # stopped before the first cell


def test_booby_trapped_reference_stats_are_refused_before_training_and_never_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tiny_models: None, cache_dir: Path
) -> None:
    marker = tmp_path / "ran"
    stats = tmp_path / "stats.npz"
    np.savez(stats, mu=np.array([Bait(marker)], dtype=object), sigma=np.eye(1))
    with np.load(stats, allow_pickle=True) as data:  # control: numpy's pickle path runs it
        data["mu"]
    assert marker.exists()
    marker.unlink()
    code, err = run_cli(capsys, tmp_path, "--reference-stats", str(stats), "--cache-dir", str(cache_dir))
    assert not marker.exists()
    assert code == 2
    assert err.startswith(f"error: --reference-stats {stats}: it holds Python objects (they need pickle")
    assert not (tmp_path / "out" / "results.csv").exists()


@pytest.mark.parametrize("backbone", ["clip-vit-b-32", "dinov2-vit-s-14"])
def test_clip_and_dinov2_weights_files_are_refused_unread(digits: LoadedData, tmp_path: Path, backbone: str) -> None:
    """CLIP files are TorchScript (loading can run code), DINOv2 has no file loader: refused before reading."""
    marker = tmp_path / "ran"
    weights = bait_file(tmp_path / "w.pt", marker, "torch.save")
    proto = weights_protocol(backbone, weights, tmp_path)
    expected = "TorchScript archive, which can run code" if backbone.startswith("clip") else "cannot load DINOv2"
    with pytest.raises(GenbenchError, match=rf"^--backbone-weights {backbone}=.*: .*{expected}"):
        FID().prepare(proto, digits)
    assert not marker.exists()


def test_offline_clip_does_not_suggest_a_weights_file_it_would_refuse(
    digits: LoadedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class OfflineCLIP(FeatureExtractorCLIP):
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise urllib.error.URLError("no network")

    monkeypatch.setitem(FEATURE_EXTRACTORS_REGISTRY, "clip-vit-b-32", OfflineCLIP)
    proto = Protocol("digits", ("fid",), backbones=("clip-vit-b-32",), cache_dir=tmp_path)
    with pytest.raises(GenbenchError, match=r"could not load or download its weights") as info:
        FID().prepare(proto, digits)
    assert "--backbone-weights" not in str(info.value)


def test_a_checked_copy_holds_only_the_tensors_and_a_tampered_copy_is_rewritten_unrun(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    state = net.state_dict()
    state["0.weight"] = torch.nn.Parameter(state["0.weight"])
    weights = tmp_path / "w.pth"
    torch.save(state, weights)
    cache = tmp_path / "cache"
    vgg16 = BACKBONES["vgg16"]
    assert isinstance(vgg16, HubBackbone)

    copy, digest = vgg16.checked_copy(weights, cache)
    assert digest == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert copy.parent == cache / "backbones" and copy != weights
    back = torch.load(copy, weights_only=True)
    assert list(back) == list(state) and all(type(t) is torch.Tensor for t in back.values())
    assert all(torch.equal(back[k], state[k]) for k in state)
    assert back._metadata == state._metadata  # BatchNorm's format version survives (it changes loading)

    marker = tmp_path / "ran"
    bait_file(copy, marker, "torch.save")  # someone swaps genbench's copy for a crafted file
    again, _ = vgg16.checked_copy(weights, cache)
    assert again == copy and not marker.exists()
    assert list(torch.load(copy, weights_only=True)) == list(state)


def test_a_plain_inception_state_dict_is_accepted_and_torch_fidelity_reads_only_genbench_copy(
    digits: LoadedData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end offline: an (untrained) Inception-v3 state dict resolves; torch-fidelity unpickles only the copy."""
    empty = tmp_path / "empty.pth"
    torch.save({}, empty)
    with monkeypatch.context() as m:  # the network without its download: random weights, the real key set
        m.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        state = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(empty)).state_dict()
    weights = tmp_path / "inception.pth"
    torch.save(state, weights)
    del state

    full_unpickles: list[str] = []
    real_load = torch.load

    def spy(f, *args, weights_only=None, **kw):  # type: ignore[no-untyped-def]
        if not weights_only:
            full_unpickles.append(str(f))
        return real_load(f, *args, weights_only=weights_only, **kw)

    monkeypatch.setattr(torch, "load", spy)
    proto = weights_protocol("inception", weights, tmp_path / "cache")
    FID().prepare(proto, digits)
    backbone = resolve_backbone("inception", proto, digits)
    assert backbone.weights_path is not None and Path(backbone.weights_path).parent == tmp_path / "cache" / "backbones"
    assert full_unpickles == [backbone.weights_path]
    assert backbone.tag == hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


def test_wrong_tensors_for_the_backbone_are_one_line_errors(digits: LoadedData, tmp_path: Path) -> None:
    weights = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, weights)
    proto = weights_protocol("inception", weights, tmp_path)
    with pytest.raises(GenbenchError) as info:
        FID().prepare(proto, digits)
    message = str(info.value)
    assert message.startswith(
        f"--backbone-weights inception={weights}: not weights torch-fidelity's 'inception-v3-compat'"
    )
    assert "Missing key(s)" in message and "\n" not in message


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([torch.zeros(1)], "expected a state dict (names to tensors), found a value of type list"),
        ({}, "expected a state dict (names to tensors), found an empty dict"),
        ({"state_dict": {"w": torch.zeros(1)}}, "(names to tensors), but 'state_dict' holds a value of type dict"),
        ({"w": torch.zeros(1), "epoch": 3}, "but 'epoch' holds a value of type int"),
    ],
)
def test_files_that_are_not_a_state_dict_are_refused(tmp_path: Path, obj: object, message: str) -> None:
    torch.save(obj, tmp_path / "w.pth")
    with pytest.raises(GenbenchError, match=r"^W: ") as info:
        read_state_dict((tmp_path / "w.pth").read_bytes(), False, "W")
    assert message in str(info.value)


def test_a_file_that_is_not_a_torch_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GenbenchError, match=r"^W: not a readable PyTorch tensor file \("):
        read_state_dict(b"hello", False, "W")


@pytest.mark.skipif(importlib.util.find_spec("safetensors") is not None, reason="safetensors is installed")
def test_safetensors_without_the_package_says_how_to_get_it() -> None:
    with pytest.raises(GenbenchError, match=r"^W: reading \.safetensors needs the safetensors package"):
        read_state_dict(b"", True, "W")


def test_safetensors_files_are_read_when_the_package_is_installed(tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = OrderedDict(w=torch.arange(6.0).reshape(2, 3))
    safetensors_torch.save_file(state, str(tmp_path / "w.safetensors"))
    back = read_state_dict((tmp_path / "w.safetensors").read_bytes(), True, "W")
    assert list(back) == ["w"] and torch.equal(back["w"], state["w"])
