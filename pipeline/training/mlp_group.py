"""K sigmoid MLPs of one shape fine-tuned in lockstep: every matmul is one batched product over the candidates.

A search over fine-tuning rates trains many networks of one shape on the same minibatches. Stacking their weights
as (K, out, in) tensors turns K small matrix products into one `bmm`: on a GPU, K candidates then cost little more
than one; on a CPU they cost about K times one (measured in benchmarks/), so the stages group candidates on CUDA and
run groups of one on CPU. The head is a softmax layer, or the lab DBN's joint top RBM (`joint_logits`);
SGD on the mean cross-entropy with a closed-form backward, tested against autograd (tests/test_lockstep.py). The
pretraining layers' groups are the kinds' (`layer_kind.LayerGroup`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def joint_logits(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, u: torch.Tensor, e: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint top RBM's exact P(y | h) (families/rbm.py's `JointRBMGroup`; `models/mlp.JointTop` for one network): h (K, m, d), W (K, H, d), b (K, H), U (K, H, C), e (K, C)
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
        self.lr = torch.as_tensor(lr, dtype=torch.float32, device=torch.device(device)).reshape(-1)
        if self.lr.numel() != len(params):
            raise ValueError(f"need one learning rate per candidate ({len(params)}), got {self.lr.numel()}")

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
