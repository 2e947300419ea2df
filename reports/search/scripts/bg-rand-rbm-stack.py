"""Scratch (issue 38, section 8 of bg-rand-dbn-lab.md): an RBM stack on bg-rand, layer by layer: plain, centered, or
Gaussian visible units on standardized inputs.

`plain` is the pipeline's CD-1 (`RBMGroup.step`: positive phase on expectations, hidden sampled, reconstruction
sampled, negative hidden on expectations; its starting weights, not its random stream). `centered` is that CD-1 with
the centering of Montavon & Mueller 2012 / Melchior et al. 2016: the energy
uses (v - mu) and (h - lam), mu the training mean of the layer's input (fixed), lam a running mean of P(h | v) on the
data (rate 0.05), the visible bias re-parametrized when lam moves so the model stays the same:

    P(h | v) = sigmoid(W (v - mu) + c)          P(v | h) = sigmoid(W^T (h - lam) + b)
    dW = <(h - lam)(v - mu)^T>_data - <(h - lam)(v - mu)^T>_recon,   db = <v - v~>,   dc = <h - h~>

`gauss` (for a layer above the first) standardizes the layer's input per unit, as the evaluate stage's probe does,
and models it with Gaussian visible units of variance 1 (the reconstruction W^T h + b plus unit noise): the quiet
first-layer units' variations of 0.01 (section 7) then have the scale of everything else.

Each layer trains on the mean-field codes of the one below (as the table's DBN stacks do) and is read at the probe
epochs: median per-unit std over 2000 training images, and the evaluate stage's logistic probe (standardized
features, C 0.1, fit on train) on VALIDATION. Starting weights: the pipeline's (N(0, 0.01), seed 2008). One thread.

    PYTHONPATH=. python reports/search/scripts/bg-rand-rbm-stack.py <plain|centered|gauss> <lr> <probe epochs e1,e2,...> \
        <layers> [hidden] [batch] [snapshot dir] [start snapshot]

The last probe epoch of a layer is the one the next layer trains on. With a snapshot dir, every layer is saved there at
every probe epoch (<mode>-L<layer>-e<epoch>.pt); a start snapshot (a file of the stack so far) encodes the inputs through
its layers first, so a second layer can be trained on any saved first layer."""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.data.arrays import load_splits
from pipeline.training.families.rbm import initial_weights

torch.set_num_threads(1)
mode, lr, probes, layers = sys.argv[1], float(sys.argv[2]), [int(a) for a in sys.argv[3].split(",")], int(sys.argv[4])
assert mode in ("plain", "centered", "gauss"), mode
hidden = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
batch = int(sys.argv[6]) if len(sys.argv) > 6 else 32
snapshots = Path(sys.argv[7]) if len(sys.argv) > 7 else None
stack = torch.load(sys.argv[8]) if len(sys.argv) > 8 else []  # [(w, c, mu), ...]: P(h | v) = sigmoid(W (v - mu) + c)
s = load_splits("data/prepared/bg-rand")
xtr, ytr, xva, yva = s["train"].x, s["train"].y, s["valid"].x, s["valid"].y


def encode(v: torch.Tensor, w: torch.Tensor, c: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid((v - mu) @ w.T + c)


for layer_below in stack:
    xtr, xva = encode(xtr, *layer_below), encode(xva, *layer_below)
g = torch.Generator().manual_seed(0)
t0 = time.time()


def probe(ftr: torch.Tensor, fva: torch.Tensor) -> float:
    p = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    p.fit(ftr.numpy().astype(np.float64), ytr.numpy())
    return round(100 * float((p.predict(fva.numpy().astype(np.float64)) != yva.numpy()).mean()), 2)


for layer in range(len(stack), len(stack) + layers):
    w = initial_weights(layer, (hidden, xtr.shape[1]), 2008).clone()
    c = torch.zeros(hidden)
    zeros = torch.zeros(xtr.shape[1])
    mu, b, lam, scale = zeros, zeros.clone(), torch.zeros(hidden), torch.ones(xtr.shape[1])
    if mode == "centered":
        mu = xtr.mean(0)
        b = torch.logit(mu.clamp(1e-3, 1 - 1e-3))  # the data's marginals, as centering prescribes
        lam = torch.sigmoid(c)
    elif mode == "gauss":  # the inputs standardized as the probe sees them; Gaussian visible units of variance 1
        scale = xtr.std(0).clamp_min(1e-6)
        xtr, xva, mu = (xtr - xtr.mean(0)) / scale, (xva - xtr.mean(0)) / scale, xtr.mean(0)
    # plain: offsets 0 and biases 0, so the update below is exactly the pipeline's CD-1
    offset = mu if mode == "centered" else zeros  # what the update subtracts from its (possibly standardized) input

    for ep in range(1, max(probes) + 1):
        x = xtr[torch.randperm(len(ytr), generator=g)]
        for i in range(0, len(x), batch):
            v = x[i : i + batch]
            m = len(v)
            h_pos = encode(v, w, c, offset)
            h = (torch.rand(h_pos.shape, generator=g) < h_pos).float()
            if mode == "gauss":
                v_neg = h @ w + b + torch.randn(v.shape, generator=g)
            else:
                p_neg = torch.sigmoid((h - lam) @ w + b)
                v_neg = (torch.rand(p_neg.shape, generator=g) < p_neg).float()
            h_neg = encode(v_neg, w, c, offset)
            if mode == "centered":
                lam_new = 0.95 * lam + 0.05 * h_pos.mean(0)
                b += (lam_new - lam) @ w  # keeps P(v | h) as it was when lam moves
                lam = lam_new
            dw = (h_pos - lam).T @ (v - offset) - (h_neg - lam).T @ (v_neg - offset)
            w += lr / m * dw
            b += lr / m * (v - v_neg).sum(0)
            c += lr / m * (h_pos - h_neg).sum(0)
        if ep in probes:
            ftr, fva = encode(xtr, w, c, offset), encode(xva, w, c, offset)
            # the layer on its raw input: P(h | v) = sigmoid(W (v - mu) / scale + c)
            layer_params = (w / scale, c.clone(), mu)
            if snapshots is not None:
                snapshots.mkdir(parents=True, exist_ok=True)
                torch.save([*stack, layer_params], snapshots / f"{mode}-L{layer + 1}-e{ep}.pt")
            row = {"mode": mode, "layer": layer + 1, "lr": lr, "hidden": hidden, "batch": batch, "epoch": ep}
            row |= {"act": round(ftr.mean().item(), 4), "unit_std": round(ftr[:2000].std(0).median().item(), 4)}
            row |= {"alive": int((ftr[:2000].std(0) > 0.05).sum()), "probe_valid": probe(ftr, fva)}
            print(json.dumps(row | {"s": round(time.time() - t0)}), flush=True)
    # the last probe epoch is the last epoch: its codes and layer are the ones the next layer trains on
    xtr, xva = ftr, fva
    stack = [*stack, layer_params]
