"""Kind `rbm`: Bernoulli RBMs by CD-1 (the DBNs; `top: joint`, the lab DBN's joint top RBM), of the RBM family."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pipeline.training.families.rbm import JointRBMGroup, RBMGroup, initial_weights
from pipeline.training.layer_kind import LayerKind


def group(w0: torch.Tensor, lrs: Sequence[float], noise: Sequence[float], top: str, options: Sequence) -> RBMGroup:
    return JointRBMGroup(w0, lrs) if top == "joint" else RBMGroup(w0, lrs)


KIND = LayerKind("rbm", group, initial_weights)
