"""Kind `dae_sp`: denoising autoencoders with salt-and-pepper noise and emphasis (Vincent et al., JMLR 2010).

Salt-and-pepper noise sets a fixed count round(nu * d) of each example's components, chosen afresh for every
minibatch, to 0 or 1 by a fair coin (the masking kind's selection, `lowest_ranked`). Emphasis weights the
reconstruction cross-entropy of the corrupted components by `alpha` and of the others by `beta` (alpha 1, beta 0:
"full emphasis"; beta 0.5: "double"; alpha = beta = 1: the plain salt-and-pepper DAE), so the layer is pushed to
predict what the noise destroyed. The gradient is the tied autoencoder's with dA weighted per component; tested
against autograd in tests/test_kinds.py.

What `corrupt` returns is the corrupted input with the destroyed components' mask beside it, (K, m, 2d): the epoch
loop only slices its rows, and `step` and `loss` split it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from pipeline.training.families.autoencoder import TiedAEGroup, initial_weights, lowest_ranked
from pipeline.training.layer_kind import LayerKind, per_candidate


class EmphasisDAEGroup(TiedAEGroup):
    """K tied sigmoid autoencoders on salt-and-pepper inputs, the reconstruction error weighted alpha / beta."""

    def __init__(
        self,
        w0: torch.Tensor,
        lr: Sequence[float],
        noise: Sequence[float],
        alpha: Sequence[float],
        beta: Sequence[float],
    ):
        super().__init__(w0, lr, noise)
        self.alpha = per_candidate(alpha, len(lr), w0.device)
        self.beta = per_candidate(beta, len(lr), w0.device)

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """x (K or 1, m, d) -> (K, m, 2d): the salt-and-pepper input, then 1 where a component was corrupted."""
        k, (_, m, d) = self.size, x.shape
        x = x.expand(k, m, d)
        scores = torch.rand(k, m, d, generator=generator, device=x.device)
        destroyed = lowest_ranked(scores, self.counts)
        salt = (torch.rand(k, m, d, generator=generator, device=x.device) < 0.5).to(x.dtype)
        return torch.cat([torch.where(destroyed, salt, x), destroyed.to(x.dtype)], dim=-1)

    def _weights(self, mask: torch.Tensor) -> torch.Tensor:
        """(K, m, d) alpha where corrupted, beta elsewhere."""
        a, b = self.alpha.view(-1, 1, 1), self.beta.view(-1, 1, 1)
        return b + (a - b) * mask

    @torch.no_grad()
    def loss(self, x_in: torch.Tensor, x: torch.Tensor, y: None = None) -> torch.Tensor:
        """(K,) emphasized reconstruction cross-entropy of x from the corrupted input, mean over examples."""
        d = x.shape[-1]
        return self.reconstruction_loss(x_in[..., :d], x, weights=self._weights(x_in[..., d:]))

    @torch.no_grad()
    def step(
        self, x: torch.Tensor, x_in: torch.Tensor, generator: torch.Generator | None = None, y: None = None
    ) -> torch.Tensor:
        """One SGD step on clean x (K or 1, m, d) from `corrupt`'s output; returns the (K,) loss before it."""
        d = x.shape[-1]
        return self.descend(x, x_in[..., :d], weights=self._weights(x_in[..., d:]))


def group(
    w0: torch.Tensor, lrs: Sequence[float], noise: Sequence[float], top: str, options: Sequence[Mapping[str, float]]
) -> EmphasisDAEGroup:
    return EmphasisDAEGroup(w0, lrs, noise, [o["alpha"] for o in options], [o["beta"] for o in options])


KIND = LayerKind("dae_sp", group, initial_weights)
