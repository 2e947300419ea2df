"""The autoencoder family: tied sigmoid autoencoders in lockstep, the base of kinds ae, cae and dae_sp.

`TiedAEGroup`: K tied autoencoders d -> h with a sigmoid decoder and cross-entropy, trained by SGD with a closed-form
gradient (tested against autograd in tests/test_lockstep.py), on inputs corrupted by masking: each example loses a
fixed count round(nu * d) of its components (Vincent et al. 2008), chosen afresh for every minibatch
(`masking_group`, on `lowest_ranked`, which the other fixed-count noises share). Starting weights
U(+-4 sqrt(6 / (in + out))), as `DenseAutoencoder`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from pipeline.common.seeding import make_generator
from pipeline.models.init import init_range, uniform_weights
from pipeline.training.layer_kind import LayerGroup, per_candidate


def mask_counts(noise: torch.Tensor, width: int) -> torch.Tensor:
    """round(nu * d) components destroyed per example, per candidate (Vincent 2008's fixed count)."""
    return torch.round(noise * width).long()


def lowest_ranked(scores: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """(K, m, d) bool: in each row of scores[k], the counts[k] components of lowest rank (argsort order).

    The same mask as `scores.argsort(-1).argsort(-1) < counts`, ties broken as argsort breaks them, without
    sorting every row. A selection (topk) finds each row's counts[k]-th smallest score t, and `scores <= t`
    is the mask, except in a row where scores equal to t fall on both sides of the boundary (a tie: about one
    row in 20,000 for uniform float32 scores of 784 components); only those rows are sorted, each row's sort
    order depending on that row alone."""
    k, m, d = scores.shape
    mask = torch.zeros(k, m, d, dtype=torch.bool, device=scores.device)
    for count in counts.unique().tolist():
        if count <= 0:
            continue
        same = counts == count
        if count >= d:
            mask[same] = True
            continue
        rows = scores if bool(same.all()) else scores[same]
        part = rows <= rows.topk(count, dim=-1, largest=False, sorted=False).values.amax(-1, keepdim=True)
        tied = part.sum(-1, dtype=torch.int32) != count
        if bool(tied.any()):
            order = rows[tied].argsort(dim=-1)
            by_rank = (torch.arange(d, device=scores.device) < count).expand_as(order)
            part[tied] = torch.empty_like(by_rank).scatter_(-1, order, by_rank)
        if rows is scores:
            return part
        mask[same] = part
    return mask


def masking_group(x: torch.Tensor, counts: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """x (K or 1, m, d) -> (K, m, d) with exactly counts[k] random components of each row zeroed.

    Candidates with count 0 get x unchanged. One uniform draw per component ranks the components;
    the counts[k] lowest ranks are destroyed (uniform over subsets of that size)."""
    k, (_, m, d) = counts.numel(), x.shape
    x = x.expand(k, m, d)
    if int(counts.max()) == 0:
        return x
    scores = torch.rand(k, m, d, generator=generator, device=x.device)
    return x.masked_fill(lowest_ranked(scores, counts), 0.0)


# A penalty on the codes (kinds/cae.py): hid (K, m, h), lr / m (K, 1, 1) or None (the loss only) -> (its (K,) sum over
# the examples, its dZ (K, m, h) and dW (K, h, d) scaled by lr / m, or None for both when lr / m is None).
Penalty = Callable[[torch.Tensor, torch.Tensor | None], tuple]


class TiedAEGroup(LayerGroup):
    """K tied sigmoid autoencoders d -> h with cross-entropy, trained by SGD with a closed-form gradient.

    For candidate k, clean batch x (m, d) and its corrupted copy x~:
        H = sigmoid(x~ W^T + b),   A = H W + c,   loss = sum BCE_with_logits(A, x) / m
        dA = (sigmoid(A) - x) / m,   dZ = (dA W^T) * H * (1 - H)
        dW = H^T dA + dZ^T x~,   db = sum_n dZ,   dc = sum_n dA
    The learning rate is folded into dA (dZ is linear in it), so the updates are two in-place baddbmm.
    """

    def __init__(self, w0: torch.Tensor, lr: Sequence[float], noise: Sequence[float]):
        super().__init__(w0, lr)
        self.noise = per_candidate(noise, len(lr), w0.device)
        self.counts = mask_counts(self.noise, w0.shape[1])

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return masking_group(x, self.counts, generator)

    @torch.no_grad()
    def loss(self, x_in: torch.Tensor, x: torch.Tensor, y: None = None) -> torch.Tensor:
        """(K,) reconstruction cross-entropy of x from x_in, summed over pixels, mean over examples."""
        return self.reconstruction_loss(x_in, x)

    @torch.no_grad()
    def step(
        self, x: torch.Tensor, x_in: torch.Tensor, generator: torch.Generator | None = None, y: None = None
    ) -> torch.Tensor:
        """One SGD step on clean x (K or 1, m, d) from corrupted x_in (K, m, d); returns the (K,) loss before it."""
        return self.descend(x, x_in)

    def reconstruction_loss(
        self, x_in: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None, penalty: Penalty | None = None
    ) -> torch.Tensor:
        """(K,) cross-entropy of x from x_in, each component's weighted by `weights` (K, m, d) when given, plus the
        summed `penalty(hid)[0]` when given; mean over examples. The loss of every autoencoder kind."""
        hid = self.encode(x_in)
        a = torch.baddbmm(self.visible_bias.unsqueeze(1), hid, self.weight)
        bce = F.binary_cross_entropy_with_logits(a, x.expand_as(a), reduction="none")
        total = (bce if weights is None else bce * weights).sum((1, 2))
        return (total if penalty is None else total + penalty(hid, None)[0]) / x.shape[-2]

    def descend(
        self, x: torch.Tensor, x_in: torch.Tensor, weights: torch.Tensor | None = None, penalty: Penalty | None = None
    ) -> torch.Tensor:
        """The SGD step of `reconstruction_loss` (the closed form above, dA weighted by `weights` when given), plus
        a penalty's: `penalty(hid, lr / m)` gives its (K,) sum over the examples and its dZ and dW, both already
        scaled by lr / m. Returns the (K,) loss before the step. The step every autoencoder kind takes."""
        m = x.shape[-2]
        w = self.weight
        x_in = x_in.expand(self.size, m, -1)
        hid = self.encode(x_in)
        a = torch.baddbmm(self.visible_bias.unsqueeze(1), hid, w)
        recon = F.softplus(a) - a * x
        scale = (self.lr / m).view(-1, 1, 1)
        extra = None if penalty is None else penalty(hid, scale)
        total = (recon if weights is None else recon * weights).sum((1, 2))
        loss = (total if extra is None else total + extra[0]) / m
        da = a.sigmoid_().sub_(x)
        da = (da if weights is None else da.mul_(weights)).mul_(scale)
        dz = torch.bmm(da, w.mT).mul_(hid).mul_(1 - hid)
        if extra is not None:
            dz += extra[1]
        w.baddbmm_(hid.mT, da, alpha=-1).baddbmm_(dz.mT, x_in, alpha=-1)
        if extra is not None:
            w.sub_(extra[2])
        self.hidden_bias.sub_(dz.sum(1))
        self.visible_bias.sub_(da.sum(1))
        return loss


def initial_weights(layer: int, shape: tuple[int, int], seed: int) -> torch.Tensor:
    """The same starting weights for every candidate of a layer: U(+-4 sqrt(6 / (in + out)))."""
    r = init_range(shape[1], shape[0], "sigmoid")
    return uniform_weights(shape, r, make_generator(seed, "init", "autoencoder", layer))
