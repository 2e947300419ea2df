"""Reference Bernoulli-Bernoulli RBM trained by CD-k or persistent CD (Tieleman 2008): what the tests check the
lockstep RBMs of the table (pipeline.training.families.rbm.RBMGroup) against. No stage runs it.

Energy E(v, h) = -v.c - h.b - h^T W v with W of shape (n_hidden, n_visible), so
P(h=1|v) = sigmoid(v W^T + b), P(v=1|h) = sigmoid(h W + c) and the free energy is
F(v) = -v.c - sum_j softplus((v W^T + b)_j).

A CD-1 step with no momentum and no weight decay is the update of sklearn's `BernoulliRBM._fit`:
    h_pos = P(h|v);  v_neg ~ P(v|h_sample);  h_neg = P(h|v_neg)
    W += lr / n * (h_pos^T v - h_neg^T v_neg)
    b += lr / n * sum_n (h_pos - h_neg);  c += lr / n * sum_n (v - v_neg)
where h_sample ~ P(h|v) for CD and the persistent chains' hidden states for PCD (sklearn's `h_samples_`).
All state (weights, persistent chains, momentum velocities) lives in buffers, so `state_dict()` is a
complete checkpoint.  No autograd is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

Sampler = Callable[[torch.Tensor], torch.Tensor]  # probabilities -> 0/1 samples of the same dtype


@dataclass
class RBMConfig:
    n_visible: int = 784
    n_hidden: int = 500
    lr: float = 0.1
    k: int = 1  # Gibbs steps per update
    persistent: bool = False  # PCD: negative chains carried across updates
    n_chains: int = 20  # number of persistent chains (sklearn uses batch_size)
    momentum: float = 0.0
    weight_decay: float = 0.0  # L2 on W, added to the gradient as -weight_decay * W

    def __post_init__(self) -> None:
        if min(self.n_visible, self.n_hidden, self.k, self.n_chains) < 1:
            raise ValueError("n_visible, n_hidden, k and n_chains must be >= 1")
        if self.lr <= 0 or not 0 <= self.momentum < 1 or self.weight_decay < 0:
            raise ValueError("need lr > 0, 0 <= momentum < 1, weight_decay >= 0")


def bernoulli_sampler(generator: torch.Generator | None) -> Sampler:
    """Samples 1 where u < p for u ~ U[0, 1), the same rule as sklearn's `rng.uniform(size) < p`."""

    def sample(p: torch.Tensor) -> torch.Tensor:
        u = torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device)
        return u.lt_(p)

    return sample


class RBM(nn.Module):
    """Bernoulli visible and hidden units; see the module docstring for the update."""

    def __init__(self, config: RBMConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.input_dim = config.n_visible
        self.unit_interval = True
        h, d = config.n_hidden, config.n_visible
        self.register_buffer("weight", torch.randn((h, d), generator=generator) * 0.01)
        self.register_buffer("hidden_bias", torch.zeros(h))
        self.register_buffer("visible_bias", torch.zeros(d))
        self.register_buffer("chains", torch.zeros(config.n_chains if config.persistent else 0, h))
        n_vel = 1 if config.momentum else 0  # velocities only exist with momentum
        self.register_buffer("weight_velocity", torch.zeros(h * n_vel, d * n_vel))
        self.register_buffer("hidden_bias_velocity", torch.zeros(h * n_vel))
        self.register_buffer("visible_bias_velocity", torch.zeros(d * n_vel))

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.hidden_bias, v, self.weight.T).sigmoid_()

    def visible_logits(self, h: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.visible_bias, h, self.weight)

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return self.visible_logits(h).sigmoid_()

    @torch.no_grad()
    def transform(self, v: torch.Tensor) -> torch.Tensor:
        """Features P(h=1|v)."""
        return self.hidden_probs(v)

    @torch.no_grad()
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) per example."""
        return -v.mv(self.visible_bias) - F.softplus(torch.addmm(self.hidden_bias, v, self.weight.T)).sum(1)

    @torch.no_grad()
    def pseudo_likelihood(self, v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Stochastic pseudo-log-likelihood per example, as sklearn's `BernoulliRBM.score_samples`.

        One randomly chosen component i of each example is flipped (v_i -> 1 - v_i), and
        d * log sigmoid(F(v_flipped) - F(v)) estimates sum_i log P(v_i | v_-i).
        """
        n, d = v.shape
        idx = torch.randint(0, d, (n,), generator=generator, device=v.device)
        rows = torch.arange(n, device=v.device)
        flipped = v.clone()
        flipped[rows, idx] = 1 - flipped[rows, idx]
        return -d * F.softplus(self.free_energy(v) - self.free_energy(flipped))

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the mean-field reconstruction P(v|P(h|v)), summed over pixels, mean over batch."""
        logits = self.visible_logits(self.hidden_probs(v))
        return F.binary_cross_entropy_with_logits(logits, v, reduction="sum") / v.shape[0]

    @torch.no_grad()
    def cd_step(
        self,
        v: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sampler: Sampler | None = None,
        start_hidden: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One CD-k (or PCD-k) update on the batch `v`; returns the summed reconstruction cross-entropy.

        The negative chain starts from `start_hidden` when given, else from the persistent chains (PCD)
        or from a sample of P(h|v) (CD).  All Bernoulli draws go through `sampler` (default: uniforms from
        `generator`), so a caller can feed the exact random numbers another implementation used.  The
        returned loss compares v with P(v|h) at the last Gibbs step (the k-step reconstruction for CD).
        """
        cfg = self.config
        sample = sampler or bernoulli_sampler(generator)
        h_pos = self.hidden_probs(v)
        if start_hidden is not None:
            h = start_hidden
        elif cfg.persistent:
            h = self.chains
        else:
            h = sample(h_pos)
        for step in range(cfg.k):
            logits = self.visible_logits(h)
            v_neg = sample(torch.sigmoid(logits))
            h_neg = self.hidden_probs(v_neg)
            if step < cfg.k - 1:
                h = sample(h_neg)
        loss = F.binary_cross_entropy_with_logits(logits, v, reduction="sum")
        self._update(v, h_pos, v_neg, h_neg)
        if cfg.persistent:
            self.chains = sample(h_neg)
        return loss

    def _update(self, v: torch.Tensor, h_pos: torch.Tensor, v_neg: torch.Tensor, h_neg: torch.Tensor) -> None:
        cfg = self.config
        pos, neg = cfg.lr / v.shape[0], -cfg.lr / v_neg.shape[0]
        if cfg.momentum:
            # velocity = momentum * velocity + lr * (gradient - weight_decay * W); then W += velocity
            vw, vb, vc = self.weight_velocity, self.hidden_bias_velocity, self.visible_bias_velocity
            vw.mul_(cfg.momentum).addmm_(h_pos.T, v, alpha=pos).addmm_(h_neg.T, v_neg, alpha=neg)
            if cfg.weight_decay:
                vw.add_(self.weight, alpha=-cfg.lr * cfg.weight_decay)
            vb.mul_(cfg.momentum).add_(h_pos.sum(0), alpha=pos).add_(h_neg.sum(0), alpha=neg)
            vc.mul_(cfg.momentum).add_(v.sum(0), alpha=pos).add_(v_neg.sum(0), alpha=neg)
            self.weight.add_(vw)
            self.hidden_bias.add_(vb)
            self.visible_bias.add_(vc)
            return
        if cfg.weight_decay:
            self.weight.mul_(1 - cfg.lr * cfg.weight_decay)
        self.weight.addmm_(h_pos.T, v, alpha=pos).addmm_(h_neg.T, v_neg, alpha=neg)
        self.hidden_bias.add_(h_pos.sum(0), alpha=pos).add_(h_neg.sum(0), alpha=neg)
        self.visible_bias.add_(v.sum(0), alpha=pos).add_(v_neg.sum(0), alpha=neg)
