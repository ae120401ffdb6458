"""``genbench eval``: judge a generator genbench did not train by the protocol of ``genbench run``.

The samples come from a folder of images or an ``.npz`` (:mod:`genbench.run.image_files`)
or from a generator (TorchScript, ONNX or a Python callable, :mod:`genbench.run.sources`);
everything after that is a trained cell's: the sample contract, the same metrics through
:func:`genbench.run.cell.evaluate` on features extracted once, the same backbones and
reference cache, and the same results format (``cells/<id>/record.json`` and
``samples.png``, a row of ``results.csv``, ``run.json``), under the folder's lock. So
``genbench table`` (and whatever reads a run) shows an evaluated generator like any cell.

**Adding to a run.** With ``--out`` naming the folder of a ``genbench run``, the
evaluation takes that run's protocol (dataset, sample counts, metrics, backbones,
weights, layer, KID/IS/PR settings): options left out come from its ``run.json``, and an
option given with another value than the run's is refused (the numbers would not
compare). Options that change no number (``--device``, ``--cache-dir``, ``--data-dir``,
``--download``, ``--eval-batch-size``; ``--epochs`` and ``--eval-every``: nothing is trained)
may differ, and are never taken from ``run.json``: they come from the command line or their
defaults (a copied or crafted run.json must not send caches outside the folder). A
``genbench run --resume`` of that folder keeps the evaluated rows.

**Identity.** The row's model is ``--name`` (by default the file or folder name); its cell
id is ``<name>_<digest>_s<seed>``, the digest covering the source's content (sha256 of
the files; the text of ``module:function``) and the latent settings, so evaluating the
same generator with seeds 0, 1, 2 gives three seeds of one row in the table, with mean ±
std. An id already in the folder is refused: results already computed are never replaced.

**Failures.** What can be known before evaluation (a missing or unreadable file, images
of the wrong size or colour, a generator that does not load or whose trial batch of two
breaks the sample contract, a protocol that differs from the run's) stops with one line
and exit status 2, and nothing is written. What shows only later (NaN samples in a later
batch, a generator raising mid-way) gives a ``failed`` row with the reason; a metric's
numerical failure gives ``diverged``, as in a trained cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genbench.errors import GenbenchError
from genbench.folder import CELLS, RunFolder, check_cell_folder
from genbench.metrics.base import EvalContext
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, Protocol
from genbench.reporting import images
from genbench.results import (
    RUN_JSON,
    atomic_write_json,
    read_manifest,
    recording_writes,
    write_results,
)
from genbench.run.cell import (
    conditional_labels,
    environment,
    evaluate,
    save_cell_files,
    start_attempt,
)
from genbench.run.contract import ContractError, draw_samples, one_line
from genbench.run.data import load_data
from genbench.run.eval_folder import EVALUATED, check_protocol, existing_records, resolve_protocol
from genbench.run.grid import hyper_digest
from genbench.run.health import evaluation_flags
from genbench.run.image_files import ImageSamples, read_images
from genbench.run.preparation import prepare_metrics, run_manifest
from genbench.run.sources import (
    ConditionalExternalModel,
    ExternalModel,
    Generator,
    ZDist,
    external_model,
    load_generator,
    probe,
)
from genbench.run.timing import resolve_device, timed
from genbench.run.train import Diverged

# The row's "hyper-parameter" naming what was evaluated (kind and content digest): two generators given
# the same --name stay two rows of the table, and the seeds of one generator one row.
SOURCE = "source"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")

Notify = Callable[[str], None]


@dataclass(frozen=True)
class EvalRequest:
    """What ``genbench eval`` asks for. Exactly one of ``images`` and ``generator``.

    ``protocol_options`` holds the protocol fields given explicitly (field name -> typed
    value); the others come from the run in ``out_dir`` if there is one, else their defaults.
    """

    out_dir: Path
    images: Path | None = None
    generator: str | None = None  # FILE.pt, FILE.onnx or module:function
    z_dim: int | None = None
    z_dist: ZDist | None = None
    conditional: bool | None = None
    seed: int = 0
    name: str | None = None
    protocol_options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class EvalResult:
    out_dir: Path
    record: CellRecord
    added_to_run: bool  # True when out_dir already held a run


# -- identity -----------------------------------------------------------------------------------------
def _default_name(request: EvalRequest) -> str:
    raw = Path(request.images).name if request.images is not None else str(request.generator)
    if request.generator is not None and ":" in raw and not Path(raw).suffix:
        raw = raw.rsplit(":", 1)[1]
    elif request.generator is not None:
        raw = Path(raw).stem
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", Path(raw).stem if request.images else raw).strip("-._")
    return name[:64].rstrip("-._") or "generator"  # a name starts and ends with a letter or digit (_samples.npz)


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise GenbenchError(
            f"--name {name!r}: use letters, digits and _ . - (at most 64, starting with a letter or digit)"
        )
    if name in get_registry().models:
        raise GenbenchError(f"--name {name!r} is a registered model; an evaluated generator needs a name of its own")


# -- the evaluation -----------------------------------------------------------------------------------
def evaluate_source(request: EvalRequest, notify: Notify | None = None) -> EvalResult:
    """Evaluate ``request``'s images or generator; write its cell and row under ``request.out_dir``.

    Raises GenbenchError, with nothing written, for anything that can be known before evaluating.
    """
    say = notify or (lambda _m: None)
    if (request.images is None) == (request.generator is None):
        raise GenbenchError("genbench eval: give --images DIR (or FILE.npz) or --generator FILE.pt|FILE.onnx|module:fn")
    if request.images is not None and (request.z_dim, request.z_dist, request.conditional) != (None, None, None):
        raise GenbenchError("--z-dim, --z-dist and --conditional are for --generator; images carry no latent codes")
    if not 0 <= request.seed < 2**63:
        raise GenbenchError(f"--seed {request.seed}: must be an integer >= 0 and < 2**63")
    name = request.name or _default_name(request)
    if request.name is None and name in get_registry().models:
        name += "-eval"  # a file named after its model (dcgan.pt): the row must not pass for a trained dcgan
    check_name(name)
    protocol, added = resolve_protocol(request.out_dir, request.protocol_options)
    check_protocol(protocol, request.out_dir)
    data = load_data(protocol.dataset, Path(protocol.data_dir), protocol.download)
    info = data.info
    device = resolve_device(protocol.device)
    n = protocol.eval_samples

    source: ImageSamples | Generator
    if request.images is not None:
        source = read_images(Path(request.images), info, n)
        described: dict[str, Any] = {"kind": "images", "source": source.source, "sha256": source.sha256,
                                     "files": source.files, "lossy": source.lossy}  # fmt: skip
        hyper: dict[str, Any] = {SOURCE: f"images {source.sha256[:10]}"}
    else:
        assert request.generator is not None
        source = load_generator(request.generator, device, request.z_dim, request.z_dist, request.conditional)
        if source.conditional and not info.num_classes:
            raise GenbenchError(f"--conditional: dataset {info.name!r} has no classes to condition on")
        if info.kind != "image":
            raise GenbenchError(f"genbench eval judges images; dataset {info.name!r} holds {info.kind}")
        probe(source, info, device)
        described = source.describe()
        shown = source.location if source.kind == "callable" else source.sha256[:10]
        hyper = {SOURCE: f"{source.kind} {shown}"} | ({"z_dim": source.z_dim} if source.z_dim is not None else {})
    identity = {k: described.get(k) for k in ("kind", "sha256", "z_dim", "z_dist", "conditional")}
    cell_id = f"{name}_{hyper_digest(name, identity)}_s{request.seed}"
    cell_dir = request.out_dir / CELLS / cell_id

    with RunFolder(request.out_dir):
        # A genbench run may have taken the folder (and rewritten run.json) since the protocol was resolved:
        # evaluate only by the protocol the folder holds now, and read its run.json before any work.
        if resolve_protocol(request.out_dir, request.protocol_options) != (protocol, added):
            raise GenbenchError(
                f"{request.out_dir / RUN_JSON}: changed while this evaluation was being prepared (a genbench run "
                "wrote it?); run genbench eval again to evaluate by the protocol it holds now"
            )
        stored = read_manifest(request.out_dir) if added else None
        existing = existing_records(request.out_dir)
        if any(r.cell_id == cell_id for r in existing) or (cell_dir / "record.json").exists():
            raise GenbenchError(
                f"{request.out_dir} already holds {CELLS}/{cell_id} (the same generator, seed and name); "
                "remove that folder to evaluate it again, or pass another --seed or --name"
            )
        check_cell_folder(cell_dir)
        conditional = isinstance(source, Generator) and source.conditional
        cls = ConditionalExternalModel if conditional else ExternalModel
        prepared = prepare_metrics(
            protocol,
            data,
            lambda metric: metric.not_applicable(cls, info) is None,
            lambda what, done, _total: say(what) if done is None else None,
        )
        say(f"evaluating {name} ({n} samples)")
        record = _evaluate(request, protocol, data, device, source, described, name, cell_id, hyper)
        manifest = stored if stored is not None else run_manifest(protocol, data, prepared)
        manifest.setdefault("metric_better", {}).update(record.metric_better)
        manifest.setdefault("metric_bounds", {}).update(record.metric_bounds)
        manifest[EVALUATED] = [*manifest.get(EVALUATED, []), cell_id]
        write_results(request.out_dir, [*existing, record])
        atomic_write_json(request.out_dir / RUN_JSON, manifest)
    return EvalResult(request.out_dir, record, added)


def _evaluate(
    request: EvalRequest,
    protocol: Protocol,
    data: Any,
    device: torch.device,
    source: ImageSamples | Generator,
    described: dict[str, Any],
    name: str,
    cell_id: str,
    hyper: dict[str, Any],
) -> CellRecord:
    """Sample (or take the images), save samples.png, run every metric; always return the record."""
    out_dir = request.out_dir / CELLS / cell_id
    record = CellRecord(cell_id, name, protocol.dataset, request.seed, hyper)
    record.protocol = protocol.manifest()
    record.extras[EVALUATED] = described
    record.device, record.environment = str(device), environment(device)
    info = data.info
    with recording_writes() as written:
        record.attempt = start_attempt(out_dir)
        try:
            if isinstance(source, Generator):
                model = external_model(source, info, device, request.seed)
                record.params = model.parameter_counts()
                labels = conditional_labels(type(model), info, protocol.eval_samples)
                with timed(device) as t:
                    samples = draw_samples(model, protocol.eval_samples, labels, info)
                    t.items = protocol.eval_samples
                record.timings["sample"] = t
            else:
                model, labels, samples = None, None, source.images
                if source.lossy:
                    record.flags.append(
                        f"lossy: {source.lossy} of {source.files} images are JPEG (compression changes FID, PNG is "
                        "exact)"
                    )
            reference_full = data.split(protocol.reference_split)
            columns = images.sample_columns(info, labels is not None)
            images.save_samples(samples, info, reference_full.x, out_dir / "samples.png", columns)
            record.artifacts["samples"] = f"{CELLS}/{cell_id}/samples.png"
            reference = reference_full.head(protocol.n_reference(len(reference_full)))
            holder = model if model is not None else external_model(_no_generator(), info, device, request.seed)
            ctx = EvalContext(holder, data, samples, reference, protocol, device, request.seed, labels)
            with timed(device) as t:
                evaluate(ctx, protocol.metrics, record)
            record.timings["evaluate"] = t
            record.flags += evaluation_flags(record.metrics)
        except (ContractError, Diverged) as exc:  # a later batch broke the contract, or came back NaN
            record.status, record.error = "failed", str(exc)
        except Exception as exc:  # the generator raised mid-way
            record.status, record.error = "failed", one_line(exc)
        save_cell_files(record, out_dir, written)
    return record


def _no_generator() -> Generator:
    """The stand-in model of an image folder: metrics see a model that samples but never call it."""

    def call(n: int, labels: torch.Tensor | None, g: torch.Generator) -> torch.Tensor:
        raise RuntimeError("images were given, there is no generator to call")

    return Generator("callable", "images", "", call)
