"""Figures drawn from every epoch: samples over training, and GAN Lab's views of a GAN on 2-D data."""

from __future__ import annotations

from typing import ClassVar

import torch
from PIL import Image, ImageDraw

from genbench.models.base import Capability, GenerativeModel
from genbench.reporting import images
from genbench.reporting.figures import draw
from genbench.reporting.figures.base import Animation, Figure, FigureContext, FigureSkipped, Picture


def _points_panel(panel: draw.Panel, real: torch.Tensor, fake: torch.Tensor, caption: str) -> Image.Image:
    img = panel.canvas()
    draw.dots(img, panel.pixels(fake), draw.FAKE, 1.6)
    draw.dots(img, panel.pixels(real), (95, 95, 95), 1.6)
    draw.frame(img)
    ImageDraw.Draw(img).text((6, 4), caption, fill=draw.INK, font=draw.font(12))
    return img


class SamplesOverTraining(Figure):
    """The same noise and labels, drawn after every epoch: a row per epoch (up to 10) and a GIF of all."""

    name = "samples_over_training"
    title = "Samples over training"
    description = "the same noise (and labels) drawn after every epoch"
    every_epoch = True
    IMAGES: ClassVar[int] = 16  # per frame (two rows of 8; conditional: two rows of one per class)
    POINTS: ClassVar[int] = 500
    SHEET_ROWS: ClassVar[int] = 10
    GIF_FRAMES: ClassVar[int] = 40

    def __init__(self) -> None:
        self.frames: list[tuple[int, torch.Tensor]] = []

    def _columns(self, ctx: FigureContext) -> int:
        return images.sample_columns(ctx.data, ctx.labels(1) is not None)

    def on_epoch(self, ctx: FigureContext) -> None:
        n = self.POINTS if ctx.data.kind == "points" else 2 * self._columns(ctx)
        x = ctx.model.sample(n, ctx.labels(n))
        self.frames.append((ctx.epoch, x.float().cpu()))

    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        if not self.frames:
            raise FigureSkipped("no epoch finished")
        picks = [self.frames[i] for i in draw.spread(len(self.frames), self.GIF_FRAMES)]
        if ctx.data.kind == "points":
            real = ctx.dataset.split("test").x[: self.POINTS]
            panel = draw.Panel(draw.bounds(real), 360)
            frames = [_points_panel(panel, real, x, f"epoch {e}/{ctx.epochs}") for e, x in picks]
            thumb = draw.Panel(panel.box, 200)
            sheet_frames = [self.frames[i] for i in draw.spread(len(self.frames), 8)]
            sheet = draw.tile([_points_panel(thumb, real, x, f"epoch {e}") for e, x in sheet_frames], 4)
        else:
            columns, scale = self._columns(ctx), draw.upscale(ctx.data)
            small = max(1, scale // 2)  # GIF frames at half the scale: animations of noise compress badly
            frames = [draw.titled(draw.image_grid(x, columns, small), f"epoch {e}/{ctx.epochs}", 11) for e, x in picks]
            rows = [self.frames[i] for i in draw.spread(len(self.frames), self.SHEET_ROWS)]
            strip = draw.image_grid(torch.cat([x[:columns] for _, x in rows]), columns, scale)
            sheet = draw.label_rows(strip, [f"epoch {e}" for e, _ in rows])
        return {f"{self.name}.png": sheet, f"{self.name}.gif": Animation(tuple(frames), frame_ms=400)}


class GanLab(Figure):
    """GAN Lab's layered view of a GAN on 2-D data, after every epoch, as an animation.

    Background: the discriminator's output over the plane (green where it says real,
    purple where it says fake, white at 0.5). Grey-purple mesh: the generator's map of a
    grid of latent points (the first two latent dimensions over the prior's central
    range, the others 0), GAN Lab's "manifold". Green dots: real points; purple dots: the
    generator's points for a fixed noise.
    """

    name = "ganlab"
    title = "GAN Lab views"
    description = (
        "discriminator output over the plane (green: real, purple: fake), the generator's map of a latent "
        "grid (mesh), real (green) and generated (purple) points, after every epoch"
    )
    requires = frozenset({Capability.SAMPLE, Capability.DECODE, Capability.DISCRIMINATE})
    data_kinds = frozenset({"points"})
    every_epoch = True
    GRID: ClassVar[int] = 48  # discriminator heat map resolution
    MESH: ClassVar[int] = 15  # latent grid points per side
    POINTS: ClassVar[int] = 400
    PANEL: ClassVar[int] = 300
    GIF_FRAMES: ClassVar[int] = 40

    def __init__(self) -> None:
        self.box: tuple[float, float, float, float] | None = None
        self.frames: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]] = []  # epoch, D grid, fakes, mesh

    def not_applicable(self, model: type[GenerativeModel], data: draw.DataInfo) -> str | None:
        if Capability.CONDITIONAL in model.capabilities:
            return f"{self.name}: a conditional model's discriminator depends on the class; {model.name} is conditional"
        return super().not_applicable(model, data)

    def _mesh_latents(self, ctx: FigureContext, z: torch.Tensor) -> torch.Tensor:
        prior = ctx.model.latent_prior()
        reach = 1.0 if prior == "uniform" else 2.0 if prior == "normal" else float(z.std()) * 2 or 1.0
        axis = torch.linspace(-reach, reach, self.MESH, device=z.device)
        latents = torch.zeros(self.MESH * self.MESH, z.shape[1], device=z.device)
        grid = torch.cartesian_prod(axis, axis)
        latents[:, : min(2, z.shape[1])] = grid[:, : min(2, z.shape[1])]
        return latents

    def on_epoch(self, ctx: FigureContext) -> None:
        if self.box is None:
            self.box = draw.bounds(ctx.dataset.split("test").x[:2000], pad=0.25)
        x0, y0, x1, y1 = self.box
        model = ctx.model
        ys = torch.linspace(y1, y0, self.GRID, device=ctx.device)  # row 0 at the top
        xs = torch.linspace(x0, x1, self.GRID, device=ctx.device)
        plane = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
        z = model.sample_latent(self.POINTS)
        fakes = model.decode(z)
        mesh = model.decode(self._mesh_latents(ctx, z))
        scores = model.discriminate(plane.reshape(-1, *ctx.data.shape))
        parts = [scores.reshape(-1).float(), fakes.reshape(-1).float(), mesh.reshape(-1).float()]
        flat = torch.cat(parts).cpu()  # one device read per epoch
        d, f, m = flat.split([p.numel() for p in parts])
        self.frames.append((ctx.epoch, d.reshape(self.GRID, self.GRID), f.reshape(-1, 2), m.reshape(-1, 2)))

    def _panel(
        self, ctx: FigureContext, size: int, item: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> Image.Image:
        assert self.box is not None
        epoch, scores, fakes, mesh = item
        finite = scores[torch.isfinite(scores)]
        probability = bool(len(finite)) and float(finite.min()) >= 0 and float(finite.max()) <= 1
        lo, hi = (0.0, 1.0) if probability or not len(finite) else (float(finite.min()), float(finite.max()))
        panel = draw.Panel(self.box, size)
        img = draw.heat(scores, size, lo, hi)
        pen = ImageDraw.Draw(img)
        grid = panel.pixels(mesh)
        if len(grid) == self.MESH * self.MESH:  # lines along both latent axes
            for i in range(self.MESH):
                pen.line([grid[i * self.MESH + j] for j in range(self.MESH)], fill=(150, 120, 160), width=1)
                pen.line([grid[j * self.MESH + i] for j in range(self.MESH)], fill=(150, 120, 160), width=1)
        draw.dots(img, panel.pixels(fakes), draw.FAKE, 1.6)
        draw.dots(img, panel.pixels(ctx.dataset.split("test").x[: self.POINTS]), draw.REAL, 2.0)
        draw.frame(img)
        pen.text((6, 4), f"epoch {epoch}/{ctx.epochs}", fill=draw.INK, font=draw.font(12))
        return img

    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        if not self.frames:
            raise FigureSkipped("no epoch finished")
        frames = [self._panel(ctx, self.PANEL, self.frames[i]) for i in draw.spread(len(self.frames), self.GIF_FRAMES)]
        sheet = [self._panel(ctx, 220, self.frames[i]) for i in draw.spread(len(self.frames), 6)]
        return {f"{self.name}.png": draw.tile(sheet, 3), f"{self.name}.gif": Animation(tuple(frames), frame_ms=350)}
