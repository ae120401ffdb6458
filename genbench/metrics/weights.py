"""Backbone weights files (``--backbone-weights NAME=PATH``), read without ever running code from them.

torch-fidelity 0.4 reads a weights file with full pickle (``torch.load(path,
weights_only=False)`` for Inception-v3 and VGG16) or as TorchScript
(``torch.jit.load`` for CLIP): a crafted file runs code the moment it is read. So
genbench never hands a user's file to torch-fidelity. It reads the bytes itself with
``torch.load(..., weights_only=True)`` (or the safetensors package, if installed),
which rebuilds only tensors and plain containers: a file that needs anything else
raises instead of running. It checks that they form a state dict (names to tensors),
and :mod:`genbench.metrics.backbones` writes those tensors again with ``torch.save``
into its cache; torch-fidelity reads only that copy, bytes genbench wrote itself.
Extractors that cannot take a plain state dict (CLIP, DINOv2) refuse weights files.
"""

from __future__ import annotations

import io
import pickle
import warnings
from collections import OrderedDict
from typing import Any

import torch
from torch_fidelity.feature_extractor_clip import FeatureExtractorCLIP
from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2

from genbench.errors import GenbenchError

HOW_TO_SAVE = "save it with torch.save(state_dict) of tensors or as .safetensors"


def refusal(extractor: type) -> str | None:
    """Why torch-fidelity's ``extractor`` cannot take a weights file; None when it can.

    Inception-v3 and VGG16 read a plain state dict, which is what genbench hands
    over. Any other extractor (a plugin's) is handed the same checked copy: safe to
    unpickle whatever its loader does; if it needs another format, loading fails.
    """
    if issubclass(extractor, FeatureExtractorCLIP):
        return (
            "torch-fidelity reads CLIP weights only as a TorchScript archive, which can run code when loaded, "
            "so genbench does not pass it on; online, torch-fidelity downloads them (hash-checked)"
        )
    if issubclass(extractor, FeatureExtractorDinoV2):
        return "torch-fidelity cannot load DINOv2 from a file (it fetches it through torch.hub); use it online"
    return None


def _load(data: bytes, safetensors: bool, what: str) -> Any:
    """The object stored in ``data``; only tensors and plain containers can come out."""
    if safetensors:
        try:
            from safetensors.torch import load as load_safetensors
        except ImportError:
            raise GenbenchError(
                f"{what}: reading .safetensors needs the safetensors package (pip install safetensors); "
                f"or save the weights with torch.save(state_dict)"
            ) from None
        try:
            return load_safetensors(data)
        except Exception as exc:
            raise GenbenchError(f"{what}: not a readable .safetensors file ({type(exc).__name__})") from None
    try:
        with warnings.catch_warnings():  # "Detected pickle protocol 4": a bare pickle, refused or read anyway
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # weights_only met a class or function: it refused to call it
        raise GenbenchError(
            f"{what}: not a plain tensor file (it needs pickle, which genbench refuses: it could run code); "
            f"{HOW_TO_SAVE}"
        ) from None
    except Exception as exc:  # not a torch file, truncated, a TorchScript archive
        reason = str(exc).splitlines()[0][:120] if str(exc) else ""
        raise GenbenchError(
            f"{what}: not a readable PyTorch tensor file ({type(exc).__name__}: {reason}); {HOW_TO_SAVE}"
        ) from None


def _plain_metadata(metadata: Any) -> dict[str, dict[str, Any]] | None:
    """A state dict's ``_metadata`` (per-module format versions) if it is plain data, else None."""
    plain = (int, float, str, bool, type(None))
    if isinstance(metadata, dict) and all(
        isinstance(k, str)
        and isinstance(v, dict)
        and all(isinstance(x, str) and isinstance(y, plain) for x, y in v.items())
        for k, v in metadata.items()
    ):
        return {k: dict(v) for k, v in metadata.items()}
    return None


def read_state_dict(data: bytes, safetensors: bool, what: str) -> OrderedDict[str, torch.Tensor]:
    """The state dict in ``data`` (a torch.save file, or safetensors), as plain tensors; else a one-line error.

    ``what`` starts every message (``--backbone-weights inception=w.pth``). The
    result holds nothing but tensors (and the module format versions torch keeps
    in ``_metadata``), so ``torch.save`` of it writes a file that is safe to unpickle.
    """
    obj = _load(data, safetensors, what)
    if not isinstance(obj, dict) or not obj:
        found = "an empty dict" if isinstance(obj, dict) else f"a value of type {type(obj).__name__}"
        raise GenbenchError(f"{what}: expected a state dict (names to tensors), found {found}; {HOW_TO_SAVE}")
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            found = f"{key!r} holds a value of type {type(value).__name__}"
            raise GenbenchError(f"{what}: expected a state dict (names to tensors), but {found}; {HOW_TO_SAVE}")
        out[key] = value.detach()  # a Parameter becomes a plain tensor
    metadata = _plain_metadata(getattr(obj, "_metadata", None))
    if metadata is not None:
        out._metadata = metadata  # type: ignore[attr-defined]
    return out


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    """Whether two state dicts hold the same names, dtypes, shapes and values."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a
    )
