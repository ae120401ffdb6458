"""GAN-Lab-style 2-D distributions, generated on the fly (no files).

Labels are the index of the mixture component a point was drawn from, so mode
coverage can be measured; the spiral has no modes and no labels. The mixtures
expose their components through :meth:`Toy2D.modes` (centres and per-mode std),
derived from the same module constants the generators use.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from genbench.datasets.base import Dataset, LoadOptions, Split

N_TRAIN, N_TEST = 10_000, 2_000

# One source of truth for the shapes of the distributions: the generators' defaults,
# the dataset descriptions and :meth:`Toy2D.modes` all read these.
RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
GRID_SIDE, GRID_SPACING, GRID_STD = 5, 2.0, 0.05
SPIRAL_TURNS, SPIRAL_NOISE = 1.5, 0.05


def ring_centres(k: torch.Tensor, modes: int = RING_MODES, radius: float = RING_RADIUS) -> torch.Tensor:
    """Centres (len(k), 2) of ring components ``k``: ``modes`` points evenly spaced on a circle."""
    angle = 2 * math.pi * k.float() / modes
    return torch.stack([torch.cos(angle), torch.sin(angle)], 1) * radius


def grid_centres(k: torch.Tensor, side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> torch.Tensor:
    """Centres (len(k), 2) of grid components ``k`` (row-major) on a ``side`` x ``side`` grid around the origin."""
    offset = (side - 1) / 2
    return torch.stack([(k // side).float() - offset, (k % side).float() - offset], 1) * spacing


def ring(
    n: int, g: torch.Generator, modes: int = RING_MODES, radius: float = RING_RADIUS, std: float = RING_STD
) -> Split:
    """A ring of ``modes`` Gaussians (the classic 8-Gaussian mode-collapse test)."""
    k = torch.randint(modes, (n,), generator=g)
    return Split(ring_centres(k, modes, radius) + std * torch.randn(n, 2, generator=g), k)


def grid(
    n: int, g: torch.Generator, side: int = GRID_SIDE, spacing: float = GRID_SPACING, std: float = GRID_STD
) -> Split:
    """A ``side`` x ``side`` grid of Gaussians centred on the origin."""
    k = torch.randint(side * side, (n,), generator=g)
    return Split(grid_centres(k, side, spacing) + std * torch.randn(n, 2, generator=g), k)


def spiral(n: int, g: torch.Generator, turns: float = SPIRAL_TURNS, noise: float = SPIRAL_NOISE) -> Split:
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

    @classmethod
    def modes(cls) -> tuple[torch.Tensor, float] | None:
        """The mixture's component centres and their common std, or None without discrete modes.

        Centres have shape (k, 2) and are in label order (row ``i`` is the centre of label ``i``);
        every component is an isotropic Gaussian with the returned standard deviation.
        """
        return None


class Ring(Toy2D):
    name = "toy2d"
    description = (
        f"2-D ring of {RING_MODES} Gaussians (radius {RING_RADIUS:g}, std {RING_STD:g}), "
        "labels = mode; same as toy2d-ring"
    )
    num_classes = RING_MODES
    generate = staticmethod(ring)

    @classmethod
    def modes(cls) -> tuple[torch.Tensor, float] | None:
        return ring_centres(torch.arange(RING_MODES)), RING_STD


class RingNamed(Ring):
    name = "toy2d-ring"
    description = Ring.description.replace("same as toy2d-ring", "same as toy2d")


class Grid(Toy2D):
    name = "toy2d-grid"
    description = (
        f"2-D {GRID_SIDE}x{GRID_SIDE} grid of Gaussians (spacing {GRID_SPACING:g}, std {GRID_STD:g}), labels = mode"
    )
    num_classes = GRID_SIDE * GRID_SIDE
    generate = staticmethod(grid)

    @classmethod
    def modes(cls) -> tuple[torch.Tensor, float] | None:
        return grid_centres(torch.arange(GRID_SIDE * GRID_SIDE)), GRID_STD


class Spiral(Toy2D):
    name = "toy2d-spiral"
    description = f"2-D noisy spiral arm ({SPIRAL_TURNS:g} turns), unlabelled"
    num_classes = None
    generate = staticmethod(spiral)
