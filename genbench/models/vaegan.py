"""VAE-GAN (Larsen et al. 2016, "Autoencoding beyond pixels using a learned similarity metric").

Three networks: an encoder q(z|x), a decoder that is also the GAN generator, and a
discriminator D. Every mini-batch ``x`` gives reconstructions ``x~ = Dec(z)``,
``z ~ q(z|x)``, and prior samples ``x_p = Dec(z_p)``, ``z_p ~ N(0, I)`` (one decoder
pass). With ``Lrec`` the per-example reconstruction loss,
``KL`` the per-example KL to the prior and BCE the non-saturating GAN loss:

* D (own Adam): ``BCE(D(x), 1) + BCE(D([x~, x_p]), 0)``: real against the fakes, the
  two fakes averaged so that real and fake carry equal weight as in a GAN (the paper
  sums three terms).
* encoder (own Adam): ``KL + Lrec``, no adversarial term (the paper's L_prior + L_llike).
* decoder (own Adam): ``gamma * Lrec + BCE(D([x~, x_p]), 1)``, the GAN term averaged
  over reconstructions and prior samples (the paper's
  ``gamma * L_llike - L_GAN``, with the non-saturating generator loss of Goodfellow et
  al. 2014).

The knobs shared with the other GANs work as in :mod:`genbench.models.adversarial`:
``lr_g`` (encoder and decoder) and ``lr_d``, ``beta1``/``beta2``, ``d_steps`` D updates
then ``g_steps`` encoder+decoder updates per mini-batch (fresh ``z`` and ``z_p`` for
each; the last D update's decoder pass feeds the first generator update), and
``loss=hinge``, which replaces the BCE terms above by ``relu(1 - D(x)) + relu(1 +
D(fake))`` for D and ``-D(fake)`` for the decoder's GAN term.

``Lrec`` is either the pixel-wise Bernoulli NLL summed over pixels (``recon=pixel``, the
VAE's term: our simplification, the default) or the paper's feature-wise loss: a
unit-variance Gaussian on D's last convolutional features, ``1/2 ||f(x~) - f(x)||^2``
(``recon=feature``). Like the paper, each network is updated only with the terms
about it: D never sees ``Lrec``, the encoder never sees the GAN term.

Networks: convvae's DCGAN-shaped encoder and decoder, and DCGAN's discriminator (its
features and its logit head), all without batch-norm: D's features of real and
reconstructed images come from separate passes and must be comparable, and a decoder
with DCGAN's batch-norm and N(0, 0.02) initialisation gave grey eval-mode prior samples
in our first runs. The decoder keeps PyTorch's default initialisation, D gets DCGAN's.

No ELBO capability: the decoder is trained as a sampler (its adversarial term and
``gamma`` weight are not a likelihood), so a Bernoulli bound would not describe it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import Hyper, hp, positive
from genbench.models.adversarial import at_least_one, classifier_d_loss, classifier_g_loss
from genbench.models.base import Capability, GaussianLatent
from genbench.models.convvae import check_image_sides, conv_decoder, conv_encoder, gaussian_kl
from genbench.models.layers import dcgan_init, flat


@dataclass
class VAEGANHyper(Hyper):
    """The GAN knobs of the other GANs (lr_g, lr_d, beta1, beta2, d_steps, g_steps, loss, z_dim, width) and the
    VAE-GAN's own (gamma, recon). No ``noise``: the prior samples ``z_p`` must come from the prior the
    encoder's KL term pulls q(z|x) towards, N(0, I); uniform noise would feed the decoder codes it never
    learns to reconstruct from."""

    z_dim: int = hp(16, "latent size (the GAN-vs-VAE report swept 8/16/32; as vae/convvae)")
    lr: float = hp(
        1e-3,
        "learning rate of the three Adam optimisers. Larsen et al. used RMSProp at 3e-4 and the DCGAN paper "
        "Adam at 2e-4; both are too slow for a few epochs: on mnist5k at 5 epochs (gamma=1) domain FID 218 at "
        "5e-4, 145 at 1e-3",
    )
    lr_g: float | None = hp(None, "learning rate of the encoder and decoder (the generator side; default: lr)")
    lr_d: float | None = hp(None, "discriminator learning rate (default: lr)")
    batch_size: int = hp(64, "mini-batch size (Larsen et al. 2016 and the DCGAN paper)")
    beta1: float = hp(0.5, "Adam beta1 (0.5 per the DCGAN paper, for the adversarial updates)")
    beta2: float = hp(0.999, "Adam beta2 (0.999, Adam's and the DCGAN paper's)")
    d_steps: int = hp(1, "discriminator updates per mini-batch, each with fresh z and z_p on the same real batch")
    g_steps: int = hp(1, "encoder + decoder updates per mini-batch, each with fresh z and z_p")
    loss: Literal["bce", "hinge"] = hp("bce", "adversarial loss: bce (non-saturating, as the paper) or hinge")
    width: int = hp(32, "channels of the first conv layer of each network; widest 2*width (DCGAN's ndf/ngf, halved)")
    gamma: float = hp(
        0.1,
        "weight of the reconstruction loss against the GAN loss in the decoder's loss (Larsen et al.'s gamma; "
        "its scale depends on recon). Chosen on mnist5k at 5 epochs (pixel, lr 1e-3): domain FID 145 at 1, "
        "91 at 0.3, 57/54 at 0.1 (seeds 0/1), 44 at 0.03 (seed 1); 10/10 classes covered in every run",
    )
    recon: Literal["pixel", "feature"] = hp(
        "pixel",
        "reconstruction loss: pixel (Bernoulli NLL summed over pixels, as the VAE) or feature "
        "(Gaussian on D's last conv features, Larsen et al.'s learned similarity; on mnist5k at 5 epochs domain "
        "FID 125 at gamma 0.1, 91 at 0.3, with a worse pixel reconstruction)",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        positive(self, "width", "lr_g", "lr_d")
        at_least_one(self, "d_steps", "g_steps")
        if not 0.0 <= self.beta2 < 1.0:
            raise ValueError(f"beta2 must be in [0, 1), got {self.beta2}")
        if not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0, got {self.gamma}")


class VAEGAN(GaussianLatent):
    """VAE-GAN: conv VAE whose decoder is also a GAN generator against a DCGAN-shaped discriminator."""

    name = "vaegan"
    description = "VAE-GAN (Larsen et al. 2016): conv encoder, decoder = generator, discriminator; images /4"
    Hyper = VAEGANHyper
    graph_safe = True  # fixed loops, noise on the device, gradients assigned from autograd.grad (captured)
    capabilities = frozenset(
        {Capability.SAMPLE, Capability.RECONSTRUCT, Capability.ENCODE, Capability.DECODE, Capability.DISCRIMINATE}
    )
    data_kinds = frozenset({"image"})

    hp: VAEGANHyper

    def __init__(self, hp: VAEGANHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        c, h, w = check_image_sides(self.name, data)
        ch = hp.width
        self.encoder = conv_encoder(c, h, w, ch, 2 * hp.z_dim)
        self.decoder = conv_decoder(hp.z_dim, c, h, w, ch)
        # D's convolutional features (used by recon=feature) and its logit head.
        self.discriminator = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(c, ch, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(ch, 2 * ch, 4, 2, 1),
                nn.LeakyReLU(0.2),
                nn.Flatten(),
            ),
            nn.Sequential(nn.Linear(2 * ch * (h // 4) * (w // 4), 1), nn.Flatten(0)),
        )
        self.discriminator.apply(dcgan_init)
        betas = (hp.beta1, hp.beta2)
        lr_g, lr_d = hp.lr_g or hp.lr, hp.lr_d or hp.lr
        self.opt_enc = torch.optim.Adam(self.encoder.parameters(), lr=lr_g, betas=betas)
        self.opt_dec = torch.optim.Adam(self.decoder.parameters(), lr=lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=lr_d, betas=betas)

    def _d(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's features and logits (n,) on images in [0, 1] (centred to [-1, 1] as for DCGAN)."""
        features = self.discriminator[0](x * 2 - 1)
        return features, self.discriminator[1](features)

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The posterior's (mu, logvar) and the decoder logits of ``[x~, x_p]`` (one decoder pass), fresh z, z_p."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        z_p = torch.randn_like(z)
        return mu, logvar, self.decoder(torch.cat([z, z_p]))

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        hp = self.hp
        n = x.shape[0]

        # Discriminator: real against reconstructions and prior samples, d_steps times. The last update's
        # forward pass keeps its graph and feeds the first encoder/decoder update (one decoder pass per
        # mini-batch at d_steps = g_steps = 1, as before these knobs existed).
        loss_d_sum = torch.zeros((), device=x.device)
        for i in range(hp.d_steps):
            with torch.set_grad_enabled(i == hp.d_steps - 1):
                mu, logvar, logits = self._forward(x)
            fake = torch.sigmoid(logits)  # [x~, x_p]
            _, d_real = self._d(x)
            _, d_fake = self._d(fake.detach())
            loss_d = classifier_d_loss(d_real, d_fake, hp.loss)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            loss_d_sum = loss_d_sum + loss_d.detach()

        # Encoder and decoder, against the updated D, g_steps times.
        enc_params = list(self.encoder.parameters())
        dec_params = list(self.decoder.parameters())
        sums = {k: torch.zeros((), device=x.device) for k in ("loss_enc", "loss_dec", "recon", "kl")}
        for j in range(hp.g_steps):
            if j > 0:
                mu, logvar, logits = self._forward(x)
                fake = torch.sigmoid(logits)
            f_fake, d_fake_g = self._d(fake)
            kl = gaussian_kl(mu, logvar)
            if hp.recon == "pixel":
                rec = F.binary_cross_entropy_with_logits(flat(logits[:n]), flat(x), reduction="none").sum(1)
            else:
                with torch.no_grad():
                    f_real, _ = self._d(x)
                rec = 0.5 * (f_fake[:n] - f_real).pow(2).sum(1)
            adv = classifier_g_loss(d_fake_g, hp.loss)
            loss_enc = (kl + rec).mean()
            loss_dec = hp.gamma * rec.mean() + adv
            enc_grads = torch.autograd.grad(loss_enc, enc_params, retain_graph=True)
            dec_grads = torch.autograd.grad(loss_dec, dec_params)
            for p, g in zip(enc_params + dec_params, enc_grads + dec_grads, strict=True):
                p.grad = g
            self.opt_enc.step()
            self.opt_dec.step()
            for k, v in (("loss_enc", loss_enc), ("loss_dec", loss_dec), ("recon", rec.mean()), ("kl", kl.mean())):
                sums[k] = sums[k] + v.detach()

        # means over the updates of this step; D(x), D(G(z)) from the last D update
        return {
            **{k: v / hp.g_steps for k, v in sums.items()},
            "loss_d": loss_d_sum / hp.d_steps,
            "d_x": torch.sigmoid(d_real.detach()).mean(),
            "d_g_z": torch.sigmoid(d_fake.detach()[n:]).mean(),  # on prior samples
        }

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """D's probability that ``x`` is real (the sigmoid of its logit)."""
        return torch.sigmoid(self._d(x)[1])

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean."""
        mu: torch.Tensor = self.encoder(x).chunk(2, dim=1)[0]
        return mu

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(self.encode(x)))
