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
from typing import ClassVar, Literal

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
    DECODE = "decode"  # sample() is decode(sample_latent()): figures' interpolations, genbench export
    DISCRIMINATE = "discriminate"  # scores how real examples look: discriminate(x) (figures: GAN-Lab views)


def draw_noise(
    n: int,
    dim: int,
    prior: Literal["normal", "uniform"] = "normal",
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` latent codes from one of the two priors genbench knows (:meth:`GenerativeModel.latent_prior`):
    N(0, I), or uniform in [-1, 1]. One function for the GANs' noise and for an evaluated generator's codes,
    so a code drawn for ``noise=uniform`` is the same everywhere."""
    if prior == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    return torch.randn(n, dim, generator=generator, device=device)


def balanced_labels(n: int, num_classes: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Class-balanced labels 0, 1, ..., k-1, 0, 1, ...: what a conditional model is sampled with wherever
    genbench samples it unasked (evaluation, sample sheets, figures, export, probes), so each class is judged
    on as many samples as every other (within one)."""
    return torch.arange(n, device=device) % num_classes


class NeedsModel:
    """What a metric or a figure needs: model capabilities (``requires``) and data kinds (``data_kinds``).

    One rule for both plugin kinds, so that ``genbench list`` and the runner explain a skip the same way.
    """

    name: ClassVar[str]
    requires: ClassVar[frozenset[Capability]]
    data_kinds: ClassVar[frozenset[DataKind]]

    def not_applicable(self, model: type[GenerativeModel], data: DataInfo) -> str | None:
        """Why this does not apply to ``model`` on ``data``, or None if it does."""
        if data.kind not in self.data_kinds:
            return f"{self.name} needs {'/'.join(sorted(self.data_kinds))} data, {data.name} is {data.kind}"
        missing = sorted(c.value for c in self.requires - model.capabilities)
        if missing:
            return f"{self.name} needs a model that can {', '.join(missing)}; {model.name} cannot"
        return None


class GenerativeModel(nn.Module, abc.ABC):
    """Base class of every model plugin.

    Class attributes:
      ``name``: the name users type (``--models name``).
      ``Hyper``: the hyper-parameter dataclass (extends :class:`genbench.hyper.Hyper`).
      ``capabilities``: what the model implements beyond ``train_step``/``sample``.
      ``data_kinds``: which kinds of data it can train on.
      ``graph_safe``: whether ``--cuda-graphs`` may capture ``train_step`` as one CUDA graph (below).

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
    # Whether ``--cuda-graphs`` may capture train_step once and replay it (genbench.run.fastpath): True only if
    # every call does the same device work: no Python branching on a step counter or on tensor values, no host
    # reads (.item(), .cpu(), printing a tensor), optimizers built in __init__ and kept (each one capturable:
    # Adam, AdamW, RMSprop, ...), random numbers drawn with torch on the device, no state kept on the host
    # that an in-place device update should change (a replay runs kernels, not Python).
    graph_safe: ClassVar[bool] = False

    # Set by the harness under --precision fp16 (genbench.run.fastpath); used by update().
    grad_scaler: torch.amp.GradScaler | None = None
    scaled_updates: int = 0  # updates made through the scaler (a model that never uses update() is flagged)

    def __init__(self, hp: BaseHyper, data: DataInfo) -> None:
        super().__init__()
        self.hp = hp
        self.data = data

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One optimiser update: zero ``optimizer``'s gradients, backpropagate ``loss``, step.

        The same as ``optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step()``,
        except under ``--precision fp16``, where the harness sets :attr:`grad_scaler` and the
        update is loss-scaled (scale, step if the gradients are finite, adjust the scale), which
        fp16 needs to keep small gradients from flushing to zero. Models that call
        ``loss.backward()`` themselves train the same in fp32 and bf16.
        """
        optimizer.zero_grad(set_to_none=True)
        scaler = self.grad_scaler
        if scaler is None:
            loss.backward()
            optimizer.step()
            return
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        self.scaled_updates += 1

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

    # -- optional hooks the figures and `genbench export` use; see docs/plugins.md --------------------
    def sample_latent(self, n: int) -> torch.Tensor:
        """``n`` latent codes, shape ``(n, latent_dim)``, on :attr:`device`, drawn as :meth:`sample` draws them
        (needs :attr:`Capability.DECODE`): ``sample(n, labels)`` is ``decode(sample_latent(n), labels)``.

        What makes the model exportable (``genbench export``, whose evaluation reproduces the cell): the
        codes are :meth:`latent_from_noise` of ONE draw from the global random stream,
        ``torch.randn(n, latent_dim, device=self.device)`` or ``torch.rand(...) * 2 - 1``, and
        :meth:`decode` draws nothing. An export then traces ``decode(latent_from_noise(z))``, fed the
        same draws.
        """
        raise NotImplementedError(f"{self.name} does not decode latent codes")

    def latent_from_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """The codes :meth:`sample_latent` makes of its noise draw, deterministic: the draw itself unless
        the model maps it (``ae``: onto the Gaussian fitted to its training codes). Override it together
        with :meth:`sample_latent` (``return self.latent_from_noise(torch.randn(...))``) to stay exportable.
        Keep factorisations of the weights out of it (compute them once and cache them, as ``ae`` does with
        its Cholesky factor): the trace would hold the factorisation, which ONNX cannot export."""
        return noise

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Examples of shape ``(n, *data.shape)`` for latent codes ``z`` (needs :attr:`Capability.DECODE`),
        deterministic: no random draw.

        Accepts the codes of :meth:`sample_latent` and, for models that also ENCODE, of :meth:`encode`.
        Conditional models receive ``labels`` (shape ``(n,)``) as in :meth:`sample`.
        """
        raise NotImplementedError(f"{self.name} does not decode latent codes")

    def latent_prior(self) -> Literal["normal", "uniform", "other"]:
        """What :meth:`sample_latent` draws from: ``normal`` (N(0, I): interpolations follow great circles,
        slerp), ``uniform`` (in [-1, 1]) or ``other`` (interpolations are straight lines)."""
        return "other"

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """How real the examples ``x`` (data range) look to the model, shape ``(n,)``: higher is more real
        (a probability for a real/fake classifier, a critic's value for a Wasserstein GAN). Needs
        :attr:`Capability.DISCRIMINATE`."""
        raise NotImplementedError(f"{self.name} has no discriminator")

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


class GaussianLatent(GenerativeModel):
    """A model whose samples decode ``z ~ N(0, I)`` of size ``hp.z_dim`` (vae, convvae, vaegan).

    Gives :meth:`sample`, :meth:`sample_latent` and :meth:`latent_prior` by the DECODE contract
    (``sample = decode(sample_latent)``, one ``torch.randn`` draw: exportable); the model
    implements :meth:`decode` and declares :attr:`Capability.DECODE`.
    """

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.sample_latent(n), labels)

    def sample_latent(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hp.z_dim, device=self.device)  # the model's Hyper declares z_dim

    def latent_prior(self) -> Literal["normal", "uniform", "other"]:
        return "normal"
