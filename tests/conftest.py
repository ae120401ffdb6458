"""Shared fixtures: a session-wide cache (the domain backbone trains once), fake plugins."""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import genbench
from genbench.plugins import get_registry
from genbench.protocol import Protocol
from genbench.run.runner import RunRequest, run_grid

# One intra-op thread: PyTorch's threads spin-wait for each other, so on a shared CI machine two
# threads can make a step 30x slower than one (measured: a GAN epoch on digits, 31 s vs 0.8 s).
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """genbench's automatic thread choice honours $OMP_NUM_THREADS: every cell of the tests runs on one thread."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the whole session: backbones and reference statistics are reused across tests."""
    return tmp_path_factory.mktemp("genbench-cache")


@pytest.fixture
def use_plugin() -> Iterator[Callable[[object, str], None]]:
    """Register fake plugin objects in the process registry; unregister them afterwards."""
    registry = get_registry()
    added: list[str] = []

    def add(plugin: object, name: str) -> None:
        assert registry.add_plugin(name, lambda: plugin, "test"), registry.problems[-1]
        added.append(name)

    try:
        yield add
    finally:
        for name in added:
            registry.remove_plugin(name)


@dataclass
class TinyHyper(genbench.Hyper):
    z_dim: int = genbench.hp(4, "latent size")
    lr: float = genbench.hp(1e-2, "learning rate")
    batch_size: int = genbench.hp(64, "batch")
    epochs: int = genbench.hp(1, "epochs")


class TinyModel(genbench.GenerativeModel):
    """A linear decoder fitted to match batch means: trains in microseconds."""

    name = "tiny"
    description = "test model"
    Hyper = TinyHyper

    def __init__(self, hp: TinyHyper, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        self.decoder = nn.Linear(hp.z_dim, data.dim)
        self.opt = torch.optim.SGD(self.parameters(), lr=hp.lr)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        fake = self.decoder(torch.randn(x.shape[0], self.hp.z_dim, device=x.device))  # any device: tests pass on a GPU
        loss = (fake.mean(0) - x.flatten(1).mean(0)).pow(2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return {"loss": loss.detach()}

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.decoder(torch.randn(n, self.hp.z_dim, device=self.device))
        out = torch.sigmoid(out) if self.data.kind == "image" else out
        return out.reshape(n, *self.data.shape)


class ExplodingModel(TinyModel):
    name = "exploding"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        raise RuntimeError("boom in train_step")


class InterruptedModel(TinyModel):
    """The user presses Ctrl-C in the middle of training: a real SIGINT reaches the process."""

    name = "interrupted"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        signal.raise_signal(signal.SIGINT)
        return super().train_step(x, y)


class NaNModel(TinyModel):
    name = "nan"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        out = dict(super().train_step(x, y))
        out["loss"] = out["loss"] * float("nan")
        return out


class KillerModel(TinyModel):
    """Its process dies in the middle of training, as one killed by the out-of-memory killer does."""

    name = "killer"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        os.kill(os.getpid(), signal.SIGKILL)
        return super().train_step(x, y)


class FullDiskModel(TinyModel):
    """Its disk fills up in the middle of training (say, a checkpoint of its own): every later cell would too."""

    name = "fulldisk"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        raise OSError(errno.ENOSPC, "No space left on device")


class SlowModel(TinyModel):
    """A tiny model whose steps take a while: a cell lasts long enough to be killed in the middle."""

    name = "slow"

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        time.sleep(0.02)
        return super().train_step(x, y)


class ProbeModel(TinyModel):
    """Logs what the fast path did to its step: autocast on (1) or off (0), channels-last weights and input.

    Its decoder ends in two 3x3 convolutions (images only), so --channels-last has 4-D weights to
    convert; it updates through GenerativeModel.update, so fp16 loss scaling applies.
    """

    name = "probe"
    data_kinds = frozenset({"image"})

    def __init__(self, hp: TinyHyper, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        c = data.shape[0]
        self.refine = nn.Sequential(nn.Conv2d(c, 4, 3, padding=1), nn.Conv2d(4, c, 3, padding=1))
        self.opt = torch.optim.SGD(self.parameters(), lr=hp.lr)

    def _images(self, n: int, device: torch.device) -> torch.Tensor:
        out = self.decoder(torch.randn(n, self.hp.z_dim, device=device)).reshape(n, *self.data.shape)
        return self.refine(out)

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        fake = self._images(x.shape[0], x.device)
        loss = (fake.float().mean(0) - x.mean(0)).pow(2).mean()
        self.update(loss, self.opt)
        return {
            "loss": loss.detach(),
            "autocast": torch.tensor(float(torch.is_autocast_enabled(x.device.type))),
            "bf16": torch.tensor(float(fake.dtype == torch.bfloat16)),
            "channels_last": torch.tensor(float(not self.refine[1].weight.is_contiguous())),  # (1, 4, 3, 3)
        }

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self._images(n, self.device))


class FakeModels:
    """A plugin object (pluggy accepts any object with hookimpl-marked methods)."""

    def __init__(self, *classes: type[Any]) -> None:
        self.classes = classes

    @genbench.hookimpl
    def register_models(self, register: Callable[[type[Any]], None]) -> None:
        for cls in self.classes:
            register(cls)


@pytest.fixture
def tiny_models(use_plugin: Callable[[object, str], None]) -> None:
    use_plugin(FakeModels(TinyModel, ExplodingModel, NaNModel, InterruptedModel), "test-models")


# -- real run folders for the report tests (tests/test_report_*.py), made once per session -------------
class FailingModel(ExplodingModel):
    """Raises in train_step; its own name, so that it never clashes with the tiny_models fixture's."""

    name = "failing"


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """ae, gan and a model that fails, z_dim 2 and 4, two seeds, two epochs on the 8x8 digits.

    The failing model is registered only while the run is made (a report reads records, not the registry).
    """
    out = tmp_path_factory.mktemp("report") / "digits-run"
    protocol = Protocol(
        "digits", ("fid", "prc", "recon_mse"), eval_samples=200, epochs=2, cache_dir=cache_dir, device="cpu"
    )
    registry = get_registry()
    assert registry.add_plugin("report-test-models", lambda: FakeModels(FailingModel), "test"), registry.problems[-1]
    try:
        result = run_grid(RunRequest(("ae", "gan", "failing"), protocol, out, ("z_dim=2,4",), seeds=(0, 1)))
    finally:
        registry.remove_plugin("report-test-models")
    assert [r.status for r in result.records].count("ok") == 8, [r.error for r in result.records]
    return out


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A GAN on the 8-Gaussian ring: the GAN-Lab views."""
    out = tmp_path_factory.mktemp("report") / "toy-run"
    protocol = Protocol("toy2d", ("modes", "hist2d"), eval_samples=500, epochs=3, cache_dir=cache_dir, device="cpu")
    result = run_grid(RunRequest(("gan",), protocol, out))
    assert result.records[0].status == "ok", result.records[0].error
    return out
