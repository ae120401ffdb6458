"""MLP autoencoder and variational autoencoder (the lab reports' baselines)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genbench.datasets.base import DataInfo
from genbench.hyper import Hyper, hp
from genbench.models.base import Capability, GaussianLatent, GenerativeModel
from genbench.models.layers import decoded, flat, mlp


@dataclass
class AEHyper(Hyper):
    z_dim: int = hp(32, "code size (the AE lab used 784-256-128-2; 2 is too small to sample well)")
    # Measured on mnist5k, 5 epochs, seed 0 (domain FID / classes covered): lr 1e-3 with batch 128 gives
    # 382 / 3 (31 updates an epoch are too few); batch 32 gives 154 / 10; batch 32 with lr 3e-3 gives 119 / 10.
    lr: float = hp(3e-3, "learning rate (Adam; with batch 32, better than 1e-3 on mnist5k in 5 epochs)")
    batch_size: int = hp(32, "mini-batch size (32: 125 updates an epoch on mnist5k)")
    beta1: float = hp(0.9, "Adam beta1 (PyTorch default for non-adversarial training)")


class AutoEncoder(GenerativeModel):
    """784-256-128-z MLP autoencoder trained with MSE.

    An AE has no prior to sample from; genbench samples its decoder from a
    Gaussian fitted to the training codes (running mean and covariance), so AEs
    get an FID comparable with the other models.
    """

    name = "ae"
    description = "MLP autoencoder 784-256-128-z, MSE; samples decode a Gaussian fitted to the codes"
    Hyper = AEHyper
    # Not graph-safe: the cached Cholesky factor of the codes is keyed on the moment buffers' version
    # counters, which a CUDA graph replay of their in-place update does not bump (the cache would go stale).
    capabilities = frozenset({Capability.SAMPLE, Capability.RECONSTRUCT, Capability.ENCODE, Capability.DECODE})

    code_mean: torch.Tensor
    code_second: torch.Tensor

    def __init__(self, hp: AEHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        d = data.dim
        self.encoder = mlp([d, 256, 128, hp.z_dim])
        self.decoder = mlp([hp.z_dim, 128, 256, d])
        self.opt = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=(hp.beta1, 0.999))
        # Running first and second moments of the codes (momentum 0.01 tracks the recent epochs).
        self.register_buffer("code_mean", torch.zeros(hp.z_dim))
        self.register_buffer("code_second", torch.eye(hp.z_dim))
        self._scale_cache: tuple[torch.Tensor, torch.Tensor, tuple[int, int], torch.Tensor] | None = None

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        z = self.encoder(flat(x))
        loss = F.mse_loss(decoded(self.decoder(z), self.data), x)
        self.update(loss, self.opt)
        with torch.no_grad():
            zd = z.detach()
            self.code_mean.lerp_(zd.mean(0), 0.01)
            self.code_second.lerp_(zd.T @ zd / zd.shape[0], 0.01)
        return {"loss": loss.detach()}

    def sample(self, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.sample_latent(n))

    def sample_latent(self, n: int) -> torch.Tensor:
        """Codes from the Gaussian fitted to the training codes (not N(0, I): interpolations are straight)."""
        return self.latent_from_noise(torch.randn(n, self.hp.z_dim, device=self.device))

    def latent_from_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """Standard normal noise mapped onto the fitted Gaussian (what ``genbench export`` traces): a matmul
        and an add, the Cholesky factor being a constant of the trained model (:meth:`_code_scale`)."""
        return self.code_mean + noise @ self._code_scale().T

    def _code_scale(self) -> torch.Tensor:
        """Cholesky factor of the fitted codes' covariance, computed once per state of the moments.

        Cached, not recomputed per call, so that a trace of :meth:`latent_from_noise` (``genbench export``,
        which runs the model once before it traces) holds the factor as a constant: ONNX has no Cholesky. The
        key is the moment buffers themselves and their version counters, which every in-place change bumps
        (the running update in :meth:`train_step`, ``load_state_dict``); ``.to(device)`` replaces them."""
        mean, second = self.code_mean, self.code_second
        versions = (mean._version, second._version)
        cached = self._scale_cache
        if cached is None or cached[0] is not mean or cached[1] is not second or cached[2] != versions:
            with torch.no_grad():
                cov = second - torch.outer(mean, mean)
                cov = cov + 1e-4 * torch.eye(cov.shape[0], device=cov.device)  # keep it positive definite
                cached = (mean, second, versions, torch.linalg.cholesky(cov))
            self._scale_cache = cached
        return cached[3]

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return decoded(self.decoder(z), self.data)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(flat(x))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return decoded(self.decoder(self.encode(x)), self.data)


@dataclass
class VAEHyper(Hyper):
    # Measured on mnist5k, 5 epochs (domain FID / classes covered): lr 1e-3 with batch 128 gives 345 / 2,
    # flagged collapse (seed 0); batch 64 with lr 3e-3 gives 190 +- 3 / 10; batch 32 with lr 3e-3 gives
    # 159 +- 6 / 10 (seeds 0-2).
    z_dim: int = hp(16, "latent size (the GAN-vs-VAE report swept 8/16/32)")
    lr: float = hp(3e-3, "learning rate (Adam; with batch 32, better than 1e-3 on mnist5k in 5 epochs)")
    batch_size: int = hp(32, "mini-batch size (32: 125 updates an epoch on mnist5k)")
    beta1: float = hp(0.9, "Adam beta1")
    hidden: int = hp(400, "hidden width of encoder and decoder (Kingma & Welling used 400)")


class VAE(GaussianLatent):
    """MLP VAE with the reparameterisation trick; Bernoulli (BCE) likelihood for images, Gaussian for points."""

    name = "vae"
    description = "MLP VAE (reparameterisation), BCE + KL; samples decode z ~ N(0, I)"
    Hyper = VAEHyper
    graph_safe = True  # one update, torch.randn_like on the device: the same work every step (--cuda-graphs)
    capabilities = frozenset(
        {Capability.SAMPLE, Capability.RECONSTRUCT, Capability.ENCODE, Capability.ELBO, Capability.DECODE}
    )

    def __init__(self, hp: VAEHyper, data: DataInfo) -> None:
        super().__init__(hp, data)
        d = data.dim
        self.encoder = nn.Sequential(nn.Linear(d, hp.hidden), nn.ReLU(), nn.Linear(hp.hidden, 2 * hp.z_dim))
        self.decoder = mlp([hp.z_dim, hp.hidden, d])
        self.opt = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=(hp.beta1, 0.999))

    def _terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-example reconstruction NLL, KL, and the decoder logits."""
        mu, logvar = self.encoder(flat(x)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        out = self.decoder(z)
        target = flat(x)
        if self.data.kind == "image":
            nll = F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(1)
        else:  # unit-variance Gaussian likelihood, constant dropped
            nll = 0.5 * (out - target).pow(2).sum(1)
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)
        return nll, kl, out

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> Mapping[str, torch.Tensor]:
        nll, kl, _ = self._terms(x)
        loss = (nll + kl).mean()
        self.update(loss, self.opt)
        return {"loss": loss.detach(), "recon": nll.mean().detach(), "kl": kl.mean().detach()}

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return decoded(self.decoder(z), self.data)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean."""
        return self.encoder(flat(x)).chunk(2, dim=1)[0]

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return decoded(self.decoder(self.encode(x)), self.data)

    def elbo(self, x: torch.Tensor) -> torch.Tensor:
        nll, kl, _ = self._terms(x)
        return -(nll + kl)
