"""FID through torch-fidelity, for every backbone of the protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch_fidelity
from torch.utils.data import Dataset as TorchDataset

from genbench.datasets.base import LoadedData
from genbench.metrics.backbones import BackboneConfig, resolve_backbone
from genbench.metrics.base import EvalContext, Metric
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


def fidelity_kwargs(backbone: BackboneConfig, device: torch.device, cache_dir: Path) -> dict[str, Any]:
    """torch-fidelity settings shared by every call: extractor, weights, cache, device, quiet."""
    return {
        "feature_extractor": backbone.extractor,
        "feature_extractor_weights_path": backbone.weights_path,
        "cuda": device.type == "cuda",
        "batch_size": 256,
        "cache_root": str(cache_dir / "fidelity"),
        "save_cpu_ram": True,  # no DataLoader worker processes for in-memory tensors
        "verbose": False,
    }


def reference_cache_name(dataset: LoadedData, protocol: Protocol, n: int, backbone: BackboneConfig) -> str:
    """Content address of the reference statistics: dataset bytes, split, count and backbone weights."""
    return f"genbench-{dataset.info.name}-{dataset.fingerprint[:12]}-{protocol.reference_split}-n{n}-{backbone.tag}"


class FID(Metric):
    """Fréchet distance between generated and reference features, computed by torch-fidelity.

    One value per backbone of the protocol: ``fid_domain``, ``fid_inception``.
    Reference statistics are cached on disk and shared by every cell and run.
    """

    name = "fid"
    description = "Frechet distance (torch-fidelity) per backbone: fid_domain, fid_inception"
    higher_is_better = False

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        facts: dict[str, object] = {}
        for name in protocol.backbones:
            facts.update(resolve_backbone(name, protocol, dataset).facts)
        return facts

    def compute(self, ctx: EvalContext) -> dict[str, float]:
        out = {}
        for name in ctx.protocol.backbones:
            backbone = resolve_backbone(name, ctx.protocol, ctx.dataset)
            result = torch_fidelity.calculate_metrics(
                input1=ImageBytes(to_uint8(ctx.samples, backbone.rgb)),
                input2=ImageBytes(to_uint8(ctx.reference.x, backbone.rgb)),
                input2_cache_name=reference_cache_name(ctx.dataset, ctx.protocol, len(ctx.reference), backbone),
                fid=True,
                feature_layer_fid=backbone.layer_fid,
                **fidelity_kwargs(backbone, ctx.device, Path(ctx.protocol.cache_dir)),
            )
            out[f"fid_{name}"] = float(result[torch_fidelity.KEY_METRIC_FID])
        return out
