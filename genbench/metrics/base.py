"""The metric interface.

A metric is a class with a ``name``, the model capabilities and data kinds it
needs, and a :meth:`Metric.compute` that turns an :class:`EvalContext` into named
numbers. The runner asks every requested metric whether it applies to the model
and data (:meth:`Metric.not_applicable`); one that does not, or that raises, is
noted in the record and the other metrics are still computed. One that fails
numerically (a LinAlgError, a NaN or complex value) also marks the cell ``diverged``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from genbench.datasets.base import DataInfo, DataKind, LoadedData, Split
from genbench.models.base import Capability, GenerativeModel, NeedsModel
from genbench.protocol import Protocol


@dataclass
class EvalContext:
    """What a metric may look at for one trained cell.

    ``samples`` are the cell's generated examples (CPU, float32, dataset shape),
    drawn once and shared by every metric; ``reference`` is the protocol's
    reference split, cut to ``protocol.eval_samples``.
    """

    model: GenerativeModel
    dataset: LoadedData
    samples: torch.Tensor
    reference: Split
    protocol: Protocol
    device: torch.device
    seed: int
    sample_labels: torch.Tensor | None = None  # the classes conditional samples were asked for
    memo: dict[str, Any] = field(default_factory=dict)  # work shared between metrics (features)

    @property
    def data(self) -> DataInfo:
        return self.dataset.info


class Metric(NeedsModel, abc.ABC):
    """Base class of metric plugins.

    ``compute`` returns ``{key: value}`` (``fid`` returns ``fid_domain`` and
    ``fid_inception``); :meth:`better` says how each key ranks: by default every
    key follows ``higher_is_better``, and a key can be informational (None: kept in
    the results, never ranked), like the spread of KID over subsets.

    :meth:`bounds` and :meth:`integer` declare what values a key can take (precision in
    [0, 1], classes covered a count in [0, classes]); the tables clip confidence
    intervals to that range, so an interval over few seeds never shows values the
    metric cannot take. By default a key is an unbounded real number.

    ``prepare`` runs once per run before any training, so a metric that cannot work
    (missing weights) fails before hours are spent; it is called again in every cell
    (cells are self-contained), so it must cache its work.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.SAMPLE})
    data_kinds: ClassVar[frozenset[DataKind]] = frozenset({"image"})

    def better(self, key: str) -> Literal["lower", "higher"] | None:
        """How ``key`` ranks in tables: ``lower``, ``higher``, or None for an informational value."""
        return "higher" if self.higher_is_better else "lower"

    def bounds(self, key: str, data: DataInfo) -> tuple[float | None, float | None]:
        """The smallest and largest value ``key`` can take on ``data`` (None: unbounded on that side).

        Declare only what holds for every input, estimator noise included: an unbiased
        estimate of a non-negative quantity (KID, MMD²) can come out below zero, so its
        lower bound is None, not 0.
        """
        return (None, None)

    def integer(self, key: str) -> bool:
        """Whether ``key`` only takes whole numbers (a count such as classes covered); False by default."""
        return False

    def backbones(self, protocol: Protocol) -> tuple[str, ...]:
        """The feature backbones this metric reads (for the protocol manifest); none by default."""
        return ()

    def prepare(self, protocol: Protocol, dataset: LoadedData) -> dict[str, object]:
        """Validate and warm caches once per run; return facts worth recording (e.g. backbone accuracy)."""
        return {}

    @abc.abstractmethod
    def compute(self, ctx: EvalContext) -> dict[str, float]:
        """Compute this metric for one cell."""
