"""Features for the torch-fidelity metrics: extracted once per cell and backbone, shared by every metric.

FID, KID, precision/recall, the Inception Score and class coverage all start
from the same features. Extracting them once per cell (generated samples) and
once per dataset (reference, through :mod:`genbench.metrics.refcache`) makes a
cell's evaluation cost what a single direct torch-fidelity call costs. The
extraction itself is torch-fidelity's: its feature extractor classes and its
``get_featuresdict_from_dataset``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset as TorchDataset
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from genbench.datasets.base import LoadedData
from genbench.metrics.backbones import BackboneConfig, resolve_backbone
from genbench.metrics.base import EvalContext
from genbench.metrics.refcache import ReferenceKey, ReferenceStats, load_or_compute
from genbench.progress import report
from genbench.protocol import Protocol


def to_uint8(x: torch.Tensor, rgb: bool) -> torch.Tensor:
    """[0, 1] float images -> uint8, grey replicated to 3 channels when ``rgb``."""
    out = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    if rgb and out.shape[1] == 1:
        out = out.expand(-1, 3, -1, -1)
    return out.contiguous()


class ImageBytes(TorchDataset[torch.Tensor]):
    """A uint8 image tensor as the Dataset torch-fidelity consumes."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


_EXTRACTORS: dict[tuple[str, str | None, tuple[str, ...], bool], Any] = {}


def extractor(backbone: BackboneConfig, layers: tuple[str, ...], cuda: bool) -> Any:
    """torch-fidelity's feature extractor, built once per process (Inception weights are 100 MB)."""
    key = (backbone.extractor, backbone.weights_path, layers, cuda)
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = create_feature_extractor(
            backbone.extractor, list(layers), cuda=cuda, feature_extractor_weights_path=backbone.weights_path,
            verbose=False,
        )  # fmt: skip
    return _EXTRACTORS[key]


def extract(
    backbone: BackboneConfig,
    images: torch.Tensor,
    layers: tuple[str, ...],
    device: torch.device,
    batch_size: int,
    what: str = "features",
) -> dict[str, torch.Tensor]:
    """Features of ``images`` ([0, 1] floats) at ``layers``, as torch-fidelity computes them.

    torch-fidelity is called once per batch (the same batches it would make itself, so the
    same numbers) and :func:`genbench.progress.report` says how many images are done:
    an Inception pass over a few thousand images takes minutes on a CPU.
    """
    cuda = device.type == "cuda"
    fe = extractor(backbone, layers, cuda)
    data = to_uint8(images, backbone.rgb)
    n = int(data.shape[0])
    label = f"{what} ({backbone.name}, images)"
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for start in range(0, n, batch_size):
        report(label, start, n)
        chunk = ImageBytes(data[start : start + batch_size])
        out = get_featuresdict_from_dataset(chunk, fe, batch_size, cuda, save_cpu_ram=True, verbose=False)
        for name in layers:
            parts[name].append(out[name])
    report(label, n, n)
    return {name: torch.cat(parts[name]).float() for name in layers}


def layers_for(backbone: BackboneConfig, protocol: Protocol) -> tuple[str, ...]:
    """The main layer (``--feature-layer`` or the standard one) and the logits layer, if any."""
    main = backbone.check_layer(protocol.feature_layer)
    return tuple(dict.fromkeys(x for x in (main, backbone.logits_layer) if x))


def reference_stats(
    protocol: Protocol, dataset: LoadedData, backbone: BackboneConfig, device: torch.device
) -> dict[str, ReferenceStats]:
    """Reference statistics and features per layer, from the cache or computed once."""
    split = dataset.split(protocol.reference_split)
    n = protocol.n_reference(len(split))
    layers = layers_for(backbone, protocol)
    computed: dict[str, torch.Tensor] = {}

    def compute(layer: str) -> torch.Tensor:
        if not computed:  # one pass yields every layer
            x = split.head(n).x
            computed.update(extract(backbone, x, layers, device, protocol.eval_batch_size, "reference features"))
        return computed[layer]

    out = {}
    for layer in layers:
        key = ReferenceKey(
            dataset.info.name, dataset.fingerprint, protocol.reference_split, n, backbone.name,
            backbone.extractor, backbone.tag, layer,
        )  # fmt: skip
        out[layer] = load_or_compute(Path(protocol.cache_dir), key, functools.partial(compute, layer))
    return out


@dataclass(frozen=True)
class BackboneFeatures:
    """One backbone's features for a cell: generated and reference, per layer."""

    backbone: BackboneConfig
    main_layer: str
    generated: dict[str, torch.Tensor]
    reference: dict[str, ReferenceStats]

    @property
    def logits(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(generated, reference) class logits, when the backbone has them."""
        layer = self.backbone.logits_layer
        return None if layer is None else (self.generated[layer], self.reference[layer].features)


def backbone_features(ctx: EvalContext, name: str) -> BackboneFeatures:
    """Features of backbone ``name`` for this cell, computed on first use and shared by every metric."""
    memo_key = f"features:{name}"
    if memo_key not in ctx.memo:
        backbone = resolve_backbone(name, ctx.protocol, ctx.dataset)
        layers = layers_for(backbone, ctx.protocol)
        generated = extract(backbone, ctx.samples, layers, ctx.device, ctx.protocol.eval_batch_size, "sample features")
        reference = reference_stats(ctx.protocol, ctx.dataset, backbone, ctx.device)
        ctx.memo[memo_key] = BackboneFeatures(backbone, layers[0], generated, reference)
    features: BackboneFeatures = ctx.memo[memo_key]
    return features


def evaluation_manifest(protocol: Protocol, dataset: LoadedData, backbones: tuple[str, ...]) -> dict[str, Any]:
    """Every evaluation detail that changes the numbers, written next to every result."""
    import torch_fidelity

    n_ref = protocol.n_reference(len(dataset.split(protocol.reference_split)))
    described = {}
    for name in backbones:
        b = resolve_backbone(name, protocol, dataset)
        described[name] = {
            "extractor": b.extractor,
            "weights": b.tag,
            "layer": b.check_layer(protocol.feature_layer),
            "logits_layer": b.logits_layer,
            "resize": b.resize,
            **({"accuracy": b.facts["domain_accuracy"]} if "domain_accuracy" in b.facts else {}),
            **({"recipe": b.recipe} if b.recipe is not None else {}),  # compare: same recipe, weights may drift
        }
    return {
        "backbones": described,
        "n_generated": protocol.eval_samples,
        "n_reference": n_ref,
        "reference_split": protocol.reference_split,
        "kid_subsets": protocol.kid_subsets,
        "kid_subset_size": protocol.kid_subset(n_ref),
        "isc_splits": protocol.isc_splits,
        "prc_neighborhood": protocol.prc_neighborhood,
        "reference_stats": str(protocol.reference_stats) if protocol.reference_stats else None,
        "torch_fidelity": torch_fidelity.__version__,
        "torch": torch.__version__,
    }
