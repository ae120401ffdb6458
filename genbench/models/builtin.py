"""Built-in models, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.hookspecs import hookimpl
from genbench.models.autoencoders import VAE, AutoEncoder
from genbench.models.gans import DCGAN, GAN


@hookimpl
def register_models(register: Callable[[type[Any]], None]) -> None:
    for cls in (AutoEncoder, VAE, GAN, DCGAN):
        register(cls)
