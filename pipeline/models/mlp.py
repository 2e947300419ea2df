"""Sigmoid multilayer perceptron with a softmax output, optionally initialised from a pretrained stack.

The hidden layers of `MLPClassifier.from_stack` start at the encoder weights of a greedy layer-wise
stack (SAA, SdA or DBN); fine-tuning then trains all layers on the labels (Vincent et al. 2008, sec. 4).
With `head="joint"` the output is the lab DBN's joint top RBM over (last hidden layer, label), classifying by
its exact P(y | h) (`JointTop`; pipeline/training/families/rbm.py trains it).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.init import init_range, uniform_weights

OUTPUT_INITS = ("zero", "random")
HEADS = ("softmax", "joint")


class JointTop(nn.Module):
    """A joint RBM over (h, y) as a classifier: logits_y = e_y + sum_j softplus(b_j + W_j h + U_jy), the exact
    log P(y | h) up to a constant. Parameters in the order of MLPGroup's joint head: W (H, d), b (H), U (H, C), e (C)."""

    def __init__(self, d: int, hidden: int, n_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(hidden, d))
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.label_weight = nn.Parameter(torch.zeros(hidden, n_classes))
        self.label_bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = F.linear(h, self.weight, self.bias).unsqueeze(-1) + self.label_weight
        return self.label_bias + F.softplus(a).sum(-2)


class MLPClassifier(nn.Module):
    """Hidden sigmoid layers of widths sizes[1:], input width sizes[0], and a softmax output layer."""

    unit_interval = False

    def __init__(
        self,
        sizes: Sequence[int],
        n_classes: int = 10,
        *,
        generator: torch.Generator | None = None,
        output_init: str = "zero",
        head: str = "softmax",
        top_hidden: int = 0,
    ):
        super().__init__()
        if len(sizes) < 1 or min(sizes) < 1 or n_classes < 2 or (head == "joint" and top_hidden < 1):
            raise ValueError(f"bad MLP shape: sizes={list(sizes)}, n_classes={n_classes}, top_hidden={top_hidden}")
        if output_init not in OUTPUT_INITS or head not in HEADS:
            raise ValueError(f"output_init={output_init!r}, head={head!r}; expected one of {OUTPUT_INITS}, {HEADS}")
        self.sizes = [int(s) for s in sizes]
        self.input_dim = self.sizes[0]
        self.n_classes = n_classes
        self.head = head
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(self.sizes))
        if head == "joint":  # its weights come from the pretrained top RBM (from_params / load_state_dict)
            self.output = JointTop(self.sizes[-1], top_hidden, n_classes)
            return
        self.output = nn.Linear(self.sizes[-1], n_classes)
        with torch.no_grad():
            for layer in self.hidden:  # random init for sigmoid units (used when not pretrained)
                fan_out, fan_in = layer.weight.shape
                layer.weight.copy_(
                    uniform_weights((fan_out, fan_in), init_range(fan_in, fan_out, "sigmoid"), generator)
                )
                layer.bias.zero_()
            self.output.bias.zero_()
            if output_init == "zero":
                self.output.weight.zero_()
            else:
                fan_out, fan_in = self.output.weight.shape
                self.output.weight.copy_(
                    uniform_weights((fan_out, fan_in), init_range(fan_in, fan_out, "softmax"), generator)
                )

    @classmethod
    def from_stack(
        cls,
        stack: object,
        n_classes: int = 10,
        *,
        generator: torch.Generator | None = None,
        output_init: str = "zero",
    ) -> MLPClassifier:
        """Build from a `StackResult` (or a list of encoder (W, b) pairs, W of shape (out, in))."""
        weights = list(getattr(stack, "weights", stack))
        sizes = [weights[0][0].shape[1], *(w.shape[0] for w, _ in weights)]
        mlp = cls(sizes, n_classes, generator=generator, output_init=output_init)
        with torch.no_grad():
            for layer, (w, b) in zip(mlp.hidden, weights, strict=True):
                layer.weight.copy_(w)
                layer.bias.copy_(b)
        return mlp

    @classmethod
    def from_params(cls, params: Sequence[torch.Tensor], head: str = "softmax") -> MLPClassifier:
        """From fine-tuned tensors in MLPGroup order: hidden (W, b) pairs, then the head's (W, b; or W, b, U, e)."""
        n = 4 if head == "joint" else 2
        sizes = [params[0].shape[1], *(w.shape[0] for w in params[:-n:2])]
        mlp = cls(sizes, params[-1].shape[0], head=head, top_hidden=params[-n].shape[0] if head == "joint" else 0)
        mlp.load_state_dict(dict(zip(mlp.state_dict(), params, strict=True)))
        return mlp

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> MLPClassifier:
        """Rebuild a saved classifier, its shape read from the tensors (a joint head has `output.label_weight`)."""
        head = "joint" if "output.label_weight" in state else "softmax"
        return cls.from_params(list(state.values()), head)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Activations of the last hidden layer."""
        for layer in self.hidden:
            x = torch.sigmoid(layer(x))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits."""
        return self.output(self.features(x))

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        return torch.cat([F.softmax(self(xb), dim=1) for xb in x.split(batch_size)])

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        return torch.cat([self(xb).argmax(1) for xb in x.split(batch_size)])

    @torch.no_grad()
    def error_rate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> float:
        """Fraction of misclassified examples."""
        batches = zip(x.split(batch_size), y.split(batch_size), strict=True)
        wrong = sum(int((self(xb).argmax(1) != yb).sum()) for xb, yb in batches)
        return wrong / max(len(y), 1)


class DigitPredictor(nn.Module):
    """A fine-tuned classifier as a predictor of digits: forward returns the most likely class (for serving)."""

    def __init__(self, classifier: MLPClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x).argmax(1)
