"""Small building blocks shared by the built-in models."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from genbench.datasets.base import DataInfo


def mlp(sizes: Sequence[int], act: type[nn.Module] = nn.ReLU, slope: float | None = None) -> nn.Sequential:
    """Linear layers of ``sizes`` with an activation between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(slope) if slope is not None else act())
    return nn.Sequential(*layers)


def flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1)


def unflat(x: torch.Tensor, data: DataInfo) -> torch.Tensor:
    return x.reshape(x.shape[0], *data.shape)


def decoded(out: torch.Tensor, data: DataInfo) -> torch.Tensor:
    """Decoder logits -> data: sigmoid into [0, 1] for images, raw for points; reshaped to the data's shape."""
    return unflat(torch.sigmoid(out) if data.kind == "image" else out, data)


def to_signed(x: torch.Tensor, data: DataInfo) -> torch.Tensor:
    """Map data to the range GAN generators produce: images [0,1] -> [-1,1]; points unchanged."""
    return x * 2 - 1 if data.kind == "image" else x


def from_signed(x: torch.Tensor, data: DataInfo) -> torch.Tensor:
    """Inverse of :func:`to_signed` for generator outputs (tanh for images, linear for points)."""
    return (torch.tanh(x) + 1) / 2 if data.kind == "image" else x


def dcgan_init(module: nn.Module) -> None:
    """Weights ~ N(0, 0.02), batch-norm scale ~ N(1, 0.02): the DCGAN paper's initialisation."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
