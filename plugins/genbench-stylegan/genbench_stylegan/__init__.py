"""A small StyleGAN2-like GAN as a third-party genbench plugin (only genbench's public API).

What makes it StyleGAN (Karras et al. 2019, "A Style-Based Generator Architecture for
GANs"; 2020, "Analyzing and Improving the Image Quality of StyleGAN"), scaled to
28x28 digits on a CPU:

* **Mapping network.** ``z`` (pixel-normalised) goes through ``mapping_layers``
  fully-connected layers (learning rate x ``mapping_lr``, StyleGAN's 0.01) to a style
  ``w``; the synthesis network starts from a learned constant, not from ``z``.
* **Modulated, demodulated convolutions** (StyleGAN2): every 3x3 convolution scales its
  input channels by a per-sample style ``s = A(w)`` and divides each output channel by
  the norm its modulated weights would give, ``rsqrt(sum (W s)^2)``. Computed as
  ``conv(x * s, W) * d`` (StyleGAN2's non-fused form), mathematically the same as
  modulating the weights, and one ordinary convolution per layer on a CPU.
* **Per-layer noise inputs**: after every convolution, per-pixel Gaussian noise times a
  learned per-layer strength (initialised at 0). Training draws fresh noise; sampling
  uses a fixed noise map per layer drawn at construction (StyleGAN2's ``noise_mode =
  'const'``, its default for generating images), so a sample is a function of ``z``
  alone: the model declares ``Capability.DECODE`` and ``genbench export`` works.
* **Style mixing** during training: with probability ``style_mixing`` (0.9) a batch
  draws two styles and switches from the first to the second at a random layer.
* **Truncation** at sampling: ``w = w_avg + truncation * (w - w_avg)``, ``w_avg`` a moving
  average of the styles seen in training (decay 0.995); ``truncation = 1`` is off, 0.7
  the usual trade of diversity for fidelity.
* **Equalised learning rate**: weights drawn from N(0, 1) and scaled by ``1/sqrt(fan_in)``
  at run time, so Adam's step is the same for every layer; with StyleGAN2's Adam
  (lr 2e-3, betas (0, 0.99)). The discriminator is a small equalised conv net with a
  minibatch standard-deviation feature; losses are StyleGAN's non-saturating logistic
  loss (= BCE) with an R1 penalty on real data, computed lazily (every 4th D update,
  4 times as strong: StyleGAN2's lazy regularisation, every 16th there).

Images only, with sides divisible by 4 (base resolution h/4 x w/4, two upsamplings).
The knobs every GAN shares (``lr_g``, ``lr_d``, ``beta1``, ``beta2``, ``d_steps``,
``g_steps``, ``noise``, ``width``, ``z_dim``) come from ``genbench.AdversarialHyper``, so
their columns are the built-in GANs' columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

import genbench

__all__ = ["StyleGAN", "StyleGANHyper", "register_models"]

GENBENCH_DESCRIPTION = "a small StyleGAN2-like GAN: mapping network, modulated convs, noise inputs, mixing, truncation"
W_AVG_DECAY = 0.995  # StyleGAN's w_avg_beta
GAIN = math.sqrt(2.0)  # leaky ReLU gain, as StyleGAN's bias_act
R1_EVERY = 4  # lazy R1: the penalty every 4th D update, scaled by 4 (StyleGAN2: every 16th)


@dataclass
class StyleGANHyper(genbench.AdversarialHyper):
    """StyleGAN's knobs; ``lr_g``, ``lr_d``, ``beta1``, ``beta2``, ``d_steps``, ``g_steps``, ``noise``
    come from genbench.AdversarialHyper with StyleGAN2's values as defaults where they differ."""

    z_dim: int = genbench.hp(64, "size of z (StyleGAN: 512; 64 for 28x28 digits)")
    lr: float = genbench.hp(2e-3, "learning rate of G and D unless lr_g / lr_d are set (StyleGAN2: 0.002)")
    beta1: float = genbench.hp(0.0, "Adam beta1 (StyleGAN2: 0)")
    beta2: float = genbench.hp(0.99, "Adam beta2 (StyleGAN2: 0.99)")
    batch_size: int = genbench.hp(32, "mini-batch size")
    width: int = genbench.hp(32, "channels of every synthesis and discriminator layer")
    w_dim: int = genbench.hp(64, "size of the style w")
    mapping_layers: int = genbench.hp(4, "fully-connected layers of the mapping network (StyleGAN: 8)")
    mapping_lr: float = genbench.hp(0.01, "learning-rate multiplier of the mapping network (StyleGAN: 0.01)")
    style_mixing: float = genbench.hp(0.9, "probability that a training batch mixes two styles (StyleGAN2: 0.9)")
    truncation: float = genbench.hp(1.0, "truncation psi at sampling: w_avg + psi (w - w_avg); 1: off, 0.7: typical")
    r1: float = genbench.hp(1.0, "R1 penalty gamma on real data (StyleGAN2: 10 at 1024px, less for small images)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("w_dim", "mapping_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.style_mixing <= 1.0:
            raise ValueError(f"style_mixing must be a probability in [0, 1], got {self.style_mixing}")
        if not 0.0 <= self.truncation <= 1.0:
            raise ValueError(f"truncation must be in [0, 1], got {self.truncation}")
        if not (self.mapping_lr > 0 and self.r1 >= 0):
            raise ValueError(f"mapping_lr must be > 0 and r1 >= 0, got {self.mapping_lr} and {self.r1}")


# -- equalised layers -------------------------------------------------------------------------------
class EqualLinear(nn.Module):
    """``y = x (W c)^T + b m``: W ~ N(0, 1/m^2), c = m / sqrt(fan_in) (equalised learning rate x ``lr_mult`` m)."""

    def __init__(self, fan_in: int, fan_out: int, bias_init: float = 0.0, lr_mult: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / lr_mult)
        self.bias = nn.Parameter(torch.full((fan_out,), float(bias_init) / lr_mult))
        self.scale, self.lr_mult, self.act = lr_mult / math.sqrt(fan_in), lr_mult, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mult)
        return F.leaky_relu(out, 0.2) * GAIN if self.act else out


class EqualConv(nn.Module):
    """A 3x3 (or k x k) convolution with an equalised learning rate, bias and optional leaky ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, act: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale, self.act = 1 / math.sqrt(cin * k * k), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        return F.leaky_relu(out, 0.2) * GAIN if self.act else out


class ModulatedConv(nn.Module):
    """StyleGAN2's modulated convolution: input channels scaled by ``A(w)``, outputs demodulated."""

    def __init__(self, cin: int, cout: int, w_dim: int, k: int = 3, demodulate: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)  # styles start at 1: an unmodulated conv
        self.scale, self.demodulate = 1 / math.sqrt(cin * k * k), demodulate

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # (n, cin)
        weight = self.weight * self.scale
        out = F.conv2d(x * s[:, :, None, None], weight, padding=weight.shape[-1] // 2)
        if self.demodulate:  # 1 / ||W s|| per sample and output channel, from sum_k W^2 and s^2
            d = torch.rsqrt(s.pow(2) @ weight.pow(2).sum(dim=(2, 3)).T + 1e-8)  # (n, cout)
            out = out * d[:, :, None, None]
        return out


class StyleLayer(nn.Module):
    """Modulated 3x3 conv, per-pixel noise times a learned strength, bias, leaky ReLU."""

    const_noise: torch.Tensor

    def __init__(self, cin: int, cout: int, w_dim: int, size: tuple[int, int], up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv(cin, cout, w_dim)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.up = up
        self.register_buffer("const_noise", torch.randn(1, 1, *size))  # the noise of every sample (eval mode)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        out = self.conv(x, w)
        noise = torch.randn_like(out[:, :1]) if self.training else self.const_noise
        out = out + noise * self.noise_strength + self.bias[:, None, None]
        return F.leaky_relu(out, 0.2) * GAIN


class Synthesis(nn.Module):
    """Constant (h/4 x w/4) -> layer; [up, layer, layer] twice; skip toRGB outputs summed (StyleGAN2 skip)."""

    def __init__(self, channels: int, width: int, w_dim: int, h: int, w: int) -> None:
        super().__init__()
        base = (h // 4, w // 4)
        self.const = nn.Parameter(torch.randn(1, width, *base))
        sizes = [base, (2 * base[0], 2 * base[1]), (4 * base[0], 4 * base[1])]
        self.layers = nn.ModuleList([StyleLayer(width, width, w_dim, sizes[0])])
        for size in sizes[1:]:
            self.layers.append(StyleLayer(width, width, w_dim, size, up=True))
            self.layers.append(StyleLayer(width, width, w_dim, size))
        self.to_rgb = nn.ModuleList([ModulatedConv(width, channels, w_dim, k=1, demodulate=False) for _ in sizes])
        self.rgb_bias = nn.Parameter(torch.zeros(channels))

    @property
    def num_ws(self) -> int:
        return len(self.layers)

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        """``ws`` (n, num_ws, w_dim): one style per layer; returns pre-activation images."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)
        rgb: torch.Tensor | None = None
        rgb_index = 0
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i])
            last_at_size = i == 0 or i % 2 == 0  # layers 0, 2, 4 end a resolution
            if last_at_size:
                y = self.to_rgb[rgb_index](x, ws[:, i])
                rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2.0, mode="nearest") + y
                rgb_index += 1
        assert rgb is not None
        return rgb + self.rgb_bias[:, None, None]


class Discriminator(nn.Module):
    """Equalised convs: fromRGB, [conv, avg-pool 2] twice, minibatch std, conv, linear, linear -> logit."""

    def __init__(self, channels: int, width: int, h: int, w: int) -> None:
        super().__init__()
        self.from_rgb = EqualConv(channels, width, k=1)
        self.blocks = nn.ModuleList([nn.Sequential(EqualConv(width, width), nn.AvgPool2d(2)) for _ in range(2)])
        self.final_conv = EqualConv(width + 1, width)
        self.fc = EqualLinear(width * (h // 4) * (w // 4), width, act=True)
        self.out = EqualLinear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.from_rgb(x)
        for block in self.blocks:
            x = block(x)
        # minibatch standard deviation (group = batch), with StyleGAN's epsilon: sqrt's gradient is infinite at 0
        std = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean().expand(x.shape[0], 1, *x.shape[2:])
        x = self.final_conv(torch.cat([x, std], 1))
        return self.out(self.fc(x.flatten(1))).squeeze(1)


class StyleGAN(genbench.GenerativeModel):
    """A small StyleGAN2: mapping network, modulated convs, noise inputs, style mixing, truncation."""

    name = "stylegan"
    description = "StyleGAN2-like: mapping net, modulated/demodulated convs, noise inputs, style mixing, truncation"
    Hyper = StyleGANHyper
    capabilities = frozenset({genbench.Capability.SAMPLE, genbench.Capability.DECODE})
    data_kinds = frozenset({"image"})
    d_wins_flag = True  # loss_d is the logistic (BCE) loss: near 0 only when D wins outright

    hp: StyleGANHyper
    w_avg: torch.Tensor

    def __init__(self, hp: StyleGANHyper, data: genbench.DataInfo) -> None:
        super().__init__(hp, data)
        c, h, w = data.shape
        if h % 4 or w % 4:
            raise ValueError(f"stylegan needs image sides divisible by 4, {data.name} is {h}x{w}")
        layers = [EqualLinear(hp.z_dim if i == 0 else hp.w_dim, hp.w_dim, lr_mult=hp.mapping_lr, act=True)
                  for i in range(hp.mapping_layers)]  # fmt: skip
        self.mapping = nn.Sequential(*layers)
        self.synthesis = Synthesis(c, hp.width, hp.w_dim, h, w)
        self.discriminator = Discriminator(c, hp.width, h, w)
        self.register_buffer("w_avg", torch.zeros(hp.w_dim))
        g_adam = hp.adam("g")
        self.opt_g = torch.optim.Adam(
            [
                {"params": self.synthesis.parameters()},
                {"params": self.mapping.parameters(), "lr": g_adam["lr"] * hp.mapping_lr},
            ],
            **g_adam,
        )
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), **hp.adam("d"))
        self.d_updates = 0  # counts D updates for the lazy R1 penalty
        self.r1_penalty = torch.zeros(())

    @classmethod
    def double_backward(cls, hp: genbench.Hyper) -> str | None:
        """The lazy R1 penalty differentiates D's gradient (genbench refuses it with --compile)."""
        r1 = getattr(hp, "r1", 0.0)
        return f"R1 penalty r1={r1:g}; --grid {cls.name}.r1=0 turns it off" if r1 > 0 else None

    # -- latent codes and styles ------------------------------------------------------------------
    def sample_latent(self, n: int) -> torch.Tensor:
        """z ~ N(0, I), or U[-1, 1] with ``noise=uniform`` (genbench's convention for every GAN)."""
        return genbench.draw_noise(n, self.hp.z_dim, self.hp.noise, self.device)

    def latent_prior(self) -> Literal["normal", "uniform", "other"]:
        """What ``sample_latent`` draws from (genbench's interpolations figure: slerp for ``normal``)."""
        return self.hp.noise

    def style(self, z: torch.Tensor) -> torch.Tensor:
        """w = mapping(z / rms(z)) (pixel norm, as StyleGAN)."""
        z = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
        w: torch.Tensor = self.mapping(z)
        return w

    def styles_for_training(self, n: int) -> torch.Tensor:
        """(n, num_ws, w_dim) styles of fresh z; with probability ``style_mixing`` two styles, switched at a
        random layer. Tracks ``w_avg`` for truncation."""
        num_ws = self.synthesis.num_ws
        w = self.style(self.sample_latent(n))
        with torch.no_grad():
            self.w_avg.lerp_(w.detach().mean(0), 1 - W_AVG_DECAY)
        ws = w[:, None].repeat(1, num_ws, 1)
        if self.hp.style_mixing > 0 and float(torch.rand(())) < self.hp.style_mixing:
            cut = int(torch.randint(1, num_ws, ()))
            ws = torch.cat([ws[:, :cut], self.style(self.sample_latent(n))[:, None].repeat(1, num_ws - cut, 1)], 1)
        return ws

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] for ``z``: one style for every layer, truncated towards ``w_avg``, fixed noise."""
        w = self.style(z)
        if self.hp.truncation != 1.0:
            w = self.w_avg + self.hp.truncation * (w - self.w_avg)
        ws = w[:, None].expand(-1, self.synthesis.num_ws, -1)
        return (torch.tanh(self.synthesis(ws)) + 1) / 2

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.sample_latent(n), labels)

    # -- training ---------------------------------------------------------------------------------
    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        hp = self.hp
        real = x * 2 - 1
        n = x.shape[0]
        logs: dict[str, torch.Tensor] = {}
        loss_d_sum = torch.zeros((), device=x.device)
        fake = real
        for i in range(hp.d_steps):
            with torch.set_grad_enabled(i == hp.d_steps - 1):  # the last D update's fakes feed G's first update
                fake = torch.tanh(self.synthesis(self.styles_for_training(n)))
            lazy = hp.r1 > 0 and self.d_updates % R1_EVERY == 0  # StyleGAN2's lazy regularisation
            self.d_updates += 1
            real_in = real.detach().requires_grad_(lazy)
            d_real, d_fake = self.discriminator(real_in), self.discriminator(fake.detach())
            loss_d = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()  # logistic = BCE on logits
            loss = loss_d
            if lazy:
                (grad,) = torch.autograd.grad(d_real.sum(), real_in, create_graph=True)
                penalty = grad.pow(2).flatten(1).sum(1).mean()
                loss = loss + hp.r1 / 2 * penalty * R1_EVERY  # every R1_EVERY updates, R1_EVERY times as strong
                self.r1_penalty = penalty.detach()
            if hp.r1 > 0:
                logs["r1_penalty"] = self.r1_penalty  # the last computed value (every step logs the same keys)
            self.update(loss, self.opt_d)  # loss-scaled under --precision fp16
            loss_d_sum = loss_d_sum + loss_d.detach()
            logs["d_x"] = torch.sigmoid(d_real.detach()).mean()  # probabilities, genbench's convention
            logs["d_g_z"] = torch.sigmoid(d_fake.detach()).mean()

        loss_g_sum = torch.zeros((), device=x.device)
        for j in range(hp.g_steps):
            if j > 0:
                fake = torch.tanh(self.synthesis(self.styles_for_training(n)))
            loss_g = F.softplus(-self.discriminator(fake)).mean()  # non-saturating
            self.update(loss_g, self.opt_g)
            loss_g_sum = loss_g_sum + loss_g.detach()
        return {"loss_d": loss_d_sum / hp.d_steps, "loss_g": loss_g_sum / hp.g_steps, **logs}


@genbench.hookimpl
def register_models(register: Callable[[type[genbench.GenerativeModel]], None]) -> None:
    """genbench calls this once when it loads the plugin."""
    register(StyleGAN)
