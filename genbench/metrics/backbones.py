"""Feature backbones for torch-fidelity: ``domain`` (trained here, offline) and torch-fidelity's own.

torch-fidelity computes FID/KID/precision-recall from features of a registered
feature extractor. Inception-v3 is the field's standard but needs weights
downloaded from the internet and was trained on ImageNet photos, not digits. The
``domain`` backbone is a small CNN classifier that genbench trains on the
dataset's train split (fixed seed), caches on disk, and registers with
torch-fidelity through ``register_feature_extractor``; its test accuracy is
recorded next to every number computed with it.

A classifier genbench trained is identified twice: by the hash of its weights (``tag``) and by
its **recipe** (:func:`domain_recipe`: the classifier code's version, the training data's
content fingerprint, seed, epochs, batch, optimiser, network shape), which determines it by
construction. Trained from one recipe on two CPUs, the weights differ (each instruction set's
kernels round float sums their own way, and training amplifies it: measured 1-3% apart in the
weight tensors, the same test accuracy) while the classifier is the same by construction;
:mod:`genbench.reporting.compare` therefore compares metrics of equal recipes and notes the
weights' difference, and refuses different recipes. A weights file a user supplies has no
recipe: its hash alone identifies it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torch_fidelity
from torch import nn
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

from genbench.datasets.base import LoadedData
from genbench.errors import GenbenchError, choices, unknown
from genbench.metrics.weights import read_state_dict, refusal, same_tensors
from genbench.progress import report
from genbench.protocol import Protocol
from genbench.results import atomic_path

DOMAIN_EXTRACTOR = "genbench-domain"
DOMAIN_VERSION = 2  # bump when the classifier or its training changes: old cache entries are then ignored
INCEPTION_EXTRACTOR = "inception-v3-compat"
DOMAIN_FEATURE_DIM = 128  # width of the domain classifier's penultimate layer (FID/KID/PR features)


@dataclass(frozen=True)
class BackboneConfig:
    """How to call torch-fidelity with one backbone, and what to record about it."""

    name: str
    extractor: str  # torch-fidelity feature extractor name
    weights_path: str | None  # the file torch-fidelity reads: for a user's file, genbench's checked copy
    layer: str  # the standard layer for FID, KID and precision/recall
    layers: tuple[str, ...]  # every layer the extractor provides
    logits_layer: str | None  # class logits (Inception Score, class coverage), if the network has them
    rgb: bool  # feed 3-channel images
    resize: str  # what the extractor does to the images, for the protocol manifest
    tag: str  # short content hash of the weights, part of every cache key
    facts: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] | None = None  # what determined the weights, for a classifier genbench trained

    def check_layer(self, layer: str | None) -> str:
        """``layer`` if this backbone provides it (None: the standard layer); else a one-line error."""
        if layer is None:
            return self.layer
        if layer not in self.layers:
            raise GenbenchError(
                f"--feature-layer {layer!r}: backbone {self.name!r} has no such layer; valid: {choices(self.layers)}"
            )
        return layer


class DomainClassifier(nn.Module):
    """conv32-conv32-pool-conv64-avgpool4-fc(feature_dim)-fc(classes), batch-norm; any image of side >= 8.

    Small enough to train in seconds on a CPU; 97% test accuracy on the packaged
    4,000 MNIST digits, 99% on the 8x8 digits.
    """

    def __init__(self, channels: int, num_classes: int, feature_dim: int = DOMAIN_FEATURE_DIM) -> None:
        super().__init__()
        self.config = {"channels": channels, "num_classes": num_classes, "feature_dim": feature_dim}
        self.trunk = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(64 * 16, feature_dim),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate features (pre-activation, so no dead dimensions) and logits."""
        features = self.trunk(x)
        return features, self.head(features)


class DomainFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity adapter: uint8 images in, (penultimate, logits) features out."""

    def __init__(
        self, name: str, features_list: list[str], feature_extractor_weights_path: str | None = None, **_: Any
    ) -> None:
        super().__init__(name, features_list)
        if feature_extractor_weights_path is None:
            raise ValueError("the domain backbone needs feature_extractor_weights_path")
        ckpt = torch.load(feature_extractor_weights_path, map_location="cpu", weights_only=True)
        self.net = DomainClassifier(**ckpt["config"])
        self.net.load_state_dict(ckpt["state_dict"])

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("penultimate", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    @staticmethod
    def get_dummy_input_for_compile() -> None:
        return None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, logits = self.net(x.float() / 255.0)
        out = {"penultimate": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


def register_with_fidelity() -> None:
    """Make the domain extractor known to torch-fidelity (idempotent)."""
    if DOMAIN_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        torch_fidelity.register_feature_extractor(DOMAIN_EXTRACTOR, DomainFeatureExtractor)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_torch_save(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)  # through a Python file, so that a full disk surfaces as its OSError


def domain_recipe(dataset: LoadedData, seed: int = 0) -> dict[str, Any]:
    """Everything that determines the domain classifier :func:`train_domain_classifier` makes of ``dataset``.

    The training reads its settings from here, so the recipe cannot drift from what was done.
    Two classifiers of one recipe differ only where float arithmetic rounded differently (the CPU's
    instruction set, the number of threads), amplified by training: the same classifier for
    comparing metrics, whose values moved by a few percent at most (docs/ci.md).
    """
    info = dataset.info
    n = len(dataset.split("train"))
    return {
        "version": DOMAIN_VERSION,  # the classifier's code and training loop
        "dataset": info.name,
        "data": dataset.fingerprint,  # the content of the train and test splits
        "seed": seed,
        # About 20k example-visits (at least 2 epochs) with a one-cycle schedule: seconds on a CPU.
        "epochs": min(20, max(2, math.ceil(20_000 / n))),
        "batch": 128,
        "optimizer": "adam, one-cycle schedule",
        "lr": 2e-3,  # the schedule's peak
        "net": {"channels": info.shape[0], "num_classes": info.num_classes, "feature_dim": DOMAIN_FEATURE_DIM},
    }


def train_domain_classifier(dataset: LoadedData, seed: int = 0) -> tuple[DomainClassifier, float]:
    """Train the classifier on the train split (CPU-friendly budget); return it and its test accuracy."""
    info = dataset.info
    train, test = dataset.split("train"), dataset.split("test")
    if info.num_classes is None or train.y is None or test.y is None:
        raise GenbenchError(f"backbone 'domain' needs a labelled dataset; {info.name!r} has no classes")
    recipe = domain_recipe(dataset, seed)
    torch.manual_seed(recipe["seed"])
    g = torch.Generator().manual_seed(recipe["seed"])
    net = DomainClassifier(**recipe["net"])
    epochs, batch, lr = recipe["epochs"], recipe["batch"], recipe["lr"]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * math.ceil(len(train) / batch))
    net.train()
    what = f"training the domain classifier on {info.name} (epochs)"
    for epoch in range(epochs):
        report(what, epoch, epochs)
        perm = torch.randperm(len(train), generator=g)
        for i in range(0, len(train), batch):
            idx = perm[i : i + batch]
            if len(idx) < 2:  # batch-norm cannot train on a single example
                continue
            loss = F.cross_entropy(net(train.x[idx])[1], train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    report(what, epochs, epochs)
    net.eval()
    with torch.no_grad():
        correct = sum(
            int((net(test.x[i : i + 512])[1].argmax(1) == test.y[i : i + 512]).sum()) for i in range(0, len(test), 512)
        )
    return net, correct / len(test)


def domain_weights_path(cache_dir: Path, dataset: str, fingerprint: str) -> Path:
    """Where the domain classifier trained for ``dataset`` (of content ``fingerprint``) is cached."""
    return Path(cache_dir) / "backbones" / f"domain-v{DOMAIN_VERSION}-{dataset}-{fingerprint[:16]}.pt"


def read_domain_checkpoint(path: Path, dataset: LoadedData) -> dict[str, Any]:
    """A domain classifier checkpoint as genbench writes it, read without pickle and checked against ``dataset``.

    Raises GenbenchError naming ``--backbone-weights domain=PATH`` for anything else.
    """
    what = f"--backbone-weights domain={path}"
    if not Path(path).is_file():
        raise GenbenchError(f"{what}: no such file")
    info = dataset.info
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        config = ckpt["config"]
        expected = {"channels": info.shape[0], "num_classes": info.num_classes}
        if any(config.get(k) != v for k, v in expected.items()):
            raise ValueError(f"made for {config.get('channels')} channels and {config.get('num_classes')} classes")
        DomainClassifier(**config).load_state_dict(ckpt["state_dict"])
        ckpt["accuracy"] = float(ckpt["accuracy"])
    except Exception as exc:  # pickle refused, not a dict, wrong keys or shapes: all mean "not one of ours"
        reason = " ".join(str(exc).split())[:160]
        raise GenbenchError(
            f"{what}: not a domain classifier for {info.name!r} as genbench writes it "
            f"({type(exc).__name__}: {reason}); genbench keeps the ones it trains in its cache, under backbones/"
        ) from None
    return dict(ckpt)


class DomainBackbone:
    """Trains (once, cached by dataset content and recipe) and serves the domain classifier.

    Trained on another machine, the classifier has other weights (floating-point sums round
    differently between CPUs) but the same recipe, which the record keeps beside the weights'
    hash: checks compare such metrics (:mod:`genbench.reporting.compare`). ``--backbone-weights
    domain=FILE`` uses a given checkpoint as genbench writes it instead, read without pickle;
    its hash alone identifies it.
    """

    name = "domain"

    def resolve(self, protocol: Protocol, dataset: LoadedData) -> BackboneConfig:
        register_with_fidelity()
        given = protocol.weights_for(self.name)
        recipe = None
        if given is not None:
            path = Path(given)
            ckpt = read_domain_checkpoint(path, dataset)
        else:
            recipe = domain_recipe(dataset)
            path = domain_weights_path(Path(protocol.cache_dir), dataset.info.name, dataset.fingerprint)
            ckpt = torch.load(path, map_location="cpu", weights_only=True) if path.exists() else {}
            if ckpt.get("recipe") != recipe:  # not cached, or cached from another recipe (or by a genbench without)
                net, accuracy = train_domain_classifier(dataset)
                ckpt = {"config": net.config, "state_dict": net.state_dict(), "accuracy": accuracy, "recipe": recipe}
                atomic_torch_save(ckpt, path)
        h, w = dataset.info.shape[1:]
        return BackboneConfig(
            name=self.name,
            extractor=DOMAIN_EXTRACTOR,
            weights_path=str(path),
            layer="penultimate",
            layers=DomainFeatureExtractor.get_provided_features_list(),
            logits_layer="logits",
            rgb=False,
            resize=f"none (native {h}x{w})",
            tag=file_hash(path)[:16],
            facts={"domain_accuracy": float(ckpt["accuracy"])},
            recipe=recipe,
        )


class HubBackbone:
    """One of torch-fidelity's pretrained extractors (Inception-v3, VGG16, CLIP, DINOv2).

    Their weights come from the internet (torch-fidelity downloads them into
    torch's hub cache) or from ``--backbone-weights NAME=PATH``. Offline and
    without a file, resolving fails before any training, saying how to supply one.
    A user's file is never given to torch-fidelity, which unpickles it: see
    :mod:`genbench.metrics.weights`.
    """

    def __init__(self, name: str, extractor: str, logits_layer: str | None = None) -> None:
        self.name = name
        self.extractor = extractor
        self.logits_layer = logits_layer

    def checked_copy(self, weights: Path, cache_dir: Path) -> tuple[Path, str]:
        """A copy of the tensors in ``weights`` that torch-fidelity may unpickle, and the file's sha256.

        The file is read once (so its hash and its tensors describe the same
        bytes), without pickle, and its tensors are written again with
        ``torch.save`` under the cache, named by the hash. An existing copy is
        reused only if it too reads without pickle and holds the same tensors.
        """
        what = f"--backbone-weights {self.name}={weights}"
        problem = refusal(FEATURE_EXTRACTORS_REGISTRY[self.extractor])
        if problem:
            raise GenbenchError(f"{what}: {problem}")
        data = Path(weights).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        tensors = read_state_dict(data, Path(weights).suffix == ".safetensors", what)
        del data
        copy = Path(cache_dir) / "backbones" / f"weights-{digest[:32]}.pt"
        try:
            reusable = same_tensors(read_state_dict(copy.read_bytes(), False, str(copy)), tensors)
        except (OSError, GenbenchError):
            reusable = False
        if not reusable:
            atomic_torch_save(tensors, copy)
        return copy, digest

    def resolve(self, protocol: Protocol, dataset: LoadedData) -> BackboneConfig:
        info = dataset.info
        if info.kind != "image" or info.shape[0] not in (1, 3):
            raise GenbenchError(f"backbone {self.name!r} needs 1- or 3-channel images; {info.name!r} is not")
        cls = FEATURE_EXTRACTORS_REGISTRY[self.extractor]
        layer = cls.get_default_feature_layer_for_metric("fid")
        weights = protocol.weights_for(self.name)
        path, digest = None, None
        if weights is not None:
            if not Path(weights).is_file():
                raise GenbenchError(f"--backbone-weights {self.name}={weights}: no such file")
            path, digest = self.checked_copy(weights, Path(protocol.cache_dir))
        try:  # loads the checked copy, or downloads into torch's hub cache when online
            cls(self.extractor, [layer], feature_extractor_weights_path=None if path is None else str(path))
        except Exception as exc:
            if weights is not None:
                reason = " ".join(str(exc).split())[:200]  # load_state_dict's missing/unexpected keys
                raise GenbenchError(
                    f"--backbone-weights {self.name}={weights}: not weights torch-fidelity's {self.extractor!r} "
                    f"can load ({type(exc).__name__}: {reason})"
                ) from None
            or_file = "" if refusal(cls) else f" or pass --backbone-weights {self.name}=PATH"
            raise GenbenchError(
                f"backbone {self.name!r}: torch-fidelity could not load or download its weights "
                f"({type(exc).__name__}); download them once on a machine with internet (they land in "
                f"{Path(torch.hub.get_dir()) / 'checkpoints'}){or_file}; the 'domain' backbone works offline"
            ) from None
        size = getattr(cls, "INPUT_IMAGE_SIZE", 224)
        return BackboneConfig(
            name=self.name,
            extractor=self.extractor,
            weights_path=None if path is None else str(path),
            layer=layer,
            layers=tuple(cls.get_provided_features_list()),
            logits_layer=self.logits_layer,
            rgb=True,
            resize=f"bilinear (TensorFlow-1 compatible) to {size}x{size}, grey replicated to RGB",
            # Without a local file the weights are torch-fidelity's pinned download for this version.
            tag=digest[:16] if digest else f"{self.extractor}-tf{torch_fidelity.__version__}",
        )


def _hub_backbones() -> list[HubBackbone]:
    out = [HubBackbone("inception", INCEPTION_EXTRACTOR, logits_layer="logits_unbiased")]
    out += [HubBackbone(n, n) for n in sorted(FEATURE_EXTRACTORS_REGISTRY) if n != INCEPTION_EXTRACTOR]
    return [b for b in out if b.extractor != DOMAIN_EXTRACTOR]


BACKBONES: dict[str, DomainBackbone | HubBackbone] = {"domain": DomainBackbone()}
BACKBONES.update((b.name, b) for b in _hub_backbones())

# Width of each layer torch-fidelity's extractors provide (from their network definitions), so that
# statistics computed elsewhere (--reference-stats) can be checked before training, without weights.
_CLIP_DIMS = {"rn50": 1024, "rn101": 512, "rn50x4": 640, "rn50x16": 768, "rn50x64": 1024, "vit-b-32": 512,
              "vit-b-16": 512, "vit-l-14": 768, "vit-l-14-336px": 768}  # fmt: skip
LAYER_DIMS: dict[str, dict[str, int]] = {
    INCEPTION_EXTRACTOR: {"64": 64, "192": 192, "768": 768, "2048": 2048, "logits_unbiased": 1008, "logits": 1008},
    "vgg16": {"fc2": 4096, "fc2_relu": 4096},
    **{f"clip-{name}": {"clip": dim} for name, dim in _CLIP_DIMS.items()},
    **{f"dinov2-vit-{size}-14": {"dinov2": dim} for size, dim in (("s", 384), ("b", 768), ("l", 1024), ("g", 1536))},
}


def backbone_layers(name: str) -> tuple[tuple[str, ...], str]:
    """A backbone's layers and its standard FID/KID/PR layer, known without weights or a dataset."""
    backbone = BACKBONES[name]
    if isinstance(backbone, DomainBackbone):
        return DomainFeatureExtractor.get_provided_features_list(), "penultimate"
    cls = FEATURE_EXTRACTORS_REGISTRY[backbone.extractor]
    return tuple(cls.get_provided_features_list()), str(cls.get_default_feature_layer_for_metric("fid"))


def layer_dim(name: str, layer: str, num_classes: int | None) -> int | None:
    """The feature width of ``layer`` of backbone ``name`` (None: not known without running it)."""
    backbone = BACKBONES[name]
    if isinstance(backbone, DomainBackbone):
        return {"penultimate": DOMAIN_FEATURE_DIM, "logits": num_classes}.get(layer)
    return LAYER_DIMS.get(backbone.extractor, {}).get(layer)


_RESOLVED: dict[tuple[str, str, str, str], BackboneConfig] = {}


def resolve_backbone(name: str, protocol: Protocol, dataset: LoadedData) -> BackboneConfig:
    """The backbone's torch-fidelity settings (trained/loaded once per process and dataset)."""
    if name not in BACKBONES:
        raise unknown("backbone", name, BACKBONES)
    key = (name, dataset.fingerprint, str(protocol.cache_dir), str(protocol.weights_for(name)))
    if key not in _RESOLVED:
        _RESOLVED[key] = BACKBONES[name].resolve(protocol, dataset)
    return _RESOLVED[key]
