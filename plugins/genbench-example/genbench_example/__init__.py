"""A genbench model plugin: the least-squares GAN (LSGAN, Mao et al. 2017).

LSGAN replaces the GAN's cross-entropy with least squares: the discriminator D
regresses a score towards ``b`` on real data and ``a`` on generated data, the
generator G pushes D's score on its samples towards ``c``::

    loss_d = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]
    loss_g = 1/2 E[(D(G(z)) - c)^2]

Only genbench's public API is used; the entry point in ``pyproject.toml`` makes
genbench find :func:`register_models`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

import genbench

__all__ = ["LSGAN", "LSGANHyper", "register_models"]


@dataclass
class LSGANHyper(genbench.Hyper):
    """LSGAN hyper-parameters; ``z_dim``, ``lr``, ``batch_size``, ``epochs`` and ``beta1`` come from genbench.Hyper."""

    hidden: int = genbench.hp(256, "width of the two hidden layers of G and D")
    a: float = genbench.hp(0.0, "D's target for generated data")
    b: float = genbench.hp(1.0, "D's target for real data")
    c: float = genbench.hp(1.0, "the score G wants D to give its samples (0-1 coding: a=0 b=1 c=1)")

    def __post_init__(self) -> None:
        super().__post_init__()  # checks the common fields
        if self.hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {self.hidden}")
        if self.a == self.b:
            raise ValueError(f"a and b must differ (D could not tell real from fake), got a=b={self.a}")


def _mlp(sizes: list[int], act: Callable[[], nn.Module]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ``act()`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


class LSGAN(genbench.GenerativeModel):
    """MLP LSGAN: G z-h-h-data (ReLU), D data-h-h-1 (LeakyReLU 0.2), Adam, one D and one G step per batch."""

    name = "lsgan"
    description = "least-squares GAN (Mao et al. 2017), MLP G z-h-h-out and D in-h-h-1; targets a/b/c"
    Hyper = LSGANHyper
    capabilities = frozenset({genbench.Capability.SAMPLE})
    data_kinds = frozenset({"image", "points"})

    hp: LSGANHyper

    def __init__(self, hp: LSGANHyper, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        d, h = data.dim, hp.hidden
        self.generator = _mlp([hp.z_dim, h, h, d], nn.ReLU)
        self.discriminator = _mlp([d, h, h, 1], lambda: nn.LeakyReLU(0.2))
        betas = (hp.beta1, 0.999)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=hp.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr, betas=betas)

    def _generate(self, n: int) -> torch.Tensor:
        """``n`` samples in data space: images in [0, 1] (tanh rescaled), points unbounded."""
        out = self.generator(torch.randn(n, self.hp.z_dim, device=self.device))
        if self.data.kind == "image":
            out = (torch.tanh(out) + 1) / 2
        return out.reshape(n, *self.data.shape)

    def _score(self, x: torch.Tensor) -> torch.Tensor:
        """D's score, shape (n,); images are centred to [-1, 1] first."""
        if self.data.kind == "image":
            x = x * 2 - 1
        return self.discriminator(x.flatten(1)).squeeze(1)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        hp = self.hp
        fake = self._generate(x.shape[0])

        d_real = self._score(x)
        d_fake = self._score(fake.detach())
        loss_d = 0.5 * ((d_real - hp.b).pow(2).mean() + (d_fake - hp.a).pow(2).mean())
        self.update(loss_d, self.opt_d)  # zero_grad, backward, step (loss-scaled under --precision fp16)

        loss_g = 0.5 * (self._score(fake) - hp.c).pow(2).mean()
        self.update(loss_g, self.opt_g)  # D's stray gradients are cleared by its next update

        # 0-dim tensors, not floats: genbench averages them on the device once per epoch. D's raw scores
        # are not probabilities, so they are not logged as d_x / d_g_z (genbench's convention).
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "score_x": d_real.detach().mean(),  # tends to b on real data
            "score_g_z": d_fake.detach().mean(),  # tends to a on generated data
        }

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self._generate(n)


@genbench.hookimpl
def register_models(register: Callable[[type[genbench.GenerativeModel]], None]) -> None:
    """genbench calls this once when it loads the plugin."""
    register(LSGAN)
