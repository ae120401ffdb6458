"""Bad input to ``genbench eval`` and ``genbench export``: one line, exit status 2, nothing written.

Table-driven: each case builds its input in a temporary folder (images, TorchScript
files, modules, a run folder) and gives the arguments and the phrase the one-line error
must contain. None of them trains or evaluates anything: each problem is caught before.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from genbench.cli import main
from genbench.protocol import Protocol

Setup = Callable[[Path], list[str]]


def png(path: Path, size: tuple[int, int] = (8, 8), mode: str = "L", value: int = 128) -> None:
    colour = value if mode in ("L", "1") else (value, 0, 0) if mode == "RGB" else (value, value, value, 10)
    Image.new(mode, size, colour).save(path)


def folder(tmp: Path, n: int = 20, **kw: object) -> Path:
    out = tmp / "imgs"
    out.mkdir(exist_ok=True)
    for i in range(n):
        png(out / f"{i:03d}.png", **kw)  # type: ignore[arg-type]
    return out


class Wrapped(nn.Module):
    """``forward(z) = fn(z)`` (or ``fn(z, labels)``), traced into a TorchScript file."""

    def __init__(self, fn: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.fn(*inputs)


def traced(tmp: Path, fn: Callable[..., torch.Tensor], inputs: int = 1, name: str = "g.pt") -> Path:
    """A TorchScript file (no genbench metadata) computing ``fn`` on z of shape (2, 8) (and labels)."""
    example = (torch.zeros(2, 8), torch.zeros(2, dtype=torch.long))[:inputs]
    path = tmp / name
    torch.jit.trace(Wrapped(fn), example, check_trace=False).save(str(path))
    return path


def module(tmp: Path, name: str, source: str) -> str:
    (tmp / f"{name}.py").write_text(textwrap.dedent(source))
    sys.modules.pop(name, None)
    return name


def run_folder(tmp: Path, **stored: object) -> Path:
    """A folder holding a run's run.json (protocol: digits, 200 samples, then ``stored``) and no rows yet."""
    out = tmp / "run"
    out.mkdir()
    p = Protocol("digits", ("fid",), eval_samples=200)
    (out / "run.json").write_text(json.dumps({"protocol": p.manifest() | stored}))
    return out


def into_run(t: Path, **stored: object) -> list[str]:
    return ["eval", "--images", str(folder(t)), "--out", str(run_folder(t, **stored))]


def with_rows(t: Path, *cells: str, copied: tuple[str, str] | None = None) -> list[str]:
    """Evaluation into a run (20 samples) with a row and ``cells/<cell>/record.json`` per cell (a cell may be
    a path out of the run); ``copied`` (a, b): a's record.json copied over b's."""
    from genbench.protocol import CellRecord
    from genbench.results import write_results

    args = into_run(t, eval_samples=20)
    records = [CellRecord(cell, "gan", "digits", 0, {"z_dim": 8}) for cell in cells]
    for record in records:
        (t / "run" / "cells" / record.cell_id).mkdir(parents=True, exist_ok=True)
        (t / "run" / "cells" / record.cell_id / "record.json").write_text(json.dumps(record.to_json()))
    if copied is not None:
        source, target = (t / "run" / "cells" / c / "record.json" for c in copied)
        target.write_bytes(source.read_bytes())
    write_results(t / "run", records)
    return args


def into_manifest(t: Path, **manifest: object) -> list[str]:
    """Evaluation into a run whose run.json holds ``manifest`` besides its protocol (20 samples)."""
    args = into_run(t, eval_samples=20)
    path = t / "run" / "run.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | manifest))
    return args


def a_file(t: Path) -> Path:
    (t / "ok.npz").write_bytes(b"x")
    return t / "ok.npz"


IMAGES = ["--dataset", "digits", "--eval-samples", "20", "--metrics", "fid"]
GEN = ["--dataset", "digits", "--eval-samples", "20", "--metrics", "fid", "--z-dim", "8"]


def images(path: Path, *extra: str) -> list[str]:
    return ["eval", "--images", str(path), *IMAGES, *extra]


def generator(spec: str | Path, *extra: str) -> list[str]:
    return ["eval", "--generator", str(spec), *GEN, *extra]


def callable_(spec: str) -> list[str]:
    return ["eval", "--generator", spec, *IMAGES]


def mixed_sizes(t: Path) -> list[str]:
    png(folder(t) / "020.png", (10, 8))
    return ["eval", "--images", str(t / "imgs"), "--eval-samples", "21", "--dataset", "digits"]


def with_file(t: Path, name: str, data: bytes) -> Path:
    (folder(t) / name).write_bytes(data)
    return t / "imgs"


def other_format(t: Path, fmt: str) -> list[str]:
    """A valid 8x8 greyscale image of another format, named .png among PNGs."""
    out = folder(t)
    if fmt == "EPS":  # Pillow would hand its content to Ghostscript on reading the pixels
        (out / "000.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    else:
        Image.new("L", (8, 8), 128).save(out / "000.png", format=fmt)
    return images(out)


def sub_folder(t: Path) -> list[str]:
    (folder(t) / "more").mkdir()
    return images(t / "imgs")


def npz(t: Path, array: np.ndarray) -> list[str]:
    np.savez(t / "s.npz", images=array)
    return images(t / "s.npz")


def object_npz(t: Path) -> list[str]:
    np.save(t / "o.npy", np.array([{}], dtype=object), allow_pickle=True)
    (t / "o.npy").rename(t / "o.npz")
    return images(t / "o.npz")


def state_dict_file(t: Path) -> list[str]:
    torch.save({"weights": torch.zeros(2)}, t / "w.pt")
    return generator(t / "w.pt")


def onnx_file(t: Path) -> list[str]:
    (t / "g.onnx").write_bytes(b"onnx")
    return generator(t / "g.onnx")


def scalar_onnx(t: Path) -> list[str]:
    """An ONNX graph whose input z is a scalar (shape []): Identity of it."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [])
    graph = helper.make_graph([helper.make_node("Identity", ["z"], ["out"])], "g", [z], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(t / "g.onnx"))
    return ["eval", "--generator", str(t / "g.onnx"), *IMAGES]


META_MODULE = """
    import torch

    def f(n, labels, generator):
        return torch.empty(n, 1, 8, 8, device="meta")
"""

NAN_MODULE = """
    import torch

    def f(n, labels, generator):
        return torch.full((n, 1, 8, 8), float("nan"))
"""


def cell(t: Path, checkpoint: bytes | None = None) -> Path:
    (t / "cell").mkdir()
    if checkpoint is not None:
        (t / "cell" / "checkpoint.pt").write_bytes(checkpoint)
    return t / "cell"


def crafted(t: Path, model: str = "gan", name: str = "cell", **fields: object) -> Path:
    """A cell whose checkpoint.pt holds a real ``model`` of digits, with payload fields (``data_*``: of its data,
    ``payload_model``: its model name) replaced."""
    from genbench.datasets.base import DataInfo
    from genbench.plugins import get_registry

    cls = get_registry().model(model)
    data: dict[str, object] = {"name": "digits", "shape": [1, 8, 8], "kind": "image", "classes": 10}
    payload: dict[str, object] = {"model": model, "hyper": {}, "seed": 3, "data": data}
    payload["state_dict"] = cls(cls.Hyper(), DataInfo("digits", (1, 8, 8), "image", 10)).state_dict()
    for key, value in fields.items():
        (data if key.startswith("data_") else payload)[key.removeprefix("data_").removeprefix("payload_")] = value
    (t / "cells" / name).mkdir(parents=True)
    torch.save(payload, t / "cells" / name / "checkpoint.pt")
    return t / "cells" / name


def linked_checkpoint(t: Path) -> list[str]:
    """A cell whose checkpoint.pt is a link to a checkpoint outside its folder."""
    outside = crafted(t, name="outside") / "checkpoint.pt"
    (t / "cells" / "cell").mkdir()
    (t / "cells" / "cell" / "checkpoint.pt").symlink_to(outside)
    return ["export", str(t / "cells" / "cell"), "-o", str(t / "g.pt")]


def export_of(cell_dir: Path, t: Path) -> list[str]:
    return ["export", str(cell_dir), "-o", str(t / "g.pt")]


def below_a_file(t: Path) -> list[str]:
    (t / "ok.npz").write_bytes(b"")
    return ["export", str(crafted(t)), "-o", str(t / "ok.npz" / "g.pt")]


CASES: dict[str, tuple[Setup, str]] = {
    "empty folder": (lambda t: images(folder(t, n=0)), "imgs: no image files (.png, .jpg, .jpeg) in it"),
    "missing folder": (lambda t: images(t / "nope"), "nope: no such folder or .npz file"),
    "mixed sizes": (
        mixed_sizes,
        "images of mixed sizes: 020.png is 8x10; 000.png is 8x8; expected 8x8 (greyscale, dataset 'digits' is 1x8x8)",
    ),
    "wrong size": (lambda t: images(folder(t, size=(28, 28))), "wrong size: 000.png is 28x28; expected 8x8"),
    "non-image file": (lambda t: images(with_file(t, "notes.txt", b"x")), "notes.txt is not an image file"),
    "corrupt png": (lambda t: images(with_file(t, "000.png", b"junk")), "000.png is not a readable image"),
    "GIF named .png": (lambda t: other_format(t, "GIF"), "000.png is not a readable image: not PNG or JPEG content"),
    "TIFF named .png": (lambda t: other_format(t, "TIFF"), "000.png is not a readable image: not PNG or JPEG content"),
    "BMP named .png": (lambda t: other_format(t, "BMP"), "000.png is not a readable image: not PNG or JPEG content"),
    "EPS named .png": (lambda t: other_format(t, "EPS"), "000.png is not a readable image: not PNG or JPEG content"),
    "sub-folder": (sub_folder, "holds a folder, more/"),
    "colour for greyscale": (
        lambda t: images(folder(t, mode="RGB")),
        "colour images, but dataset 'digits' is greyscale",
    ),
    "transparent": (lambda t: images(folder(t, mode="RGBA")), "000.png is transparent"),
    "too few images": (lambda t: images(folder(t, n=3)), "3 images; the protocol compares 20 (--eval-samples)"),
    "npz of the wrong shape": (
        lambda t: npz(t, np.zeros((20, 9, 9), np.uint8)),
        "array 'images' of shape (20, 9, 9); expected (N, 1, 8, 8), (N, 8, 8, 1) or (N, 8, 8)",
    ),
    "npz of floats 0-255": (
        lambda t: npz(t, np.full((20, 1, 8, 8), 255.0, np.float32)),
        "s.npz: samples out of range [0, 1] (tolerance 0.001): min 255.0, max 255.0; a float array holds values in",
    ),
    "npz of negative floats": (
        lambda t: npz(t, np.full((20, 8, 8), -3.0)),
        "s.npz: samples out of range [0, 1] (tolerance 0.001): min -3.0, max -3.0",
    ),
    "npz with a NaN": (
        lambda t: npz(t, np.where(np.arange(20 * 64).reshape(20, 8, 8, 1) == 7, np.nan, 0.5).astype(np.float32)),
        "s.npz: samples: 1 of 1280 values are NaN or infinite",
    ),
    "npz of objects": (object_npz, "o.npz: holds Python objects (pickle, refused: it could run code)"),
    "no source": (lambda t: ["eval", *IMAGES], "give --images DIR (or FILE.npz) or --generator"),
    "two sources": (
        lambda t: images(folder(t), "--generator", "x.pt"),
        "give --images DIR (or FILE.npz) or --generator",
    ),
    "z-dim with images": (lambda t: images(folder(t), "--z-dim", "3"), "are for --generator"),
    "name of a model": (lambda t: images(folder(t), "--name", "dcgan"), "--name 'dcgan' is a registered model"),
    "bad name": (lambda t: images(folder(t), "--name", "a/b"), "--name 'a/b': use letters"),
    "protocol differs from the run": (
        lambda t: ["eval", "--images", str(folder(t)), "--out", str(run_folder(t)), "--eval-samples", "20"],
        "--eval-samples 20: the run in",
    ),
    "run.json: a protocol value of the wrong type": (
        lambda t: into_run(t, eval_samples="abc"),
        "run.json: damaged ('protocol'.'eval_samples' is \"abc\", expected an integer)",
    ),
    "run.json: metrics not names": (
        lambda t: into_run(t, metrics=[1]),
        "run.json: damaged ('protocol'.'metrics' is [1], expected an array of strings)",
    ),
    "run.json: null for a value that needs one": (
        lambda t: into_run(t, kid_subsets=None),
        "run.json: damaged ('protocol'.'kid_subsets' is null, expected an integer)",
    ),
    "run.json: metric_bounds a number": (
        lambda t: into_manifest(t, metric_bounds=5),
        "run.json: 'metric_bounds' is a JSON number, expected an object",
    ),
    "run.json: metric_bounds of text": (
        lambda t: into_manifest(t, metric_bounds={"fid_domain": {"low": "x"}}),
        "run.json: 'metric_bounds' of 'fid_domain': 'low' is 'x'; expected a number or null",
    ),
    "run.json: evaluated a number": (
        lambda t: into_manifest(t, evaluated=5),
        "run.json: 'evaluated' is a JSON number, expected an array",
    ),
    "run.json: evaluated a string": (
        lambda t: into_manifest(t, evaluated="abc"),
        "run.json: 'evaluated' is a JSON string, expected an array",
    ),
    "results.csv: a cell out of the folder": (
        lambda t: with_rows(t, "a_s0", "../../foreign/evil"),
        "results.csv: damaged (cell '../../foreign/evil' is not a folder name of cells/",
    ),
    "results.csv: a cell twice": (
        lambda t: with_rows(t, "a_s0", "a_s0"),
        "results.csv: damaged (cell 'a_s0' has two rows)",
    ),
    "record.json of another cell": (
        lambda t: with_rows(t, "a_s0", "b_s0", copied=("a_s0", "b_s0")),
        "cells/b_s0/record.json is damaged (it records cell 'a_s0', another folder's)",
    ),
    # the checks genbench run makes of folders and sizes (genbench.checks), before any work
    "cache-dir below a file": (
        lambda t: images(folder(t), "--cache-dir", str(a_file(t) / "cache")),
        "ok.npz is a file, so no folder can be made below it",
    ),
    "data-dir a file": (lambda t: images(folder(t), "--data-dir", str(a_file(t))), "ok.npz: is a file, not a folder"),
    "out empty": (
        lambda t: images(folder(t), "--out", ""),
        "the current folder (an empty --out is the current folder too)",
    ),
    "kid-subsets huge": (lambda t: images(folder(t), "--kid-subsets", "100000000"), "--kid-subsets 100000000: at most"),
    "eval-batch-size huge": (
        lambda t: images(folder(t), "--eval-batch-size", "100000000"),
        "--eval-batch-size 100000000: at most",
    ),
    "eval-samples past memory": (
        lambda t: images(folder(t), "--eval-samples", str(10**11)),
        f"--eval-samples {10**11}: the generated samples alone take",
    ),
    "generator file missing": (lambda t: generator(t / "g.pt"), "g.pt: no such file"),
    "not TorchScript": (state_dict_file, "w.pt: not a TorchScript file"),
    "TorchScript of the wrong shape": (
        lambda t: generator(traced(t, lambda z: z)),
        "samples of shape (2, 8); expected (2, 1, 8, 8)",
    ),
    "TorchScript of the wrong dtype": (
        lambda t: generator(traced(t, lambda z: (z[:, :1, None, None] * 0).expand(-1, 1, 8, 8).to(torch.uint8))),
        "samples of dtype torch.uint8; expected a floating dtype",
    ),
    "TorchScript of the wrong range": (
        lambda t: generator(traced(t, lambda z: (z[:, :1, None, None] * 0 + 255.0).expand(-1, 1, 8, 8))),
        "samples out of range [0, 1] (tolerance 0.001): min 255.0, max 255.0",
    ),
    "TorchScript returning NaN": (
        lambda t: generator(traced(t, lambda z: (z[:, :1, None, None] * float("nan")).expand(-1, 1, 8, 8))),
        "samples: 128 of 128 values are NaN or infinite",
    ),
    "TorchScript that is not a generator": (
        lambda t: generator(traced(t, lambda z, labels: z + labels[:, None], inputs=2)),
        "calling it with z of shape (2, 8) failed",
    ),
    "TorchScript without z-dim": (
        lambda t: ["eval", "--generator", str(traced(t, lambda z: z)), "--dataset", "digits"],
        "give --z-dim (the size of z it takes)",
    ),
    "ONNX without onnxruntime": (onnx_file, "ONNX needs onnxruntime, which is not installed"),
    "module that does not import": (
        lambda t: callable_("no_such_module_xyz:generate"),
        "module 'no_such_module_xyz' does not import (ModuleNotFoundError",
    ),
    "module that raises on import": (
        lambda t: callable_(f"{module(t, 'gen_raises', 'raise SystemExit(3)')}:f"),
        "module 'gen_raises' does not import (SystemExit: 3)",
    ),
    "module without the function": (
        lambda t: callable_(f"{module(t, 'gen_nofunc', 'x = 1')}:generate"),
        "module 'gen_nofunc' has no function 'generate'",
    ),
    "ONNX with a scalar input": (scalar_onnx, "g.onnx: its first input 'z' has shape (); expected z, 2-D (n, z_dim)"),
    "callable returning a meta tensor": (
        lambda t: callable_(f"{module(t, 'gen_meta', META_MODULE)}:f"),
        "gen_meta:f: its samples cannot be checked (NotImplementedError",
    ),
    "callable returning NaN": (
        lambda t: callable_(f"{module(t, 'gen_nan', NAN_MODULE)}:f"),
        "samples: 128 of 128 values are NaN or infinite",
    ),
    # the options of eval itself that take a value (test_every_option_of_eval_has_a_case)
    "z-dist unknown": (
        lambda t: generator(traced(t, lambda z: z), "--z-dist", "gamma"),
        "Invalid value for '--z-dist'",
    ),
    "z-dim zero": (lambda t: generator(t / "g.pt", "--z-dim", "0"), "Invalid value for '--z-dim'"),
    "seed negative": (lambda t: images(folder(t), "--seed", "-1"), "Invalid value for '--seed'"),
    "images and conditional": (lambda t: images(folder(t), "--conditional"), "are for --generator"),
    # protocol options: run's declarations, run's checks
    "metric unknown": (lambda t: images(folder(t), "--metrics", "fdi"), "unknown metric 'fdi'; valid:"),
    "eval-samples one": (
        lambda t: images(folder(t), "--eval-samples", "1"),
        "--eval-samples 1: must be an integer >= 2",
    ),
    "backbone unknown": (lambda t: images(folder(t), "--backbone", "vgg"), "unknown backbone 'vgg'"),
    "epochs: nothing is trained": (
        lambda t: images(folder(t), "--epochs", "2"),
        "--epochs is an option of genbench run; genbench eval trains nothing",
    ),
    "eval-every: nothing is trained": (
        lambda t: images(folder(t), "--eval-every", "2"),
        "--eval-every is an option of genbench run; genbench eval trains nothing",
    ),
    "no-compile: nothing is trained": (
        lambda t: images(folder(t), "--no-compile"),
        "--no-compile is an option of genbench run; genbench eval trains nothing",
    ),
    # run's options: click would suggest an eval option of similar spelling (--executor: --generator)
    "executor: run only": (
        lambda t: generator("m:f", "--executor", "process"),
        "--executor is an option of genbench run; genbench eval evaluates one generator (or folder of samples) "
        "in this process (its options: genbench eval --help)",
    ),
    "workers: run only": (lambda t: images(folder(t), "--workers", "2"), "--workers is an option of genbench run"),
    "models: run only": (lambda t: images(folder(t), "--models", "gan"), "--models is an option of genbench run"),
    "grid: run only": (lambda t: images(folder(t), "--grid", "z_dim=2"), "--grid is an option of genbench run"),
    "seeds: run only": (lambda t: images(folder(t), "--seeds", "0,1"), "--seeds is an option of genbench run"),
    "executor= : run only": (lambda t: images(folder(t), "--executor=ray"), "--executor is an option of genbench run"),
    "unknown option: click's message": (lambda t: images(folder(t), "--bogus", "1"), "No such option: --bogus"),
    "export of a missing cell": (lambda t: ["export", str(t / "cells" / "x"), "-o", str(t / "g.pt")], "no such folder"),
    "export without checkpoint": (lambda t: ["export", str(cell(t)), "-o", str(t / "g.pt")], "cell: no checkpoint.pt"),
    "export to another format": (
        lambda t: ["export", str(cell(t)), "-o", str(t / "g.h5")],
        "name the file .pt (TorchScript) or .onnx (ONNX)",
    ),
    "export of a damaged checkpoint": (
        lambda t: ["export", str(cell(t, b"junk")), "-o", str(t / "g.pt")],
        "checkpoint.pt: not a genbench checkpoint",
    ),
    # a crafted checkpoint: each field is checked before anything is built
    "checkpoint: hyper not a dict": (
        lambda t: export_of(crafted(t, hyper=5), t),
        "checkpoint.pt: damaged checkpoint: hyper is 5; expected a dict",
    ),
    "checkpoint: hyper a string": (
        lambda t: export_of(crafted(t, hyper="abc"), t),
        "damaged checkpoint: hyper is 'abc'",
    ),
    "checkpoint: seed a string": (
        lambda t: export_of(crafted(t, seed="x"), t),
        "damaged checkpoint: seed is 'x'; expected an integer >= 0",
    ),
    "checkpoint: seed None": (lambda t: export_of(crafted(t, seed=None), t), "damaged checkpoint: seed is None"),
    "checkpoint: model a list": (
        lambda t: export_of(crafted(t, payload_model=["ae"]), t),
        "damaged checkpoint: model is ['ae']; expected the name of a model; installed: 'ae'",
    ),
    "checkpoint: negative shape": (
        lambda t: export_of(crafted(t, data_shape=[1, -8, 8]), t),
        "damaged checkpoint: data.shape is [1, -8, 8]; expected a list of positive integers",
    ),
    "checkpoint: classes a string": (
        lambda t: export_of(crafted(t, "cgan", data_classes="x"), t),
        "damaged checkpoint: data.classes is 'x'; expected a positive integer, or None",
    ),
    "checkpoint: conditional model without classes": (
        lambda t: export_of(crafted(t, "cgan", data_classes=None), t),
        "model 'cgan' cannot be built from it (cgan needs a labelled dataset",
    ),
    "checkpoint: a model too big for memory": (  # ae holds a z_dim x z_dim buffer: 400 TB, measured, not allocated
        lambda t: export_of(crafted(t, "ae", hyper={"z_dim": 10**7}), t),
        "model 'ae' with these hyper-parameters needs about 400.0 TB for its weights, more than the",
    ),
    "checkpoint: a symbolic link": (linked_checkpoint, "cell/checkpoint.pt: is a symbolic link"),
    "export below a file": (
        below_a_file,
        "ok.npz/g.pt: its folder",
    ),
    "export to a folder that takes no files": (
        lambda t: ["export", str(crafted(t)), "-o", "/proc/g.pt"],
        "-o /proc/g.pt: its folder /proc: cannot create files in /proc",
    ),
    "export over the cell's checkpoint": (
        lambda t: ["export", str(crafted(t)), "-o", str(t / "cells" / "cell" / "checkpoint.pt")],
        "checkpoint.pt: is inside ",
    ),
    "export into another cell": (
        lambda t: ["export", str(crafted(t)), "-o", str(crafted(t, name="other") / ".." / "other" / "checkpoint.pt")],
        "could overwrite a cell's checkpoint.pt",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    setup, phrase = CASES[case]
    monkeypatch.chdir(tmp_path)
    if case == "ONNX without onnxruntime":
        monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    args = setup(tmp_path)
    if args[0] == "eval" and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    args += ["--cache-dir", str(cache_dir)] if args[0] == "eval" and "--cache-dir" not in args else []
    code = main(args)
    _, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert phrase in err, err
    assert not (tmp_path / "out" / "results.csv").exists() and not (tmp_path / "out" / "cells").exists()
    assert not (tmp_path / "run" / "results.csv").exists() or case.startswith(("results.csv", "record.json"))
    if args[0] == "eval":  # nothing in the current folder (export cases build their cell folders there)
        assert not (tmp_path / "cells").exists() and not (tmp_path / "results.csv").exists()


def test_every_option_of_eval_has_a_case(tmp_path: Path) -> None:
    """Each option genbench eval adds to run's (those taking a value) is tried with a bad value above."""
    from genbench.cli import _EVAL_OWN

    flags = {"--" + name.replace("_", "-") for name in _EVAL_OWN}
    valued = flags - {"--conditional"}  # a switch: no value to get wrong (with images: a case above)
    tried: set[str] = set()
    for i, (setup, _) in enumerate(CASES.values()):
        (tmp_path / str(i)).mkdir()
        tried |= {a for a in setup(tmp_path / str(i)) if a.startswith("--")}
    assert valued - tried == set(), f"no bad-input case for genbench eval {sorted(valued - tried)}"


def test_every_option_of_run_only_is_named_as_such(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each option of genbench run that eval lacks (run's declarations less eval's) gets the run-only line."""
    from genbench.protocol import eval_options, run_options

    shared = {opt.name for opt in eval_options()}
    run_only = [opt for opt in run_options() if opt.name not in shared and opt.cli]
    assert {"executor", "workers", "models", "grid", "seeds", "epochs"} <= {opt.name for opt in run_only}
    for opt in run_only:
        value = [] if opt.kind == "bool" else ["1"]
        assert main(["eval", "--images", str(tmp_path), opt.flag, *value]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {opt.flag} is an option of genbench run; ") and err.count("\n") == 1, err


def test_export_needs_a_model_with_a_latent_space(
    tiny_models: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import genbench
    from tests.conftest import TinyHyper, TinyModel

    info = genbench.DataInfo("digits", (1, 8, 8), "image", 10)
    cell = tmp_path / "cell"
    cell.mkdir()
    model = TinyModel(TinyHyper(), info)
    payload = {"model": "tiny", "hyper": {"z_dim": 4}, "seed": 0, "state_dict": model.state_dict(),
               "data": {"name": "digits", "shape": [1, 8, 8], "kind": "image", "classes": 10}}  # fmt: skip
    torch.save(payload, cell / "checkpoint.pt")
    assert main(["export", str(cell), "-o", str(tmp_path / "g.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'tiny' cannot be exported: it does not declare Capability.DECODE"), err
    assert not (tmp_path / "g.pt").exists()


def test_export_never_overwrites_the_cells_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """-o naming the cell's own checkpoint.pt (here through a link to the cell) is refused; the weights stay."""
    cell = crafted(tmp_path)
    before = (cell / "checkpoint.pt").read_bytes()
    (tmp_path / "alias").symlink_to(cell)
    for out in (cell / "checkpoint.pt", tmp_path / "alias" / "checkpoint.pt", cell / "g.pt"):
        assert main(["export", str(cell), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: -o {out}: is inside {cell.parent.resolve()}") and err.count("\n") == 1, err
    assert (cell / "checkpoint.pt").read_bytes() == before and not (cell / "g.pt").exists()


def test_export_of_the_current_folder_names_the_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`genbench export .` run inside a cell folder records the cell's name in the file's metadata, not ""."""
    cell = crafted(tmp_path, name="gan-digits-s3")
    monkeypatch.chdir(cell)
    assert main(["export", ".", "-o", str(tmp_path / "g.pt")]) == 0, capsys.readouterr().err
    files = {"genbench.json": ""}
    torch.jit.load(str(tmp_path / "g.pt"), _extra_files=files)
    assert json.loads(files["genbench.json"])["cell"] == "gan-digits-s3"


GOOD_MODULE = """
    import torch

    def f(n, labels, generator):
        return torch.rand((n, 1, 8, 8), generator=generator, device=generator.device)
"""


@pytest.mark.parametrize(
    ("changed", "phrase"),
    [
        (["--eval-samples", "30"], "--eval-samples 30: "),
        (["--reference-split", "train"], "--reference-split train: "),
    ],
)
def test_a_resume_with_another_protocol_than_the_evaluated_rows_is_refused(
    changed: list[str],
    phrase: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
) -> None:
    """The run cannot measure an evaluated generator again: resumed under another protocol, its row
    would stand in the run's table under a protocol line it was not measured by."""
    monkeypatch.chdir(tmp_path)
    out, common = tmp_path / "out", ["--dataset", "digits", "--metrics", "fid", "--cache-dir", str(cache_dir)]
    gen = f"{module(tmp_path, 'gen_ok', GOOD_MODULE)}:f"
    assert main(["eval", "--generator", gen, "--out", str(out), "--eval-samples", "20", *common]) == 0
    capsys.readouterr()
    before = (out / "results.csv").read_bytes()
    args = ["run", "--models", "vae", "--epochs", "1", "--out", str(out), "--resume", *common]
    code = main([*args, "--eval-samples", "20", *changed])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and phrase in err, err
    (cell,) = (out / "cells").iterdir()  # the evaluated one: nothing of the run was written
    assert f"{cell}, added by genbench eval, was measured with " in err
    assert (out / "results.csv").read_bytes() == before


@pytest.mark.parametrize(
    ("source", "name"), [("_samples.npz", "samples"), ("__.npz", "generator"), ("m:_f_", "f"), ("-x-_", "x")]
)
def test_the_default_name_is_a_valid_name(source: str, name: str) -> None:
    """Without --name, a file or function named with leading or trailing _ . - still gives a valid name."""
    from genbench.run.evaluate import EvalRequest, _default_name, check_name

    images = ":" not in source
    request = EvalRequest(Path("out"), images=Path(source) if images else None, generator=None if images else source)
    assert _default_name(request) == name
    check_name(name)


@pytest.mark.parametrize(
    ("shape", "phrase"),
    [
        ((200_000, 1, 8, 8), None),  # read: only its first 20 images
        ((200_000, 9, 9), "array 'images' of shape (200000, 9, 9); expected (N, 1, 8, 8)"),  # refused: no data read
    ],
)
def test_an_npz_is_read_no_further_than_the_images_it_needs(
    shape: tuple[int, ...], phrase: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A few kilobytes of deflated zeros can declare gigabytes: the header is checked before any data is
    read, and only the rows evaluated are read (memory bounded by them, not by the file's declaration)."""
    import zipfile

    from genbench.datasets.base import DataInfo
    from genbench.errors import GenbenchError
    from genbench.run.image_files import read_images

    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, images=np.zeros(shape, np.uint8))
    assert path.stat().st_size < 100_000  # small on disk, 12.8 MB (16.2 MB) once decompressed
    read_bytes = []
    original = zipfile.ZipExtFile.read

    def spy(self: zipfile.ZipExtFile, n: int = -1) -> bytes:
        data = original(self, n)
        read_bytes.append(len(data))
        return data

    monkeypatch.setattr(zipfile.ZipExtFile, "read", spy)
    info = DataInfo("digits", (1, 8, 8), "image", 10)
    header = 128  # a .npy header (version 1.0) of this array
    if phrase is None:
        samples = read_images(path, info, 20)
        assert tuple(samples.images.shape) == (20, 1, 8, 8)
        assert sum(read_bytes) <= header + 20 * 64, read_bytes
    else:
        with pytest.raises(GenbenchError, match=re.escape(phrase)):
            read_images(path, info, 20)
        assert sum(read_bytes) <= header, read_bytes


def test_an_evaluation_added_to_a_run_takes_none_of_its_steering_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    """A run.json names the caches, data folder and device of the machine that made it (or of whoever
    crafted it): the evaluation uses this invocation's (or the defaults), never writes there."""
    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    out = tmp_path / "run"
    out.mkdir()
    stored = Protocol("digits", ("fid",), eval_samples=20).manifest() | {
        "cache_dir": str(elsewhere / "cache"),
        "data_dir": str(elsewhere / "data"),
        "device": "cuda:7",
        "eval_batch_size": 10**9,
    }
    (out / "run.json").write_text(json.dumps({"protocol": stored}))
    code = main(["eval", "--images", str(folder(tmp_path)), "--out", str(out), "--cache-dir", str(cache_dir)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert not elsewhere.exists()
    (cell,) = (out / "cells").iterdir()
    protocol = json.loads((cell / "record.json").read_text())["protocol"]
    assert protocol["cache_dir"] == str(cache_dir) and protocol["device"] == "auto"
    assert protocol["eval_samples"] == 20  # what changes a number is the run's


def test_a_run_json_rewritten_before_the_lock_is_taken_is_refused_and_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    """A genbench run that takes the folder between the evaluation's reading of run.json and its lock, and
    finishes, leaves a run.json of another protocol: the evaluation refuses and never writes over it."""
    import genbench.run.evaluate as evaluate

    monkeypatch.chdir(tmp_path)
    args = into_run(tmp_path, eval_samples=20)
    path = tmp_path / "run" / "run.json"
    theirs = {"protocol": Protocol("digits", ("fid",), eval_samples=30).manifest(), "models": ["gan"]}

    class RunFinishedFirst(evaluate.RunFolder):
        def __enter__(self) -> evaluate.RunFolder:
            path.write_text(json.dumps(theirs))  # the run's, written before this lock was taken
            return super().__enter__()

    monkeypatch.setattr(evaluate, "RunFolder", RunFinishedFirst)
    code = main([*args, "--cache-dir", str(cache_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "run.json: changed while this evaluation was being prepared" in err, err
    assert path.read_text() == json.dumps(theirs)
    assert not (tmp_path / "run" / "cells").exists() and not (tmp_path / "run" / "results.csv").exists()
