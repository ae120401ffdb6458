"""Figures: plugins chosen by capability, fed every epoch without touching the numbers, noted when they fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from PIL import Image

import genbench
from genbench.cli import main
from genbench.folder import intact
from genbench.models.base import Capability
from genbench.plugins import get_registry, load_registry
from genbench.protocol import Protocol
from genbench.reporting.figures.latent import project, slerp
from genbench.run.runner import RunRequest, run_grid
from genbench.run.watch import quality_epochs

from .conftest import FakeModels, TinyModel

BUILTIN_FIGURES = "genbench.reporting.figures.builtin"


class MeanImage(genbench.Figure):
    """A third-party figure: the mean of 64 samples."""

    name = "mean_image"
    title = "Mean sample"
    description = "the mean of 64 samples"
    data_kinds = frozenset({"image"})

    def draw(self, ctx: genbench.FigureContext) -> dict[str, Any]:
        mean = ctx.model.sample(64, ctx.labels(64)).float().mean(0)[0].cpu()
        return {"mean_image.png": Image.fromarray((mean.clamp(0, 1) * 255).byte().numpy(), "L")}


class Broken(genbench.Figure):
    name = "broken"
    every_epoch = True

    def on_epoch(self, ctx: genbench.FigureContext) -> None:
        raise RuntimeError("boom in on_epoch")

    def draw(self, ctx: genbench.FigureContext) -> dict[str, Any]:
        raise AssertionError("not drawn after on_epoch failed")


class Escaping(genbench.Figure):
    name = "escaping"

    def draw(self, ctx: genbench.FigureContext) -> dict[str, Any]:
        return {"../../evil.png": Image.new("L", (2, 2))}


class Exiting(genbench.Figure):
    name = "exiting"

    def draw(self, ctx: genbench.FigureContext) -> dict[str, Any]:
        raise SystemExit(3)


class NeedsEncoder(genbench.Figure):
    name = "needs_encoder"
    requires = frozenset({Capability.ENCODE})

    def draw(self, ctx: genbench.FigureContext) -> dict[str, Any]:
        raise AssertionError("never drawn for a model without an encoder")


class FigurePlugin:
    def __init__(self, *classes: type[Any]) -> None:
        self.classes = classes

    @genbench.hookimpl
    def register_figures(self, register: Callable[[type[Any]], None]) -> None:
        for cls in self.classes:
            register(cls)


class DivergesLater(TinyModel):
    """Trains one epoch, then its loss becomes NaN."""

    name = "diverges_later"

    def __init__(self, hp: Any, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        self.steps = 0

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        self.steps += 1
        out = dict(super().train_step(x, y))
        if self.steps > 1497 // 64:  # past the first epoch of digits at batch 64
            out["loss"] = out["loss"] * float("nan")
        return out


def request(out: Path, cache: Path, models: tuple[str, ...], **protocol: Any) -> RunRequest:
    kw: dict[str, Any] = {"eval_samples": 200, "epochs": 2, "cache_dir": cache, "device": "cpu"}
    kw.update(protocol)
    dataset = kw.pop("dataset", "digits")
    return RunRequest(models, Protocol(dataset, kw.pop("metrics", ("fid",)), **kw), out)


@pytest.fixture
def figure_plugin(use_plugin: Callable[[object, str], None]) -> None:
    use_plugin(FakeModels(TinyModel, DivergesLater), "test-models")
    use_plugin(FigurePlugin(MeanImage, Broken, Escaping, Exiting, NeedsEncoder), "test-figures")


@pytest.fixture
def without_builtin_figures() -> Iterator[Callable[[], None]]:
    """Remove the built-in figures from the registry on request; they are put back afterwards."""
    registry = get_registry()

    def remove() -> None:
        registry.remove_plugin(BUILTIN_FIGURES)

    try:
        yield remove
    finally:
        if BUILTIN_FIGURES not in {p.name for p in registry.plugins}:
            import importlib

            assert registry.add_plugin(BUILTIN_FIGURES, lambda: importlib.import_module(BUILTIN_FIGURES), "built-in")


def test_a_plugin_figure_is_drawn_listed_and_checked_and_failing_figures_leave_the_cell_ok(
    tmp_path: Path, cache_dir: Path, figure_plugin: None
) -> None:
    out = tmp_path / "run"
    (record,) = run_grid(request(out, cache_dir, ("tiny",))).records
    assert record.status == "ok", record.error
    assert record.figures["mean_image"] == ["mean_image.png"]
    assert record.artifacts["mean_image.png"] == f"cells/{record.cell_id}/mean_image.png"
    assert "mean_image.png" in record.checksums and (out / record.artifacts["mean_image.png"]).is_file()
    notes = record.figure_notes
    assert notes["broken"] == "failed: RuntimeError: boom in on_epoch"
    assert notes["escaping"].startswith("failed: file name '../../evil.png': expected escaping.png")
    assert notes["exiting"] == "failed: SystemExit raised by plugin code: 3"
    assert notes["needs_encoder"] == "not applicable: needs_encoder needs a model that can encode; tiny cannot"
    assert not list(tmp_path.rglob("evil.png"))
    assert intact(out, record)  # --resume checks the figures' files like every other artifact
    again = run_grid(RunRequest(("tiny",), request(out, cache_dir, ("tiny",)).protocol, out, resume=True)).records
    assert again[0].attempt == record.attempt  # reused: its figures are intact


def test_list_figures_shows_the_builtins_and_a_plugins_figures(
    capsys: pytest.CaptureFixture[str], figure_plugin: None
) -> None:
    assert main(["list", "figures", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["figures"]}
    for name in ("samples_over_training", "reconstructions", "interpolations", "latent_map", "ganlab"):
        assert rows[name]["origin"] == "built-in"
    assert rows["mean_image"]["origin"] == "test" and rows["mean_image"]["description"] == "the mean of 64 samples"
    assert rows["ganlab"]["requires"] == ["decode", "discriminate", "sample"] and rows["ganlab"]["data_kinds"] == [
        "points"
    ]


def test_bad_figure_classes_are_refused_by_name() -> None:
    class BadName(MeanImage):
        name = "Mean Image"

    class Duplicate(MeanImage):
        name = "reconstructions"

    class Overwriting(MeanImage):
        name = "samples"  # its samples.png would replace the cell's own

    registry = load_registry(entry_points=[])
    registry.add_plugin("bad-figures", lambda: FigurePlugin(BadName, Duplicate, Overwriting, dict), "test")
    problems = "\n".join(registry.problems)
    assert "figure 'Mean Image' has a name that is not a file name" in problems
    assert "figure 'reconstructions' is already registered by 'genbench.reporting.figures.builtin'" in problems
    assert "registered <class 'dict'>, which is not a Figure subclass" in problems
    assert "figure 'samples' uses a name of a file every cell writes; reserved: checkpoint, curves" in problems
    assert not {"Mean Image", "samples"} & set(registry.figures)


def test_figures_and_the_quality_curve_do_not_change_the_numbers(
    tmp_path: Path, cache_dir: Path, tiny_models: None, without_builtin_figures: Callable[[], None]
) -> None:
    """The tiny model trains on random noise: a figure or curve point drawing from the training stream
    would change every later loss. Both run on forked generators, so the numbers are the same without them."""
    watched = run_grid(request(tmp_path / "a", cache_dir, ("tiny",), epochs=3, eval_every=1)).records[0]
    assert watched.quality and watched.figures
    without_builtin_figures()
    plain = run_grid(request(tmp_path / "b", cache_dir, ("tiny",), epochs=3, eval_every=0)).records[0]
    assert not plain.quality and not plain.figures
    assert [h["loss"] for h in watched.history] == pytest.approx([h["loss"] for h in plain.history], rel=1e-6)
    assert watched.metrics["fid_domain"] == pytest.approx(plain.metrics["fid_domain"], rel=1e-6)
    assert watched.timings["figures"].seconds > 0 and "figures" not in plain.timings


def test_the_quality_curve_is_in_the_record_quality_csv_and_history_csv(
    tmp_path: Path, cache_dir: Path, tiny_models: None
) -> None:
    out = tmp_path / "run"
    (record,) = run_grid(request(out, cache_dir, ("tiny",), epochs=3, eval_every=1)).records
    assert [q["epoch"] for q in record.quality] == [1, 2, 3]
    assert all(q["fid_domain"] > 0 for q in record.quality)
    quality = pd.read_csv(out / "quality.csv")
    assert list(quality.columns) == ["cell", "model", "seed", "epoch", "metric", "value"]
    assert quality["epoch"].tolist() == [1, 2, 3] and set(quality["metric"]) == {"fid_domain"}
    history = pd.read_csv(out / "cells" / record.cell_id / "history.csv")
    assert history["fid_domain"].tolist() == pytest.approx([q["fid_domain"] for q in record.quality])
    assert record.timings["quality"].items == 3  # one per point, kept out of the train phase's clock


@pytest.mark.parametrize(
    ("every", "epochs", "expected"),
    [
        (None, 5, [1, 3, 5]),
        (None, 1, [1]),
        (None, 2, [1, 2]),
        (None, 50, [1, 18, 35, 50]),
        (1, 3, [1, 2, 3]),
        (4, 10, [1, 5, 9, 10]),
        (0, 10, []),
    ],
)
def test_quality_epochs(every: int | None, epochs: int, expected: list[int]) -> None:
    assert quality_epochs(every, epochs) == expected


def test_a_cell_that_diverges_keeps_the_figures_of_the_epochs_that_finished(
    tmp_path: Path, cache_dir: Path, figure_plugin: None
) -> None:
    out = tmp_path / "run"
    (record,) = run_grid(request(out, cache_dir, ("diverges_later",), epochs=3)).records
    assert record.status == "diverged"
    with Image.open(out / record.artifacts["samples_over_training.gif"]) as gif:
        assert gif.n_frames == 1  # epoch 1 finished, epoch 2 diverged
    assert [q["epoch"] for q in record.quality] == [1]


@pytest.mark.slow
def test_builtin_figures_for_an_autoencoder_and_a_gan_on_points(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "ae"
    (ae,) = run_grid(request(out, cache_dir, ("ae",), metrics=("recon_mse",))).records
    assert ae.status == "ok", ae.error
    assert set(ae.figures) == {"samples_over_training", "reconstructions", "interpolations", "latent_map"}
    for name in ("reconstructions.png", "interpolations.png", "latent_map.png", "samples_over_training.png"):
        with Image.open(out / ae.artifacts[name]) as img:
            assert img.width > 100 and img.height > 50
    with Image.open(out / ae.artifacts["samples_over_training.gif"]) as gif:
        assert gif.n_frames == 2
    assert ae.figure_notes["ganlab"].startswith("not applicable: ganlab needs points data")

    out = tmp_path / "gan"
    (gan,) = run_grid(request(out, cache_dir, ("gan",), dataset="toy2d", metrics=("modes",), epochs=3)).records
    assert gan.status == "ok", gan.error
    with Image.open(out / gan.artifacts["ganlab.gif"]) as gif:
        assert gif.n_frames == 3
    assert {"ganlab", "samples_over_training"} <= set(gan.figures)
    assert [q["epoch"] for q in gan.quality] == [1, 2, 3] and "modes_covered" in gan.quality[0]


def test_decode_and_discriminate_hooks_agree_with_sample() -> None:
    """``sample(n)`` is ``decode(sample_latent(n))`` for every built-in that DECODEs; D scores one value per example."""
    registry = load_registry(entry_points=[])
    info = genbench.DataInfo("digits", (1, 8, 8), "image", 10)
    checked = 0
    for name, entry in registry.models.items():
        cls = entry.cls
        if Capability.DECODE not in cls.capabilities or "image" not in cls.data_kinds:
            continue
        model = cls(genbench.hyper.build(cls.Hyper, {}, name, "image"), info).eval()  # 8x8: sides divide by 4
        with torch.no_grad():
            torch.manual_seed(0)
            drawn = model.sample(6)
            torch.manual_seed(0)
            decoded = model.decode(model.sample_latent(6))
            assert torch.allclose(drawn, decoded), name
            if Capability.DISCRIMINATE in cls.capabilities:
                assert model.discriminate(drawn).shape == (6,), name
        assert model.latent_prior() in ("normal", "uniform", "other")
        checked += 1
    assert checked >= 8


def test_slerp_keeps_the_norm_of_gaussian_latents_and_ends_at_the_endpoints() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, generator=g, dtype=torch.float64), torch.randn(4, 64, generator=g, dtype=torch.float64)
    b = b / b.norm(dim=1, keepdim=True) * a.norm(dim=1, keepdim=True)  # same norms: the path stays on the sphere
    path = slerp(a, b, torch.linspace(0, 1, 5, dtype=torch.float64))
    assert torch.allclose(path[:, 0], a) and torch.allclose(path[:, -1], b)
    assert torch.allclose(path.norm(dim=2), a.norm(dim=1, keepdim=True).expand(-1, 5))
    assert (((a + b) / 2).norm(dim=1) < a.norm(dim=1) * 0.9).all()  # what a straight line does instead


def test_latent_map_projection_is_direct_in_2d_and_pca_otherwise() -> None:
    codes = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 0.5]], dtype=torch.float64)
    xy, axes = project(codes)
    assert torch.equal(xy, codes) and axes == ("z1", "z2")
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(500, 5, generator=g, dtype=torch.float64) * torch.tensor([0.1, 0.1, 10.0, 0.1, 3.0])
    xy, axes = project(wide)
    assert axes[0].startswith("PC1 (9") and axes[1].startswith("PC2 (")  # 100/109.04 of the variance
    assert abs(torch.corrcoef(torch.stack([xy[:, 0], wide[:, 2]]))[0, 1]) > 0.99
