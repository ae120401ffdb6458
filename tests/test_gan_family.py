"""The GAN family: shared knobs (d_steps, g_steps, noise, width), cgan / cdcgan, wgan-gp."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genbench.datasets.base import DataInfo
from genbench.errors import GenbenchError
from genbench.hyper import build, field_types, parse_value
from genbench.models.adversarial import AdversarialModel, GANHyper
from genbench.models.autoencoders import VAE, AutoEncoder
from genbench.models.base import Capability, GenerativeModel
from genbench.models.conditional import CDCGAN, CGAN
from genbench.models.convvae import ConvVAE
from genbench.models.gans import DCGAN, GAN
from genbench.models.vaegan import VAEGAN
from genbench.models.wgan import WGANGP, gradient_penalty

DIGITS = DataInfo("d", (1, 8, 8), "image", 10)
UNLABELLED = DataInfo("blank", (1, 8, 8), "image", None)
POINTS = DataInfo("toy", (2,), "points", 8)
GAN_KEYS = {"loss_d", "loss_g", "d_x", "d_g_z"}
MODELS: list[type[AdversarialModel]] = [GAN, DCGAN, CGAN, CDCGAN, WGANGP]
EXTRA_KEYS: dict[type[AdversarialModel], set[str]] = {GAN: {"r1_penalty"}, CGAN: {"r1_penalty"}}
KEYS = {cls: GAN_KEYS | EXTRA_KEYS.get(cls, set()) for cls in MODELS}
# The critic logs raw values under their own names: d_x and d_g_z are probabilities (GenerativeModel.train_step)
KEYS[WGANGP] = {"loss_d", "loss_g", "critic_x", "critic_g_z", "wasserstein", "gp"}


def make(cls: type[AdversarialModel], data: DataInfo = DIGITS, **hyper: object) -> AdversarialModel:
    torch.manual_seed(0)
    values = {"z_dim": 8, "width": 8, **hyper}
    return cls(build(cls.Hyper, values, cls.name), data)  # type: ignore[arg-type]


def batch(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(n, 1, 8, 8), torch.arange(n) % 10


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.name)
def test_trains_and_samples(cls: type[AdversarialModel]) -> None:
    model = make(cls)
    x, y = batch()
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        logs = model.train_step(x, y)
    assert set(logs) == KEYS[cls]
    assert all(v.dim() == 0 and torch.isfinite(v) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    model.eval()
    with torch.no_grad():
        samples = model.sample(7)
    assert samples.shape == (7, 1, 8, 8)
    assert samples.min() >= 0 and samples.max() <= 1


@pytest.mark.parametrize("cls", [*MODELS, VAEGAN], ids=lambda c: c.name)
def test_every_gan_has_the_shared_knobs(cls: type[GenerativeModel]) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls.Hyper)}
    shared = ["lr", "lr_g", "lr_d", "beta1", "beta2", "d_steps", "g_steps", "loss", "noise", "z_dim", "width"]
    if cls is VAEGAN:
        shared.remove("noise")  # z_p must follow the VAE prior; the Hyper docstring says why
        assert "noise" in (VAEGAN.Hyper.__doc__ or "")
    for key in shared:
        assert key in fields, key
        assert fields[key].metadata.get("help"), f"{cls.name}.{key} has no documentation"


@pytest.mark.parametrize("key", ["d_steps", "g_steps"])
def test_zero_updates_rejected_with_the_key(key: str) -> None:
    with pytest.raises(GenbenchError, match=f"^model 'gan': {key} must be >= 1, got 0$"):
        build(GANHyper, {key: 0}, "model 'gan'")


def test_loss_choices_per_model() -> None:
    assert parse_value(field_types(GAN.Hyper)["loss"], "hinge") == "hinge"
    with pytest.raises(ValueError, match="'wgan-gp' is not one of 'bce', 'hinge'"):
        parse_value(field_types(DCGAN.Hyper)["loss"], "wgan-gp")
    with pytest.raises(ValueError, match="'bce' is not one of 'wgan-gp'"):
        parse_value(field_types(WGANGP.Hyper)["loss"], "bce")
    with pytest.raises(ValueError, match="'gaussian' is not one of 'normal', 'uniform'"):
        parse_value(field_types(GAN.Hyper)["noise"], "gaussian")


@pytest.mark.parametrize("cls", [GAN, WGANGP], ids=lambda c: c.name)
def test_d_steps_and_g_steps_update_counts(cls: type[AdversarialModel]) -> None:
    model = make(cls, d_steps=2, g_steps=3)
    x, y = batch()
    model.train_step(x, y)
    model.train_step(x, y)
    step_d = next(iter(model.opt_d.state.values()))["step"]
    step_g = next(iter(model.opt_g.state.values()))["step"]
    assert (int(step_d), int(step_g)) == (4, 6)


def test_wgan_gp_defaults_are_the_papers() -> None:
    hp = WGANGP.Hyper()
    assert (hp.lr, hp.beta1, hp.beta2, hp.d_steps, hp.gp_weight, hp.loss) == (1e-4, 0.5, 0.9, 5, 10.0, "wgan-gp")
    model = make(WGANGP)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.discriminator.modules())
    assert model.opt_d.param_groups[0]["betas"] == (0.5, 0.9)


def test_uniform_noise_in_minus_one_one() -> None:
    model = make(GAN, noise="uniform", z_dim=64)
    z = model.noise(2000)
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99 and z.max() > 0.99
    assert abs(float(z.mean())) < 0.05
    normal = make(GAN).noise(2000)
    assert normal.abs().max() > 1.5  # N(0, 1) leaves [-1, 1]


def test_width_scales_the_networks() -> None:
    small, large = make(GAN, width=8), make(GAN, width=16)
    assert large.parameter_counts()["total"] > small.parameter_counts()["total"]
    assert GAN.Hyper().width == 256 and DCGAN.Hyper().width == 64


def test_gradient_penalty_positive_and_finite() -> None:
    model = make(WGANGP)
    x, _ = batch()
    fake = torch.rand_like(x) * 2 - 1
    gp = gradient_penalty(model.discriminator, x * 2 - 1, fake)
    assert gp.dim() == 0 and torch.isfinite(gp) and gp > 0
    logs = model.train_step(x, None)
    assert logs["gp"] > 0 and torch.isfinite(logs["wasserstein"])


@pytest.mark.parametrize("cls", [CGAN, CDCGAN], ids=lambda c: c.name)
def test_conditional_models(cls: type[AdversarialModel]) -> None:
    assert Capability.CONDITIONAL in cls.capabilities
    model = make(cls)
    x, y = batch()
    model.train_step(x, y)
    model.eval()
    with torch.no_grad():
        assert model.sample(6, torch.tensor([0, 1, 2, 3, 4, 5])).shape == (6, 1, 8, 8)
        assert model.sample(13).shape == (13, 1, 8, 8)  # labels None: class-balanced
        with pytest.raises(ValueError, match="labels must have shape"):
            model.sample(6, torch.zeros(5, dtype=torch.long))
        # the label changes the sample: same noise, different classes
        torch.manual_seed(1)
        a = model.sample(4, torch.zeros(4, dtype=torch.long))
        torch.manual_seed(1)
        b = model.sample(4, torch.ones(4, dtype=torch.long))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="trains on labelled batches"):
        model.train(True)
        model.train_step(x, None)


@pytest.mark.parametrize("cls", [CGAN, CDCGAN], ids=lambda c: c.name)
def test_conditional_model_needs_classes(cls: type[AdversarialModel]) -> None:
    with pytest.raises(ValueError, match=f"^{cls.name} needs a labelled dataset; blank has no classes$"):
        make(cls, UNLABELLED)


def test_cgan_on_labelled_points() -> None:
    model = make(CGAN, POINTS, z_dim=2)
    model.train_step(torch.randn(32, 2), torch.arange(32) % 8)
    with torch.no_grad():
        assert model.sample(5, torch.arange(5)).shape == (5, 2)
    assert CDCGAN.data_kinds == frozenset({"image"}) and WGANGP.data_kinds == frozenset({"image"})


def test_conv_models_reject_sides_not_divisible_by_four() -> None:
    for cls in (CDCGAN, WGANGP):
        with pytest.raises(ValueError, match="divisible by 4"):
            make(cls, DataInfo("odd", (1, 10, 10), "image", 10))


@pytest.mark.parametrize("cls", [GAN, DCGAN, CDCGAN], ids=lambda c: c.name)
def test_discriminator_sees_tanh_squashed_fakes(cls: type[AdversarialModel]) -> None:
    """D must judge the images sample() returns (in [-1, 1] like the real ones), not G's pre-tanh output."""
    model = make(cls)
    with torch.no_grad():
        for p in model.generator.parameters():
            p.mul_(50)  # raw generator outputs far outside [-1, 1]
    seen: list[torch.Tensor] = []
    model.discriminator.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    x, y = batch()
    model.train_step(x, y)
    image_inputs = [t[:, :1] for t in seen]  # cdcgan appends label maps after the image channel
    assert all(t.min() >= -1 and t.max() <= 1 for t in image_inputs)
    model.eval()
    labels = torch.arange(5) % 10
    torch.manual_seed(3)
    g = model.generate(model.noise(5), labels)
    torch.manual_seed(3)
    with torch.no_grad():
        s = model.sample(5, labels if cls is CDCGAN else None)
    assert torch.allclose(s, (g + 1) / 2)


def test_dcgan_family_defaults() -> None:
    hp = DCGAN.Hyper()
    assert (hp.lr, hp.lr_g, hp.lr_d, hp.batch_size, hp.width, hp.loss) == (2e-4, 1e-3, None, 32, 64, "bce")
    model = make(DCGAN)
    assert model.opt_g.param_groups[0]["lr"] == 1e-3 and model.opt_d.param_groups[0]["lr"] == 2e-4
    assert CDCGAN.Hyper is DCGAN.Hyper


def test_r1_penalises_the_gradient_on_real_data_only() -> None:
    """R1 adds gamma/2 * mean ||grad_x D(x)||^2 over the real batch to D's loss (fakes do not enter it)."""
    x, _ = batch()
    plain, penalised = make(GAN, r1=0.0), make(GAN, r1=4.0)
    penalised.load_state_dict(plain.state_dict())
    real = x * 2 - 1
    fake = plain.generate(plain.noise(16), None).detach()
    loss0, logs0 = plain.d_objective(real, fake, None)
    loss4, logs4 = penalised.d_objective(real, fake, None)
    assert "r1_penalty" not in logs0 and "loss_d" not in logs0
    torch.testing.assert_close(logs4["loss_d"], loss0)  # reported: the adversarial loss alone
    r = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(plain.score(r, None).sum(), r)
    expected = grad.pow(2).flatten(1).sum(1).mean()
    torch.testing.assert_close(logs4["r1_penalty"], expected)
    torch.testing.assert_close(loss4, loss0 + 2.0 * expected)
    loss4.backward()  # the penalty is differentiable in D's weights (double backward)
    assert all(p.grad is not None for p in penalised.discriminator.parameters())


def test_r1_rejects_negative_weights() -> None:
    with pytest.raises(GenbenchError, match="r1 must be >= 0"):
        build(GANHyper, {"r1": -1.0}, "model 'gan'")


def test_reported_d_loss_excludes_the_r1_penalty() -> None:
    """History's loss_d is the adversarial loss whatever r1 is, so d_wins reads the same quantity."""
    model = make(GAN, r1=1e6)  # a huge penalty: the optimised loss is dominated by it
    x, y = batch()
    logs = model.train_step(x, y)
    assert logs["r1_penalty"] > 0
    assert logs["loss_d"] < 10  # two BCE terms of a barely trained D, nowhere near 1e6/2 * penalty


# -- double_backward: what --compile refuses (torch.compile cannot differentiate twice) ---------------------
def takes_second_gradient(model: GenerativeModel, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether two train_steps (StyleGAN-like lazy penalties skip steps) differentiate a gradient: call
    ``torch.autograd.grad`` with ``create_graph=True``, the graph torch.compile cannot go back through."""
    created: list[bool] = []
    grad = torch.autograd.grad

    def recording(*args: object, **kwargs: object) -> object:
        created.append(bool(kwargs.get("create_graph")))
        return grad(*args, **kwargs)  # type: ignore[arg-type]

    x, y = batch()
    with monkeypatch.context() as patched:
        patched.setattr(torch.autograd, "grad", recording)
        for _ in range(2):
            model.train_step(x, y)
    return any(created)


BUILTINS = [AutoEncoder, VAE, ConvVAE, GAN, DCGAN, CGAN, CDCGAN, WGANGP, VAEGAN]


@pytest.mark.parametrize(
    ("cls", "hyper", "expected"),
    [
        *[(cls, {}, None) for cls in (AutoEncoder, VAE, ConvVAE, DCGAN, CDCGAN, VAEGAN)],
        (GAN, {}, "R1 penalty r1=10; --grid gan.r1=0 turns it off"),
        (CGAN, {}, "R1 penalty r1=10; --grid cgan.r1=0 turns it off"),
        (GAN, {"r1": 0.0}, None),
        (CGAN, {"r1": 0.0}, None),
        (DCGAN, {"r1": 0.5}, "R1 penalty r1=0.5; --grid dcgan.r1=0 turns it off"),
        (WGANGP, {}, "gradient penalty, always on"),
    ],
    ids=lambda v: getattr(v, "name", None) or str(v),
)
def test_double_backward_says_what_differentiates_a_gradient_and_train_step_agrees(
    cls: type[GenerativeModel], hyper: dict[str, object], expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {k: v for k, v in {"z_dim": 8, "width": 8}.items() if k in field_types(cls.Hyper)}
    hp = build(cls.Hyper, {**small, **hyper}, cls.name)
    assert cls.double_backward(hp) == expected
    torch.manual_seed(0)
    assert takes_second_gradient(cls(hp, DIGITS), monkeypatch) == (expected is not None)


def test_every_builtin_model_is_checked_for_double_backward() -> None:
    from genbench.plugins import get_registry

    builtin = {e.cls for e in get_registry().models.values() if e.cls.__module__.startswith("genbench.")}
    assert builtin == set(BUILTINS)
