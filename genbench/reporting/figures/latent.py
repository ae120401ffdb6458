"""Figures of the trained model's latent space: reconstructions, interpolations, the latent map."""

from __future__ import annotations

from typing import ClassVar

import torch
from PIL import ImageDraw

from genbench.datasets.base import Split
from genbench.models.base import Capability
from genbench.reporting.figures import draw
from genbench.reporting.figures.base import Figure, FigureContext, FigureSkipped, Picture

BATCH = 500


def _trained(ctx: FigureContext) -> None:
    if not ctx.complete:
        raise FigureSkipped(f"training stopped after {ctx.epoch} of {ctx.epochs} epochs")


def _on_device(ctx: FigureContext, x: torch.Tensor) -> torch.Tensor:
    return x.to(ctx.device)


def class_pairs(split: Split, pairs: int) -> list[tuple[int, int]]:
    """Indices of ``pairs`` pairs of test examples; of different classes when the data is labelled."""
    n = len(split)
    if split.y is None:
        return [(2 * i, 2 * i + 1) for i in range(min(pairs, n // 2))]
    y = split.y.tolist()
    out: list[tuple[int, int]] = []
    used: set[int] = set()
    for a in range(n):
        if len(out) == pairs:
            break
        if a in used:
            continue
        b = next((j for j in range(a + 1, n) if j not in used and y[j] != y[a] and y[j] == (y[a] + 1) % 10), None)
        b = b if b is not None else next((j for j in range(a + 1, n) if j not in used and y[j] != y[a]), None)
        if b is not None:
            out.append((a, b))
            used |= {a, b}
    return out


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows of ``a`` and ``b`` at fractions ``t`` -> (pairs, steps, dim).

    Points of a high-dimensional N(0, I) lie near a sphere; a straight line between two
    of them passes through the low-norm centre the generator never saw (White 2016,
    "Sampling generative networks"). Falls back to a straight line for (anti)parallel pairs.
    """
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    cos = ((a / na.clamp_min(1e-12)) * (b / nb.clamp_min(1e-12))).sum(1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(cos)  # (pairs, 1)
    so = torch.sin(omega)
    t = t.view(1, -1, 1)
    ws = torch.where(so.unsqueeze(1) > 1e-6, torch.sin((1 - t) * omega.unsqueeze(1)) / so.unsqueeze(1), 1 - t)
    we = torch.where(so.unsqueeze(1) > 1e-6, torch.sin(t * omega.unsqueeze(1)) / so.unsqueeze(1), t)
    return ws * a.unsqueeze(1) + we * b.unsqueeze(1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Straight-line interpolation between rows of ``a`` and ``b`` -> (pairs, steps, dim)."""
    t = t.view(1, -1, 1)
    return (1 - t) * a.unsqueeze(1) + t * b.unsqueeze(1)


class Reconstructions(Figure):
    """Real test images above their reconstructions, as the VAE labs show them."""

    name = "reconstructions"
    title = "Reconstructions"
    description = "test images (real) above their reconstructions (recon)"
    requires = frozenset({Capability.RECONSTRUCT})
    data_kinds = frozenset({"image"})
    COLUMNS: ClassVar[int] = 8
    BLOCKS: ClassVar[int] = 2

    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        _trained(ctx)
        n = self.COLUMNS * self.BLOCKS
        real = ctx.dataset.split("test").x[:n]
        recon = ctx.model.reconstruct(_on_device(ctx, real)).float().cpu().reshape(real.shape)
        rows = []
        for b in range(self.BLOCKS):
            part = slice(b * self.COLUMNS, (b + 1) * self.COLUMNS)
            rows += [real[part], recon[part]]
        grid = draw.image_grid(torch.cat(rows), self.COLUMNS, draw.upscale(ctx.data))
        return {f"{self.name}.png": draw.label_rows(grid, ["real", "recon"] * self.BLOCKS)}


class Interpolations(Figure):
    """A row per pair: between two encoded test images (ENCODE), else between two random latent points.

    Encoded pairs are joined by straight lines in code space, with the real images at
    both ends of the row; random pairs from a Gaussian prior by slerp, from any other
    prior by straight lines. Conditional models keep one class per row.
    """

    name = "interpolations"
    title = "Latent interpolations"
    description = "a row per pair: decoded points on the path between two latent codes"
    requires = frozenset({Capability.DECODE})
    data_kinds = frozenset({"image"})
    PAIRS: ClassVar[int] = 6
    STEPS: ClassVar[int] = 8

    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        _trained(ctx)
        model, t = ctx.model, torch.linspace(0, 1, self.STEPS)
        capabilities = type(model).capabilities
        labels = None
        if Capability.ENCODE in capabilities:
            test = ctx.dataset.split("test")
            pairs = class_pairs(test.head(min(len(test), 500)), self.PAIRS)
            if not pairs:
                raise FigureSkipped("fewer than two test examples")
            first = test.x[[a for a, _ in pairs]]
            last = test.x[[b for _, b in pairs]]
            codes = model.encode(_on_device(ctx, torch.cat([first, last]))).float()
            a, b = codes.split(len(pairs))
            path, how = lerp(a, b, t.to(a.device)), "encoded test pairs, straight lines in code space"
        else:
            z = model.sample_latent(2 * self.PAIRS).float()
            a, b = z.split(self.PAIRS)
            spherical = model.latent_prior() == "normal"
            path = (slerp if spherical else lerp)(a, b, t.to(a.device))
            how = f"random latent pairs, {'slerp (Gaussian prior)' if spherical else 'straight lines'}"
            row_labels = ctx.labels(self.PAIRS)
            if row_labels is not None:
                labels = row_labels.repeat_interleave(self.STEPS)
        rows, steps = path.shape[0], path.shape[1]
        decoded = model.decode(path.reshape(rows * steps, -1), labels).float().cpu()
        decoded = decoded.reshape(rows, steps, *ctx.data.shape)
        if Capability.ENCODE in capabilities:
            white = torch.ones(rows, 1, *ctx.data.shape)
            decoded = torch.cat([first.unsqueeze(1), white, decoded, white, last.unsqueeze(1)], 1)
        columns = decoded.shape[1]
        grid = draw.image_grid(decoded.reshape(-1, *ctx.data.shape), columns, draw.upscale(ctx.data))
        return {f"{self.name}.png": draw.titled(grid, how, 12)}


class LatentMap(Figure):
    """Test codes as a scatter coloured by class: the 2-D latent directly, larger latents by PCA.

    PCA: the codes are centred and projected on their two leading principal axes (an
    SVD of the code matrix), the axes say how much of the codes' variance each keeps.
    """

    name = "latent_map"
    title = "Latent map"
    description = "test codes coloured by class: the 2-D latent directly, larger latents projected by PCA"
    requires = frozenset({Capability.ENCODE})
    POINTS: ClassVar[int] = 2000
    SIZE: ClassVar[int] = 420

    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        _trained(ctx)
        test = ctx.dataset.split("test").head(self.POINTS)
        codes = torch.cat([ctx.model.encode(_on_device(ctx, test.x[i : i + BATCH])).float().cpu()
                           for i in range(0, len(test), BATCH)])  # fmt: skip
        codes = codes.reshape(len(codes), -1).double()
        keep = torch.isfinite(codes).all(1)
        if not bool(keep.any()):
            raise FigureSkipped("every code is NaN or infinite")
        codes = codes[keep]
        y = None if test.y is None else test.y[keep]
        xy, axes = project(codes)
        panel = draw.Panel(draw.bounds(xy, 0.08), self.SIZE)
        img = panel.canvas()
        if y is None:
            draw.dots(img, panel.pixels(xy), draw.CLASS_COLOURS[0], 1.6)
        else:
            for c in sorted(set(y.tolist())):
                draw.dots(img, panel.pixels(xy[y == c]), draw.CLASS_COLOURS[c % len(draw.CLASS_COLOURS)], 1.6)
        draw.frame(img)
        pen = ImageDraw.Draw(img)
        pen.text((6, 4), f"x: {axes[0]}   y: {axes[1]}", fill=draw.INK, font=draw.font(12))
        if y is not None and ctx.data.num_classes:
            img = draw.class_legend(img, [str(c) for c in range(ctx.data.num_classes)])
        return {f"{self.name}.png": img}


def project(codes: torch.Tensor) -> tuple[torch.Tensor, tuple[str, str]]:
    """Codes (n, d) as 2-D points and the axes' names: as they are for d = 2, a class-free spread for
    d = 1 (y: the code's rank), else the first two principal components with their share of variance."""
    n, d = codes.shape
    if d == 2:
        return codes, ("z1", "z2")
    if d == 1:
        rank = torch.argsort(torch.argsort(codes[:, 0])).double() / max(1, n - 1)
        return torch.stack([codes[:, 0], rank], 1), ("z1", "rank of z1")
    centred = codes - codes.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    share = s.square() / s.square().sum().clamp_min(1e-300)
    xy = centred @ vh[:2].T
    return xy, (f"PC1 ({share[0]:.0%} of variance)", f"PC2 ({share[1]:.0%})")
