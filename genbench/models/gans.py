"""The MLP GAN and the convolutional DCGAN, and the networks the conditional variants share."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import hp
from genbench.models.adversarial import BinaryGAN, GANHyper
from genbench.models.layers import dcgan_init, mlp

__all__ = ["DCGAN", "GAN", "DCGANHyper", "GANHyper", "conv_discriminator", "conv_generator", "mlp_discriminator",
           "mlp_generator"]  # fmt: skip


def mlp_generator(in_dim: int, width: int, data: DataInfo) -> nn.Module:
    """in-w-2w-4w-data, LeakyReLU(0.2); raw output (the model applies tanh for images)."""
    return nn.Sequential(mlp([in_dim, width, 2 * width, 4 * width, data.dim], slope=0.2), nn.Unflatten(1, data.shape))


def mlp_discriminator(in_dim: int, width: int) -> nn.Module:
    """flat in-2w-w-1, LeakyReLU(0.2), one logit per example."""
    return nn.Sequential(mlp([in_dim, 2 * width, width, 1], slope=0.2), nn.Flatten(0))


def check_conv_sides(name: str, data: DataInfo) -> tuple[int, int, int]:
    c, h, w = data.shape
    if h % 4 or w % 4:
        raise ValueError(f"{name} needs image sides divisible by 4, {data.name} is {h}x{w}")
    return c, h, w


def conv_generator(in_dim: int, width: int, data: DataInfo) -> nn.Sequential:
    """DCGAN generator: project to 2w x h/4 x w/4, two stride-2 transposed convs, batch-norm + ReLU."""
    c, h, w = data.shape
    ch = width
    return nn.Sequential(
        nn.Linear(in_dim, 2 * ch * (h // 4) * (w // 4)),
        nn.Unflatten(1, (2 * ch, h // 4, w // 4)),
        nn.BatchNorm2d(2 * ch),
        nn.ReLU(),
        nn.ConvTranspose2d(2 * ch, ch, 4, 2, 1),
        nn.BatchNorm2d(ch),
        nn.ReLU(),
        nn.ConvTranspose2d(ch, c, 4, 2, 1),
    )


def conv_discriminator(
    in_channels: int, width: int, data: DataInfo, norm: str = "batch", dropout: float = 0.0
) -> nn.Sequential:
    """DCGAN discriminator: two stride-2 convs (w, 2w channels), LeakyReLU(0.2), linear to one logit.

    ``dropout`` after each LeakyReLU (0: none).
    ``norm`` after the second conv: ``batch`` (DCGAN), ``layer`` (per-example, what WGAN-GP
    recommends instead of batch-norm), or ``none``.
    """
    _, h, w = data.shape
    ch = width
    norm_layer: nn.Module
    if norm == "batch":
        norm_layer = nn.BatchNorm2d(2 * ch)
    elif norm == "layer":
        norm_layer = nn.GroupNorm(1, 2 * ch)  # layer norm over (C, H, W) with a per-channel affine
    else:
        norm_layer = nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_channels, ch, 4, 2, 1),
        nn.LeakyReLU(0.2),
        nn.Dropout(dropout),
        nn.Conv2d(ch, 2 * ch, 4, 2, 1),
        norm_layer,
        nn.LeakyReLU(0.2),
        nn.Dropout(dropout),
        nn.Flatten(),
        nn.Linear(2 * ch * (h // 4) * (w // 4), 1),
        nn.Flatten(0),  # one logit per example
    )


class GAN(BinaryGAN):
    """MLP GAN: G z-256-512-1024-data, D data-512-256-1, LeakyReLU(0.2) (the classic PyTorch MNIST GAN)."""

    name = "gan"
    description = "MLP GAN, G z-w-2w-4w-out, D in-2w-w-1 (w=256); loss bce|hinge"
    Hyper = GANHyper
    graph_safe = True  # fixed d_steps/g_steps loops, noise on the device; R1's double backward captures

    def __init__(self, hp: GANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        self.generator = mlp_generator(hp.z_dim, hp.width, data)
        self.discriminator = nn.Sequential(nn.Flatten(), mlp_discriminator(data.dim, hp.width))
        self.build_optimizers()


@dataclass
class DCGANHyper(GANHyper):
    # Measured on mnist5k, 10 epochs, seed 0 (domain FID / classes covered): lr_g=lr=2e-4 with
    # batch 64 gives 78 / 9; lr_g=1e-3 gives 38 / 10; cdcgan with batch 32 and lr_g=1e-3 gives 6.5
    # at epoch 8 and conditional accuracy 0.96 (0.88 with lr_g=2e-4).
    kind_defaults = {}  # images only (DCGAN's data_kinds)

    lr_g: float | None = hp(1e-3, "generator learning rate, 5x D's (InfoGAN's MNIST setting, Chen et al. 2016)")
    batch_size: int = hp(32, "mini-batch size (32: twice the updates per epoch of 64 on small data sets)")
    width: int = hp(64, "conv channels: w and 2w (DCGAN's ngf/ndf=64)")
    r1: float = hp(0.0, "R1 penalty gamma (see gan); 0: off, as in DCGAN, whose D has batch-norm")


class DCGAN(BinaryGAN):
    """DCGAN for images whose sides divide by 4: two stride-2 (de)convolutions, batch-norm, Adam beta1=0.5."""

    name = "dcgan"
    description = "conv DCGAN (2 stride-2 layers, batch-norm), for images with sides divisible by 4"
    Hyper = DCGANHyper
    graph_safe = True  # as gan (batch-norm's running statistics are updated on the device)
    data_kinds = frozenset({"image"})

    hp: DCGANHyper

    def __init__(self, hp: DCGANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        c, _, _ = check_conv_sides(self.name, data)
        self.generator = conv_generator(hp.z_dim, hp.width, data)
        self.discriminator = conv_discriminator(c, hp.width, data)
        self.apply(dcgan_init)
        self.build_optimizers()
