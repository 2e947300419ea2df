"""Variational autoencoder (Kingma & Welling 2014) with a Bernoulli decoder.

Encoder: x -> hidden ReLU layers -> (mu, logvar) of a diagonal Gaussian q(z|x).
Decoder: z -> hidden ReLU layers -> logits of independent Bernoulli pixels.
Loss: the negative ELBO, BCE summed over pixels + KL(q(z|x) || N(0, I)), mean over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.conv_ae import torch_default_init_


@dataclass
class VAEConfig:
    input_dim: int = 784
    hidden_sizes: list[int] = field(default_factory=lambda: [512])
    latent_dim: int = 2

    def __post_init__(self) -> None:
        if min([self.input_dim, self.latent_dim, *self.hidden_sizes]) < 1:
            raise ValueError("VAE widths must be positive")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    unit_interval = True

    def __init__(self, config: VAEConfig | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.config = cfg = config or VAEConfig()
        self.input_dim = cfg.input_dim
        enc = [cfg.input_dim, *cfg.hidden_sizes]
        self.encoder = _mlp(enc)
        self.to_mu = nn.Linear(enc[-1], cfg.latent_dim)
        self.to_logvar = nn.Linear(enc[-1], cfg.latent_dim)
        dec = [cfg.latent_dim, *reversed(cfg.hidden_sizes)]
        self.decoder = _mlp(dec)
        self.to_logits = nn.Linear(dec[-1], cfg.input_dim)
        torch_default_init_(self, generator)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x)."""
        hidden = self.encoder(x)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_logits(self.decoder(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means P(x=1|z)."""
        return torch.sigmoid(self.decode_logits(z))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) drawn from `generator`."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + eps * torch.exp(0.5 * logvar)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reconstruction: decode a sample of q(z|x) when a generator is given, else decode its mean."""
        mu, logvar = self.encode(x)
        z = mu if generator is None else self.reparameterize(mu, logvar, generator)
        return self.decode(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Bernoulli means of n images decoded from z ~ N(0, I)."""
        device = self.to_mu.weight.device
        z = torch.randn((n, self.config.latent_dim), generator=generator, device=device)
        return self.decode(z)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """Negative ELBO (one reparameterised sample), mean over the batch."""
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"VAE expects (n, {self.input_dim}) inputs, got {tuple(x.shape)}")
        mu, logvar = self.encode(x)
        logits = self.decode_logits(self.reparameterize(mu, logvar, generator))
        n = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / n
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / n
        return recon + kl, {"reconstruction": recon.detach(), "kl": kl.detach()}
