"""The figure interface: pictures of a cell's model, chosen by capability like metrics.

A figure is a class with a ``name``, the model capabilities and data kinds it needs
(:meth:`Figure.not_applicable`, as for metrics), an optional :meth:`Figure.on_epoch`
called after every training epoch (``every_epoch = True``), and a :meth:`Figure.draw`
that returns the files to save in the cell's folder. Built-in figures register through
the same hook as a plugin's (``register_figures``, :mod:`genbench.reporting.figures.builtin`).

The harness (:mod:`genbench.run.watch`) calls a figure with the model in ``eval()`` mode,
under ``torch.no_grad()``, with torch's random generator seeded with a seed of the
figure's own (the same at every call, so noise drawn in :meth:`Figure.on_epoch` is the
same fixed noise every epoch) and restored afterwards: a figure never changes the
training stream, so the numbers are the same with or without figures. A figure that
raises is noted in the record (``figure_notes``); the cell stays ``ok``: a picture is
not a result.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from PIL import Image

from genbench.datasets.base import DataInfo, DataKind, LoadedData
from genbench.models.base import Capability, GenerativeModel, NeedsModel, balanced_labels

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # figure names become file names: lower-case letters, digits, _
# Names of the files a cell writes itself (samples.png, curves.png, history.csv, checkpoint.pt, record.json):
# a figure of one of these names would overwrite them.
RESERVED = frozenset({"samples", "curves", "history", "checkpoint", "record"})


class FigureSkipped(Exception):
    """Raised by :meth:`Figure.draw` when there is nothing to draw; the reason is noted, not as a failure."""


@dataclass(frozen=True)
class Animation:
    """Frames of an animated figure, saved as an animated GIF (loops; the last frame is held longer)."""

    frames: tuple[Image.Image, ...]
    frame_ms: int = 500
    last_ms: int = 2000


Picture = Image.Image | Animation


@dataclass
class FigureContext:
    """What a figure may look at: the model (on ``device``), the data, the training so far.

    ``history`` is the per-epoch loss history and ``quality`` the quality curve
    (``[{"epoch": 3, "fid_domain": 41.2}, ...]``) as far as training went. In
    :meth:`Figure.draw`, ``complete`` says whether training finished: when it is
    False the cell diverged or failed after ``epoch`` epochs, and ``model`` may hold
    NaN weights (figures drawn from what :meth:`Figure.on_epoch` kept are still useful).
    """

    model: GenerativeModel
    dataset: LoadedData
    device: torch.device
    seed: int
    epochs: int  # epochs planned
    epoch: int = 0  # epochs finished
    history: list[dict[str, float]] = field(default_factory=list)
    quality: list[dict[str, float]] = field(default_factory=list)
    complete: bool = False

    @property
    def data(self) -> DataInfo:
        return self.dataset.info

    def labels(self, n: int) -> torch.Tensor | None:
        """Class-balanced labels 0, 1, ..., k-1, 0, ... on the device for a conditional model, else None."""
        k = self.data.num_classes
        if Capability.CONDITIONAL in type(self.model).capabilities and k:
            return balanced_labels(n, k, self.device)
        return None


class Figure(NeedsModel, abc.ABC):
    """Base class of figure plugins.

    ``draw`` returns ``{file name: picture}``: an ``Image`` is saved as PNG, an
    :class:`Animation` as GIF. Each file name is the figure's name, optionally
    followed by ``_<part>`` (lower-case letters and digits), then ``.png`` or
    ``.gif``: ``samples_over_training.png``, ``samples_over_training.gif``.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""  # a heading for reports ("Reconstructions"); the name when empty
    description: ClassVar[str] = ""  # one line: what the picture shows (reports use it as the caption)
    requires: ClassVar[frozenset[Capability]] = frozenset({Capability.SAMPLE})
    data_kinds: ClassVar[frozenset[DataKind]] = frozenset({"image", "points"})
    every_epoch: ClassVar[bool] = False  # call on_epoch after every epoch (keep it cheap: a small fixed batch)

    def on_epoch(self, ctx: FigureContext) -> None:
        """Keep what the picture needs after epoch ``ctx.epoch`` (CPU tensors); called only if ``every_epoch``."""

    @abc.abstractmethod
    def draw(self, ctx: FigureContext) -> dict[str, Picture]:
        """The files to save; raise :class:`FigureSkipped` with a reason when there is nothing to draw."""


def file_name_problem(figure: str, file_name: str, picture: object) -> str | None:
    """What is wrong with a file name ``draw`` returned, or None (names stay inside the cell folder)."""
    match = re.fullmatch(rf"{re.escape(figure)}(_[a-z0-9]+)?\.(png|gif)", file_name)
    if match is None:
        return f"file name {file_name[:60]!r}: expected {figure}.png, {figure}.gif or {figure}_<part>.png/.gif"
    expected = "gif" if isinstance(picture, Animation) else "png" if isinstance(picture, Image.Image) else None
    if expected is None:
        return f"{file_name}: expected a PIL image or an Animation, got {type(picture).__name__}"
    if match.group(2) != expected:
        return f"{file_name}: a {type(picture).__name__} is saved as .{expected}"
    if isinstance(picture, Animation) and not picture.frames:
        return f"{file_name}: an animation without frames"
    return None
