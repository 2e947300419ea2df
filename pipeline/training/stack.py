"""What a pretraining candidate is (`StackSpec`) and how data passes through its sigmoid layers (`propagate`).

A leaf: the stages that only read pretrained stacks (finetune, evaluate) depend on this, not on the search.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TOPS = ("softmax", "joint")


@dataclass(frozen=True)
class StackSpec:
    """One pretraining candidate. kind: "ae" (autoencoder layers; noise > 0 makes them denoising) or "rbm"."""

    kind: str
    hidden: int
    lr: float
    epochs: int
    noise: float = 0.0
    top: str = "softmax"  # "joint": the last layer is a joint RBM over (the layer below, the label); rbm only

    def __post_init__(self) -> None:
        if self.kind not in ("ae", "rbm") or self.hidden < 1 or self.lr <= 0 or self.epochs < 1:
            raise ValueError(f"bad stack candidate {self}")
        if not 0 <= self.noise < 1 or (self.kind == "rbm" and self.noise):
            raise ValueError(f"bad noise level in {self}")
        if self.top not in TOPS or (self.top == "joint" and self.kind != "rbm"):
            raise ValueError(f"bad top in {self}: expected one of {TOPS}, joint for RBMs only")

    @property
    def name(self) -> str:
        nu = f"-nu{self.noise:g}" if self.kind == "ae" else ""
        return f"h{self.hidden}-lr{self.lr:g}-e{self.epochs}{nu}" + ("-joint" if self.top == "joint" else "")

    @property
    def prefix(self) -> tuple:
        """What the first layer depends on: candidates with the same prefix share it."""
        return (self.kind, self.hidden, self.lr, self.noise, self.top)


def propagate(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sigmoid(x W^T + b): the code (autoencoder) or P(h=1|v) (RBM) of a sigmoid layer."""
    return torch.addmm(b.to(x.device), x, w.to(x.device).T).sigmoid_()
