"""--cuda-graphs on a CPU: the graphed step's bookkeeping, with a stand-in for the CUDA capture.

A real capture needs a GPU (``benchmarks/gpu_graphs.sh`` runs one); here :class:`FakeGraphs`
keeps CUDA's semantics that matter to :class:`genbench.run.fastpath.GraphedStep`: a capture
records the step and runs none of its work, a replay runs it again reading the same input
tensors and rewrites the captured outputs in place. The refusals (CPU device, fp16, --compile,
a model that is not graph-safe) are in the bad-input catalogue, tests/test_bad_input.py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import torch
from torch import nn

import genbench
from genbench.errors import GenbenchError
from genbench.protocol import Protocol
from genbench.run.fastpath import GraphedStep, make_capturable
from genbench.run.runner import RunRequest, run_grid

from .conftest import FakeModels, TinyHyper, TinyModel


class FakeGraphs:
    """A CPU stand-in for :class:`genbench.run.fastpath.CudaGraphs`."""

    capturing = False  # read by CountingModel: while a capture records the step, no work is done

    def __init__(self) -> None:
        self.warm_ups = self.captures = self.replays = 0

    def warm_up(self, fn: Callable[[], dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        self.warm_ups += 1
        return fn()

    def capture(self, fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Callable[[], None], dict[str, torch.Tensor]]:
        self.captures += 1
        FakeGraphs.capturing = True
        try:
            out = fn()
        finally:
            FakeGraphs.capturing = False

        def replay() -> None:
            self.replays += 1
            for key, value in fn().items():
                out[key].copy_(value)  # a replay writes the graph's own output tensors

        return replay, out


class CountingModel(genbench.GenerativeModel):
    """Counts its steps in a buffer and logs what it was fed; holds an Adam the harness must make capturable
    (never stepped: a capturable Adam refuses CPU tensors)."""

    name = "counting"
    Hyper = TinyHyper
    graph_safe = True

    def __init__(self, hp: TinyHyper, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        self.decoder = nn.Linear(hp.z_dim, data.dim)
        self.opt = torch.optim.Adam(self.parameters())
        self.steps: torch.Tensor
        self.register_buffer("steps", torch.zeros(()))

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        if not FakeGraphs.capturing:  # a capture records the step's kernels and runs none of them
            self.steps += 1
        y_sum = torch.zeros(()) if y is None else y.sum().float()
        return {"x_sum": x.sum(), "y_sum": y_sum, "step": self.steps.clone()}

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder(torch.randn(n, self.hp.z_dim))).reshape(n, *self.data.shape)


class GraphSafeSGD(TinyModel):
    """Declares graph_safe but optimises with SGD, which has no capturable option."""

    name = "sgd-graphs"
    graph_safe = True


class TwoOptimizers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Linear(2, 2)
        self.inner.optimizers = [torch.optim.Adam(self.inner.parameters()), torch.optim.RMSprop(self.parameters())]  # type: ignore[assignment]
        self.by_name = {"adamw": torch.optim.AdamW(self.parameters())}


def info() -> genbench.DataInfo:
    return genbench.DataInfo("toy", (2,), "points", num_classes=3)


def test_the_graphed_step_warms_up_captures_once_and_replays_each_later_batch() -> None:
    model = CountingModel(TinyHyper(), info())
    fake = FakeGraphs()
    step = GraphedStep(model, backend=fake)  # type: ignore[arg-type]
    assert model.opt.param_groups[0]["capturable"] is True  # before the first step makes its state
    batches = [(torch.full((4, 2), float(i)), torch.full((4,), i)) for i in range(8)]
    logs = [step(x, y) for x, y in batches]
    assert (fake.warm_ups, fake.captures, fake.replays) == (3, 1, 5)
    assert int(model.steps) == 8  # one step per call, as the eager loop: the capture itself did none
    # each replay saw its own batch (copied into the graph's inputs), and later replays left earlier logs alone
    assert [float(s["x_sum"]) for s in logs] == [8.0 * i for i in range(8)]
    assert [float(s["y_sum"]) for s in logs] == [4.0 * i for i in range(8)]
    assert [int(s["step"]) for s in logs] == list(range(1, 9))
    with pytest.raises(ValueError, match="one batch shape"):
        step(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long))


def test_every_optimizer_the_model_holds_becomes_capturable_and_one_without_the_option_is_refused() -> None:
    model = TwoOptimizers()
    optimizers = make_capturable(model)  # type: ignore[arg-type]
    assert len(optimizers) == 3
    assert all(g["capturable"] for o in optimizers for g in o.param_groups)
    sgd = GraphSafeSGD(TinyHyper(), info())
    with pytest.raises(
        GenbenchError, match=r"^--cuda-graphs: model 'sgd-graphs' optimises with SGD \(attribute 'opt'\)"
    ):
        make_capturable(sgd)


def test_a_graphed_cell_trains_as_the_eager_one_and_its_record_says_so(
    tmp_path: Path, cache_dir: Path, use_plugin: Callable[[object, str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_plugin(FakeModels(CountingModel, GraphSafeSGD), "test-graphs")
    monkeypatch.setattr("genbench.run.fastpath.CudaGraphs", FakeGraphs)
    monkeypatch.setattr("genbench.run.runner.check_fast_path", lambda *_: None)  # a CPU stands in for CUDA here

    def run(out: str, graphs: bool) -> list[genbench.CellRecord]:
        protocol = Protocol("digits", (), epochs=2, cache_dir=cache_dir, device="cpu", cuda_graphs=graphs)
        return run_grid(RunRequest(("counting", "sgd-graphs"), protocol, tmp_path / out)).records

    eager, graphed = run("eager", False), run("graphed", True)
    assert eager[0].status == graphed[0].status == "ok", graphed[0].error
    assert (eager[0].protocol["cuda_graphs"], graphed[0].protocol["cuda_graphs"]) == (False, True)
    # the same batches, as many steps, every step's logs kept
    assert [h.keys() for h in graphed[0].history] == [h.keys() for h in eager[0].history]
    for mine, theirs in zip(graphed[0].history, eager[0].history, strict=True):
        assert mine == pytest.approx(theirs)
    assert graphed[0].history[-1]["step"] == eager[0].history[-1]["step"] > 1
    assert graphed[1].status == "failed" and graphed[1].history == []  # refused before training
    assert graphed[1].error.startswith("--cuda-graphs: model 'sgd-graphs' optimises with SGD (attribute 'opt')")
