"""The MLP GAN and the convolutional DCGAN."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import hp
from genbench.models.adversarial import AdversarialModel, GANHyper
from genbench.models.layers import dcgan_init, mlp


class GAN(AdversarialModel):
    """MLP GAN: G z-256-512-1024-data, D data-512-256-1, LeakyReLU(0.2) (the classic PyTorch MNIST GAN)."""

    name = "gan"
    description = "MLP GAN, G z-256-512-1024-out, D in-512-256-1; loss bce|hinge"
    Hyper = GANHyper

    def __init__(self, hp: GANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        d = data.dim
        self.generator = nn.Sequential(mlp([hp.z_dim, 256, 512, 1024, d], slope=0.2), nn.Unflatten(1, data.shape))
        self.discriminator = nn.Sequential(nn.Flatten(), mlp([d, 512, 256, 1], slope=0.2), nn.Flatten(0))
        self.build_optimizers()


@dataclass
class DCGANHyper(GANHyper):
    width: int = hp(64, "channels of the widest conv layer is 2*width (DCGAN's ngf/ndf)")


class DCGAN(AdversarialModel):
    """DCGAN for images whose sides divide by 4: two stride-2 (de)convolutions, batch-norm, Adam beta1=0.5."""

    name = "dcgan"
    description = "conv DCGAN (2 stride-2 layers, batch-norm), for images with sides divisible by 4"
    Hyper = DCGANHyper
    data_kinds = frozenset({"image"})

    def __init__(self, hp: DCGANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        c, h, w = data.shape
        if h % 4 or w % 4:
            raise ValueError(f"dcgan needs image sides divisible by 4, {data.name} is {h}x{w}")
        ch = hp.width
        self.generator = nn.Sequential(
            nn.Linear(hp.z_dim, 2 * ch * (h // 4) * (w // 4)),
            nn.Unflatten(1, (2 * ch, h // 4, w // 4)),
            nn.BatchNorm2d(2 * ch),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
            nn.ConvTranspose2d(ch, c, 4, 2, 1),
        )
        self.discriminator = nn.Sequential(
            nn.Conv2d(c, ch, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ch, 2 * ch, 4, 2, 1),
            nn.BatchNorm2d(2 * ch),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * ch * (h // 4) * (w // 4), 1),
            nn.Flatten(0),  # one logit per example
        )
        self.apply(dcgan_init)
        self.build_optimizers()
