"""Scratch (issue 38, session 25): which of the committed bg-rand first RBM's units carry what its probe reads.
Splits the 1000 units of `pretrain@bg-rand-dbn`'s first layer into the alive ones (activation std > 0.05 over
2000 training images) and the rest, and fits the evaluate stage's logistic probe (C 0.1, fit on train) on each
part, standardized or raw; then the same probe on the layer's starting weights (`initial_weights`, N(0, 0.01),
biases 0: random projections) and on the pixels. Error on VALIDATION. One thread.
    PYTHONPATH=. python reports/search/scripts/bg-rand-rbm-alive.py"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.data.arrays import load_splits
from pipeline.training.families.rbm import initial_weights

torch.set_num_threads(1)
s = load_splits("data/prepared/bg-rand")
W, b = torch.load("models/pretrain/bg-rand/dbn.pt", weights_only=False)["candidates"][0]["weights"][0]
f = {k: torch.sigmoid(s[k].x @ W.float().T + b.float()).numpy().astype(np.float64) for k in ("train", "valid")}
std = f["train"][:2000].std(0)
alive = std > 0.05
print("alive", alive.sum())
for name, cols, scale in [
    ("alive std", alive, True),
    ("dead std", ~alive, True),
    ("all raw", alive | ~alive, False),
    ("all std", alive | ~alive, True),
]:
    p = (
        make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
        if scale
        else LogisticRegression(C=0.1, max_iter=2000)
    )
    p.fit(f["train"][:, cols], s["train"].y.numpy())
    print(name, cols.sum(), round(100 * (p.predict(f["valid"][:, cols]) != s["valid"].y.numpy()).mean(), 2), flush=True)

w0 = initial_weights(0, (1000, 784), 2008)
for name, g in [("starting weights std", lambda x: torch.sigmoid(x @ w0.T)), ("pixels std", lambda x: x)]:
    p = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    p.fit(g(s["train"].x).numpy().astype(np.float64), s["train"].y.numpy())
    e = (p.predict(g(s["valid"].x).numpy().astype(np.float64)) != s["valid"].y.numpy()).mean()
    print(name, round(100 * e, 2), flush=True)
