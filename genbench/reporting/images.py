"""Pictures saved for every cell: an 8x8 sample grid (or a scatter for 2-D data) and loss curves.

Drawn with Pillow (already a torchvision dependency) so no plotting library is needed.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from genbench.datasets.base import DataInfo
from genbench.results import atomic_save_image

PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207)]


def sample_grid(samples: torch.Tensor, scale: int = 2, columns: int = 8) -> Image.Image:
    """Up to 64 images, ``columns`` a row (whole rows only), upscaled ``scale`` times (nearest) for legibility.

    Class-balanced samples of a conditional model come in label order 0, 1, ..., k-1, 0, ...; with
    ``columns = k`` each column holds one class, as the lab reports lay out a cGAN's digits.
    """
    rows = max(1, 64 // columns)
    from torchvision.utils import make_grid  # torchvision loads when a picture is drawn, not for `genbench list`

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


def curve_groups(keys: list[str]) -> list[tuple[str, list[str]]]:
    """Logged keys grouped into panels: the losses together, D(x) with D(G(z)), every other key alone."""
    losses = [k for k in keys if k.startswith("loss")]
    d_keys: list[str] = [k for k in ("d_x", "d_g_z") if k in keys]
    groups: list[tuple[str, list[str]]] = [("losses", losses)] if losses else []
    if d_keys:
        groups.append(("D(x) and D(G(z))", d_keys))
    groups += [(k, [k]) for k in keys if k not in losses and k not in d_keys]
    return groups


def curves(
    history: list[dict[str, float]], quality: list[dict[str, float]] | None = None, width: int = 520, panel: int = 130
) -> Image.Image:
    """Line charts over the epochs, stacked: the losses in one panel, D(x) with D(G(z)) (0.5 marked, where
    D's output is a probability), each other logged value alone, then each quality-curve metric (dots at
    the epochs it was evaluated).

    ``history`` is one entry per epoch, or a step log whose entries carry their (fractional) ``epoch``:
    points are then placed at it, several per epoch.
    """
    keys = [k for k in history[0] if k not in X_KEYS] if history else []
    at = [float(h.get("epoch", i)) for i, h in enumerate(history, 1)]
    panels: list[tuple[str, list[tuple[str, list[tuple[float, float]]]]]] = []
    for title, group in curve_groups(keys):
        panels.append((title, [(k, [(x, h[k]) for x, h in zip(at, history, strict=True) if k in h]) for k in group]))
    quality_keys = list(dict.fromkeys(k for q in quality or [] for k in q if k != "epoch"))
    for key in quality_keys:
        points = [(q["epoch"], q[key]) for q in quality or [] if key in q and "epoch" in q]
        panels.append((f"quality: {key}", [(key, points)]))
    img = Image.new("RGB", (width, max(1, len(panels)) * panel), "white")
    draw = ImageDraw.Draw(img)
    epochs = max(1, math.ceil(max(at, default=1.0) - 1e-9))
    for i, (title, series) in enumerate(panels):
        _panel(draw, (60, i * panel, width - 12, (i + 1) * panel), title, series, epochs)
    return img


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    title: str,
    series: list[tuple[str, list[tuple[float, float]]]],
    epochs: int,
) -> None:
    left, top, right, bottom = box
    y0, y1 = top + 20, bottom - 14
    values = [v for _, pts in series for _, v in pts]
    if not values:
        return
    lo, hi = min(values), max(values)
    probability = title.startswith("D(") and lo >= 0 and hi <= 1
    if probability:
        lo, hi = min(lo, 0.5), max(hi, 0.5)
    rng = (hi - lo) or 1.0
    draw.rectangle((left, y0, right, y1), outline=(200, 200, 200))
    legend = "   ".join(f"{name} {pts[-1][1]:.4g}" for name, pts in series if pts)
    draw.text((4, top + 4), f"{title}  (last: {legend})", fill=(0, 0, 0))
    draw.text((4, y0), f"{hi:.3g}", fill=(90, 90, 90))
    draw.text((4, y1 - 10), f"{lo:.3g}", fill=(90, 90, 90))
    draw.text((left, y1 + 2), "epoch 1", fill=(90, 90, 90))
    draw.text((right - 50, y1 + 2), f"epoch {epochs}", fill=(90, 90, 90))

    xs = [x for _, pts in series for x, _ in pts]
    x_lo, x_hi = min(xs), max(xs, default=1.0)
    x_lo = min(x_lo, 1.0)

    def xy(epoch: float, v: float) -> tuple[float, float]:
        return left + (right - left) * (epoch - x_lo) / max(x_hi - x_lo, 1e-9), y1 - (y1 - y0) * (v - lo) / rng

    if probability:
        half = xy(1, 0.5)[1]
        for dash in range(left, right, 8):
            draw.line((dash, half, dash + 4, half), fill=(170, 170, 170))
    for j, (_, pts) in enumerate(series):
        colour = PALETTE[j % len(PALETTE)]
        line = [xy(e, v) for e, v in pts]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line if len(line) <= 60 else []:  # dots for a few points; a dense step log reads as a line
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)


def sample_columns(info: DataInfo, conditional: bool) -> int:
    """Columns of a sample sheet: conditional samples are class-balanced in label order, so one
    column per class (up to 16 classes); 8 otherwise."""
    k = info.num_classes or 0
    return k if conditional and 0 < k <= 16 else 8


def save_samples(samples: torch.Tensor, data: DataInfo, real: torch.Tensor, path: Path, columns: int = 8) -> None:
    """Write the cell's sample picture: a grid for images (``columns`` wide), a scatter over the data for points."""
    img = sample_grid(samples, columns=columns) if data.kind == "image" else scatter(real, samples)
    atomic_save_image(img, path)
