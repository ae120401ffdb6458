"""The model interface a third party implements.

A model is a ``torch.nn.Module`` that builds its networks and optimizers from a
hyper-parameter dataclass and a :class:`~genbench.datasets.DataInfo`. The harness
owns the training loop: it moves the model to the device, feeds it shuffled
mini-batches through :meth:`GenerativeModel.train_step`, averages the returned
scalars per epoch, stops on divergence, times every phase, holds the samples to
the sample contract (:mod:`genbench.run.contract`) and evaluates them. That
is what keeps the protocol identical for every model.

See ``docs/plugins.md`` for a complete worked example.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

from genbench.datasets.base import DataInfo, DataKind
from genbench.hyper import Hyper as BaseHyper


class Capability(enum.StrEnum):
    """What a model can do beyond training; metrics declare which ones they need."""

    SAMPLE = "sample"  # draws new examples from noise / the prior
    RECONSTRUCT = "reconstruct"  # maps x to a reconstruction (AE, VAE)
    ENCODE = "encode"  # maps x to a latent code (AE, VAE)
    ELBO = "elbo"  # per-example evidence lower bound (VAE)
    CONDITIONAL = "conditional"  # samples a requested class
    LATENT = "latent"  # sample() is decode(sample_latent()): exportable, latent walks (see sample_latent)


class GenerativeModel(nn.Module, abc.ABC):
    """Base class of every model plugin.

    Class attributes:
      ``name``: the name users type (``--models name``).
      ``Hyper``: the hyper-parameter dataclass (extends :class:`genbench.hyper.Hyper`).
      ``capabilities``: what the model implements beyond ``train_step``/``sample``.
      ``data_kinds``: which kinds of data it can train on.

    Conventions: images go in and come out as float32 in ``[0, 1]`` with the
    dataset's shape; points as unbounded reals. ``train_step`` returns 0-dim
    tensors (not floats): the harness averages them on the device and reads them
    once per epoch, so a step never forces a GPU synchronisation.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Hyper: ClassVar[type[BaseHyper]] = BaseHyper
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SAMPLE})
    data_kinds: ClassVar[frozenset[DataKind]] = frozenset({"image", "points"})
    # Whether the ``d_wins`` flag (genbench.run.health) applies to the logged ``loss_d``: True for a
    # loss >= 0 that is near 0 only when D separates real from fake perfectly (BCE, hinge, least
    # squares), False for one where near 0 means nothing (a Wasserstein critic). None: decided from
    # the ``loss`` hyper-parameter if the model has one (bce, hinge: yes; others: no), else from the
    # history (no, once an epoch's loss_d was negative).
    d_wins_flag: ClassVar[bool | None] = None

    def __init__(self, hp: BaseHyper, data: DataInfo) -> None:
        super().__init__()
        self.hp = hp
        self.data = data

    @abc.abstractmethod
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        """One optimisation step on a mini-batch; return named scalar losses/diagnostics.

        ``y`` holds integer labels when the dataset has classes, else None.
        Keys are free-form (``loss``, ``loss_d``, ``loss_g``, ``d_x``, ``d_g_z``);
        the harness keeps their per-epoch means as the loss history. By convention ``d_x`` and
        ``d_g_z`` are probabilities in [0, 1], D's mean ``sigmoid`` output on real and on generated
        data (D(x), D(G(z)) of the GAN lab reports); log raw scores under other names
        (``critic_x``, ``critic_g_z`` for a Wasserstein critic). ``loss_d`` is what the ``d_wins``
        flag reads (see :attr:`d_wins_flag`).
        """

    @abc.abstractmethod
    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n`` new examples of shape ``(n, *data.shape)`` (called under ``torch.no_grad``).

        Conditional models receive ``labels`` (shape ``(n,)``); others get None.
        """

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``x`` (needs :attr:`Capability.RECONSTRUCT`)."""
        raise NotImplementedError(f"{self.name} does not reconstruct")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code of ``x``, shape ``(n, z_dim)`` (needs :attr:`Capability.ENCODE`)."""
        raise NotImplementedError(f"{self.name} does not encode")

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        """Per-example evidence lower bound in nats, shape ``(n,)`` (needs :attr:`Capability.ELBO`)."""
        raise NotImplementedError(f"{self.name} has no ELBO")

    def sample_latent(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` latent codes, shape ``(n, z_dim)``, on :attr:`device` (needs :attr:`Capability.LATENT`).

        The contract that makes a model exportable (``genbench export``): ``sample(n, labels)`` is
        ``decode(sample_latent(n, labels), labels)``, ``sample_latent`` draws only one
        ``torch.randn(n, z_dim, device=self.device)`` (or ``torch.rand(...) * 2 - 1``) from the
        global random stream, and ``decode`` draws nothing. A TorchScript export of ``decode`` fed
        the same draws then reproduces the cell's samples exactly.
        """
        raise NotImplementedError(f"{self.name} has no latent space")

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Samples for latent codes ``z`` (and ``labels``), deterministic (needs :attr:`Capability.LATENT`)."""
        raise NotImplementedError(f"{self.name} has no latent space")

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per top-level sub-network and in total."""
        counts = {
            name: sum(p.numel() for p in child.parameters() if p.requires_grad) for name, child in self.named_children()
        }
        counts = {k: v for k, v in counts.items() if v}
        counts["total"] = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return counts
