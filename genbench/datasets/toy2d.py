"""GAN-Lab-style 2-D distributions, generated on the fly (no files).

Labels are the index of the mixture component a point was drawn from, so mode
coverage can be measured; the spiral has no modes and no labels. The mixtures
expose their components through :meth:`Toy2D.modes` (centres and per-mode std),
derived from the same module constants and functions the generators use.

The points are bit-identical on every machine by construction, because the
dataset fingerprint addresses every cache and FID built on them. torch's (and
numpy's) float kernels cannot promise that: ``torch.randn``, ``cos`` and ``sin``
pick a SIMD path per CPU (``ATEN_CPU_CAPABILITY=default`` gave other bits than
``avx2``; numpy's ``sin`` changes with its SIMD dispatch too), and glibc's
``sin``/``cos`` are IFUNCs that load an FMA build on CPUs with FMA (so does its
internal ``log``), and their code changes between glibc versions, so even
Python's ``math`` module is out (rounding its results to a coarser grid would
only make a mismatch rare: a value next to a grid boundary still flips). What
stays exact everywhere:

* integer arithmetic modulo 2**64 (numpy ``uint64`` wraps, it never saturates);
* the IEEE-754 basic operations ``+ - * /`` and ``sqrt`` on float64, each
  correctly rounded whatever the instruction set, as long as every operation
  is rounded on its own (numpy ufuncs are: one operation per pass, never fused
  into an FMA, and no reductions whose order could vary are used here);
* exact operations (``floor``, ``frexp``, int to float64 below 2**53) and the
  final round-to-nearest cast to float32.

So the random stream is SplitMix64 (Steele, Lea & Flood 2014; Vigna's
reference ``splitmix64.c``), a counter-based integer generator, and the
transcendental functions the distributions need (``log`` for Box-Muller's
radius, ``cos``/``sin`` for its angle, the ring's centres and the spiral's arm)
are fixed polynomials evaluated with those operations only: Taylor series on
an exactly reduced quarter turn and the ``atanh`` series of ``log``, accurate
to a few units in the last place of float64, far below the float32 the data is
stored in. The Gaussians are exact Box-Muller Gaussians (up to that accuracy),
so the distributions keep their shapes; only the draws differ from the
torch-generated data of earlier versions.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import torch

from genbench.datasets.base import Dataset, LoadOptions, Split

N_TRAIN, N_TEST = 10_000, 2_000
SEED = 0  # the SplitMix64 seed of every toy dataset: train is drawn first, then test

# One source of truth for the shapes of the distributions: the generators' defaults,
# the dataset descriptions and :meth:`Toy2D.modes` all read these.
RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.02
GRID_SIDE, GRID_SPACING, GRID_STD = 5, 2.0, 0.05
SPIRAL_TURNS, SPIRAL_NOISE = 1.5, 0.05

_U64 = np.uint64
_GOLDEN, _MIX1, _MIX2 = _U64(0x9E3779B97F4A7C15), _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
# Series coefficients as Python computes them (int / int true division is correctly rounded, no libm).
_SIN = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(12))  # sin t = t * sum c_j t^2j
_COS = tuple((-1) ** j / math.factorial(2 * j) for j in range(12))  # cos t = sum c_j t^2j
_ATANH = tuple(1 / (2 * j + 1) for j in range(12))  # atanh s = s * sum c_j s^2j
_HALF_PI = 1.5707963267948966  # float64 literals: parsed with correct rounding
_LN2 = 0.6931471805599453
_SQRT_HALF = 0.7071067811865476


class SplitMix64:
    """SplitMix64: output ``i`` (from 1) is ``mix(seed + i * golden)`` modulo 2**64.

    Its reference output for seed 1234567 starts 6457827717110365317, 3203168211198807973.
    Every value is integer arithmetic, so a seed gives the same stream on every machine.
    """

    def __init__(self, seed: int) -> None:
        self.state = seed % 2**64

    def raw(self, n: int) -> np.ndarray:
        """The next ``n`` outputs as uint64."""
        z = _U64(self.state) + np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN
        self.state = (self.state + n * int(_GOLDEN)) % 2**64
        z = (z ^ (z >> _U64(30))) * _MIX1
        z = (z ^ (z >> _U64(27))) * _MIX2
        return z ^ (z >> _U64(31))

    def uniform(self, n: int) -> np.ndarray:
        """``n`` float64 in [0, 1): the top 53 bits of each output times 2**-53 (exact)."""
        return (self.raw(n) >> _U64(11)).astype(np.float64) * 2.0**-53

    def integers(self, high: int, n: int) -> np.ndarray:
        """``n`` int64 in [0, high): the top 53 bits modulo ``high`` (bias below high / 2**53)."""
        return ((self.raw(n) >> _U64(11)) % _U64(high)).astype(np.int64)

    def normal(self, n: int) -> np.ndarray:
        """``(n, 2)`` standard normal float64, one Box-Muller pair per row."""
        u1 = 1.0 - self.uniform(n)  # (0, 1]: log never sees 0
        radius = np.sqrt(-2.0 * log(u1))
        cos, sin = cos_sin_turns(self.uniform(n))
        return np.stack([radius * cos, radius * sin], 1)


def _poly(x: np.ndarray, coeffs: tuple[float, ...]) -> np.ndarray:
    """``sum c_j x^j`` by Horner's rule, one rounded multiply and add per step."""
    acc = np.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * x + c
    return acc


def cos_sin_turns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cos(2 pi w)`` and ``sin(2 pi w)`` for float64 ``w`` (in turns), with exact range reduction.

    The fraction of a turn and its quarter are exact; the angle within the quarter
    is one rounded product, then Taylor series (error below 1e-18 on [0, pi/2]).
    """
    w = np.asarray(w, dtype=np.float64)
    quarters = (w - np.floor(w)) * 4.0
    quadrant = np.floor(quarters)
    t = (quarters - quadrant) * _HALF_PI
    t2 = t * t
    s, c = t * _poly(t2, _SIN), _poly(t2, _COS)
    q = quadrant.astype(np.int64)
    cos = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    sin = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    return cos, sin


def log(x: np.ndarray) -> np.ndarray:
    """Natural log of positive, normal float64 ``x``: ``e ln 2 + 2 atanh((m - 1) / (m + 1))``, m in [0.707, 1.414)."""
    m, e = np.frexp(np.asarray(x, dtype=np.float64))
    small = m < _SQRT_HALF
    m, e = np.where(small, m * 2.0, m), np.where(small, e - 1, e)
    s = (m - 1.0) / (m + 1.0)
    return e.astype(np.float64) * _LN2 + 2.0 * s * _poly(s * s, _ATANH)


def ring_centres(k: np.ndarray, modes: int = RING_MODES, radius: float = RING_RADIUS) -> np.ndarray:
    """Centres (len(k), 2), float64, of ring components ``k``: ``modes`` points evenly spaced on a circle."""
    cos, sin = cos_sin_turns(np.asarray(k, dtype=np.float64) / modes)
    return np.stack([cos, sin], 1) * radius


def grid_centres(k: np.ndarray, side: int = GRID_SIDE, spacing: float = GRID_SPACING) -> np.ndarray:
    """Centres (len(k), 2), float64, of grid components ``k`` (row-major) on a ``side`` x ``side`` grid."""
    k = np.asarray(k, dtype=np.int64)
    offset = (side - 1) / 2
    return np.stack([(k // side) - offset, (k % side) - offset], 1).astype(np.float64) * spacing


def _split(points: np.ndarray, labels: np.ndarray | None) -> Split:
    """float64 points rounded once to float32 (round to nearest even: exact everywhere)."""
    return Split(torch.from_numpy(points.astype(np.float32)), None if labels is None else torch.from_numpy(labels))


def ring(n: int, rng: SplitMix64, modes: int = RING_MODES, radius: float = RING_RADIUS, std: float = RING_STD) -> Split:
    """A ring of ``modes`` Gaussians (the classic 8-Gaussian mode-collapse test)."""
    k = rng.integers(modes, n)
    return _split(ring_centres(k, modes, radius) + std * rng.normal(n), k)


def grid(n: int, rng: SplitMix64, side: int = GRID_SIDE, spacing: float = GRID_SPACING, std: float = GRID_STD) -> Split:
    """A ``side`` x ``side`` grid of Gaussians centred on the origin."""
    k = rng.integers(side * side, n)
    return _split(grid_centres(k, side, spacing) + std * rng.normal(n), k)


def spiral(n: int, rng: SplitMix64, turns: float = SPIRAL_TURNS, noise: float = SPIRAL_NOISE) -> Split:
    """An Archimedean spiral arm with Gaussian noise, radius up to 2."""
    t = np.sqrt(rng.uniform(n))  # uniform density along the arm
    cos, sin = cos_sin_turns(turns * t)
    points = np.stack([cos, sin], 1) * (2.0 * t)[:, None]
    return _split(points + noise * rng.normal(n), None)


class Toy2D(Dataset):
    """Base of the 2-D toy datasets; subclasses pick the generator function."""

    kind = "points"
    shape = (2,)
    generate: ClassVar[staticmethod]

    def load(self, options: LoadOptions) -> dict[str, Split]:
        rng = SplitMix64(SEED)  # the same points on every machine and run (see the module docstring)
        return {"train": self.generate(N_TRAIN, rng), "test": self.generate(N_TEST, rng)}

    @classmethod
    def modes(cls) -> tuple[torch.Tensor, float] | None:
        """The mixture's component centres and their common std, or None without discrete modes.

        Centres have shape (k, 2), float32, and are in label order (row ``i`` is the centre of
        label ``i``); every component is an isotropic Gaussian with the returned standard deviation.
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
        return torch.from_numpy(ring_centres(np.arange(RING_MODES)).astype(np.float32)), RING_STD


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
        return torch.from_numpy(grid_centres(np.arange(GRID_SIDE * GRID_SIDE)).astype(np.float32)), GRID_STD


class Spiral(Toy2D):
    name = "toy2d-spiral"
    description = f"2-D noisy spiral arm ({SPIRAL_TURNS:g} turns), unlabelled"
    num_classes = None
    generate = staticmethod(spiral)
