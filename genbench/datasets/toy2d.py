"""GAN-Lab-style 2-D distributions, generated on the fly (no files).

Labels are the index of the mixture component a point was drawn from, so mode
coverage can be measured; the spiral has no modes and no labels.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from genbench.datasets.base import Dataset, LoadOptions, Split

N_TRAIN, N_TEST = 10_000, 2_000


def ring(n: int, g: torch.Generator, modes: int = 8, radius: float = 2.0, std: float = 0.02) -> Split:
    """A ring of ``modes`` Gaussians (the classic 8-Gaussian mode-collapse test)."""
    k = torch.randint(modes, (n,), generator=g)
    angle = 2 * math.pi * k.float() / modes
    centres = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * radius
    return Split(centres + std * torch.randn(n, 2, generator=g), k)


def grid(n: int, g: torch.Generator, side: int = 5, spacing: float = 2.0, std: float = 0.05) -> Split:
    """A ``side`` x ``side`` grid of Gaussians centred on the origin."""
    k = torch.randint(side * side, (n,), generator=g)
    offset = (side - 1) / 2
    centres = torch.stack([(k // side).float() - offset, (k % side).float() - offset], 1) * spacing
    return Split(centres + std * torch.randn(n, 2, generator=g), k)


def spiral(n: int, g: torch.Generator, turns: float = 1.5, noise: float = 0.05) -> Split:
    """An Archimedean spiral arm with Gaussian noise, radius up to 2."""
    t = torch.rand(n, generator=g).sqrt()  # uniform density along the arm
    angle = 2 * math.pi * turns * t
    points = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * (2 * t).unsqueeze(1)
    return Split(points + noise * torch.randn(n, 2, generator=g), None)


class Toy2D(Dataset):
    """Base of the 2-D toy datasets; subclasses pick the generator function."""

    kind = "points"
    shape = (2,)
    generate: ClassVar[staticmethod]

    def load(self, options: LoadOptions) -> dict[str, Split]:
        g = torch.Generator().manual_seed(0)  # the same points on every machine and run
        return {"train": self.generate(N_TRAIN, g), "test": self.generate(N_TEST, g)}


class Ring(Toy2D):
    name = "toy2d"
    description = "2-D ring of 8 Gaussians (radius 2, std 0.02), labels = mode; same as toy2d-ring"
    num_classes = 8
    generate = staticmethod(ring)


class RingNamed(Ring):
    name = "toy2d-ring"


class Grid(Toy2D):
    name = "toy2d-grid"
    description = "2-D 5x5 grid of Gaussians (spacing 2, std 0.05), labels = mode"
    num_classes = 25
    generate = staticmethod(grid)


class Spiral(Toy2D):
    name = "toy2d-spiral"
    description = "2-D noisy spiral arm (1.5 turns), unlabelled"
    num_classes = None
    generate = staticmethod(spiral)
