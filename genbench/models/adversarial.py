"""The adversarial training step shared by every built-in GAN.

Subclasses build ``generator`` (noise -> raw output) and ``discriminator``
(signed data -> logits of shape (n,)); this class owns the optimisers, the loss
(non-saturating BCE or hinge) and the D(x) / D(G(z)) diagnostics the lab reports
log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import Hyper, hp, positive
from genbench.models.base import GenerativeModel
from genbench.models.layers import from_signed, to_signed


@dataclass
class GANHyper(Hyper):
    z_dim: int = hp(100, "noise size (z=100 in the AE/VAE/GAN lab and the DCGAN paper)")
    lr: float = hp(2e-4, "learning rate of G and D unless lr_g / lr_d are set (DCGAN paper)")
    lr_g: float | None = hp(None, "generator learning rate (default: lr)")
    lr_d: float | None = hp(None, "discriminator learning rate (default: lr)")
    beta1: float = hp(0.5, "Adam beta1 (0.5 per the DCGAN paper; the RDFIA lab compared 0.9)")
    beta2: float = hp(0.999, "Adam beta2")
    loss: Literal["bce", "hinge"] = hp("bce", "bce (non-saturating) or hinge (used against mode collapse)")

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "lr_g", "lr_d")
        if not 0.0 <= self.beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")


class AdversarialModel(GenerativeModel):
    """A GAN: alternate one discriminator and one generator update per mini-batch."""

    hp: GANHyper
    generator: nn.Module
    discriminator: nn.Module

    def __init__(self, hp: GANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)

    def build_optimizers(self) -> None:
        """Call at the end of a subclass ``__init__``, once both networks exist."""
        hp = self.hp
        betas = (hp.beta1, hp.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g or hp.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d or hp.lr, betas=betas)

    def noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hp.z_dim, device=self.device)

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.hp.loss == "hinge":
            return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
        return F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )

    def g_loss(self, fake: torch.Tensor) -> torch.Tensor:
        if self.hp.loss == "hinge":
            return -fake.mean()
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        real = to_signed(x, self.data)
        n = x.shape[0]
        fake = self.generator(self.noise(n))

        d_real = self.discriminator(real)
        d_fake = self.discriminator(fake.detach())
        loss_d = self.d_loss(d_real, d_fake)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()

        d_fake_g = self.discriminator(fake)
        loss_g = self.g_loss(d_fake_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()

        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_x": torch.sigmoid(d_real.detach()).mean(),
            "d_g_z": torch.sigmoid(d_fake.detach()).mean(),
        }

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return from_signed(self.generator(self.noise(n)), self.data)
