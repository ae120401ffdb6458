"""The convolutional VAE and the VAE-GAN: train, stay finite, sample/reconstruct/encode, honest ELBO."""

from __future__ import annotations

import math

import pytest
import torch

from genbench.datasets.base import DataInfo
from genbench.hyper import build, describe, field_types, parse_value
from genbench.models.base import Capability, GenerativeModel
from genbench.models.convvae import ConvVAE
from genbench.models.vaegan import VAEGAN

GREY = DataInfo("d", (1, 8, 8), "image", 10)
RGB = DataInfo("rgb", (3, 8, 8), "image", None)
EXPECTED_KEYS = {
    "convvae": {"loss", "recon", "kl"},
    "vaegan": {"loss_enc", "loss_dec", "loss_d", "recon", "kl", "d_x", "d_g_z"},
}
MODELS = [ConvVAE, VAEGAN]


def make(cls: type[GenerativeModel], data: DataInfo, **hyper: object) -> GenerativeModel:
    torch.manual_seed(0)
    return cls(build(cls.Hyper, dict(hyper), cls.name), data)


@pytest.mark.parametrize("data", [GREY, RGB], ids=["1x8x8", "3x8x8"])
@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_trains_samples_reconstructs_and_encodes(cls: type[GenerativeModel], data: DataInfo) -> None:
    model = make(cls, data, z_dim=4, width=4)
    x = torch.rand(16, *data.shape)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        logs = model.train_step(x, None)
    assert set(logs) == EXPECTED_KEYS[cls.name]
    assert all(v.dim() == 0 and torch.isfinite(v) and not v.requires_grad for v in logs.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "a parameter froze"
    model.eval()
    with torch.no_grad():
        samples, recon, code = model.sample(10), model.reconstruct(x), model.encode(x)
    assert samples.shape == (10, *data.shape) and recon.shape == x.shape and code.shape == (16, 4)
    for out in (samples, recon):
        assert out.min() >= 0 and out.max() <= 1
    assert {Capability.SAMPLE, Capability.RECONSTRUCT, Capability.ENCODE} <= cls.capabilities
    assert cls.data_kinds == frozenset({"image"})


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_rejects_sizes_not_divisible_by_four_and_points(cls: type[GenerativeModel]) -> None:
    with pytest.raises(ValueError, match=rf"{cls.name} needs image sides divisible by 4, odd is 10x10"):
        make(cls, DataInfo("odd", (1, 10, 10), "image", None))
    with pytest.raises(ValueError, match="needs \\(C, H, W\\) image data"):
        make(cls, DataInfo("toy", (2,), "points", 8))


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_hyper_parameters_are_documented_and_validated(cls: type[GenerativeModel]) -> None:
    fields = {f.name: f for f in describe(cls.Hyper)}
    assert all(f.help for f in fields.values())
    assert fields["z_dim"].default == 16 and fields["width"].default == 32
    with pytest.raises(ValueError, match="width must be > 0"):
        cls.Hyper(width=0)  # type: ignore[call-arg]


def test_convvae_elbo_is_the_true_bound_whatever_the_training_beta() -> None:
    x = torch.rand(12, 1, 8, 8)
    plain, weighted = make(ConvVAE, GREY), make(ConvVAE, GREY, beta=4.0)
    weighted.load_state_dict(plain.state_dict())
    assert Capability.ELBO in ConvVAE.capabilities and ConvVAE.Hyper().beta == 1.0
    with torch.no_grad():
        torch.manual_seed(1)
        elbo = plain.elbo(x)
        torch.manual_seed(1)
        elbo_weighted = weighted.elbo(x)
    assert elbo.shape == (12,) and (elbo < 0).all()  # a Bernoulli ELBO bounds a log-probability
    assert torch.allclose(elbo, elbo_weighted)  # KL weight 1 in elbo(), beta only in training
    # ... while the training loss does weigh the KL by beta.
    logs = weighted.train_step(x, None)
    assert torch.allclose(logs["loss"], logs["recon"] + 4.0 * logs["kl"], rtol=1e-5)
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ConvVAE.Hyper(beta=-1.0)


def test_vaegan_has_separate_optimisers_that_all_update() -> None:
    model = make(VAEGAN, GREY, z_dim=4, width=4)
    assert isinstance(model, VAEGAN)
    assert Capability.ELBO not in VAEGAN.capabilities
    groups = {
        "encoder": (model.opt_enc, model.encoder),
        "decoder": (model.opt_dec, model.decoder),
        "discriminator": (model.opt_d, model.discriminator),
    }
    owned = [{id(p) for g in opt.param_groups for p in g["params"]} for opt, _ in groups.values()]
    for (opt, net), ids in zip(groups.values(), owned, strict=True):
        assert ids == {id(p) for p in net.parameters()}
        assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 1e-3
    assert sum(map(len, owned)) == len({i for ids in owned for i in ids}) == len(list(model.parameters()))
    assert set(model.parameter_counts()) == {"encoder", "decoder", "discriminator", "total"}

    before = {name: [p.detach().clone() for p in net.parameters()] for name, (_, net) in groups.items()}
    logs = model.train_step(torch.rand(16, 1, 8, 8), None)
    for name, (_, net) in groups.items():
        moved = [not torch.equal(a, b) for a, b in zip(before[name], net.parameters(), strict=True)]
        assert all(moved), f"{name} did not update"
    assert 0 <= logs["d_x"] <= 1 and 0 <= logs["d_g_z"] <= 1


def test_vaegan_feature_reconstruction_and_gamma() -> None:
    assert parse_value(field_types(VAEGAN.Hyper)["recon"], "feature") == "feature"
    model = make(VAEGAN, GREY, z_dim=4, width=4, recon="feature", gamma=0.5)
    logs = model.train_step(torch.rand(16, 1, 8, 8), None)
    assert set(logs) == EXPECTED_KEYS["vaegan"] and all(torch.isfinite(v) for v in logs.values())
    assert logs["recon"] >= 0  # a squared feature distance
    # loss_enc = KL + recon, whatever gamma; loss_dec = gamma * recon + GAN term (> 0 for non-saturating BCE)
    assert torch.allclose(logs["loss_enc"], logs["kl"] + logs["recon"], rtol=1e-5)
    assert logs["loss_dec"] > 0.5 * logs["recon"]
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        VAEGAN.Hyper(gamma=-0.1)
    with pytest.raises(ValueError, match="not one of"):
        parse_value(field_types(VAEGAN.Hyper)["recon"], "perceptual")


def test_vaegan_gan_knobs_lr_steps_and_hinge() -> None:
    model = make(VAEGAN, GREY, z_dim=4, width=4, lr_g=3e-4, lr_d=5e-4, beta2=0.9, d_steps=2, g_steps=3)
    assert isinstance(model, VAEGAN)
    assert model.opt_enc.param_groups[0]["lr"] == model.opt_dec.param_groups[0]["lr"] == 3e-4
    assert model.opt_d.param_groups[0]["lr"] == 5e-4 and model.opt_d.param_groups[0]["betas"] == (0.5, 0.9)
    x = torch.rand(16, 1, 8, 8)
    model.train_step(x, None)
    logs = model.train_step(x, None)
    steps = [int(next(iter(opt.state.values()))["step"]) for opt in (model.opt_d, model.opt_enc, model.opt_dec)]
    assert steps == [4, 6, 6]
    assert set(logs) == EXPECTED_KEYS["vaegan"] and all(torch.isfinite(v) for v in logs.values())

    # With D's logit head zeroed, D scores everything 0: the hinge D loss relu(1 - 0) + relu(1 + 0) is 2,
    # BCE's is 2 log 2.
    for loss, expected in (("hinge", 2.0), ("bce", 2 * math.log(2))):
        m = make(VAEGAN, GREY, z_dim=4, width=4, loss=loss)
        assert isinstance(m, VAEGAN)
        torch.nn.init.zeros_(m.discriminator[1][0].weight)
        torch.nn.init.zeros_(m.discriminator[1][0].bias)
        logs = m.train_step(x, None)
        assert logs["loss_d"].item() == pytest.approx(expected, rel=1e-6), loss
        assert torch.isfinite(logs["loss_dec"])
    with pytest.raises(ValueError, match="d_steps must be >= 1"):
        VAEGAN.Hyper(d_steps=0)
    with pytest.raises(ValueError, match="lr_d must be > 0"):
        VAEGAN.Hyper(lr_d=0.0)
