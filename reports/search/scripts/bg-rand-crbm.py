"""Scratch: bg-rand's classification RBM (the lab's DBN-1 before fine-tuning): exact P(y|x) validation error per
epoch under CD-1 schedules (minibatch size, rate). JointRBMGroup of the pipeline, K rates in lockstep, one thread."""

import json
import sys
import time

import torch

from pipeline.data.arrays import load_splits
from pipeline.training.families.rbm import JointRBMGroup, initial_weights

torch.set_num_threads(1)
batch = int(sys.argv[1])
lrs = [float(a) for a in sys.argv[2].split(",")]
epochs = int(sys.argv[3])
hidden = int(sys.argv[4]) if len(sys.argv) > 4 else 1000
s = load_splits("data/prepared/bg-rand")
tr, va = s["train"], s["valid"]
g = torch.Generator().manual_seed(0)
w0 = initial_weights(0, (hidden, 784), 2008)
rbm = JointRBMGroup(w0, lrs)
out = []
t0 = time.time()
for ep in range(1, epochs + 1):
    order = torch.randperm(len(tr.y), generator=g)
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        rbm.step(tr.x[idx].unsqueeze(0), None, g, tr.y[idx])
    err = rbm.errors(va.x.unsqueeze(0), va.y)
    act = rbm.encode(va.x[:500].unsqueeze(0))
    row = {
        "epoch": ep,
        "valid_err": [round(100 * e, 2) for e in err.tolist()],
        "unit_std": [round(a.std(0).median().item(), 4) for a in act],
        "s": round(time.time() - t0),
    }
    out.append(row)
    print(json.dumps(row), flush=True)
