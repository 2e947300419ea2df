"""Scratch (issue 38, session 25): why bg-rand's first RBM leaves 95% of its units dead, and whether CD's phases are
the cause. The committed `pretrain@bg-rand-dbn` first layer (1000 units, rate 0.01, 100 epochs) has 51 units whose
activation varies across images (std > 0.05); the other 949 sit at P(h) ~ 0.04 with std 0.01. The data are pixel
intensities in [0, 1] (the noise uniform), used as expectations in the positive phase, while the negative phase
samples a binary reconstruction (Bernoulli variance 0.25 against the data's 0.08 on a noise pixel).

Variants of one CD-1 step, everything else the pipeline's `RBMGroup` (minibatch 32, shuffled, N(0, 0.01) weights):
  base      the pipeline's: positive on x, reconstruction sampled binary
  binpos    positive phase on a fresh Bernoulli(x) sample (the data made binary, as the model is)
  meanneg   reconstruction kept as its probabilities (Hinton's practical guide, section 3.2)
At the probe epochs: units alive (std > 0.05 over 2000 training images), and the evaluate stage's logistic probe
(standardized features, C 0.1, fit on train) on VALIDATION. One thread.
With `below` 1 the RBM is the second layer, trained on the committed first layer's codes P(h1 | x).
    python bg-rand-rbm-phase.py <variant,variant,...> <lr> <probe epochs e1,e2,...> [hidden] [below]"""

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.data.arrays import load_splits
from pipeline.training.families.rbm import RBMGroup, initial_weights

torch.set_num_threads(1)
variants, lr = sys.argv[1].split(","), float(sys.argv[2])
probes = [int(a) for a in sys.argv[3].split(",")]
hidden = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
below = int(sys.argv[5]) if len(sys.argv) > 5 else 0


class PhaseRBM(RBMGroup):
    def __init__(self, w0: torch.Tensor, lr: list[float], variant: str):
        super().__init__(w0, lr)
        self.variant = variant

    @torch.no_grad()
    def step(self, v, x_in, generator, y=None):
        k, m = self.size, v.shape[-2]
        v = v.expand(k, m, -1)
        if self.variant == "binpos":
            v = (torch.rand(v.shape, generator=generator) < v).float()
        h_pos = self.encode(v)
        h = (torch.rand(h_pos.shape, generator=generator) < h_pos).float()
        logits = self.visible_logits(h)
        p_neg = torch.sigmoid(logits)
        if self.variant == "meanneg":
            v_neg = p_neg
        else:
            v_neg = (torch.rand(p_neg.shape, generator=generator) < p_neg).float()
        h_neg = self.encode(v_neg)
        loss = (F.softplus(logits) - logits * v).sum((1, 2)) / m
        scale = (self.lr / m).view(-1, 1, 1)
        self.weight.baddbmm_(h_pos.mT * scale, v).baddbmm_(h_neg.mT * scale, v_neg, alpha=-1)
        self.hidden_bias.add_((h_pos.sum(1) - h_neg.sum(1)) * scale.view(-1, 1))
        self.visible_bias.add_((v.sum(1) - v_neg.sum(1)) * scale.view(-1, 1))
        return loss


s = load_splits("data/prepared/bg-rand")
xtr, ytr, xva, yva = s["train"].x, s["train"].y, s["valid"].x, s["valid"].y
for w, b in torch.load("models/pretrain/bg-rand/dbn.pt", weights_only=False)["candidates"][0]["weights"][:below]:
    xtr, xva = torch.sigmoid(xtr @ w.float().T + b.float()), torch.sigmoid(xva @ w.float().T + b.float())
for variant in variants:
    g = torch.Generator().manual_seed(0)
    rbm = PhaseRBM(initial_weights(below, (hidden, xtr.shape[1]), 2008), [lr], variant)
    t0 = time.time()
    for ep in range(1, max(probes) + 1):
        x = xtr[torch.randperm(len(ytr), generator=g)].unsqueeze(0)
        for i in range(0, x.shape[1], 32):
            rbm.step(x[:, i : i + 32], None, g)
        if ep in probes:
            with torch.no_grad():
                ftr, fva = rbm.encode(xtr.unsqueeze(0))[0], rbm.encode(xva.unsqueeze(0))[0]
            p = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            p.fit(ftr.numpy().astype(np.float64), ytr.numpy())
            e = (p.predict(fva.numpy().astype(np.float64)) != yva.numpy()).mean()
            std = ftr[:2000].std(0)
            row = {
                "variant": variant,
                "lr": lr,
                "hidden": hidden,
                "below": below,
                "epoch": ep,
                "s": round(time.time() - t0),
                "act": round(ftr.mean().item(), 4),
                "unit_std_median": round(std.median().item(), 4),
                "alive": int((std > 0.05).sum()),
                "probe_valid": round(100 * e, 2),
            }
            print(json.dumps(row), flush=True)
