"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty.

Gulrajani et al. (2017), "Improved Training of Wasserstein GANs", Algorithm 1:
the critic minimises ``E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]``
on random interpolates ``x_hat = eps * x + (1 - eps) * G(z)``, ``eps ~ U[0, 1]``
per example; G minimises ``-E[D(G(z))]``. The paper's defaults are lambda = 10,
n_critic = 5 critic updates per generator update and Adam with lr = 1e-4; its
Algorithm 1 uses betas (0, 0.9), its released MNIST script
(``gan_mnist.py`` in github.com/igul222/improved_wgan_training) betas (0.5, 0.9)
with batch 50: genbench uses the MNIST script's (0.5, 0.9), since its packaged
data sets are digits.

Networks: ``dcgan``'s generator (batch-norm, as in the paper's DCGAN-style
generators) and ``dcgan``'s discriminator as the critic **without batch-norm**:
the penalty is on the gradient with respect to each input separately, which
batch-norm invalidates by mixing the examples of a batch (paper, section 4). The
critic uses layer normalisation (``critic_norm=layer``, the replacement the paper
recommends) or nothing (``critic_norm=none``, the paper's MNIST script).

``d_steps`` is ``n_critic``: the critic updates reuse the harness's real
mini-batch with fresh noise each time (see :mod:`genbench.models.adversarial`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from genbench.datasets.base import DataInfo
from genbench.hyper import hp, positive
from genbench.models.adversarial import AdversarialHyper, AdversarialModel
from genbench.models.gans import check_conv_sides, conv_discriminator, conv_generator
from genbench.models.layers import dcgan_init


@dataclass
class WGANGPHyper(AdversarialHyper):
    batch_size: int = hp(64, "mini-batch size m = 64 (WGAN-GP paper, Algorithm 1; its MNIST script uses 50)")
    lr: float = hp(1e-4, "learning rate of G and the critic unless lr_g / lr_d are set (WGAN-GP paper, Adam 1e-4)")
    beta1: float = hp(0.5, "Adam beta1 (0.5: the WGAN-GP MNIST script; the paper's Algorithm 1 uses 0)")
    beta2: float = hp(0.9, "Adam beta2 (0.9, WGAN-GP paper and MNIST script)")
    width: int = hp(64, "conv channels: w and 2w (DIM=64 in the WGAN-GP MNIST script)")
    d_steps: int = hp(5, "critic updates per mini-batch: n_critic = 5 (WGAN-GP paper)")
    loss: Literal["wgan-gp"] = hp("wgan-gp", "Wasserstein critic loss + gradient penalty (the only loss of this model)")
    gp_weight: float = hp(10.0, "gradient-penalty weight lambda (10, WGAN-GP paper)")
    critic_norm: Literal["layer", "none"] = hp("layer", "critic normalisation: layer (paper's advice) or none")

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "gp_weight")


def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``E[(||grad critic(x_hat)||_2 - 1)^2]`` on random interpolates of ``real`` and ``fake`` (both detached)."""
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


class WGANGP(AdversarialModel):
    """Conv WGAN-GP: ``dcgan``'s generator, a critic without batch-norm, 5 critic updates per G update."""

    name = "wgan-gp"
    description = "WGAN-GP (Gulrajani et al. 2017): DCGAN G, critic without batch-norm, lambda=10, n_critic=5"
    Hyper = WGANGPHyper
    graph_safe = True  # a fixed 5 critic updates; the gradient penalty's double backward and torch.rand capture
    data_kinds = frozenset({"image"})

    hp: WGANGPHyper
    d_wins_flag = False  # the critic's loss is unbounded: near zero means nothing

    def __init__(self, hp: WGANGPHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        c, _, _ = check_conv_sides(self.name, data)
        self.generator = conv_generator(hp.z_dim, hp.width, data)
        self.discriminator = conv_discriminator(c, hp.width, data, norm=hp.critic_norm)
        self.apply(dcgan_init)
        self.build_optimizers()

    def d_objective(
        self, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        d_real, d_fake = self.score(real, y).mean(), self.score(fake, y).mean()
        gp = gradient_penalty(self.discriminator, real, fake)
        loss = d_fake - d_real + self.hp.gp_weight * gp
        return loss, {
            # raw critic values, so not d_x / d_g_z (those are probabilities, see GenerativeModel.train_step)
            "critic_x": d_real.detach(),  # mean critic value on real data
            "critic_g_z": d_fake.detach(),  # mean critic value on generated data
            "wasserstein": (d_real - d_fake).detach(),  # the critic's estimate of W(data, model)
            "gp": gp.detach(),
        }

    def g_objective(self, d_fake: torch.Tensor) -> torch.Tensor:
        return -d_fake.mean()
