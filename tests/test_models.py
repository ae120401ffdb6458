"""Every built-in model trains, stays finite, and samples the right shape and range."""

from __future__ import annotations

import pytest
import torch

from genbench.datasets.base import DataInfo
from genbench.hyper import build
from genbench.models.base import Capability
from genbench.plugins import get_registry

DIGITS = DataInfo("digits", (1, 8, 8), "image", 10)
POINTS = DataInfo("toy", (2,), "points", 8)
EXPECTED_KEYS = {
    "ae": {"loss"},
    "vae": {"loss", "recon", "kl"},
    "gan": {"loss_d", "loss_g", "d_x", "d_g_z", "r1_penalty"},  # r1 > 0 by default for the MLP GAN
    "dcgan": {"loss_d", "loss_g", "d_x", "d_g_z"},
}


def make(name: str, data: DataInfo, **hyper: object):  # type: ignore[no-untyped-def]
    cls = get_registry().model(name)
    torch.manual_seed(0)
    return cls(build(cls.Hyper, dict(hyper), name), data)


@pytest.mark.parametrize("name", ["ae", "vae", "gan", "dcgan"])
def test_train_step_and_sample(name: str) -> None:
    model = make(name, DIGITS, z_dim=8)
    x = torch.rand(32, 1, 8, 8)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        logs = model.train_step(x, torch.randint(10, (32,)))
    assert set(logs) == EXPECTED_KEYS[name]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no parameter moved"
    model.eval()
    with torch.no_grad():
        samples = model.sample(10)
    assert samples.shape == (10, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["ae", "vae", "gan", "dcgan", "cgan", "cdcgan", "convvae", "vaegan", "wgan-gp"])
def test_every_built_in_trains_and_samples_under_autocast(name: str, dtype: torch.dtype) -> None:
    """--precision bf16/fp16 runs train_step and sample under autocast (genbench.run.fastpath): every built-in
    must take it (ae's running code moments once failed on a float32 buffer updated from bf16 codes)."""
    model = make(name, DataInfo("digits", (1, 8, 8), "image", 10), z_dim=8)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(10, (16,))
    with torch.autocast("cpu", dtype=dtype):
        for _ in range(2):
            logs = model.train_step(x, y)
        model.eval()
        with torch.no_grad():
            samples = model.sample(4, torch.arange(4) if Capability.CONDITIONAL in model.capabilities else None)
    assert all(torch.isfinite(v) for v in logs.values()) and samples.shape == (4, 1, 8, 8)
    assert all(b.dtype == torch.float32 for b in model.buffers() if b.is_floating_point())


@pytest.mark.parametrize("name", ["gan", "vae", "ae"])
def test_mlp_models_train_on_2d_points(name: str) -> None:
    model = make(name, POINTS, z_dim=2)
    x = torch.randn(64, 2) * 2
    model.train_step(x, None)
    with torch.no_grad():
        samples = model.sample(5)
    assert samples.shape == (5, 2)
    assert samples.abs().max() > 0  # unbounded output, not squashed into [0, 1]


def test_gan_hinge_loss_and_separate_learning_rates() -> None:
    model = make("gan", DIGITS, loss="hinge", lr_g=1e-3, lr_d=1e-4)
    assert model.opt_g.param_groups[0]["lr"] == 1e-3 and model.opt_d.param_groups[0]["lr"] == 1e-4
    assert model.opt_g.param_groups[0]["betas"] == (0.5, 0.999)
    logs = model.train_step(torch.rand(16, 1, 8, 8), None)
    assert torch.isfinite(logs["loss_d"]) and logs["loss_d"] >= 0  # hinge D loss is non-negative


def test_reconstruction_and_elbo_capabilities() -> None:
    x = torch.rand(12, 1, 8, 8)
    ae, vae = make("ae", DIGITS), make("vae", DIGITS)
    assert Capability.RECONSTRUCT in type(ae).capabilities and Capability.ELBO not in type(ae).capabilities
    assert Capability.ELBO in type(vae).capabilities
    with torch.no_grad():
        assert ae.reconstruct(x).shape == x.shape and vae.reconstruct(x).shape == x.shape
        assert ae.encode(x).shape == (12, 32) and vae.encode(x).shape == (12, 16)
        elbo = vae.elbo(x)
    assert elbo.shape == (12,) and (elbo < 0).all()  # a Bernoulli ELBO is a negative log-likelihood bound
    with pytest.raises(NotImplementedError):
        make("gan", DIGITS).reconstruct(x)


def test_dcgan_rejects_sides_not_divisible_by_four() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        make("dcgan", DataInfo("odd", (1, 10, 10), "image", None))
    assert get_registry().model("dcgan").data_kinds == frozenset({"image"})


def test_parameter_counts_per_network() -> None:
    counts = make("gan", DIGITS, z_dim=8).parameter_counts()
    assert set(counts) == {"generator", "discriminator", "total"}
    assert counts["total"] == counts["generator"] + counts["discriminator"]
