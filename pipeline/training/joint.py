"""The lab's DBN top: a joint RBM over (the layer below, the one-hot label), classifying by its exact P(y | h).

Larochelle et al. 2007 and Vincent et al. 2008 ran PLearn's `DeepBeliefNet` (FIDELITY.md section 2): its top
RBM models the last hidden layer h (d units) and the label y (C classes, one softmax unit) jointly, with hidden
units t (H). With weights W (H, d), U (H, C) and biases b (H), c (d), e (C),

    P(y | h) = softmax_y( e_y + sum_j softplus(b_j + W_j h + U_jy) )

exactly (the t are summed out), and that is the classifier: DBN-1 is such an RBM on the pixels, DBN-3's third RBM
one over (h^2, y). Pretraining is greedy CD-1 on (h, y): t ~ P(t | h, y); h~ and y~ sampled from P(h, y | t)
(binary units, one softmax draw); P(t | h~, y~). Fine-tuning descends -log P(y | x) through the top and every
layer below (`MLPGroup(head="joint")`).

    JointRBMGroup   K such top RBMs trained by CD-1 in lockstep (as RBMGroup, with the label units)
(`lockstep.joint_logits`: the logits of P(y | h), shared with the fine-tuning network.)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from pipeline.training.lockstep import RBMGroup, joint_logits

N_CLASSES = 10


class JointRBMGroup(RBMGroup):
    """K joint RBMs over (v, y): `RBMGroup`'s weights and biases, plus label weights U (K, H, C) and biases e (K, C),
    both starting at zero (so the initial reconstruction loss is the plain RBM's)."""

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
    def loss(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(K,) mean-field reconstruction cross-entropy of v from (v, y), summed over pixels, mean over examples."""
        a = self.visible_logits(self.encode_joint(v, self.one_hot(y)))
        return F.binary_cross_entropy_with_logits(a, v.expand_as(a), reduction="none").sum((1, 2)) / v.shape[-2]

    @torch.no_grad()
    def errors(self, v: torch.Tensor, y: torch.Tensor, chunk: int = 1024) -> torch.Tensor:
        """(K,) error rates of the exact P(y | v) on (v, y)."""
        wrong = torch.zeros(self.size, device=v.device)
        for vb, yb in zip(v.split(chunk, dim=-2), y.split(chunk), strict=True):
            vb = vb.expand(self.size, -1, -1)
            logits, _ = joint_logits(vb, self.weight, self.hidden_bias, self.label_weight, self.label_bias)
            wrong += (logits.argmax(2) != yb).float().sum(1)
        return wrong / len(y)

    @torch.no_grad()
    def step(self, v: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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
