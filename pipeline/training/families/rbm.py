"""The RBM family: Bernoulli RBMs trained by CD-1 in lockstep (the DBNs), and the lab DBN's joint top RBM.

`RBMGroup` is the DBN's layer: CD-1 with the positive phase on expectations, the hidden units sampled, the
reconstruction sampled and the negative hidden units on expectations (as `tests/reference/rbm.py`'s `RBM.cd_step`,
against which it is tested). Starting weights N(0, 0.01), biases 0.

The joint top (`top: joint`):

Larochelle et al. 2007 and Vincent et al. 2008 ran PLearn's `DeepBeliefNet` (FIDELITY.md section 2): its top
RBM models the last hidden layer h (d units) and the label y (C classes, one softmax unit) jointly, with hidden
units t (H). With weights W (H, d), U (H, C) and biases b (H), c (d), e (C),

    P(y | h) = softmax_y( e_y + sum_j softplus(b_j + W_j h + U_jy) )

exactly (the t are summed out), and that is the classifier: DBN-1 is such an RBM on the pixels, DBN-3's third RBM
one over (h^2, y). Pretraining is greedy CD-1 on (h, y): t ~ P(t | h, y); h~ and y~ sampled from P(h, y | t)
(binary units, one softmax draw); P(t | h~, y~). Fine-tuning descends -log P(y | x) through the top and every
layer below (`MLPGroup(head="joint")`).

`JointRBMGroup` trains K such top RBMs by CD-1 in lockstep (as RBMGroup, with the label units); its exact P(y | h)
(`class_logits`) is the fine-tuning network's (`mlp_group.joint_logits`, tested equal).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pipeline.common.seeding import make_generator
from pipeline.training.layer_kind import LayerGroup

N_CLASSES = 10


class RBMGroup(LayerGroup):
    """K Bernoulli RBMs v (d) <-> h, trained by CD-1 (the negative visible units sampled, as `RBM.cd_step`)."""

    def visible_logits(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.visible_bias.unsqueeze(1), h, self.weight)

    @torch.no_grad()
    def loss(self, v: torch.Tensor, x: torch.Tensor | None = None, y: None = None) -> torch.Tensor:
        """(K,) mean-field reconstruction cross-entropy (v -> P(h|v) -> logits of P(v|h)); v is never corrupted."""
        a = self.visible_logits(self.encode(v))
        return F.binary_cross_entropy_with_logits(a, v.expand_as(a), reduction="none").sum((1, 2)) / v.shape[-2]

    @torch.no_grad()
    def step(
        self, v: torch.Tensor, x_in: torch.Tensor | None, generator: torch.Generator, y: None = None
    ) -> torch.Tensor:
        """One CD-1 update on v (K or 1, m, d); returns the (K,) cross-entropy of the 1-step reconstruction."""
        k, m = self.size, v.shape[-2]
        v = v.expand(k, m, -1)
        h_pos = self.encode(v)
        h = (torch.rand(h_pos.shape, generator=generator, device=v.device) < h_pos).float()
        logits = self.visible_logits(h)
        p_neg = torch.sigmoid(logits)
        v_neg = (torch.rand(p_neg.shape, generator=generator, device=v.device) < p_neg).float()
        h_neg = self.encode(v_neg)
        loss = (F.softplus(logits) - logits * v).sum((1, 2)) / m
        scale = (self.lr / m).view(-1, 1, 1)
        self.weight.baddbmm_(h_pos.mT * scale, v).baddbmm_(h_neg.mT * scale, v_neg, alpha=-1)
        self.hidden_bias.add_((h_pos.sum(1) - h_neg.sum(1)) * scale.view(-1, 1))
        self.visible_bias.add_((v.sum(1) - v_neg.sum(1)) * scale.view(-1, 1))
        return loss


class JointRBMGroup(RBMGroup):
    """K joint RBMs over (v, y): `RBMGroup`'s weights and biases, plus label weights U (K, H, C) and biases e (K, C),
    both starting at zero (so the initial reconstruction loss is the plain RBM's)."""

    STATE = (*RBMGroup.STATE, "label_weight", "label_bias")

    def __init__(self, w0: torch.Tensor, lr: Sequence[float], n_classes: int = N_CLASSES):
        super().__init__(w0, lr)
        k, hidden = self.weight.shape[:2]
        self.register_buffer("label_weight", torch.zeros(k, hidden, n_classes, device=w0.device))
        self.register_buffer("label_bias", torch.zeros(k, n_classes, device=w0.device))

    def encode_joint(self, v: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
        """(K or 1, m, d) visible and (K or 1, m, C) one-hot labels -> (K, m, H) P(t = 1 | v, y)."""
        pre = torch.baddbmm(self.hidden_bias.unsqueeze(1), v.expand(self.size, -1, -1), self.weight.mT)
        return pre.add_(torch.matmul(y1, self.label_weight.mT)).sigmoid_()

    def one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.label_bias.shape[-1]).float().unsqueeze(0)

    @torch.no_grad()
    def loss(self, v: torch.Tensor, x: torch.Tensor | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """(K,) mean-field reconstruction cross-entropy of v from (v, y), summed over pixels, mean over examples."""
        a = self.visible_logits(self.encode_joint(v, self.one_hot(y)))
        return F.binary_cross_entropy_with_logits(a, v.expand_as(a), reduction="none").sum((1, 2)) / v.shape[-2]

    def class_logits(self, v: torch.Tensor) -> torch.Tensor:
        """(K, m, d) -> (K, m, C) logits of the exact P(y | v) = softmax_y(e_y + sum_j softplus(b_j + W_j v + U_jy))."""
        a = torch.baddbmm(self.hidden_bias.unsqueeze(1), v, self.weight.mT).unsqueeze(-1) + self.label_weight.unsqueeze(
            1
        )
        return self.label_bias.unsqueeze(1) + F.softplus(a).sum(2)

    @torch.no_grad()
    def errors(self, v: torch.Tensor, y: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """(K,) error rates of the exact P(y | v) on (v, y)."""
        wrong = torch.zeros(self.size, device=v.device)
        for vb, yb in zip(v.split(chunk, dim=-2), y.split(chunk), strict=True):
            logits = self.class_logits(vb.expand(self.size, -1, -1))
            wrong += (logits.argmax(2) != yb).float().sum(1)
        return wrong / len(y)

    @torch.no_grad()
    def step(
        self, v: torch.Tensor, x_in: torch.Tensor | None, generator: torch.Generator, y: torch.Tensor | None = None
    ) -> torch.Tensor:
        """One CD-1 update on (v (K or 1, m, d), y (m,)); returns the (K,) cross-entropy of v's 1-step reconstruction."""
        k, m = self.size, v.shape[-2]
        v, y1 = v.expand(k, m, -1), self.one_hot(y).expand(k, -1, -1)
        t_pos = self.encode_joint(v, y1)
        t = (torch.rand(t_pos.shape, generator=generator, device=v.device) < t_pos).float()
        logits = self.visible_logits(t)
        p_neg = torch.sigmoid(logits)
        v_neg = (torch.rand(p_neg.shape, generator=generator, device=v.device) < p_neg).float()
        label_logits = torch.baddbmm(self.label_bias.unsqueeze(1), t, self.label_weight)
        drawn = torch.multinomial(label_logits.softmax(2).reshape(k * m, -1), 1, generator=generator)
        y_neg = F.one_hot(drawn.view(k, m), y1.shape[-1]).float()
        t_neg = self.encode_joint(v_neg, y_neg)
        loss = (F.softplus(logits) - logits * v).sum((1, 2)) / m
        scale = (self.lr / m).view(-1, 1, 1)
        self.weight.baddbmm_(t_pos.mT * scale, v).baddbmm_(t_neg.mT * scale, v_neg, alpha=-1)
        self.label_weight.baddbmm_(t_pos.mT * scale, y1).baddbmm_(t_neg.mT * scale, y_neg, alpha=-1)
        self.hidden_bias.add_((t_pos.sum(1) - t_neg.sum(1)) * scale.view(-1, 1))
        self.visible_bias.add_((v.sum(1) - v_neg.sum(1)) * scale.view(-1, 1))
        self.label_bias.add_((y1.sum(1) - y_neg.sum(1)) * scale.view(-1, 1))
        return loss


def initial_weights(layer: int, shape: tuple[int, int], seed: int) -> torch.Tensor:
    """The same starting weights for every candidate of a layer: N(0, 0.01) (a joint top's label weights start at 0)."""
    return torch.randn(shape, generator=make_generator(seed, "init", "rbm", layer)) * 0.01
