"""Built-in models, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.models.autoencoders import VAE, AutoEncoder
from genbench.models.conditional import CDCGAN, CGAN
from genbench.models.convvae import ConvVAE
from genbench.models.gans import DCGAN, GAN
from genbench.models.vaegan import VAEGAN
from genbench.models.wgan import WGANGP

# What `genbench list plugins` says of this plugin (genbench.plugins.describe_plugin).
GENBENCH_DESCRIPTION = "the model zoo: ae, vae, convvae, gan, dcgan, cgan, cdcgan, wgan-gp, vaegan"


@hookimpl
def register_models(register: Callable[[type[Any]], None]) -> None:
    for cls in (AutoEncoder, VAE, ConvVAE, GAN, DCGAN, CGAN, CDCGAN, WGANGP, VAEGAN):
        register(cls)
