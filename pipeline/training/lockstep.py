"""K same-shaped candidates trained in lockstep: every matmul is one batched product over the candidates.

A search over learning rates and noise levels trains many networks of one shape on the same minibatches.
Stacking their weights as (K, out, in) tensors turns K small matrix products into one `bmm`: on a GPU,
K candidates then cost little more than one; on a CPU they cost about K times one (measured in
benchmarks/), so the stages group candidates on CUDA and run groups of one on CPU. Every candidate has
its own learning rate (and, for autoencoders, its own masking level); the minibatch order is shared.

    TiedAEGroup   tied sigmoid (denoising) autoencoders, cross-entropy, plain SGD, closed-form gradient
    RBMGroup      Bernoulli RBMs trained by CD-1
    MLPGroup      sigmoid MLPs with a softmax output (or the lab DBN's joint top RBM: training/joint.py), SGD on
                  the mean cross-entropy, closed-form backward

The closed-form steps are tested against autograd (and the RBM step against `RBM.cd_step`'s update). Each group is an nn.Module whose state is its weights, so the epoch
loop (`run_epochs`) checkpoints and resumes it like any model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _per_candidate(values: Sequence[float] | torch.Tensor, k: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(values, dtype=torch.float32, device=device).reshape(-1)
    if t.numel() != k:
        raise ValueError(f"need one value per candidate ({k}), got {t.numel()}")
    return t


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


class _LayerGroup(nn.Module):
    """K layers d -> h of one shape, one candidate per learning rate: weights (K, h, d) from the same w0, zero biases."""

    def __init__(self, w0: torch.Tensor, lr: Sequence[float]):
        super().__init__()
        h, d = w0.shape
        k = len(lr)
        self.register_buffer("weight", w0.detach().float().expand(k, h, d).clone())
        self.register_buffer("hidden_bias", torch.zeros(k, h, device=w0.device))
        self.register_buffer("visible_bias", torch.zeros(k, d, device=w0.device))
        self.lr = _per_candidate(lr, k, w0.device)

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(K or 1, n, d) -> (K, n, h) codes: sigmoid(x W^T + b), P(h = 1 | v) for an RBM."""
        return torch.baddbmm(self.hidden_bias.unsqueeze(1), x.expand(self.size, -1, -1), self.weight.mT).sigmoid_()


class TiedAEGroup(_LayerGroup):
    """K tied sigmoid autoencoders d -> h with cross-entropy, trained by SGD with a closed-form gradient.

    For candidate k, clean batch x (m, d) and its corrupted copy x~:
        H = sigmoid(x~ W^T + b),   A = H W + c,   loss = sum BCE_with_logits(A, x) / m
        dA = (sigmoid(A) - x) / m,   dZ = (dA W^T) * H * (1 - H)
        dW = H^T dA + dZ^T x~,   db = sum_n dZ,   dc = sum_n dA
    The learning rate is folded into dA (dZ is linear in it), so the updates are two in-place baddbmm.
    """

    def __init__(self, w0: torch.Tensor, lr: Sequence[float], noise: Sequence[float]):
        super().__init__(w0, lr)
        self.noise = _per_candidate(noise, len(lr), w0.device)
        self.counts = mask_counts(self.noise, w0.shape[1])

    def corrupt(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return masking_group(x, self.counts, generator)

    def logits(self, x_in: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.visible_bias.unsqueeze(1), self.encode(x_in), self.weight)

    @torch.no_grad()
    def loss(self, x_in: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(K,) reconstruction cross-entropy of x from x_in, summed over pixels, mean over examples."""
        a = self.logits(x_in)
        bce = F.binary_cross_entropy_with_logits(a, x.expand_as(a), reduction="none")
        return bce.sum((1, 2)) / x.shape[-2]

    @torch.no_grad()
    def step(self, x: torch.Tensor, x_in: torch.Tensor) -> torch.Tensor:
        """One SGD step on clean x (K or 1, m, d) from corrupted x_in (K, m, d); returns the (K,) loss before it."""
        m = x.shape[-2]
        w = self.weight
        hid = self.encode(x_in)
        a = torch.baddbmm(self.visible_bias.unsqueeze(1), hid, w)
        loss = (F.softplus(a) - a * x).sum((1, 2)) / m
        da = a.sigmoid_().sub_(x).mul_((self.lr / m).view(-1, 1, 1))
        dz = torch.bmm(da, w.mT).mul_(hid).mul_(1 - hid)
        w.baddbmm_(hid.mT, da, alpha=-1).baddbmm_(dz.mT, x_in, alpha=-1)
        self.hidden_bias.sub_(dz.sum(1))
        self.visible_bias.sub_(da.sum(1))
        return loss


class RBMGroup(_LayerGroup):
    """K Bernoulli RBMs v (d) <-> h, trained by CD-1 (the negative visible units sampled, as `RBM.cd_step`)."""

    def visible_logits(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.visible_bias.unsqueeze(1), h, self.weight)

    @torch.no_grad()
    def loss(self, v: torch.Tensor) -> torch.Tensor:
        """(K,) mean-field reconstruction cross-entropy (v -> P(h|v) -> logits of P(v|h))."""
        a = self.visible_logits(self.encode(v))
        return F.binary_cross_entropy_with_logits(a, v.expand_as(a), reduction="none").sum((1, 2)) / v.shape[-2]

    @torch.no_grad()
    def step(self, v: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
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


def joint_logits(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, u: torch.Tensor, e: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint top RBM's exact P(y | h) (training/joint.py): h (K, m, d), W (K, H, d), b (K, H), U (K, H, C), e (K, C)
    -> logits (K, m, C) = e_y + sum_j softplus(a_jy), and a (K, m, H, C) = b_j + W_j h + U_jy."""
    a = torch.baddbmm(b.unsqueeze(1), h, w.mT).unsqueeze(-1) + u.unsqueeze(1)
    return e.unsqueeze(1) + F.softplus(a).sum(2), a


class MLPGroup(nn.Module):
    """K sigmoid MLPs of one shape with a softmax output layer, or (head "joint") the lab DBN's joint top RBM.

    `params[k]` lists candidate k's tensors in `MLPClassifier` order: hidden (W (out, in), b) pairs, then the
    head's: the output layer's W and b, or the top RBM's W (H, in), b (H), U (H, C), e (C).
    `candidate_params(k)` gives them back (on CPU).
    """

    HEADS = {"softmax": 2, "joint": 4}  # tensors of the head

    def __init__(
        self,
        params: Sequence[Sequence[torch.Tensor]],
        lr: Sequence[float],
        device: torch.device | str = "cpu",
        head: str = "softmax",
    ):
        super().__init__()
        n = self.HEADS.get(head, 0)
        shapes = {tuple(tuple(p.shape) for p in ps) for ps in params}
        if not n or not params or len(shapes) != 1 or len(params[0]) < n or (len(params[0]) - n) % 2:
            raise ValueError(
                f"MLPGroup needs a head in {list(self.HEADS)} and at least one candidate, all with the "
                "same (W, b) layer shapes and head tensors"
            )
        stacked = [torch.stack([ps[i] for ps in params]).float().to(device) for i in range(len(params[0]))]
        self.head = head
        self.weights = nn.ParameterList(nn.Parameter(w) for w in stacked[0:-n:2])
        self.biases = nn.ParameterList(nn.Parameter(b) for b in stacked[1:-n:2])
        self.out = nn.ParameterList(nn.Parameter(t) for t in stacked[-n:])
        self.lr = _per_candidate(lr, len(params), torch.device(device))

    def candidate_params(self, k: int) -> list[torch.Tensor]:
        """Candidate k's tensors (hidden W, b pairs, then the head's), cloned to CPU."""
        return [p[k].detach().cpu().clone() for pair in zip(self.weights, self.biases, strict=True) for p in pair] + [
            p[k].detach().cpu().clone() for p in self.out
        ]

    @property
    def size(self) -> int:
        return self.out[0].shape[0]

    def logits(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head on the last hidden layer h (K, m, d): logits (K, m, C) and, for the joint top, its a (K, m, H, C)."""
        if self.head == "joint":
            return joint_logits(h, *self.out)
        return torch.baddbmm(self.out[1].unsqueeze(1), h, self.out[0].mT), None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(m, d) or (K, m, d) -> (K, m, n_classes) logits."""
        h = x.expand(self.size, *x.shape[-2:])
        for w, b in zip(self.weights, self.biases, strict=True):
            h = torch.baddbmm(b.unsqueeze(1), h, w.mT).sigmoid()
        return self.logits(h)[0]

    @torch.no_grad()
    def step(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on the minibatch (closed-form backward); returns the (K,) mean cross-entropy and error before it.

        With h_0 = x, h_l = sigmoid(h_{l-1} W_l^T + b_l) and logits A = h_L V^T + c, the deltas are
        dA = (softmax(A) - onehot(y)) * lr / m,  dh_L = dA V,  dZ_l = dh_l * h_l (1 - h_l),  dh_{l-1} = dZ_l W_l;
        each weight is updated (W_l -= dZ_l^T h_{l-1}) right after its delta has been passed down. The joint top's
        logits e_y + sum_j softplus(a_jy) give da_jy = dA_y sigmoid(a_jy), dh_L = (sum_y da_jy) W.
        """
        k, m = self.size, x.shape[-2]
        acts = [x.expand(k, m, x.shape[-1])]
        for w, b in zip(self.weights, self.biases, strict=True):
            acts.append(torch.baddbmm(b.unsqueeze(1), acts[-1], w.mT).sigmoid_())
        logits, a = self.logits(acts[-1])
        n_classes = logits.shape[-1]
        losses = F.cross_entropy(logits.reshape(k * m, n_classes), y.repeat(k), reduction="none").view(k, m).mean(1)
        errors = (logits.argmax(2) != y).float().mean(1)
        delta = logits.softmax(2)
        delta[:, torch.arange(m, device=x.device), y] -= 1.0
        delta.mul_((self.lr / m).view(-1, 1, 1))
        if a is not None:  # the joint top: W, b, U, e
            da = a.sigmoid_().mul_(delta.unsqueeze(2))
            self.out[2].sub_(da.sum(1))
            self.out[3].sub_(delta.sum(1))
            delta = da.sum(3)
        down = torch.bmm(delta, self.out[0]) if len(self.weights) else None
        self.out[0].baddbmm_(delta.mT, acts[-1], alpha=-1)
        self.out[1].sub_(delta.sum(1))
        for i in reversed(range(len(self.weights))):
            h = acts[i + 1]
            delta = down.mul_(h).mul_(1 - h)
            if i:
                down = torch.bmm(delta, self.weights[i])
            self.weights[i].baddbmm_(delta.mT, acts[i], alpha=-1)
            self.biases[i].sub_(delta.sum(1))
        return losses, errors

    @torch.no_grad()
    def errors(self, x: torch.Tensor, y: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """(K,) error rates on (x, y); (K, n) predictions are never all held at once (nor the joint top's a)."""
        chunk = chunk if self.head == "softmax" else chunk // 8
        wrong = torch.zeros(self.size, device=x.device)
        for xb, yb in zip(x.split(chunk), y.split(chunk), strict=True):
            wrong += (self(xb).argmax(2) != yb).float().sum(1)
        return wrong / len(x)

    @torch.no_grad()
    def predictions(self, x: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """(K, n) predicted classes."""
        return torch.cat([self(xb).argmax(2) for xb in x.split(chunk)], dim=1)

    def keep(self, index: torch.Tensor) -> None:
        """Keep only the candidates in `index` (successive halving drops the others)."""
        with torch.no_grad():
            for plist in (self.weights, self.biases, self.out):
                for i, p in enumerate(plist):
                    plist[i] = nn.Parameter(p[index].clone())
        self.lr = self.lr[index]
