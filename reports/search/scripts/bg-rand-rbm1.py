"""Scratch (issue 38, deliverable 1): bg-rand's first RBM (the pipeline's RBMGroup: CD-1, N(0, 0.01) weights),
K rates in lockstep, at a minibatch size, shuffled or in file order (the lab's per-example regime); at the probe
epochs: mean activation, median per-unit std over 2000 training images, and the evaluate stage's logistic probe
(standardized features, C 0.1, fit on train) on VALIDATION. One thread.
    python rbm1.py <batch> <lr,lr,...> <probe epochs e1,e2,...> <order: shuffle|file> [hidden]"""

import json
import sys
import time

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.data.arrays import load_splits
from pipeline.training.families.rbm import RBMGroup, initial_weights

torch.set_num_threads(1)
batch, lrs = int(sys.argv[1]), [float(a) for a in sys.argv[2].split(",")]
probes = [int(a) for a in sys.argv[3].split(",")]
order = sys.argv[4]
hidden = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
below = int(sys.argv[6]) if len(sys.argv) > 6 else 0  # layers of the committed pretrain@bg-rand-dbn below this RBM
s = load_splits("data/prepared/bg-rand")
tr, va = s["train"], s["valid"]
if below:
    ws = torch.load("models/pretrain/bg-rand/dbn.pt", weights_only=False)["candidates"][0]["weights"][:below]

    def up(x):
        for w in ws:
            x = torch.sigmoid(x @ w[0].float().T + w[1].float())
        return x

    class S:
        pass

    tr2, va2 = S(), S()
    tr2.x, tr2.y, va2.x, va2.y = up(tr.x), tr.y, up(va.x), va.y
    tr, va = tr2, va2
g = torch.Generator().manual_seed(0)
rbm = RBMGroup(initial_weights(below, (hidden, tr.x.shape[1]), 2008), lrs)
t0 = time.time()
for ep in range(1, max(probes) + 1):
    idx_all = torch.arange(len(tr.y)) if order == "file" else torch.randperm(len(tr.y), generator=g)
    x = tr.x[idx_all].unsqueeze(0)
    for i in range(0, x.shape[1], batch):
        rbm.step(x[:, i : i + batch], None, g)
    if ep in probes:
        with torch.no_grad():
            ftr, fva = rbm.encode(tr.x.unsqueeze(0)), rbm.encode(va.x.unsqueeze(0))
        row = {
            "below": below,
            "batch": batch,
            "order": order,
            "hidden": hidden,
            "epoch": ep,
            "s": round(time.time() - t0),
        }
        for k, lr in enumerate(lrs):
            p = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
            p.fit(ftr[k].numpy().astype(np.float64), tr.y.numpy())
            e = (p.predict(fva[k].numpy().astype(np.float64)) != va.y.numpy()).mean()
            row[f"lr{lr}"] = {
                "act": round(ftr[k].mean().item(), 4),
                "unit_std": round(ftr[k][:2000].std(0).median().item(), 4),
                "probe_valid": round(100 * e, 2),
            }
        print(json.dumps(row), flush=True)
