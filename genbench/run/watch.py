"""What a cell watches while it trains: its figures (pictures) and its quality curve (numbers).

:class:`Watch` is created by the cell once the model is built. After every epoch
(:meth:`Watch.on_epoch`) it feeds the figures that draw from every epoch and, at the
epochs :func:`quality_epochs` picks, evaluates a quick metric; after training
(:meth:`Watch.finish`) it draws every figure that applies and writes its files.

Nothing here changes the numbers: each call runs with the model in ``eval()`` mode and
torch's random generators forked and seeded with a fixed seed (restored afterwards, so
the training stream is the one a run without figures draws), and the time spent is
kept out of the ``train`` phase's clock, in phases of its own (``figures``,
``quality``). A figure that raises is noted in ``record.figure_notes`` and the cell
stays ``ok``: a picture is not a result. The curve's points cost one small evaluation
each; one that fails is noted in ``record.metric_notes["quality_curve"]``, never fatal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from genbench.datasets.base import LoadedData
from genbench.errors import GenbenchError
from genbench.metrics.base import EvalContext, Metric
from genbench.metrics.features import BackboneFeatures
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry
from genbench.protocol import CellRecord, PhaseTiming, Protocol
from genbench.reporting.figures.base import Animation, Figure, FigureContext, FigureSkipped, Picture, file_name_problem
from genbench.results import atomic_path
from genbench.run.contract import draw_samples, one_line
from genbench.run.guard import CellGuard, raised_by_plugin
from genbench.run.train import NUMERICAL_ERRORS, Diverged, numerical_reason

CURVE_SAMPLES = 200  # generated samples per point of the quality curve (the table's metrics use --eval-samples)
QUALITY_METRICS = ("fid", "modes", "hist2d")  # the quick metrics; each point evaluates those that apply
CURVE_BACKBONE = "domain"  # FID on the curve: the domain classifier (trained once per dataset, cached)
CURVE_SEED = 2_000_003  # added to the cell seed: the curve's noise, the same at every point
QUALITY_NOTE = "quality_curve"
METRIC_FAILURES: tuple[type[Exception], ...] = (Diverged, *NUMERICAL_ERRORS)  # a point's number blew up


def quality_epochs(every: int | None, epochs: int) -> list[int]:
    """The epochs after which the curve is evaluated: 1, 1+K, 1+2K, ... and the last; none for K = 0.

    ``every=None`` (the default) takes K = ceil((epochs - 1) / 3): about four points
    whatever the budget (1, 3, 5 for 5 epochs; 1, 18, 35, 50 for 50).
    """
    if every == 0 or epochs < 1:
        return []
    k = every if every is not None else max(1, math.ceil((epochs - 1) / 3))
    return sorted({*range(1, epochs + 1, k), epochs})


def figure_seed(seed: int, name: str) -> int:
    """A figure's own seed: fixed per cell and figure (crc32 of the name), so its noise is the same every epoch."""
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63


@contextlib.contextmanager
def isolated(model: GenerativeModel, device: torch.device, seed: int) -> Iterator[None]:
    """Run the body in eval mode, without gradients, on random streams seeded with ``seed`` and then restored.

    torch's CPU and device generators, Python's and NumPy's global ones are all put back (a
    DataLoader draws from torch's even without workers), and so is every module's train/eval mode.
    """
    modes = [(m, m.training) for m in model.modules()]
    devices = (
        [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else []
    )
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            model.eval()
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        for module, training in modes:
            module.training = training


class QualityProbe:
    """The quality curve: the quick metrics on :data:`CURVE_SAMPLES` samples of the model as it trains.

    Every point draws the same noise (seeded with the cell seed + :data:`CURVE_SEED`) and
    compares with the same reference as the cell's final evaluation, whose statistics
    are cached: FID (on the domain backbone) for labelled images, the toy metrics for 2-D
    points. FID from 200 samples is biased upwards against the table's FID from
    ``--eval-samples``: read the curve's shape, compare its points with each other.
    """

    def __init__(
        self,
        ctx: FigureContext,
        protocol: Protocol,
        record: CellRecord,
        autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.ctx, self.record = ctx, record
        self.autocast = autocast  # --precision: the curve's samples are drawn as the evaluation's are
        self.due = set(quality_epochs(protocol.eval_every, ctx.epochs))
        registry = get_registry()
        model_cls, info = type(ctx.model), ctx.data
        self.metrics: list[Metric] = []
        for name in QUALITY_METRICS:
            if name in registry.metrics and registry.metric(name)().not_applicable(model_cls, info) is None:
                self.metrics.append(registry.metric(name)())
        self.protocol = dataclasses.replace(protocol, backbones=(CURVE_BACKBONE,), reference_stats=None)
        split = ctx.dataset.split(protocol.reference_split)
        self.reference = split.head(protocol.n_reference(len(split)))
        self.n = min(CURVE_SAMPLES, protocol.eval_samples)
        self.timing = PhaseTiming(0.0)
        if self.due and not self.metrics:
            self.stop(f"no quick metric ({', '.join(QUALITY_METRICS)}) applies to {model_cls.name} on {info.name}")

    def stop(self, why: str) -> None:
        self.due = set()
        self.record.metric_notes[QUALITY_NOTE] = f"not computed: {why}"

    def on_epoch(self, epoch: int) -> None:
        """A point after ``epoch`` if it is due; the last epoch's comes from the evaluation (:meth:`last`)."""
        if epoch in self.due and epoch < self.ctx.epochs:
            self._point(epoch, None)

    def last(self, evaluated: EvalContext) -> None:
        """The point after the last epoch, from the first samples of the cell's evaluation: the features
        the evaluation extracted are reused, so it costs no network pass."""
        if self.ctx.epochs not in self.due:
            return
        n = min(self.n, len(evaluated.samples))
        memo: dict[str, Any] = {}
        key = f"features:{CURVE_BACKBONE}"
        if isinstance(evaluated.memo.get(key), BackboneFeatures):
            f = evaluated.memo[key]
            memo[key] = dataclasses.replace(f, generated={layer: t[:n] for layer, t in f.generated.items()})
        labels = None if evaluated.sample_labels is None else evaluated.sample_labels[:n]
        first = dataclasses.replace(
            evaluated, samples=evaluated.samples[:n], reference=self.reference, protocol=self.protocol,
            sample_labels=labels, memo=memo,
        )  # fmt: skip
        self._point(self.ctx.epochs, first)

    def _point(self, epoch: int, evaluated: EvalContext | None) -> None:
        start = time.perf_counter()
        try:
            with isolated(self.ctx.model, self.ctx.device, self.ctx.seed + CURVE_SEED):
                point = self._evaluate(epoch, evaluated or self._draw())
        except GenbenchError as exc:  # e.g. the domain backbone needs labelled images: no point will work
            self.stop(str(exc))
            return
        except Exception as exc:  # this point only (NaN samples mid-training, a sampler's bug): never fatal
            self.record.metric_notes[QUALITY_NOTE] = f"epoch {epoch}: {one_line(exc)}"
            return
        finally:
            self.timing.seconds += time.perf_counter() - start
        self.timing.items += 1
        if point:
            self.ctx.quality.append(point)

    def _draw(self) -> EvalContext:
        """:data:`CURVE_SAMPLES` samples of the model as it is, held to the sample contract."""
        ctx = self.ctx
        labels = ctx.labels(self.n)
        with self.autocast():
            samples = draw_samples(ctx.model, self.n, labels, ctx.data)
        return EvalContext(
            ctx.model, ctx.dataset, samples, self.reference, self.protocol, ctx.device, ctx.seed,
            None if labels is None else labels.cpu(),
        )  # fmt: skip

    def _evaluate(self, epoch: int, eval_ctx: EvalContext) -> dict[str, float]:
        """The quick metrics on ``eval_ctx`` (run on forked random streams: the training stream is untouched)."""
        point: dict[str, float] = {}
        for metric in self.metrics:
            try:
                values = metric.compute(eval_ctx)
            except METRIC_FAILURES as exc:
                self.record.metric_notes[QUALITY_NOTE] = f"epoch {epoch}: {metric.name}: {numerical_reason(exc)}"
                continue
            for key, value in values.items():
                number = float(value)
                if metric.better(key) is not None and math.isfinite(number):
                    point[key] = number
        return {"epoch": float(epoch), **point} if point else {}


class Watch:
    """A cell's figures and quality curve: fed after every epoch, drawn and written when training ends."""

    def __init__(
        self,
        model: GenerativeModel,
        dataset: LoadedData,
        device: torch.device,
        seed: int,
        epochs: int,
        protocol: Protocol,
        record: CellRecord,
        out_dir: Path,
        guard: CellGuard | None = None,
        autocast: Callable[[], AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.record, self.out_dir, self.guard = record, out_dir, guard
        record.quality = []
        self.ctx = FigureContext(model, dataset, device, seed, epochs, history=record.history, quality=record.quality)
        self.timing = PhaseTiming(0.0)
        self.figures: list[Figure] = []
        for name, entry in get_registry().figures.items():
            figure = self._call(name, lambda cls=entry.cls: cls())
            if figure is None:
                continue
            reason = self._call(name, lambda f=figure: f.not_applicable(type(model), dataset.info) or "")
            if reason is None:
                continue
            if reason:
                record.figure_notes[name] = f"not applicable: {reason}"
            else:
                self.figures.append(figure)
        self.applied = len(self.figures)
        self.quality = QualityProbe(self.ctx, protocol, record, autocast)  # figures draw in fp32 (plugin code)

    def elapsed(self) -> float:
        """Seconds spent on figures and the quality curve so far (kept out of the train phase's clock)."""
        return self.timing.seconds + self.quality.timing.seconds

    def on_epoch(self, epoch: int) -> None:
        """After epoch ``epoch``: feed the every-epoch figures, evaluate the curve if this epoch is due."""
        self.ctx.epoch = epoch
        start = time.perf_counter()
        for figure in [f for f in self.figures if f.every_epoch]:
            with isolated(self.ctx.model, self.ctx.device, figure_seed(self.ctx.seed, figure.name)):
                fed = self._call(figure.name, lambda f=figure: f.on_epoch(self.ctx))
            if fed is None:  # it failed: noted, and not fed or drawn again
                self.figures.remove(figure)
        self.timing.seconds += time.perf_counter() - start
        self.quality.on_epoch(epoch)

    def finish(self, complete: bool, evaluated: EvalContext | None = None) -> None:
        """The curve's last point (from the cell's evaluation, when there was one), then draw every figure
        and write its files (listed in ``record.artifacts`` and ``record.figures``)."""
        self.ctx.complete = complete
        if evaluated is not None:
            self.quality.last(evaluated)
        start = time.perf_counter()
        try:
            for figure in self.figures:
                if self.guard is not None:
                    self.guard.check()
                self._draw(figure)
        finally:
            self.timing.seconds += time.perf_counter() - start
            if self.applied:
                self.record.timings["figures"] = self.timing
            if self.quality.timing.items:
                self.record.timings["quality"] = self.quality.timing

    # -- internals ---------------------------------------------------------------------------------
    def _call(self, name: str, fn: Any) -> Any:
        """``fn()``, or None with the failure noted (plugin code: anything it raises, SystemExit included)."""
        try:
            result = fn()
            return True if result is None else result
        except FigureSkipped as exc:
            self.record.figure_notes[name] = f"not drawn: {exc}"
        except Exception as exc:
            self.record.figure_notes[name] = f"failed: {one_line(exc)}"
        except (SystemExit, KeyboardInterrupt) as exc:
            if self.guard is not None and self.guard.sigint_seen:
                raise  # the user's Ctrl-C
            self.record.figure_notes[name] = f"failed: {raised_by_plugin(exc)}"
        return None

    def _draw(self, figure: Figure) -> None:
        with isolated(self.ctx.model, self.ctx.device, figure_seed(self.ctx.seed, figure.name)):
            pictures = self._call(figure.name, lambda: figure.draw(self.ctx))
        if pictures is None:
            return
        if not isinstance(pictures, dict) or not pictures:
            self.record.figure_notes[figure.name] = "failed: draw() returned no {file name: picture} mapping"
            return
        problems = [p for name, pic in pictures.items() if (p := file_name_problem(figure.name, str(name), pic))]
        if problems:
            self.record.figure_notes[figure.name] = f"failed: {problems[0]}"
            return
        saved = []
        for file_name, picture in pictures.items():
            if self._call(figure.name, lambda f=file_name, p=picture: save_picture(p, self.out_dir / f)) is None:
                return
            self.record.artifacts[file_name] = f"cells/{self.record.cell_id}/{file_name}"
            saved.append(file_name)
        self.record.figures[figure.name] = saved


def save_picture(picture: Picture, path: Path) -> None:
    """An image as PNG, an :class:`Animation` as a looping GIF, written atomically."""
    with atomic_path(path) as tmp:
        if isinstance(picture, Animation):
            frames = [_gif_frame(f) for f in picture.frames]
            durations = [picture.frame_ms] * (len(frames) - 1) + [picture.last_ms]
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
        else:
            picture.save(tmp, format="PNG")  # optimize=True: 3x slower for a few % smaller


def _gif_frame(img: Image.Image) -> Image.Image:
    """A GIF frame: grey images stay grey, colour ones get an adaptive 256-colour palette."""
    if img.mode in ("L", "P"):
        return img
    return img.convert("RGB").quantize(colors=255, method=Image.Quantize.MEDIANCUT)
