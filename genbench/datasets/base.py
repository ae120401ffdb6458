"""The dataset interface.

A dataset plugin is a class with a ``name`` and a :meth:`Dataset.load` that returns
in-memory tensors. Everything genbench ships is small enough to hold in memory
(CIFAR-10 is 600 MB as float32), and in-memory batches keep the harness's
training loop as fast as a hand-written one.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch

DataKind = Literal["image", "points"]
DATA_KINDS: tuple[DataKind, ...] = ("image", "points")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about the data to build itself.

    ``shape`` is one example's shape: ``(C, H, W)`` for images, ``(2,)`` for 2-D
    points. Images are float32 in ``[0, 1]``; points are unbounded reals.
    ``num_classes`` is None for unlabelled data.
    """

    name: str
    shape: tuple[int, ...]
    kind: DataKind
    num_classes: int | None = None

    @property
    def dim(self) -> int:
        """Number of values in one example (784 for MNIST)."""
        n = 1
        for s in self.shape:
            n *= s
        return n


@dataclass(frozen=True)
class Split:
    """One split of a dataset: ``x`` of shape ``(N, *info.shape)``, ``y`` of shape ``(N,)`` or None."""

    x: torch.Tensor
    y: torch.Tensor | None

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def head(self, n: int) -> Split:
        """The first ``n`` examples (splits are stored shuffled, so this is a fixed random subset)."""
        return Split(self.x[:n], None if self.y is None else self.y[:n])


@dataclass(frozen=True)
class LoadOptions:
    """Where a dataset may look for files and whether it may download them."""

    data_dir: Path
    download: bool = True


class Dataset(abc.ABC):
    """Base class of dataset plugins.

    Subclasses set the class attributes and implement :meth:`load`. ``load``
    returns both splits at once because most sources (torchvision, packaged
    arrays) read them together; a missing file raises
    :class:`genbench.errors.GenbenchError` saying how to supply it.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    shape: ClassVar[tuple[int, ...]]
    kind: ClassVar[DataKind] = "image"
    num_classes: ClassVar[int | None] = None

    @classmethod
    def info(cls) -> DataInfo:
        return DataInfo(cls.name, tuple(cls.shape), cls.kind, cls.num_classes)

    @abc.abstractmethod
    def load(self, options: LoadOptions) -> dict[str, Split]:
        """Return ``{"train": Split, "test": Split}``; each split already shuffled with a fixed seed."""


def shuffled(x: torch.Tensor, y: torch.Tensor | None, seed: int = 0) -> Split:
    """A Split with examples in a fixed random order (for stable ``head`` subsets)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(x.shape[0], generator=g)
    return Split(x[perm].contiguous(), None if y is None else y[perm].contiguous())


@dataclass(frozen=True)
class LoadedData:
    """A dataset in memory: its info, both splits, and a content fingerprint.

    The fingerprint (a hash of the tensors) addresses every cache derived from the
    data (domain backbone weights, reference statistics), so a changed dataset can
    never reuse stale statistics.
    """

    info: DataInfo
    splits: dict[str, Split]
    fingerprint: str

    def split(self, name: str) -> Split:
        return self.splits[name]
