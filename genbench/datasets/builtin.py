"""Built-in datasets, registered through the same hook as any third-party plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genbench.datasets.packaged import Digits8x8, MNIST5k
from genbench.datasets.torchvision_sets import CIFAR10, MNIST, FashionMNIST
from genbench.datasets.toy2d import Grid, Ring, RingNamed, Spiral
from genbench.hookspecs import hookimpl

# What `genbench list plugins` says of this plugin (genbench.plugins.describe_plugin).
GENBENCH_DESCRIPTION = "mnist5k and digits (packaged), mnist, fashion-mnist, cifar10 (torchvision), 2-D toy sets"


@hookimpl
def register_datasets(register: Callable[[type[Any]], None]) -> None:
    for cls in (MNIST5k, Digits8x8, MNIST, FashionMNIST, CIFAR10, Ring, RingNamed, Grid, Spiral):
        register(cls)
