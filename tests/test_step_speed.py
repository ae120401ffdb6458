"""The harness's per-step speed as pytest-benchmark tests: a training step of each model family, sampling,
the training loop's own cost per step, the domain features, the calibration workload.

The default run (``--benchmark-disable`` in ``addopts``) calls each once, as a smoke test of what it
times. To gate the speed of a change, time base and head on the same machine, minutes apart (a
baseline from another machine says nothing about a micro-benchmark)::

    git checkout BASE && pytest -m speed --benchmark-enable --benchmark-only --benchmark-save=base
    git checkout HEAD && pytest -m speed --benchmark-enable --benchmark-only \\
        --benchmark-compare --benchmark-compare-fail=median:25%

``--benchmark-compare-fail`` is a plain threshold on the median of many rounds (no test over
seeds); that suits micro-benchmarks, whose rounds are many and cheap. docs/ci.md has the CI job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch

from genbench.datasets.base import DataInfo, LoadedData
from genbench.hyper import build
from genbench.metrics.backbones import DomainClassifier
from genbench.models.base import GenerativeModel
from genbench.plugins import get_registry
from genbench.run.calibrate import calibrate
from genbench.run.data import load_data
from genbench.run.train import train

pytestmark = pytest.mark.speed
MODELS = ("gan", "dcgan", "vae", "ae")
BATCH = 64


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> LoadedData:
    return load_data("digits", tmp_path_factory.mktemp("data"), download=False)


def model(name: str, info: DataInfo) -> GenerativeModel:
    cls = get_registry().model(name)
    torch.manual_seed(0)
    return cls(build(cls.Hyper, {}, name, info.kind), info)


@pytest.mark.parametrize("name", MODELS)
def test_train_step(benchmark: Any, digits: LoadedData, name: str) -> None:
    m = model(name, digits.info)
    m.train()
    train_split = digits.split("train")
    x = train_split.x[:BATCH]
    y = None if train_split.y is None else train_split.y[:BATCH]
    logs = benchmark(m.train_step, x, y)
    assert logs and all(torch.isfinite(v).all() for v in logs.values())


@pytest.mark.parametrize("name", MODELS)
def test_sample_500(benchmark: Any, digits: LoadedData, name: str) -> None:
    m = model(name, digits.info)
    m.eval()

    def sample() -> torch.Tensor:
        with torch.no_grad():
            return m.sample(500)

    out = benchmark(sample)
    assert out.shape == (500, *digits.info.shape)


class NullModel(GenerativeModel):
    """``train_step`` costs nothing: timing ``train()`` around it times the harness's loop alone."""

    name = "null"

    def __init__(self, info: DataInfo) -> None:
        super().__init__(build(GenerativeModel.Hyper, {}, "null"), info)
        self.weight = torch.nn.Parameter(torch.zeros(()))
        zero = torch.zeros(())
        self.out = {"loss_d": zero, "loss_g": zero, "d_x": zero, "d_g_z": zero}

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        return self.out

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


def test_harness_loop_one_epoch_around_a_no_op_model(benchmark: Any, digits: LoadedData) -> None:
    split = digits.split("train")
    result = benchmark(train, NullModel(digits.info), split, 1, BATCH, 0)
    assert result.images_seen == len(split) // BATCH * BATCH and len(result.history) == 1


def test_domain_features_of_500_images(benchmark: Any, digits: LoadedData) -> None:
    net = DomainClassifier(digits.info.shape[0], digits.info.num_classes or 10).eval()
    x = digits.split("test").x[:500]

    def features() -> torch.Tensor:
        with torch.no_grad():
            return net(x)[0]

    assert benchmark(features).shape == (len(x), 128)


def test_calibration_workload(benchmark: Any) -> None:
    timing = benchmark(calibrate, torch.device("cpu"))
    assert timing.items == 4096 and timing.seconds > 0
