"""Drawing helpers for figures, with Pillow only (no plotting library): grids, labels, 2-D panels.

Images are drawn at an integer upscale (nearest neighbour) so that a 28x28 digit is
56 pixels wide in a file a person opens; reports shrink such block-scaled pictures
back losslessly (:func:`block_scale`) and let the browser upscale them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image, ImageDraw, ImageFont

from genbench.datasets.base import DataInfo

# Tableau 10: distinct on screen and in print, the usual class colours of scatter plots.
CLASS_COLOURS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip
INK = (40, 40, 40)
MUTED = (120, 120, 120)
REAL = (27, 120, 55)  # GAN Lab's colours: real data green, generated purple
FAKE = (118, 42, 131)
WHITE = (255, 255, 255)


@functools.lru_cache(maxsize=8)
def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (no system font is needed)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the bitmap font, one size
        return ImageFont.load_default()


def upscale(data: DataInfo) -> int:
    """The integer factor that draws one example about 56 pixels wide (2 for 28x28, 7 for 8x8, 1 from 56 up)."""
    side = max(data.shape[1:]) if len(data.shape) == 3 else 56
    return max(1, round(56 / side))


def image_grid(x: torch.Tensor, columns: int, scale: int, pad: int = 2) -> Image.Image:
    """Images ``(n, C, H, W)`` in [0, 1] as a grid ``columns`` wide on white, upscaled ``scale`` times."""
    from torchvision.utils import make_grid  # torchvision loads when a picture is drawn, not for `genbench list`

    grid = make_grid(x.float().clamp(0, 1).nan_to_num(0.0), nrow=columns, padding=pad, pad_value=1.0)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    img = Image.fromarray(array.squeeze(2) if array.shape[2] == 1 else array)
    img = img.convert("L") if x.shape[1] == 1 else img.convert("RGB")
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img


def text_width(text: str, size: int = 12) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return math.ceil(right - left)


def _blank(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A white canvas of ``size`` in ``img``'s mode (grey pictures stay one channel: smaller files)."""
    return Image.new("L", size, 255) if img.mode == "L" else Image.new("RGB", size, WHITE)


def _ink(img: Image.Image) -> int | tuple[int, int, int]:
    return INK[0] if img.mode == "L" else INK


def label_rows(img: Image.Image, labels: Sequence[str], size: int = 12) -> Image.Image:
    """``img`` with a white margin on its left holding one label per equal-height row."""
    margin = max((text_width(t, size) for t in labels), default=0) + 12
    out = _blank(img, (img.width + margin, img.height))
    out.paste(img if img.mode == out.mode else img.convert(out.mode), (margin, 0))
    draw = ImageDraw.Draw(out)
    row = img.height / max(1, len(labels))
    for i, text in enumerate(labels):
        draw.text((6, int(i * row + row / 2 - size / 2)), text, fill=_ink(out), font=font(size))
    return out


def titled(img: Image.Image, title: str, size: int = 13) -> Image.Image:
    """``img`` under a white band holding ``title``."""
    band = size + 10
    out = _blank(img, (max(img.width, text_width(title, size) + 12), img.height + band))
    out.paste(img if img.mode == out.mode else img.convert(out.mode), (0, band))
    ImageDraw.Draw(out).text((6, 4), title, fill=_ink(out), font=font(size))
    return out


def tile(images: Sequence[Image.Image], columns: int, gap: int = 8) -> Image.Image:
    """Images laid out ``columns`` to a row (cells as large as the largest image), on white."""
    w = max(i.width for i in images)
    h = max(i.height for i in images)
    rows = math.ceil(len(images) / columns)
    cols = min(columns, len(images))
    out = Image.new("RGB", (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap), WHITE)
    for k, img in enumerate(images):
        out.paste(img.convert("RGB"), ((k % columns) * (w + gap), (k // columns) * (h + gap)))
    return out


def spread(n: int, k: int) -> list[int]:
    """At most ``k`` indices of ``range(n)``, evenly spread, always the first and the last."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def bounds(points: torch.Tensor, pad: float = 0.15) -> tuple[float, float, float, float]:
    """A square box ``(x0, y0, x1, y1)`` around the finite ``points`` (n, 2), padded by ``pad`` of its side."""
    finite = points[torch.isfinite(points).all(1)]
    if not len(finite):
        return (-1.0, -1.0, 1.0, 1.0)
    lo, hi = finite.min(0).values, finite.max(0).values
    centre, side = (lo + hi) / 2, float((hi - lo).max()) or 1.0
    half = side * (0.5 + pad)
    return (float(centre[0]) - half, float(centre[1]) - half, float(centre[0]) + half, float(centre[1]) + half)


@dataclass(frozen=True)
class Panel:
    """A square picture of the plane: maps 2-D coordinates in ``box`` to pixels."""

    box: tuple[float, float, float, float]
    size: int = 360

    def pixels(self, points: torch.Tensor) -> list[tuple[float, float]]:
        x0, y0, x1, y1 = self.box
        p = points.detach().double().cpu()
        u = (p[:, 0] - x0) / (x1 - x0) * (self.size - 1)
        v = (1 - (p[:, 1] - y0) / (y1 - y0)) * (self.size - 1)
        keep = (
            torch.isfinite(u) & torch.isfinite(v) & (u > -50) & (u < self.size + 50) & (v > -50) & (v < self.size + 50)
        )
        return list(zip(u[keep].tolist(), v[keep].tolist(), strict=True))

    def canvas(self) -> Image.Image:
        return Image.new("RGB", (self.size, self.size), WHITE)


def dots(img: Image.Image, xy: Sequence[tuple[float, float]], colour: tuple[int, int, int], r: float = 1.8) -> None:
    draw = ImageDraw.Draw(img)
    for x, y in xy:
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)


def frame(img: Image.Image, colour: tuple[int, int, int] = (200, 200, 200)) -> None:
    ImageDraw.Draw(img).rectangle((0, 0, img.width - 1, img.height - 1), outline=colour)


def class_legend(img: Image.Image, names: Sequence[str], size: int = 11) -> Image.Image:
    """``img`` with a legend strip below: a coloured dot and a name per class."""
    items = [(CLASS_COLOURS[i % len(CLASS_COLOURS)], n) for i, n in enumerate(names)]
    width, x, rows = img.width, 6, 1
    for _, name in items:
        w = text_width(name, size) + 22
        if x + w > width:
            x, rows = 6, rows + 1
        x += w
    out = Image.new("RGB", (img.width, img.height + rows * (size + 8) + 6), WHITE)
    out.paste(img.convert("RGB"), (0, 0))
    draw = ImageDraw.Draw(out)
    x, y = 6, img.height + 6
    for colour, name in items:
        w = text_width(name, size) + 22
        if x + w > width:
            x, y = 6, y + size + 8
        draw.ellipse((x, y + 2, x + 9, y + 11), fill=colour)
        draw.text((x + 13, y), name, fill=INK, font=font(size))
        x += w
    return out


def heat(values: torch.Tensor, size: int, lo: float = 0.0, hi: float = 1.0) -> Image.Image:
    """A ``(rows, cols)`` grid of scores as a ``size``-pixel square: purple tint at ``lo``, white midway,
    green tint at ``hi`` (GAN Lab's discriminator colours). Row 0 is the top of the picture."""
    t = ((values.double() - lo) / ((hi - lo) or 1.0)).clamp(0, 1).nan_to_num(0.5)
    fake, real = torch.tensor((226.0, 205.0, 240.0)), torch.tensor((196.0, 233.0, 196.0))
    white = torch.tensor((255.0, 255.0, 255.0))
    w = (2 * t - 1).abs().sqrt().unsqueeze(-1)  # square root: D's small departures from 0.5 stay visible
    tint = torch.where((t >= 0.5).unsqueeze(-1), real, fake)
    rgb = (white * (1 - w) + tint * w).round().to(torch.uint8).numpy()
    return Image.fromarray(rgb, "RGB").resize((size, size), Image.Resampling.BILINEAR)
