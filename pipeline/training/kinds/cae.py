"""Kind `cae`: contractive autoencoders (Rifai et al. 2011), tied sigmoid layers of the autoencoder family.

The reconstruction cross-entropy of the clean input plus `contraction` (lambda) times the squared Frobenius norm of
the encoder's Jacobian, in closed form for sigmoid units h = sigmoid(W x + b):

    ||J(x)||_F^2 = sum_j (h_j (1 - h_j))^2 sum_i W_ji^2

With G = H (1 - H) (m, h) and s_j = sum_i W_ji^2, the penalty (mean over examples) lambda/m sum_nj G_nj^2 s_j adds

    dZ += 2 lambda/m G^2 (1 - 2H) s        (through the pre-activations: dG/dZ = G (1 - 2H))
    dW += 2 lambda/m (sum_n G_nj^2) W_j    (through s)

to the plain autoencoder's gradient (`TiedAEGroup`); tested against autograd in tests/test_kinds.py. Rifai et al.'s
CAE-2 is two such layers. No noise: the layer trains on the clean input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from pipeline.training.families.autoencoder import TiedAEGroup, initial_weights
from pipeline.training.layer_kind import LayerKind, per_candidate


class ContractiveAEGroup(TiedAEGroup):
    """K tied sigmoid autoencoders with a contraction penalty, each with its own weight `contraction` (lambda)."""

    def __init__(self, w0: torch.Tensor, lr: Sequence[float], contraction: Sequence[float]):
        super().__init__(w0, lr, [0.0] * len(lr))
        self.contraction = per_candidate(contraction, len(lr), w0.device)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return x

    def contraction_penalty(self, hid: torch.Tensor, scale: torch.Tensor | None) -> tuple:
        """lambda ||J||_F^2 summed over the examples (K,), and with `scale` (lr / m) its dZ and dW, scaled."""
        g2 = (hid * (1 - hid)).square()
        s = self.weight.square().sum(2)
        total = self.contraction * (g2 * s.unsqueeze(1)).sum((1, 2))
        if scale is None:
            return total, None, None
        twice = 2 * self.contraction.view(-1, 1, 1) * scale
        return total, twice * g2 * (1 - 2 * hid) * s.unsqueeze(1), self.weight * (twice * g2.sum(1).unsqueeze(-1))

    @torch.no_grad()
    def loss(self, x_in: torch.Tensor, x: torch.Tensor, y: None = None) -> torch.Tensor:
        """(K,) reconstruction cross-entropy plus lambda ||J||_F^2, mean over examples."""
        return self.reconstruction_loss(x_in, x, penalty=self.contraction_penalty)

    @torch.no_grad()
    def step(
        self, x: torch.Tensor, x_in: torch.Tensor, generator: torch.Generator | None = None, y: None = None
    ) -> torch.Tensor:
        """One SGD step on clean x (K or 1, m, d); returns the (K,) loss before it."""
        return self.descend(x, x, penalty=self.contraction_penalty)


def group(
    w0: torch.Tensor, lrs: Sequence[float], noise: Sequence[float], top: str, options: Sequence[Mapping[str, float]]
) -> ContractiveAEGroup:
    return ContractiveAEGroup(w0, lrs, [o["contraction"] for o in options])


KIND = LayerKind("cae", group, initial_weights)
