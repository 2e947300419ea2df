"""Scratch (issue 38, deliverable 4): fine-tuning bg-rand's DBN from the committed pretraining (pretrain@bg-rand-dbn),
the paper's way (softmax head at zero, one rate) against keeping what pretraining found: the head started from the
logistic probe (standardized features, C 0.1, fit on train, the scaler folded into the head), the pretrained layers
at a fraction f of the head's rate, an L2 on the head. Minibatch 8, early stopping on validation (patience 15, at
most 60 epochs; epoch 0 = before any step, so the probe itself can win). Test read only at the best validation epoch.
    python ft.py <layers> <head: zero|probe> <lr> <f> <l2> [seed] [model file, or a bg-rand-rbm-stack.py snapshot]"""

import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from pipeline.data.arrays import load_splits

torch.set_num_threads(1)
layers, head, lr, f, l2 = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
seed = int(sys.argv[6]) if len(sys.argv) > 6 else 0
path = sys.argv[7] if len(sys.argv) > 7 else "models/pretrain/bg-rand/dbn.pt"
s = load_splits("data/prepared/bg-rand")
tr, va, te = s["train"], s["valid"], s["test"]
model = torch.load(path, weights_only=False)
if isinstance(model, list):  # a snapshot of bg-rand-rbm-stack.py: [(W, c, mu), ...], sigmoid(W (v - mu) + c)
    model = {"candidates": [{"weights": [(w, c - w @ mu) for w, c, mu in model]}]}
cand = model["candidates"][0]
Ws = [torch.nn.Parameter(w[0].clone().float()) for w in cand["weights"][:layers]]
bs = [torch.nn.Parameter(w[1].clone().float()) for w in cand["weights"][:layers]]
mu = sd = None


def feats(x):
    h = x
    for W, b in zip(Ws, bs, strict=True):
        h = torch.sigmoid(h @ W.T + b)
    return h if mu is None else (h - mu) / sd


with torch.no_grad():
    ft_ = feats(tr.x).numpy().astype(np.float64)
if head == "pstd":  # the probe in its own standardized space: z = (h - mu) / sd fixed, head on z (folded at the end)
    sc = StandardScaler().fit(ft_)
    lg = LogisticRegression(C=0.1, max_iter=2000).fit(sc.transform(ft_), tr.y.numpy())
    mu, sd = torch.tensor(sc.mean_, dtype=torch.float32), torch.tensor(sc.scale_, dtype=torch.float32)
    V, c = torch.tensor(lg.coef_, dtype=torch.float32), torch.tensor(lg.intercept_, dtype=torch.float32)
elif head == "probe":
    sc = StandardScaler().fit(ft_)
    lg = LogisticRegression(C=0.1, max_iter=2000).fit(sc.transform(ft_), tr.y.numpy())
    V = torch.tensor(lg.coef_ / sc.scale_, dtype=torch.float32)
    c = torch.tensor(lg.intercept_ - (lg.coef_ / sc.scale_) @ sc.mean_, dtype=torch.float32)
else:
    V, c = torch.zeros(10, Ws[-1].shape[0]), torch.zeros(10)
V, c = torch.nn.Parameter(V), torch.nn.Parameter(c)
opt = torch.optim.SGD([{"params": Ws + bs, "lr": lr * f}, {"params": [V, c], "lr": lr}])


def err(sp):
    with torch.no_grad():
        return ((feats(sp.x) @ V.T + c).argmax(1) != sp.y).float().mean().item()


g = torch.Generator().manual_seed(seed)
best = (err(va), 0, err(te))
hist = [round(100 * best[0], 2)]
wait = 0
t0 = time.time()
for ep in range(1, 61):
    for idx in torch.randperm(len(tr.y), generator=g).split(8):
        out = feats(tr.x[idx]) @ V.T + c
        loss = F.cross_entropy(out, tr.y[idx]) + l2 * (V**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    e = err(va)
    hist.append(round(100 * e, 2))
    if e < best[0]:
        best, wait = (e, ep, err(te)), 0
    else:
        wait += 1
        if wait >= 15:
            break
print(
    json.dumps(
        {
            "layers": layers,
            "head": head,
            "lr": lr,
            "f": f,
            "l2": l2,
            "seed": seed,
            "valid": round(100 * best[0], 2),
            "epoch": best[1],
            "test": round(100 * best[2], 2),
            "curve": hist,
            "s": round(time.time() - t0),
        }
    ),
    flush=True,
)
