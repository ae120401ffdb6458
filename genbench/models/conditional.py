"""Label-conditioned GANs: ``cgan`` (MLP) and ``cdcgan`` (convolutional).

Both follow Mirza & Osindero (2014), "Conditional Generative Adversarial Nets":
the class ``y`` is fed as a one-hot vector to *both* networks, G(z, y) and
D(x, y), and the adversarial loss is unchanged (bce or hinge). So that a
conditional model compares like for like with its unconditional sibling, the
networks are those of ``gan`` and ``dcgan`` with the label added at the input:

* ``cgan``: G gets ``[z, onehot(y)]``, D gets ``[flatten(x), onehot(y)]``
  (Mirza & Osindero's MNIST model, without their maxout units) and has the
  projection output layer described below. With the one-hot input alone, ten of
  794 inputs, D ignored the label: conditional accuracy 0.10 (chance) after 10
  epochs on mnist5k with r1=0, 0.095 with r1=10; with the projection and r1=10, 0.44.
* ``cdcgan``: G gets ``[z, onehot(y)]`` before its projection layer. D gets the
  label twice: as ``k`` extra constant input channels (channel ``y`` all ones, the
  others zero: Mirza & Osindero's conditioning applied to a DCGAN, Radford et al.
  2016, the label replicated spatially and concatenated depth-wise as Reed et al.
  2016 do in D), and through a projection output layer,
  ``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018, "cGANs with
  Projection Discriminator"). On mnist5k the projection term raised the domain
  classifier's conditional accuracy after 10 epochs; label maps alone reached 0.80
  to 0.88, both together 0.88 (lr_g 2e-4) to 0.96 (lr_g 1e-3, the default).

Training uses the mini-batch's labels; the fakes of a D update are generated for
those same labels, so D sees real and fake examples with the same class mix and
can only tell them apart by whether the image matches its label. ``sample(n,
labels)`` generates the classes asked for; with ``labels=None`` it draws
class-balanced labels ``0, 1, ..., k-1, 0, 1, ...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import torch
from torch import nn

from genbench.datasets.base import DataInfo
from genbench.models.adversarial import BinaryGAN, GANHyper
from genbench.models.base import Capability, balanced_labels
from genbench.models.gans import (
    DCGANHyper,
    check_conv_sides,
    conv_discriminator,
    conv_generator,
    mlp_generator,
)
from genbench.models.layers import dcgan_init, mlp


def one_hot(y: torch.Tensor, k: int) -> torch.Tensor:
    return nn.functional.one_hot(y, k).float()


class ProjectionDiscriminator(nn.Module):
    """``D(x, y) = psi(phi(x)) + <embed(y), phi(x)>`` (Miyato & Koyama 2018); without projection, ``psi(phi(x))``."""

    def __init__(self, phi: nn.Module, psi: nn.Module, num_classes: int, features: int, projection: bool) -> None:
        super().__init__()
        self.phi, self.psi = phi, psi
        self.embed = nn.Embedding(num_classes, features)
        self.projection = projection

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.phi(x)
        out = self.psi(h).squeeze(1)
        return out + (self.embed(y) * h).sum(1) if self.projection else out


class ConditionalGAN(BinaryGAN):
    """Shared by ``cgan`` and ``cdcgan``: the label checks and class-balanced default labels."""

    capabilities = frozenset({Capability.SAMPLE, Capability.CONDITIONAL, Capability.DECODE, Capability.DISCRIMINATE})
    projection: ClassVar[bool] = True  # + <embed(y), phi(x)> on D's output (switch off for ablations)

    def __init__(self, hp: GANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        if not data.num_classes:
            raise ValueError(f"{self.name} needs a labelled dataset; {data.name} has no classes")
        self.num_classes = int(data.num_classes)

    def labels_for(self, n: int, y: torch.Tensor | None) -> torch.Tensor:
        """``y`` checked, or class-balanced labels when it is None."""
        if y is None:
            return balanced_labels(n, self.num_classes, self.device)
        if y.shape != (n,):
            raise ValueError(f"{self.name}: labels must have shape ({n},), got {tuple(y.shape)}")
        return y.to(self.device)

    def generator_logits(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """G sees ``[z, onehot(y)]`` (both models)."""
        y = self.labels_for(z.shape[0], y)
        return self.generator(torch.cat([z, one_hot(y, self.num_classes)], 1))

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        if y is None:
            raise ValueError(f"{self.name} trains on labelled batches; got y=None")
        return super().train_step(x, y)

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return super().sample(n, self.labels_for(n, labels))


class CGAN(ConditionalGAN):
    """MLP conditional GAN: ``gan``'s networks, a one-hot label concatenated to z and to the flat input,
    and D's projection head (as ``cdcgan``)."""

    name = "cgan"
    description = "conditional MLP GAN (Mirza & Osindero 2014): one-hot y into G and D, projection head in D"
    Hyper = GANHyper
    graph_safe = True  # gan's step; one_hot with a given class count reads nothing back to the host
    data_kinds = frozenset({"image", "points"})

    def __init__(self, hp: GANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        k = self.num_classes
        self.generator = mlp_generator(hp.z_dim + k, hp.width, data)
        # gan's D layers (in-2w-w-1): Linear, LeakyReLU, Linear, LeakyReLU, Linear
        trunk = mlp([data.dim + k, 2 * hp.width, hp.width, 1], slope=0.2)
        # phi(x): the w features under the output layer; psi: the output layer
        self.discriminator = ProjectionDiscriminator(trunk[:-1], trunk[-1], k, hp.width, self.projection)
        nn.init.normal_(self.discriminator.embed.weight, 0.0, 0.02)  # start near the unconditional D
        self.build_optimizers()

    def score(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = self.labels_for(x.shape[0], y)
        return self.discriminator(torch.cat([x.flatten(1), one_hot(y, self.num_classes)], 1), y)


class CDCGAN(ConditionalGAN):
    """Conv conditional GAN: ``dcgan``'s networks; one-hot y into z, label maps into D and a projection head."""

    name = "cdcgan"
    description = "conditional DCGAN: one-hot y into G, label maps + projection (Miyato 2018) in D; bce|hinge"
    Hyper = DCGANHyper
    graph_safe = True  # as cgan
    data_kinds = frozenset({"image"})

    hp: DCGANHyper
    label_maps: ClassVar[bool] = True  # y as k constant input channels of D (switch off for ablations)

    def __init__(self, hp: DCGANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        c, h, w = check_conv_sides(self.name, data)
        k = self.num_classes
        self.generator = conv_generator(hp.z_dim + k, hp.width, data)
        trunk = conv_discriminator(c + (k if self.label_maps else 0), hp.width, data)
        features = 2 * hp.width * (h // 4) * (w // 4)  # phi(x): the flattened second conv layer
        self.discriminator = ProjectionDiscriminator(trunk[:-2], trunk[-2], k, features, self.projection)
        self.apply(dcgan_init)
        nn.init.normal_(self.discriminator.embed.weight, 0.0, 0.02)  # as every other D weight
        self.build_optimizers()

    def score(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = self.labels_for(x.shape[0], y)
        if self.label_maps:
            maps = one_hot(y, self.num_classes)[:, :, None, None].expand(-1, -1, *x.shape[2:])
            x = torch.cat([x, maps], 1)
        return self.discriminator(x, y)
