"""``genbench eval`` and ``genbench export`` as a new user meets them.

A folder of PNGs written by another tool and a TorchScript export of a genbench cell are
evaluated into a trained run's folder and appear in ``genbench table`` beside the trained
cells with the same protocol line; the export round trip reproduces the cell's metrics to
1e-6 (the round trip is the proof that eval draws what the cell drew). Bad input is one
line and exit status 2 before any evaluation, or a ``failed`` row when it shows only later.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import fields as dataclasses_fields
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genbench.cli import main
from genbench.protocol import Protocol
from genbench.reporting.table import load_table
from genbench.results import read_results
from genbench.run.data import load_data
from genbench.run.runner import RunRequest, run_grid

SAMPLES = 200
GRID = ("width=8", "gan.noise=uniform")  # small networks; gan draws z ~ U[-1, 1]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def protocol(cache_dir: Path) -> Protocol:
    return Protocol("digits", ("all",), eval_samples=SAMPLES, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """One run: dcgan, cdcgan (conditional) and gan (uniform noise), 1 epoch of digits, every metric."""
    from genbench.plugins import get_registry

    out = tmp_path_factory.mktemp("trained") / "run"
    p = Protocol("digits", tuple(get_registry().metrics), eval_samples=SAMPLES, epochs=1, cache_dir=cache_dir)
    result = run_grid(RunRequest(("dcgan", "cdcgan", "gan"), p, out, grid=GRID))
    assert [r.status for r in result.records] == ["ok", "ok", "ok"], [r.error for r in result.records]
    return out


@pytest.fixture
def run_copy(trained: Path, tmp_path: Path) -> Path:
    """A copy of the trained run, so that each test adds its own rows."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def records(run: Path) -> dict[str, dict]:  # type: ignore[type-arg]
    out = {}
    for cell in read_results(run)["cell"]:
        out[str(cell)] = json.loads((run / "cells" / str(cell) / "record.json").read_text(encoding="utf-8"))
    return out


def assert_same_metrics(ours: dict[str, float], theirs: dict[str, float], tolerance: float) -> None:
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert abs(ours[key] - value) <= tolerance * max(1.0, abs(value)), (key, ours[key], value)


# -- the round trip -----------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model", ["dcgan", "cdcgan", "gan"])
def test_export_round_trip_reproduces_the_cells_metrics(
    capsys: pytest.CaptureFixture[str], run_copy: Path, tmp_path: Path, cache_dir: Path, model: str
) -> None:
    cell = next(c for c, r in records(run_copy).items() if r["model"] == model)
    export = tmp_path / f"{model}.pt"
    code, _, err = cli(capsys, "export", str(run_copy / "cells" / cell), "-o", str(export))
    assert code == 0, err
    assert "--seed 0" in err
    code, _, err = cli(
        capsys, "eval", "--generator", str(export), "--out", str(run_copy), "--cache-dir", str(cache_dir)
    )
    assert code == 0, err
    recs = records(run_copy)
    (evaluated,) = [r for r in recs.values() if r["model"] == f"{model}-eval"]  # the default name, made distinct
    trained = recs[cell]
    assert evaluated["status"] == "ok" and evaluated["hyper"]["z_dim"] == trained["hyper"]["z_dim"]
    assert_same_metrics(evaluated["metrics"], trained["metrics"], 1e-6)  # the very samples the cell drew
    described = evaluated["extras"]["evaluated"]
    assert described["kind"] == "torchscript" and described["export"]["cell"] == cell
    assert described["z_dist"] == ("uniform" if model == "gan" else "normal")
    assert described["conditional"] == (model == "cdcgan")


@pytest.mark.slow
def test_evaluated_generators_appear_in_the_table_beside_trained_cells(
    capsys: pytest.CaptureFixture[str], run_copy: Path, tmp_path: Path, cache_dir: Path, trained: Path
) -> None:
    dcgan = next(c for c, r in records(run_copy).items() if r["model"] == "dcgan")
    export = tmp_path / "exported.pt"
    assert cli(capsys, "export", str(run_copy / "cells" / dcgan), "-o", str(export))[0] == 0
    # A folder of PNGs written by another tool: training digits with noise, 8-bit greyscale, zero-padded names.
    digits = load_data("digits", Path("unused")).split("train").x[:SAMPLES]
    folder = tmp_path / "other-tool"
    folder.mkdir()
    noisy = (digits + 0.1 * torch.rand(digits.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    for i, img in enumerate(noisy):
        Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8), mode="L").save(folder / f"{i:05d}.png")
    before = load_table(run_copy).protocol
    for args in (["--generator", str(export), "--name", "my-export"], ["--images", str(folder)]):
        code, out, err = cli(capsys, "eval", *args, "--out", str(run_copy), "--cache-dir", str(cache_dir))
        assert code == 0, err
    table = load_table(run_copy)
    assert table.protocol == before  # the same protocol line: the evaluations took the run's protocol
    models = [row[0] for row in table.rows]
    assert models == ["dcgan", "cdcgan", "gan", "my-export", "other-tool"]
    statuses = {row[0]: row[-1] for row in table.rows}
    assert statuses["other-tool"].startswith("ok")
    fid = table.headers.index("FID (domain)")
    fids = {row[0]: float(row[fid]) for row in table.rows}
    assert fids["other-tool"] < fids["my-export"]  # real digits beat a 1-epoch DCGAN
    code, out, _ = cli(capsys, "table", str(run_copy), "--format", "csv")
    assert code == 0 and "other-tool" in out and "my-export" in out

    # The same options into a fresh folder give the same protocol line.
    fresh = tmp_path / "fresh"
    code, _, err = cli(capsys, "eval", "--images", str(folder), "--out", str(fresh), "--dataset", "digits",
                       "--eval-samples", str(SAMPLES), "--cache-dir", str(cache_dir))  # fmt: skip
    assert code == 0, err
    assert load_table(fresh).protocol == load_table(trained).protocol

    # A --resume of the run keeps the evaluated rows.
    p = Protocol("digits", tuple(json.loads((run_copy / "run.json").read_text())["protocol"]["metrics"]),
                 eval_samples=SAMPLES, epochs=1, cache_dir=cache_dir)  # fmt: skip
    result = run_grid(RunRequest(("dcgan", "cdcgan", "gan"), p, run_copy, grid=GRID, resume=True))
    assert [r.model for r in result.records] == ["dcgan", "cdcgan", "gan", "my-export", "other-tool"]
    assert list(read_results(run_copy)["model"]) == ["dcgan", "cdcgan", "gan", "my-export", "other-tool"]


@pytest.mark.slow
def test_jpeg_files_are_flagged_lossy(capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path) -> None:
    digits = load_data("digits", Path("unused")).split("train").x[:SAMPLES]
    folder = tmp_path / "jpegs"
    folder.mkdir()
    for i, img in enumerate(digits):
        Image.fromarray((img[0].numpy() * 255).astype(np.uint8), mode="L").save(folder / f"{i:04d}.jpg", quality=90)
    out = tmp_path / "out"
    code, _, err = cli(capsys, "eval", "--images", str(folder), "--out", str(out), "--dataset", "digits",
                       "--eval-samples", str(SAMPLES), "--metrics", "fid", "--cache-dir", str(cache_dir))  # fmt: skip
    assert code == 0, err
    (record,) = records(out).values()
    assert (
        record["flags"][0] == f"lossy: {SAMPLES} of {SAMPLES} images are JPEG (compression changes FID, PNG is exact)"
    )
    assert load_table(out).rows[0][-1] == "ok; lossy"


def test_jpeg_data_named_png_is_lossy_and_png_is_not(tmp_path: Path) -> None:
    """Whether an image is JPEG is read from its content: JPEG data named .png is counted lossy."""
    from genbench.run.image_files import read_images

    info = load_data("digits", Path("unused")).info
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.new("L", (8, 8), 100).save(folder / f"{i}.png", format="JPEG" if i % 2 else "PNG")
    samples = read_images(folder, info, 4)
    assert (samples.lossy, samples.files) == (2, 4)


@pytest.mark.slow
def test_onnx_round_trip(capsys: pytest.CaptureFixture[str], run_copy: Path, tmp_path: Path, cache_dir: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    cell = next(c for c, r in records(run_copy).items() if r["model"] == "cdcgan")
    export = tmp_path / "g.onnx"
    assert cli(capsys, "export", str(run_copy / "cells" / cell), "-o", str(export))[0] == 0
    code, _, err = cli(
        capsys, "eval", "--generator", str(export), "--out", str(run_copy), "--cache-dir", str(cache_dir)
    )
    assert code == 0, err
    recs = records(run_copy)
    evaluated = next(r for r in recs.values() if r["extras"].get("evaluated", {}).get("kind") == "onnx")
    # onnxruntime's kernels differ from torch's in the last bits: the pixels, and so the metrics, to about 1e-4
    assert_same_metrics(evaluated["metrics"], recs[cell]["metrics"], 1e-3)


@pytest.mark.slow
def test_a_callable_generator_and_its_seeds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mygen_seeds.py").write_text(
        textwrap.dedent("""
        import torch

        def generate(n, labels, generator):
            return torch.rand(n, 1, 8, 8, generator=generator, device=generator.device)
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mygen_seeds", raising=False)
    out = tmp_path / "out"
    for seed in ("0", "1"):
        code, _, err = cli(capsys, "eval", "--generator", "mygen_seeds:generate", "--seed", seed, "--out", str(out),
                           "--dataset", "digits", "--eval-samples", str(SAMPLES), "--metrics", "fid,vendi",
                           "--cache-dir", str(cache_dir))  # fmt: skip
        assert code == 0, err
    table = load_table(out)
    assert len(table.rows) == 1 and table.seeds == 2  # two seeds of one generator: one row, mean ± std
    manifest = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert manifest["metric_bounds"]["fid_domain"] == {"low": 0.0, "high": None, "integer": False}  # as a run's
    fid = records(out)
    values = [r["metrics"]["fid_domain"] for r in fid.values()]
    assert values[0] != values[1] and all(math.isfinite(v) for v in values)


@pytest.mark.slow
def test_nan_after_the_trial_batch_is_a_failed_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mygen_late_nan.py").write_text(
        textwrap.dedent("""
        import torch

        def generate(n, labels, generator):
            out = torch.rand(n, 1, 8, 8, generator=generator, device=generator.device)
            return out if n == 2 else out * float("nan")  # fine on the trial batch of two, NaN afterwards
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "mygen_late_nan", raising=False)
    out = tmp_path / "out"
    args = ["--out", str(out), "--dataset", "digits", "--eval-samples", str(SAMPLES), "--metrics", "fid"]
    code, _, err = cli(capsys, "eval", "--generator", "mygen_late_nan:generate", *args, "--cache-dir", str(cache_dir))
    assert code == 1
    assert f"failed: samples: {SAMPLES * 64} of {SAMPLES * 64} values are NaN or infinite" in err
    row = read_results(out).iloc[0]
    assert (row["status"], row["model"]) == ("failed", "generate")
    assert row["error"].startswith("samples: ")


# -- export's latent contract: sample_latent may map its one draw (latent_from_noise) ------------------
DIGITS = {"name": "digits", "shape": [1, 8, 8], "kind": "image", "classes": 10}


def checkpoint(tmp_path: Path, name: str, model: torch.nn.Module, hyper: dict[str, object]) -> Path:
    """A cell folder holding what `genbench run` saves of a trained model (checkpoint.pt only)."""
    cell = tmp_path / f"{name}-cell"
    cell.mkdir()
    payload = {"model": name, "hyper": hyper, "seed": 3, "state_dict": model.state_dict(), "data": DIGITS}
    torch.save(payload, cell / "checkpoint.pt")
    return cell


def test_an_autoencoder_exports_the_gaussian_fitted_to_its_codes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """ae's sample_latent maps one randn draw onto the Gaussian fitted to its codes; the export traces that map
    (latent_from_noise) before decode, so the file fed the same draws gives the ae's very samples."""
    import genbench
    from genbench.models.autoencoders import AEHyper, AutoEncoder

    torch.manual_seed(0)
    model = AutoEncoder(AEHyper(z_dim=4), genbench.DataInfo("digits", (1, 8, 8), "image", 10))
    with torch.no_grad():  # codes far from N(0, I), as after training
        spread = torch.randn(4, 4)
        model.code_mean.copy_(torch.randn(4) * 3)
        model.code_second.copy_(spread @ spread.T + torch.outer(model.code_mean, model.code_mean))
    cell = checkpoint(tmp_path, "ae", model, {"z_dim": 4})
    code, _, err = cli(capsys, "export", str(cell), "-o", str(tmp_path / "ae.pt"))
    assert code == 0, err
    assert "z_dim 4 (normal)" in err
    model.eval()
    with torch.no_grad():
        torch.manual_seed(7)
        expected = model.sample(6)
        noise = torch.randn(6, 4, generator=torch.Generator().manual_seed(7))  # what genbench eval draws
        exported = torch.jit.load(str(tmp_path / "ae.pt"))(noise)
        torch.testing.assert_close(exported, expected, rtol=0, atol=1e-6)
        assert not torch.allclose(exported, model.decode(noise), atol=1e-3)  # the map is part of the file


def test_the_autoencoders_gaussian_follows_its_moments() -> None:
    """ae caches the Cholesky factor of its fitted Gaussian (so that an export holds it as a constant); the cache
    must follow every change of the moments: training, load_state_dict, a dtype or device move."""
    import genbench
    from genbench.models.autoencoders import AEHyper, AutoEncoder

    def fitted(model: AutoEncoder, noise: torch.Tensor) -> torch.Tensor:  # computed afresh, as before the cache
        mean, second = model.code_mean, model.code_second
        cov = second - torch.outer(mean, mean) + 1e-4 * torch.eye(len(mean), dtype=mean.dtype)
        return mean + noise @ torch.linalg.cholesky(cov).T

    torch.manual_seed(0)
    data = genbench.DataInfo("digits", (1, 8, 8), "image", 10)
    model, other = AutoEncoder(AEHyper(z_dim=4), data), AutoEncoder(AEHyper(z_dim=4), data)
    noise = torch.randn(6, 4)
    with torch.no_grad():
        first = model.latent_from_noise(noise)
        torch.testing.assert_close(first, fitted(model, noise))
    model.train_step(torch.rand(8, 1, 8, 8) * 5, None)  # codes far from N(0, I) move the moments
    with torch.no_grad():
        trained = model.latent_from_noise(noise)
        assert not torch.allclose(trained, first, atol=1e-4)
        torch.testing.assert_close(trained, fitted(model, noise))
        spread = torch.randn(4, 4)
        other.code_mean.copy_(torch.randn(4) * 3)
        other.code_second.copy_(spread @ spread.T + torch.outer(other.code_mean, other.code_mean))
        model.load_state_dict(other.state_dict())
        torch.testing.assert_close(model.latent_from_noise(noise), fitted(other, noise))
        model.double()
        torch.testing.assert_close(model.latent_from_noise(noise.double()), fitted(model, noise.double()))


def _builtin_decoders() -> list[str]:
    import genbench
    from genbench.plugins import get_registry

    models = get_registry().models
    return [
        n
        for n, e in models.items()
        if e.cls.__module__.startswith("genbench.models.") and genbench.Capability.DECODE in e.cls.capabilities
    ]


@pytest.mark.parametrize("suffix", [".pt", ".onnx"])
@pytest.mark.parametrize("name", _builtin_decoders())
def test_every_builtin_decoder_exports(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, suffix: str
) -> None:
    """Every built-in model with Capability.DECODE exports to TorchScript and to ONNX, and the file fed the noise
    genbench eval draws gives the model's samples (ae: its fitted Gaussian is a constant of the graph, for ONNX
    has no Cholesky)."""
    import genbench
    from genbench.hyper import build, to_dict
    from genbench.plugins import get_registry

    if suffix == ".onnx":
        pytest.importorskip("onnx")
        ort = pytest.importorskip("onnxruntime")
    cls = get_registry().model(name)
    fields = {f.name for f in dataclasses_fields(cls.Hyper)}
    small = {k: v for k, v in {"width": 8, "hidden": 32, "z_dim": 4}.items() if k in fields}
    data = genbench.DataInfo("digits", (1, 8, 8), "image", 10)
    torch.manual_seed(0)
    model = cls(build(cls.Hyper, small, name, "image"), data)
    if name == "ae":
        with torch.no_grad():  # codes far from N(0, I), as after training
            spread = torch.randn(4, 4)
            model.code_mean.copy_(torch.randn(4) * 3)
            model.code_second.copy_(spread @ spread.T + torch.outer(model.code_mean, model.code_mean))
    out = tmp_path / f"{name}{suffix}"
    code, _, err = cli(capsys, "export", str(checkpoint(tmp_path, name, model, to_dict(model.hp))), "-o", str(out))
    assert code == 0, err
    conditional = genbench.Capability.CONDITIONAL in cls.capabilities
    labels = torch.arange(6) % 10 if conditional else None
    model.eval()
    with torch.no_grad():
        torch.manual_seed(7)
        expected = model.sample(6, labels)
        noise = torch.randn(6, model.hp.z_dim, generator=torch.Generator().manual_seed(7))  # what eval draws
        inputs = (noise,) if labels is None else (noise, labels)
        if suffix == ".pt":
            script = torch.jit.load(str(out))
            got = script(*inputs)
            assert "cholesky" not in str(script.inlined_graph)  # a constant of the trained model, not an op
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
        else:
            session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            feed = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs, strict=True)}
            got = torch.from_numpy(session.run(None, feed)[0])
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-4)  # onnxruntime's kernels: the last bits


def test_export_refuses_a_latent_draw_it_cannot_redraw(
    use_plugin: Callable[[object, str], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A sample_latent that transforms its draw without saying how (latent_from_noise) cannot be reproduced."""
    import genbench
    from tests.conftest import FakeModels, TinyHyper, TinyModel

    class Scaled(TinyModel):
        name = "scaled"
        capabilities = frozenset({genbench.Capability.SAMPLE, genbench.Capability.DECODE})

        def sample_latent(self, n: int) -> torch.Tensor:
            return 2 * torch.randn(n, self.hp.z_dim, device=self.device)

        def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
            return torch.sigmoid(self.decoder(z)).reshape(len(z), *self.data.shape)

        def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
            return self.decode(self.sample_latent(n), labels)

    use_plugin(FakeModels(Scaled), "scaled-models")
    model = Scaled(TinyHyper(), genbench.DataInfo("digits", (1, 8, 8), "image", 10))
    out = tmp_path / "g.pt"
    code, _, err = cli(capsys, "export", str(checkpoint(tmp_path, "scaled", model, {"z_dim": 4})), "-o", str(out))
    assert code == 2
    assert err.startswith("error: model 'scaled': sample_latent is latent_from_noise of neither torch.randn"), err
    assert not out.exists()
