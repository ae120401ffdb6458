"""Generators genbench did not train (``genbench eval --generator``): TorchScript, ONNX, a Python callable.

**These run code.** A TorchScript file is a program (``torch.jit.load`` runs its
``forward``), an ONNX graph runs in onnxruntime, and ``module:function`` imports a Python
module. genbench executes the generator the user hands it, as ``python -c`` would: give
it only files you trust. That is unlike the files genbench reads as *data* (checkpoints,
backbone weights, statistics, images), which are never unpickled and cannot run code.

The calling conventions:

* **TorchScript** (``FILE.pt``, e.g. from ``genbench export``): ``forward(z)`` or, with
  ``--conditional``, ``forward(z, labels)``; ``z`` float32 ``(n, z_dim)`` on the device,
  ``labels`` int64 ``(n,)``; returns images ``(n, C, H, W)`` in ``[0, 1]``.
* **ONNX** (``FILE.onnx``, needs onnxruntime: ``pip install 'genbench[onnx]'``): the same,
  inputs in graph order (``z``, then ``labels``), run on the CPU.
* **A callable** (``module:function``): ``function(n, labels, generator) -> images``,
  ``labels`` int64 ``(n,)`` or None, ``generator`` a seeded ``torch.Generator`` on the
  device to draw its noise from. The current folder is on the import path.

Latent codes (TorchScript and ONNX) are drawn as a genbench cell draws its sampling
noise: in batches of :data:`genbench.run.contract.SAMPLE_BATCH`, from a ``torch.Generator``
on the device seeded with ``seed + 1_000_003``, ``z ~ N(0, I)`` (``--z-dist normal``) or
``U[-1, 1]`` (``uniform``). A cell's export (whose metadata gives ``z_dim``, the
distribution and the conditioning) evaluated with the cell's seed therefore sees the
cell's very noise and reproduces its samples and metrics.

Before any evaluation, the generator is called once on a batch of two (from a generator
of its own, so the evaluated draws are untouched) and its output held to the sample
contract (:mod:`genbench.run.contract`): a wrong shape, dtype or range, NaN, or a call that
raises stops ``genbench eval`` with one line and exit status 2.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError, first_line
from genbench.hyper import Hyper
from genbench.models.base import Capability, GenerativeModel, balanced_labels, draw_noise
from genbench.results import file_digest
from genbench.run.cell import SAMPLING_SEED_OFFSET
from genbench.run.contract import ContractError, check_batch, check_values, one_line
from genbench.run.train import Diverged

ZDist = Literal["normal", "uniform"]
Z_DISTS: tuple[ZDist, ...] = ("normal", "uniform")
METADATA_KEY = "genbench"  # an export's metadata: extra file genbench.json (TorchScript), metadata_props (ONNX)
PROBE = 2  # samples drawn to check a generator before evaluation


def draw_latent(n: int, z_dim: int, dist: ZDist, generator: torch.Generator) -> torch.Tensor:
    """``n`` codes as a cell's ``sample_latent`` draws them: ``randn``, or ``rand * 2 - 1``."""
    return draw_noise(n, z_dim, dist, generator.device, generator)


@dataclass
class Generator:
    """A generator to evaluate: how to call it, and what it declares about itself."""

    kind: Literal["torchscript", "onnx", "callable"]
    location: str  # the file, or module:function
    sha256: str  # of the file; of the text module:function for a callable
    call: Callable[[int, torch.Tensor | None, torch.Generator], torch.Tensor]  # (n, labels, generator) -> images
    z_dim: int | None = None
    z_dist: ZDist = "normal"
    conditional: bool = False
    parameters: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)  # a genbench export's (model, cell, seed, ...)

    def describe(self) -> dict[str, Any]:
        """What the record keeps about it."""
        out = {"kind": self.kind, "source": self.location, "sha256": self.sha256, "conditional": self.conditional}
        if self.kind != "callable":
            out.update(z_dim=self.z_dim, z_dist=self.z_dist)
        if self.metadata:
            out["export"] = self.metadata
        return out


def _metadata(text: str | bytes | None, where: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise GenbenchError(f"{where}: its genbench metadata is not JSON") from None
    if not isinstance(data, dict):
        raise GenbenchError(f"{where}: its genbench metadata is not a JSON object")
    return data


def _latent_settings(
    meta: Mapping[str, Any], z_dim: int | None, z_dist: ZDist | None, conditional: bool | None, where: str
) -> tuple[int, ZDist, bool]:
    """The options given, else the export's metadata; z_dim is required one way or the other."""
    dim = z_dim if z_dim is not None else meta.get("z_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise GenbenchError(f"--generator {where}: give --z-dim (the size of z it takes); it has no genbench metadata")
    dist = z_dist if z_dist is not None else meta.get("z_dist", "normal")
    if dist not in Z_DISTS:
        raise GenbenchError(f"--generator {where}: its metadata names z_dist {dist!r}; valid: 'normal', 'uniform'")
    cond = conditional if conditional is not None else bool(meta.get("conditional", False))
    return dim, dist, cond


def load_torchscript(
    path: Path, device: torch.device, z_dim: int | None, z_dist: ZDist | None, conditional: bool | None
) -> Generator:
    """A TorchScript generator (code: see the module docstring), its metadata filling unset options."""
    extra = {f"{METADATA_KEY}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript; it still works
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:
        reason = first_line(exc)
        raise GenbenchError(
            f"--generator {path}: not a TorchScript file ({reason}); save one with torch.jit.trace(g, z).save(path) "
            "or `genbench export`"
        ) from None
    module.eval()
    meta = _metadata(extra[f"{METADATA_KEY}.json"], str(path))
    dim, dist, cond = _latent_settings(meta, z_dim, z_dist, conditional, str(path))

    def call(n: int, labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
        z = draw_latent(n, dim, dist, g)
        out: torch.Tensor = module(z, labels) if cond else module(z)
        return out

    params = sum(p.numel() for p in module.parameters())
    return Generator("torchscript", str(path), file_digest(path).sha256, call, dim, dist, cond, params, meta)


def load_onnx(path: Path, z_dim: int | None, z_dist: ZDist | None, conditional: bool | None) -> Generator:
    """An ONNX generator run by onnxruntime on the CPU (an optional extra)."""
    try:
        import onnxruntime
    except ImportError:
        raise GenbenchError(
            f"--generator {path}: ONNX needs onnxruntime, which is not installed: pip install 'genbench[onnx]' "
            "(or onnxruntime), or export TorchScript instead"
        ) from None
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        reason = first_line(exc)
        raise GenbenchError(f"--generator {path}: not an ONNX model onnxruntime can run ({reason})") from None
    meta = _metadata(session.get_modelmeta().custom_metadata_map.get(METADATA_KEY), str(path))
    inputs = session.get_inputs()
    if inputs and len(inputs[0].shape) != 2:
        shape = tuple(inputs[0].shape)
        raise GenbenchError(
            f"--generator {path}: its first input {inputs[0].name!r} has shape {shape}; expected z, 2-D (n, z_dim)"
        )
    if z_dim is None and "z_dim" not in meta and inputs and isinstance(inputs[0].shape[-1], int):
        z_dim = int(inputs[0].shape[-1])  # a fixed second dimension of the first input
    if conditional is None and "conditional" not in meta:
        conditional = len(inputs) >= 2
    dim, dist, cond = _latent_settings(meta, z_dim, z_dist, conditional, str(path))
    if len(inputs) != (2 if cond else 1):
        want = "two inputs (z, labels)" if cond else "one input (z)"
        raise GenbenchError(f"--generator {path}: the graph has {len(inputs)} inputs; expected {want}")
    names = [i.name for i in inputs]

    def call(n: int, labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
        feed = {names[0]: draw_latent(n, dim, dist, g).cpu().numpy()}
        if cond:
            assert labels is not None
            feed[names[1]] = labels.cpu().numpy()
        return torch.from_numpy(session.run(None, feed)[0])

    return Generator("onnx", str(path), file_digest(path).sha256, call, dim, dist, cond, 0, meta)


def load_callable(spec: str, conditional: bool | None) -> Generator:
    """``module:function``, imported like ``python -c 'import module'`` from the current folder."""
    module_name, sep, func_name = spec.partition(":")
    if not sep or not module_name.strip() or not func_name.strip():
        raise GenbenchError(f"--generator {spec!r}: expected FILE.pt, FILE.onnx or module:function")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current folder, as `python -m` has it
    try:
        module = importlib.import_module(module_name.strip())
    except BaseException as exc:  # an import error, a SyntaxError, even SystemExit from the module's top level
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise GenbenchError(
            f"--generator {spec}: module {module_name.strip()!r} does not import ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:100] if str(exc) else ''})"
        ) from None
    func = getattr(module, func_name.strip(), None)
    if not callable(func):
        raise GenbenchError(f"--generator {spec}: module {module_name.strip()!r} has no function {func_name.strip()!r}")

    def call(n: int, labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
        out: torch.Tensor = func(n, labels, g)
        return out

    return Generator("callable", spec, hashlib.sha256(spec.encode()).hexdigest(), call, None, "normal",
                     bool(conditional))  # fmt: skip


def load_generator(
    spec: str, device: torch.device, z_dim: int | None, z_dist: ZDist | None, conditional: bool | None
) -> Generator:
    """``--generator``: ``.pt`` TorchScript, ``.onnx``, or ``module:function``."""
    path = Path(spec)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise GenbenchError(f"--generator {spec}: no such file")
        return load_onnx(path, z_dim, z_dist, conditional)
    if path.suffix.lower() in (".pt", ".pth", ".ts", ".jit") or path.is_file():
        if not path.is_file():
            raise GenbenchError(f"--generator {spec}: no such file")
        return load_torchscript(path, device, z_dim, z_dist, conditional)
    if z_dim is not None or z_dist is not None:
        raise GenbenchError(f"--generator {spec}: --z-dim and --z-dist are for .pt/.onnx files; a callable draws z")
    return load_callable(spec, conditional)


class ExternalModel(GenerativeModel):
    """A generator genbench did not train, as the model ``draw_samples`` and the metrics expect.

    ``sample(n, labels)`` calls the generator with a ``torch.Generator`` seeded like a
    cell's sampling stream; it has no parameters of its own and never trains.
    """

    name = "external"
    description = "a generator evaluated by genbench eval"
    capabilities = frozenset({Capability.SAMPLE})

    def __init__(self, generator: Generator, data: DataInfo, device: torch.device, seed: int) -> None:
        super().__init__(Hyper(), data)  # no hyper-parameters of its own
        self.generator = generator
        self._device = device
        self.rng = torch.Generator(device=device).manual_seed(seed + SAMPLING_SEED_OFFSET)

    @property
    def device(self) -> torch.device:
        return self._device

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        raise NotImplementedError("an evaluated generator does not train")

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generator.call(n, labels, self.rng)

    def parameter_counts(self) -> dict[str, int]:
        return {"total": self.generator.parameters} if self.generator.parameters else {}


class ConditionalExternalModel(ExternalModel):
    capabilities = frozenset({Capability.SAMPLE, Capability.CONDITIONAL})


def external_model(generator: Generator, data: DataInfo, device: torch.device, seed: int) -> ExternalModel:
    cls = ConditionalExternalModel if generator.conditional else ExternalModel
    return cls(generator, data, device, seed)


def probe(generator: Generator, data: DataInfo, device: torch.device) -> None:
    """Call the generator on a batch of :data:`PROBE` (its own random stream) and hold the result to the
    sample contract; any problem is a one-line GenbenchError, before evaluation."""
    k = data.num_classes if generator.conditional else None
    labels = balanced_labels(PROBE, k, device) if k else None
    rng = torch.Generator(device=device).manual_seed(0)
    what = f"--generator {generator.location}"
    try:
        with torch.no_grad():
            out = generator.call(PROBE, labels, rng)
    except Exception as exc:
        text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        takes = "z, labels" if generator.conditional else "z"
        shape = f"z of shape ({PROBE}, {generator.z_dim})" if generator.z_dim else f"n={PROBE}"
        raise GenbenchError(
            f"{what}: calling it with {shape} failed ({type(exc).__name__}: {text}); it must take ({takes}) and return "
            f"images of shape (n, {', '.join(map(str, data.shape))}) in [0, 1]"
        ) from None
    try:
        batch = check_batch(out, PROBE, data, conditional=labels is not None)
        check_values(batch.detach().float().cpu(), data)
    except (ContractError, Diverged) as exc:
        raise GenbenchError(f"{what}: {exc}") from None
    except Exception as exc:  # a tensor the checks cannot read (on the meta device, a subclass): one line too
        raise GenbenchError(
            f"{what}: its samples cannot be checked ({one_line(exc)[:160]}); it must return a torch.Tensor of images "
            f"of shape (n, {', '.join(map(str, data.shape))}) in [0, 1]"
        ) from None
