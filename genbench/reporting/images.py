"""Pictures saved for every cell: an 8x8 sample grid (or a scatter for 2-D data) and loss curves.

Drawn with Pillow (already a torchvision dependency) so no plotting library is needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from genbench.datasets.base import DataInfo
from genbench.results import atomic_save_image

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def sample_grid(samples: torch.Tensor, scale: int = 2, columns: int = 8) -> Image.Image:
    """Up to 64 images, ``columns`` a row (whole rows only), upscaled ``scale`` times (nearest) for legibility.

    Class-balanced samples of a conditional model come in label order 0, 1, ..., k-1, 0, ...; with
    ``columns = k`` each column holds one class, as the lab reports lay out a cGAN's digits.
    """
    rows = max(1, 64 // columns)
    grid = make_grid(samples[: rows * columns].clamp(0, 1), nrow=columns, padding=2, pad_value=1.0)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    img = Image.fromarray(array.squeeze(2) if array.shape[2] == 1 else array)
    return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)


def scatter(real: torch.Tensor, fake: torch.Tensor, size: int = 400) -> Image.Image:
    """Real points in grey, generated points in red, on axes fitted to the real data."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    lo = real.min(0).values - 0.5
    hi = real.max(0).values + 0.5
    span = (hi - lo).max()

    def px(p: torch.Tensor) -> tuple[float, float]:
        u = (p - lo) / span * (size - 1)
        return float(u[0]), float(size - 1 - u[1])

    for points, colour in ((real[:2000], (170, 170, 170)), (fake[:2000], (214, 39, 40))):
        for p in points[torch.isfinite(points).all(1)]:
            x, y = px(p)
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=colour)
    draw.text((6, 4), "grey: data   red: samples", fill=(0, 0, 0))
    return img


X_KEYS = ("step", "epoch")  # position keys of a step log (genbench.run.train.TrainResult.steps), not curves


def curves(history: list[dict[str, float]], width: int = 480, panel: int = 110) -> Image.Image:
    """One small line chart per logged scalar, stacked, with its min/max and last value.

    ``history`` is one entry per epoch, or a step log whose entries carry their
    (fractional) ``epoch``: points are then placed at it, several per epoch.
    """
    keys = [k for k in history[0] if k not in X_KEYS] if history else []
    at = [h.get("epoch", j + 1) for j, h in enumerate(history)]
    x0, x1 = (0.0, max(at)) if history and "epoch" in history[0] else (1.0, float(len(history)))
    img = Image.new("RGB", (width, max(1, len(keys)) * panel), "white")
    draw = ImageDraw.Draw(img)
    for i, key in enumerate(keys):
        top = i * panel
        values = [h[key] for h in history]
        lo, hi = min(values), max(values)
        rng = (hi - lo) or 1.0
        left, right, y0, y1 = 50, width - 10, top + 18, top + panel - 12
        draw.rectangle((left, y0, right, y1), outline=(200, 200, 200))
        epochs = math.ceil(x1 - 1e-9)
        draw.text((4, top + 2), f"{key}  (last {values[-1]:.4g}, epochs 1-{epochs})", fill=(0, 0, 0))
        draw.text((4, y0), f"{hi:.3g}", fill=(90, 90, 90))
        draw.text((4, y1 - 10), f"{lo:.3g}", fill=(90, 90, 90))
        span = (x1 - x0) or 1.0
        pts = [
            (left + (right - left) * (x - x0) / span, y1 - (y1 - y0) * (v - lo) / rng)
            for x, v in zip(at, values, strict=True)
        ]
        colour = PALETTE[i % len(PALETTE)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        if len(pts) <= 60:  # dots for a few points; a dense step log reads better as a line
            for x, y in pts:
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    return img


def save_samples(samples: torch.Tensor, data: DataInfo, real: torch.Tensor, path: Path, columns: int = 8) -> None:
    """Write the cell's sample picture: a grid for images (``columns`` wide), a scatter over the data for points."""
    img = sample_grid(samples, columns=columns) if data.kind == "image" else scatter(real, samples)
    atomic_save_image(img, path)
