"""The adversarial training step shared by every built-in GAN.

Subclasses build ``generator`` (noise -> raw output) and ``discriminator``
(signed data -> logits of shape (n,)); this module owns the optimisers, the
noise, the update schedule and the D(x) / D(G(z)) diagnostics the lab reports
log. :class:`BinaryGAN` adds the classifier losses (non-saturating BCE or hinge);
the Wasserstein critic (:mod:`genbench.models.wgan`) brings its own. Conditional
subclasses (:mod:`genbench.models.conditional`) override
:meth:`AdversarialModel.generator_logits` and :meth:`AdversarialModel.score` to
feed the labels to both networks.

For images, G's output goes through tanh *before* D sees it, so D compares
real images mapped to [-1, 1] with fakes in [-1, 1] -- exactly what
:meth:`AdversarialModel.sample` returns, rescaled to [0, 1]. (Until this
version D saw the pre-tanh output during training while samples were
tanh-squashed: G learnt values that matched the data only before the squash,
hence grey backgrounds and speckled strokes, and D won outright.)

One ``train_step`` (the harness calls it once per mini-batch) does ``d_steps``
discriminator updates and then ``g_steps`` generator updates:

* every D update draws fresh noise and **reuses the same real mini-batch**
  (rather than splitting it into ``d_steps`` smaller batches): each D update keeps
  the full ``batch_size`` (batch-norm statistics and the gradient estimate are
  those of the batch size the user chose), an epoch stays one pass over the data,
  and the number of G updates per epoch is ``g_steps * batches``, whatever
  ``d_steps`` is. The WGAN-GP reference code draws a new real batch for each
  critic iteration; here the harness owns data order, so the critic sees each
  real image ``d_steps`` times per epoch, each time against new fakes.
* every G update draws fresh noise, except the first, which reuses the fakes of
  the last D update (as in the PyTorch DCGAN example), so the default
  ``d_steps = g_steps = 1`` costs one generator forward per mini-batch.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import Hyper, hp, positive
from genbench.models.base import Capability, GenerativeModel, draw_noise
from genbench.models.layers import to_signed


def at_least_one(obj: object, *names: str) -> None:
    """Raise ValueError naming the first of ``names`` that is not an integer >= 1."""
    for name in names:
        value = getattr(obj, name)
        if not value >= 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


@dataclass
class AdversarialHyper(Hyper):
    """What every GAN shares: optimiser, noise, width, updates per mini-batch. ``loss`` is per family.

    Public as ``genbench.AdversarialHyper``: a plugin GAN that extends it gets the built-in GANs'
    knobs with the same names, defaults, help and checks, so its columns line up with theirs in
    ``results.csv`` and ``--grid lr_d=...`` means the same for every GAN. :meth:`adam` gives the
    optimiser settings of G or D (``lr_g`` / ``lr_d``, else ``lr``; ``beta1``, ``beta2``).
    """

    z_dim: int = hp(100, "noise size (z=100 in the AE/VAE/GAN lab and the DCGAN paper, Radford et al. 2016)")
    lr: float = hp(2e-4, "learning rate of G and D unless lr_g / lr_d are set (DCGAN paper)")
    lr_g: float | None = hp(None, "generator learning rate (default: lr)")
    lr_d: float | None = hp(None, "discriminator learning rate (default: lr)")
    beta1: float = hp(0.5, "Adam beta1 (0.5 per the DCGAN paper; the RDFIA lab compared 0.9)")
    beta2: float = hp(0.999, "Adam beta2 (0.999, Adam's and the DCGAN paper's)")
    width: int = hp(64, "network width: each model documents what it scales")
    d_steps: int = hp(1, "discriminator updates per mini-batch, each with fresh noise on the same real batch")
    g_steps: int = hp(1, "generator updates per mini-batch, each with fresh noise")
    noise: Literal["normal", "uniform"] = hp(
        "normal", "z ~ normal N(0, I) (PyTorch DCGAN example) or uniform in [-1, 1] (DCGAN paper, GAN Lab)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "lr_g", "lr_d")
        at_least_one(self, "width", "d_steps", "g_steps")
        if not 0.0 <= self.beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")

    def adam(self, network: Literal["g", "d"]) -> dict[str, Any]:
        """``torch.optim.Adam`` keyword arguments for G or D: ``lr`` (``lr_g``/``lr_d`` if set) and ``betas``."""
        lr = self.lr_g if network == "g" else self.lr_d
        return {"lr": lr or self.lr, "betas": (self.beta1, self.beta2)}


@dataclass
class GANHyper(AdversarialHyper):
    """The MLP GANs' knobs (``gan``, ``cgan``), with defaults measured on the packaged data.

    Images (mnist5k, 10 epochs, seed 0, domain FID / classes covered): R1 weight 0 gives 925 / 2 (``gan``)
    and conditional accuracy 0.10 (``cgan``); r1=1 gives 960 / 2; r1=10 gives 146 / 9 and 0.44.
    2-D points (8-Gaussian ring, batch 64, 30 epochs, modes covered in seeds 0-2): the image network
    (w=256, z=100, lr 2e-4, r1=0) 1, 7, 8, cycling between modes from epoch to epoch; w=64, z=2, lr 1e-4
    without R1 6, 0, 4; the same with r1=1 8/8 in every seed (seeds 0-4, every 10th epoch from 30 to 60,
    half the samples within 3 std of a mode by epoch 60). See benchmarks/README.md.
    """

    kind_defaults = {"points": {"z_dim": 2, "width": 64, "lr": 1e-4, "r1": 1.0}}

    width: int = hp(256, "G is z-w-2w-4w-out and D in-2w-w-1 (256: the classic PyTorch MNIST GAN)")
    loss: Literal["bce", "hinge"] = hp("bce", "bce (non-saturating, Goodfellow et al. 2014) or hinge (Lim & Ye 2017)")
    r1: float = hp(
        10.0,
        "R1 penalty gamma: D loss + gamma/2 E||grad_x D(x)||^2 on real data (Mescheder et al. 2018; 10 as in "
        "StyleGAN); 0: off",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.r1 >= 0:
            raise ValueError(f"r1 must be >= 0, got {self.r1}")


def classifier_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """D's loss from its logits on real and fake data: ``bce`` (real 1, fake 0) or ``hinge``."""
    if loss == "hinge":
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    return F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + (
        F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
    )


def classifier_g_loss(d_fake: torch.Tensor, loss: str) -> torch.Tensor:
    """G's loss from D's logits on its samples: non-saturating ``bce`` or ``hinge`` (-D(G(z)))."""
    if loss == "hinge":
        return -d_fake.mean()
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


class AdversarialModel(GenerativeModel):
    """A GAN: ``d_steps`` discriminator then ``g_steps`` generator updates per mini-batch."""

    capabilities = frozenset({Capability.SAMPLE, Capability.DECODE, Capability.DISCRIMINATE})

    hp: AdversarialHyper
    generator: nn.Module
    discriminator: nn.Module

    def __init__(self, hp: AdversarialHyper, data: DataInfo) -> None:
        super().__init__(hp, data)

    def build_optimizers(self) -> None:
        """Call at the end of a subclass ``__init__``, once both networks exist."""
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **self.hp.adam("g"))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **self.hp.adam("d"))

    # -- the pieces subclasses may override ------------------------------------------------------
    def noise(self, n: int) -> torch.Tensor:
        """``n`` noise vectors: N(0, I), or uniform in [-1, 1] with ``noise=uniform``."""
        return draw_noise(n, self.hp.z_dim, self.hp.noise, self.device)

    def generator_logits(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The generator's raw output for noise ``z`` (and labels ``y``, for conditional models)."""
        return self.generator(z)

    def generate(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Generated examples in D's input space: images through tanh into [-1, 1] (the range of
        :func:`to_signed` real images), points unbounded. D must see the same squashed output that
        :meth:`sample` returns, not the pre-tanh values."""
        out = self.generator_logits(z, y)
        return torch.tanh(out) if self.data.kind == "image" else out

    def score(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """D's logits (or critic values), shape (n,), for signed data ``x`` (and labels ``y``)."""
        return self.discriminator(x)

    @abc.abstractmethod
    def d_objective(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """D's loss on a real and a (detached) fake batch, and its diagnostics (detached 0-dim tensors).

        The diagnostics may hold ``loss_d``: the loss to *report* when the optimised one adds a regulariser
        (R1), so that ``loss_d`` in the history stays the adversarial loss, comparable across settings and
        near zero exactly when D wins outright (the ``d_wins`` flag reads it).
        """

    @abc.abstractmethod
    def g_objective(self, d_fake: torch.Tensor) -> torch.Tensor:
        """G's loss from D's scores of its samples."""

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        hp = self.hp
        real = to_signed(x, self.data)
        n = x.shape[0]
        loss_d_sum = torch.zeros((), device=x.device)
        logs: dict[str, torch.Tensor] = {}
        fake = real  # replaced below (d_steps >= 1)
        for i in range(hp.d_steps):
            last = i == hp.d_steps - 1
            with torch.set_grad_enabled(last):  # the last D update's fakes feed G's first update
                fake = self.generate(self.noise(n), y)
            loss_d, logs = self.d_objective(real, fake.detach(), y)
            self.update(loss_d, self.opt_d)
            loss_d_sum = loss_d_sum + logs.pop("loss_d", loss_d).detach()

        loss_g_sum = torch.zeros((), device=x.device)
        for j in range(hp.g_steps):
            if j > 0:
                fake = self.generate(self.noise(n), y)
            loss_g = self.g_objective(self.score(fake, y))
            self.update(loss_g, self.opt_g)  # D's stray gradients are cleared by its next zero_grad
            loss_g_sum = loss_g_sum + loss_g.detach()

        # means over the updates of this step; 0-dim tensors read once per epoch by the harness
        return {"loss_d": loss_d_sum / hp.d_steps, "loss_g": loss_g_sum / hp.g_steps, **logs}

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.sample_latent(n), labels)

    def sample_latent(self, n: int) -> torch.Tensor:
        return self.noise(n)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.generate(z, labels)
        return (out + 1) / 2 if self.data.kind == "image" else out

    def latent_prior(self) -> Literal["normal", "uniform", "other"]:
        return self.hp.noise

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's raw score of ``x`` (data range), mapped to D's input space as in training."""
        return self.score(to_signed(x, self.data), labels)


class BinaryGAN(AdversarialModel):
    """D is a real/fake classifier returning logits: loss ``bce`` (non-saturating) or ``hinge``."""

    hp: GANHyper

    @classmethod
    def double_backward(cls, hp: Hyper) -> str | None:
        r1 = getattr(hp, "r1", 0.0)
        return f"R1 penalty r1={r1:g}; --grid {cls.name}.r1=0 turns it off" if r1 > 0 else None

    def d_objective(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r1 = self.hp.r1
        if r1:
            real = real.detach().requires_grad_(True)
        d_real, d_fake = self.score(real, y), self.score(fake, y)
        loss = classifier_d_loss(d_real, d_fake, self.hp.loss)
        # D(x) and D(G(z)) as probabilities (sigmoid of the logits; for hinge, of the raw scores)
        logs = {"d_x": torch.sigmoid(d_real.detach()).mean(), "d_g_z": torch.sigmoid(d_fake.detach()).mean()}
        if r1:
            # R1 (Mescheder, Geiger, Nowozin 2018, eq. 9): penalise D's gradient on the data, which keeps D from
            # pushing G past the data and makes the 2-D mixtures converge instead of cycling between modes.
            # loss_d reports the adversarial part; the penalty is logged on its own.
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            penalty = grad.pow(2).flatten(1).sum(1).mean()
            logs["loss_d"], logs["r1_penalty"] = loss.detach(), penalty.detach()
            loss = loss + r1 / 2 * penalty
        return loss, logs

    def g_objective(self, d_fake: torch.Tensor) -> torch.Tensor:
        return classifier_g_loss(d_fake, self.hp.loss)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's probability that ``x`` is real: the sigmoid of its logit (hinge: of its raw score)."""
        return torch.sigmoid(super().discriminate(x, labels))
