"""How data passes through a pretrained stack's sigmoid layers (`propagate`).

A leaf: the stages that only read pretrained stacks (evaluate) depend on this, not on the kinds that trained them.
"""

from __future__ import annotations

import torch


def propagate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sigmoid(x W^T + b): the code (autoencoder) or P(h=1|v) (RBM) of a sigmoid layer."""
    return torch.addmm(b.to(x.device), x, w.to(x.device).T).sigmoid_()
