"""``genbench export``: a trained cell's generator as a TorchScript (or ONNX) file, and back.

The cell's ``checkpoint.pt`` is read with ``torch.load(weights_only=True)`` (tensors
and plain values only: it cannot run code), the model is rebuilt from its registered
class, hyper-parameters and data info, and its :meth:`~genbench.GenerativeModel.decode`
is traced, of :meth:`~genbench.GenerativeModel.latent_from_noise` (the identity unless the
model maps its noise draw): ``forward(z)`` (``forward(z, labels)`` for a conditional model) returning
images in ``[0, 1]``. The file carries genbench metadata (``genbench.json``: model,
hyper-parameters, dataset, cell, seed, ``z_dim``, ``z_dist``, conditioning), which
``genbench eval --generator FILE`` reads, so nothing has to be repeated on its command line.

Exact reproduction is the point: ``genbench eval --generator FILE --seed S`` draws z as
the cell did (see :mod:`genbench.run.sources`), so with the cell's seed and sample count
it reproduces the cell's samples, and its metrics to 1e-6. Export therefore needs a model
with :attr:`~genbench.Capability.DECODE` (``sample = decode(sample_latent)``), and checks,
before writing, that ``sample_latent`` is ``latent_from_noise`` of one ``randn`` or
``rand * 2 - 1`` draw, that ``sample`` equals ``decode(sample_latent)``, and that the traced
file gives the model's output on a batch of another size.

ONNX (``-o FILE.onnx``) uses torch's TorchScript-based ONNX exporter and needs the
``onnx`` package (``pip install 'genbench[onnx]'``); onnxruntime's kernels differ from
torch's in the last bits, so an ONNX round trip matches to about 1e-4, not 1e-6.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genbench.checks import MAX_SEED, _size, check_output_folder, host_memory, parameter_bytes
from genbench.datasets.base import DATA_KINDS, DataInfo
from genbench.errors import GenbenchError, choices, first_line
from genbench.hyper import build, to_dict
from genbench.models.base import Capability, GenerativeModel, balanced_labels
from genbench.plugins import get_registry
from genbench.results import atomic_path, open_inside, read_record
from genbench.run.sources import METADATA_KEY, Z_DISTS, ZDist, draw_latent

FORMATS = {".pt": "torchscript", ".onnx": "onnx"}
_PROBE_SEED = 12345  # the seed of the export's checks (any: they compare two draws of the same stream)


@dataclass(frozen=True)
class LoadedCell:
    """A cell's trained model, rebuilt from its checkpoint, and what the checkpoint says about it."""

    model: GenerativeModel
    name: str  # the registered model
    hyper: dict[str, Any]
    data: DataInfo
    seed: int
    cell_id: str


def load_cell(cell_dir: Path) -> LoadedCell:
    """The model of ``RUN/cells/<cell>``, from ``checkpoint.pt`` (weights_only), in eval mode on the CPU.

    The checkpoint is checked field by field before anything is built (a crafted file gives one line, not a
    traceback), and a model too large for this machine's memory, measured on torch's ``meta`` device as
    ``genbench run`` measures it, is refused before it is allocated.
    """
    cell_dir = Path(os.path.abspath(cell_dir))  # `genbench export .` names the cell folder, not ""
    ckpt = cell_dir / "checkpoint.pt"
    payload = _read_checkpoint(cell_dir, ckpt)
    keys = ("model", "hyper", "data", "seed", "state_dict")
    if not isinstance(payload, dict) or any(k not in payload for k in keys):
        raise GenbenchError(f"{ckpt}: not a genbench checkpoint (expected the keys {', '.join(keys)})")
    registry = get_registry()
    name = payload["model"]
    if not isinstance(name, str):
        raise _damaged(ckpt, "model", name, f"the name of a model; installed: {choices(registry.models)}")
    if name not in registry.models:
        raise GenbenchError(f"{ckpt}: model {name!r} is not installed here; valid: {choices(registry.models)}")
    cls = registry.model(name)
    info = _data_info(ckpt, payload["data"])
    values = payload["hyper"]
    if not isinstance(values, dict) or not all(isinstance(k, str) and _plain(v) for k, v in values.items()):
        raise _damaged(ckpt, "hyper", values, "a dict of hyper-parameter names to numbers, strings or booleans")
    seed = payload["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise _damaged(ckpt, "seed", seed, "an integer >= 0 and < 2**63")
    hyper = build(cls.Hyper, dict(values), f"{ckpt}: model {name!r}", info.kind)
    sizes = parameter_bytes(cls, to_dict(hyper), info)
    host = host_memory()
    if sizes is not None and host is not None and sum(sizes) > host:
        raise GenbenchError(
            f"{ckpt}: model {name!r} with these hyper-parameters needs about {_size(sum(sizes))} for its weights, "
            f"more than the {_size(host)} of memory here; not built (a damaged or foreign checkpoint?)"
        )
    try:
        model = cls(hyper, info)
    except (ValueError, TypeError, RuntimeError) as exc:
        reason = first_line(exc)
        raise GenbenchError(f"{ckpt}: model {name!r} cannot be built from it ({reason})") from None
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError) as exc:
        reason = str(exc).splitlines()[0][:100]
        raise GenbenchError(f"{ckpt}: its weights do not fit model {name!r} ({reason})") from None
    model.eval()
    record = read_record(cell_dir)
    cell_id = record.cell_id if record is not None else cell_dir.name
    return LoadedCell(model, name, to_dict(hyper), info, seed, cell_id)


def _read_checkpoint(cell_dir: Path, ckpt: Path) -> Any:
    """The payload of ``checkpoint.pt``, opened without following a link (as ``record.json`` beside it is)."""
    if not cell_dir.is_dir():
        raise GenbenchError(f"{cell_dir}: no such folder; pass a cell of a run, e.g. results/x/cells/<cell>")
    if ckpt.is_symlink():
        raise GenbenchError(f"{ckpt}: is a symbolic link; a cell's checkpoint must be a file in its folder")
    if not ckpt.is_file():
        raise GenbenchError(f"{cell_dir}: no checkpoint.pt; pass a cell folder of a `genbench run` (RUN/cells/<cell>)")
    try:
        fd = open_inside(cell_dir, (ckpt.name,))
    except OSError as exc:
        raise GenbenchError(f"{ckpt}: cannot read it ({exc.strerror}); links are not followed") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise GenbenchError(f"{ckpt}: not a regular file; pass a cell folder of a `genbench run`")
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:
            reason = first_line(exc, 100)
            raise GenbenchError(f"{ckpt}: not a genbench checkpoint ({reason})") from None


def _damaged(ckpt: Path, field: str, value: Any, valid: str) -> GenbenchError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return GenbenchError(f"{ckpt}: damaged checkpoint: {field} is {shown}; expected {valid}")


def _plain(value: Any) -> bool:
    """A value `genbench run` records as a hyper-parameter: a JSON scalar, or a list of them."""
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _data_info(ckpt: Path, d: Any) -> DataInfo:
    """The checkpoint's data description, each field checked (a crafted one could ask for any tensor shape)."""
    if not isinstance(d, dict) or any(k not in d for k in ("name", "shape", "kind")):
        raise _damaged(ckpt, "data", d, "a dict with name, shape, kind and classes")
    shape, kind, classes = d["shape"], d["kind"], d.get("classes")
    if not isinstance(d["name"], str):
        raise _damaged(ckpt, "data.name", d["name"], "a dataset name")
    if (
        not isinstance(shape, list | tuple)
        or not shape
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        raise _damaged(ckpt, "data.shape", shape, "a list of positive integers, e.g. [1, 28, 28]")
    if kind not in DATA_KINDS:
        raise _damaged(ckpt, "data.kind", kind, " or ".join(DATA_KINDS))
    if classes is not None and (not isinstance(classes, int) or isinstance(classes, bool) or classes < 1):
        raise _damaged(ckpt, "data.classes", classes, "a positive integer, or None for unlabelled data")
    return DataInfo(d["name"], tuple(shape), kind, classes)


class _Decoder(nn.Module):
    """``forward(z) = model.decode(model.latent_from_noise(z))``: what is traced for an unconditional model."""

    def __init__(self, model: GenerativeModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(self.model.latent_from_noise(z), None)


class _ConditionalDecoder(_Decoder):
    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.model.decode(self.model.latent_from_noise(z), labels)


def _labels(n: int, cell: LoadedCell, conditional: bool) -> torch.Tensor | None:
    return balanced_labels(n, int(cell.data.num_classes or 1)) if conditional else None


@contextlib.contextmanager
def _own_random_stream() -> Any:
    with torch.random.fork_rng(devices=[]):
        yield


def latent_contract(cell: LoadedCell, n: int = 4) -> tuple[int, ZDist]:
    """``(z_dim, z_dist)`` of the model's latent draws, checked: ``sample_latent`` is ``latent_from_noise``
    of exactly one ``randn`` or ``rand * 2 - 1`` draw of shape ``(n, z_dim)`` from the global stream, and
    ``sample`` is ``decode(sample_latent)``. Otherwise an export could not reproduce the cell; GenbenchError."""
    model, conditional = cell.model, Capability.CONDITIONAL in type(cell.model).capabilities
    labels = _labels(n, cell, conditional)
    with _own_random_stream(), torch.no_grad():
        torch.manual_seed(_PROBE_SEED)
        z = model.sample_latent(n)
        torch.manual_seed(_PROBE_SEED)
        sampled = model.sample(n, labels)
    if not (isinstance(z, torch.Tensor) and z.ndim == 2 and z.shape[0] == n):
        raise GenbenchError(f"model {cell.name!r}: sample_latent({n}) must return codes of shape ({n}, z_dim)")
    dims = int(z.shape[1])

    def drawn(dist: ZDist) -> torch.Tensor:
        with torch.no_grad():
            return model.latent_from_noise(draw_latent(n, dims, dist, torch.Generator().manual_seed(_PROBE_SEED)))

    dist = next((d for d in Z_DISTS if torch.equal(z, drawn(d))), None)
    if dist is None:
        raise GenbenchError(
            f"model {cell.name!r}: sample_latent is latent_from_noise of neither torch.randn nor torch.rand * 2 - 1 "
            "of shape (n, z_dim); an export could not reproduce its samples"
        )
    with torch.no_grad():
        decoded = model.decode(z, labels)
    if not torch.equal(decoded, sampled):
        raise GenbenchError(
            f"model {cell.name!r}: sample() is not decode(sample_latent()) (decode draws noise of its own?); "
            "an export could not reproduce its samples"
        )
    return int(z.shape[1]), dist


@dataclass(frozen=True)
class Export:
    """What ``genbench export`` wrote."""

    path: Path
    format: str  # torchscript or onnx
    metadata: dict[str, Any]


def export_cell(cell_dir: Path, out: Path) -> Export:
    """Write the generator of ``cell_dir`` to ``out`` (``.pt`` TorchScript or ``.onnx``), with its metadata."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise GenbenchError(f"-o {out}: name the file .pt (TorchScript) or .onnx (ONNX)")
    if out.is_dir():
        raise GenbenchError(f"-o {out}: is a folder; name a file (.pt or .onnx)")
    check_output_folder(out.parent, f"-o {out}: its folder")
    _check_outside_cells(Path(os.path.abspath(cell_dir)), out)
    cell = load_cell(cell_dir)
    cls = type(cell.model)
    if Capability.DECODE not in cls.capabilities:
        raise GenbenchError(
            f"model {cell.name!r} cannot be exported: it does not declare Capability.DECODE "
            "(sample = decode(sample_latent), see docs/plugins.md)"
        )
    if cell.data.kind != "image":
        raise GenbenchError(f"{cell_dir}: exports are for image generators; {cell.data.name!r} holds {cell.data.kind}")
    z_dim, z_dist = latent_contract(cell)
    conditional = Capability.CONDITIONAL in cls.capabilities
    from genbench import __version__

    metadata = {
        "genbench": __version__,
        "model": cell.name,
        "hyper": cell.hyper,
        "dataset": cell.data.name,
        "shape": list(cell.data.shape),
        "num_classes": cell.data.num_classes,
        "cell": cell.cell_id,
        "seed": cell.seed,
        "z_dim": z_dim,
        "z_dist": z_dist,
        "conditional": conditional,
    }
    decoder = _ConditionalDecoder(cell.model) if conditional else _Decoder(cell.model)
    decoder.eval()
    g = torch.Generator().manual_seed(_PROBE_SEED)
    example = (draw_latent(2, z_dim, z_dist, g),) + ((_labels(2, cell, True),) if conditional else ())
    check = (draw_latent(5, z_dim, z_dist, g),) + ((_labels(5, cell, True),) if conditional else ())
    # Once outside the trace: what a model computes lazily from its weights (ae's Cholesky factor) is then
    # cached, and the trace holds it as a constant instead of the ops that made it (ONNX lacks some).
    _expected(decoder, example)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenbenchError(f"-o {out}: cannot make its folder {out.parent} ({exc.strerror})") from None
    if fmt == "torchscript":
        _write_torchscript(decoder, example, check, out, metadata)
    else:
        _write_onnx(decoder, example, check, out, metadata, conditional)
    return Export(out, fmt, metadata)


def _check_outside_cells(cell_dir: Path, out: Path) -> None:
    """Refuse an ``-o`` inside the cell (or inside its run's ``cells`` folder): it could replace a trained
    ``checkpoint.pt``, and the weights with it. Paths are compared resolved, so links and ``..`` do not hide it."""
    try:
        target, cell = out.resolve(), cell_dir.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise GenbenchError(f"-o {out}: cannot resolve the path ({exc})") from None
    guarded = cell.parent if cell.parent.name == "cells" else cell
    if target.is_relative_to(guarded):
        raise GenbenchError(
            f"-o {out}: is inside {guarded}, where it could overwrite a cell's checkpoint.pt (its trained weights); "
            "write the export outside the run's cells folder, e.g. -o RUN/generator.pt"
        )


def _expected(decoder: nn.Module, inputs: tuple[Any, ...]) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = decoder(*inputs)
    return out


def _write_torchscript(
    decoder: nn.Module, example: tuple[Any, ...], check: tuple[Any, ...], out: Path, metadata: dict[str, Any]
) -> None:
    with torch.no_grad(), warnings.catch_warnings(), atomic_path(out) as tmp:
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript; it still works
        traced = torch.jit.trace(decoder, example, check_trace=False)
        torch.jit.save(traced, str(tmp), _extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})
        loaded = torch.jit.load(str(tmp), map_location="cpu")
        with torch.no_grad():
            got = loaded(*check)
        want = _expected(decoder, check)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=0, atol=1e-6):
            raise GenbenchError(
                f"-o {out}: the traced generator does not reproduce the model on a batch of {check[0].shape[0]} "
                "(its output depends on the batch size or on Python control flow); not written"
            )


def _write_onnx(
    decoder: nn.Module,
    example: tuple[Any, ...],
    check: tuple[Any, ...],
    out: Path,
    metadata: dict[str, Any],
    conditional: bool,
) -> None:
    try:
        import onnx
    except ImportError:
        raise GenbenchError(
            f"-o {out}: ONNX export needs the onnx package, which is not installed: pip install 'genbench[onnx]' "
            "(or write TorchScript: -o FILE.pt)"
        ) from None
    names = ["z", "labels"] if conditional else ["z"]
    axes = {name: {0: "n"} for name in [*names, "images"]}
    with atomic_path(out) as tmp:
        try:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    decoder, example, str(tmp), dynamo=False, input_names=names, output_names=["images"],
                    dynamic_axes=axes, opset_version=17,
                )  # fmt: skip
        except Exception as exc:
            reason = first_line(exc)
            raise GenbenchError(f"-o {out}: torch's ONNX exporter failed ({reason}); write TorchScript (.pt)") from None
        proto = onnx.load(str(tmp))
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
        onnx.save(proto, str(tmp))
        _check_onnx(tmp, decoder, check, out)


def _check_onnx(path: Path, decoder: nn.Module, check: tuple[Any, ...], out: Path) -> None:
    """With onnxruntime installed, the graph's output on the check batch must match the model's to 1e-4."""
    try:
        import onnxruntime
    except ImportError:
        return
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), check, strict=True)}
    got = torch.from_numpy(session.run(None, feed)[0])
    want = _expected(decoder, check)
    if got.shape != want.shape or not torch.allclose(got, want, rtol=0, atol=1e-4):
        raise GenbenchError(f"-o {out}: the ONNX graph does not reproduce the model (onnxruntime check); not written")
