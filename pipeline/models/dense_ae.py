"""Dense (fully connected) autoencoders: basic, deep, undercomplete, denoising, sparse, contractive.

One class covers them all; the variants are configurations of `DenseAEConfig`:

- basic 784 -> 2:             DenseAEConfig(sizes=[784, 2], code_activation="linear")
- deep 784-128-64-10-2:       DenseAEConfig(sizes=[784, 128, 64, 10, 2], hidden_activation="relu", ...)
- denoising (Vincent 2008):   DenseAEConfig(sizes=[784, 1000], noise_kind="masking", noise_level=0.25)
- sparse / contractive:       set `l1`, `sparsity_weight` or `contractive`.

Encoder layer k has weight W_k of shape (out, in) (as in nn.Linear) and bias b_k.  Decoder layer k maps
back with h @ W_k + c_k when weights are tied, or with its own matrix of the same shape when untied.

Greedy layer-wise pretraining (SAA / SdA) trains the one-layer tied sigmoid case with the autograd-free
step of `pipeline.training.families.autoencoder.TiedAEGroup`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data.corruption import NOISE_KINDS, corrupt
from pipeline.models.init import init_range, uniform_weights

ACTIVATIONS = ("sigmoid", "relu", "tanh", "linear")
LOSSES = ("cross_entropy", "mse")


@dataclass
class DenseAEConfig:
    sizes: list[int] = field(default_factory=lambda: [784, 1000])  # input width first; decoder mirrors
    hidden_activation: str = "sigmoid"
    code_activation: str | None = None  # activation of the last encoder layer; None = hidden_activation
    output_activation: str = "sigmoid"
    tied: bool = True
    loss: str = "cross_entropy"  # against the clean input, summed over pixels, mean over the batch
    noise_kind: str = "masking"
    noise_level: float = 0.0
    l1: float = 0.0  # weight of mean_n sum_j |h_nj| on the hidden layers in `l1_layers`
    l1_layers: tuple[int, ...] = (0,)  # 0 = first hidden layer
    sparsity_weight: float = 0.0  # beta of the KL sparsity penalty on the first hidden layer
    sparsity_target: float = 0.05  # rho
    sparsity_decay: float = 0.9  # lambda of the running average rho_hat
    contractive: float = 0.0  # weight of ||d h_1 / d x||_F^2 (first hidden layer), mean over the batch

    def __post_init__(self) -> None:
        self.sizes = [int(s) for s in self.sizes]
        self.l1_layers = tuple(int(i) for i in self.l1_layers)
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(f"sizes must list at least two positive widths, got {self.sizes}")
        for name in ("hidden_activation", "code_activation", "output_activation"):
            value = getattr(self, name)
            if value is not None and value not in ACTIVATIONS:
                raise ValueError(f"{name}={value!r}; expected one of {ACTIVATIONS}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}; expected one of {LOSSES}")
        if self.loss == "cross_entropy" and self.output_activation != "sigmoid":
            raise ValueError("the cross-entropy loss needs output_activation='sigmoid'")
        if self.noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind={self.noise_kind!r}; expected one of {NOISE_KINDS}")
        if not 0.0 <= self.noise_level <= 1.0:
            raise ValueError(f"noise_level={self.noise_level} is outside [0, 1]")
        if any(not 0 <= i < self.n_layers for i in self.l1_layers):
            raise ValueError(f"l1_layers={self.l1_layers} must index the {self.n_layers} hidden layers")
        if self.sparsity_weight and self.layer_activation(0) != "sigmoid":
            raise ValueError("the KL sparsity penalty needs a sigmoid first hidden layer")
        if not 0.0 < self.sparsity_target < 1.0 or not 0.0 <= self.sparsity_decay < 1.0:
            raise ValueError("need 0 < sparsity_target < 1 and 0 <= sparsity_decay < 1")
        if min(self.l1, self.sparsity_weight, self.contractive) < 0:
            raise ValueError("regulariser weights must be >= 0")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def layer_activation(self, k: int) -> str:
        """Activation of encoder layer k (the last one is the code layer)."""
        if k == self.n_layers - 1 and self.code_activation is not None:
            return self.code_activation
        return self.hidden_activation


def activate(z: torch.Tensor, name: str) -> torch.Tensor:
    if name == "sigmoid":
        return torch.sigmoid(z)
    if name == "relu":
        return torch.relu(z)
    if name == "tanh":
        return torch.tanh(z)
    return z


def activation_derivative(h: torch.Tensor, name: str) -> torch.Tensor:
    """f'(z) written in terms of the activation h = f(z)."""
    if name == "sigmoid":
        return h * (1 - h)
    if name == "tanh":
        return 1 - h * h
    if name == "relu":
        return (h > 0).to(h.dtype)
    return torch.ones_like(h)


class DenseAutoencoder(nn.Module):
    """A fully connected autoencoder with a mirrored decoder; see `DenseAEConfig`."""

    def __init__(self, config: DenseAEConfig, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        sizes = config.sizes
        self.input_dim = sizes[0]
        self.unit_interval = config.loss == "cross_entropy"  # inputs must lie in [0, 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.decoder_weights = nn.ParameterList()
        self.decoder_biases = nn.ParameterList()
        for k, (n_in, n_out) in enumerate(pairwise(sizes)):
            r = init_range(n_in, n_out, config.layer_activation(k))
            self.weights.append(nn.Parameter(uniform_weights((n_out, n_in), r, generator)))
            self.biases.append(nn.Parameter(torch.zeros(n_out)))
            if not config.tied:
                self.decoder_weights.append(nn.Parameter(uniform_weights((n_out, n_in), r, generator)))
            self.decoder_biases.append(nn.Parameter(torch.zeros(n_in)))
        # rho_hat of the KL sparsity penalty: a running average of the first hidden layer's mean activation.
        self.register_buffer("rho_hat", torch.full((sizes[1],), float(config.sparsity_target)))

    def decoder_weight(self, k: int) -> torch.Tensor:
        return self.weights[k] if self.config.tied else self.decoder_weights[k]

    def encode_layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activations of every encoder layer, first hidden layer first, code last."""
        hs = []
        h = x
        for k in range(self.config.n_layers):
            h = activate(F.linear(h, self.weights[k], self.biases[k]), self.config.layer_activation(k))
            hs.append(h)
        return hs

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_layers(x)[-1]

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        """Decoder output before the output activation."""
        h = code
        for k in reversed(range(self.config.n_layers)):
            z = torch.addmm(self.decoder_biases[k], h, self.decoder_weight(k))
            h = z if k == 0 else activate(z, self.config.hidden_activation)
        return h

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        return activate(self.decode_logits(code), self.config.output_activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def reconstruction_loss(self, x_in: torch.Tensor, x_target: torch.Tensor) -> torch.Tensor:
        """Reconstruction loss of `x_target` from `x_in`: summed over pixels, mean over the batch."""
        return self._reconstruction(self.decode_logits(self.encode(x_in)), x_target)

    def _reconstruction(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "cross_entropy":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
        return (activate(logits, self.config.output_activation) - x).pow(2).sum() / x.shape[0]

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """Total training loss on the clean batch `x` and its parts (detached).

        The input is corrupted afresh from `generator` when noise_level > 0; the reconstruction is
        always scored against the clean `x`.  In training mode the sparsity running average is updated.
        """
        cfg = self.config
        if x.dim() != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"DenseAutoencoder expects (n, {self.input_dim}) inputs, got {tuple(x.shape)}")
        x_in = corrupt(x, cfg.noise_kind, cfg.noise_level, generator) if cfg.noise_level > 0 else x
        hs = self.encode_layers(x_in)
        n = x.shape[0]
        parts = {"reconstruction": self._reconstruction(self.decode_logits(hs[-1]), x)}
        if cfg.l1:
            parts["l1"] = cfg.l1 * sum(hs[i].abs().sum() for i in cfg.l1_layers) / n
        if cfg.sparsity_weight:
            parts["sparsity"] = cfg.sparsity_weight * self.sparsity_penalty(hs[0])
        if cfg.contractive:
            parts["contractive"] = cfg.contractive * self.contractive_penalty(hs[0])
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    def sparsity_penalty(self, h1: torch.Tensor) -> torch.Tensor:
        """sum_j KL(rho || rho_hat_j), with rho_hat_t = lambda * rho_hat_{t-1} + (1 - lambda) * mean_n h_nj.

        rho_hat_{t-1} is a buffer (no gradient), so the gradient flows only through the current batch's
        term (1 - lambda) * mean_n h_nj: dPenalty/dh_nj = (1 - lambda) / n * dKL/drho_hat_j.  In training
        mode the buffer is set to rho_hat_t.  Unweighted: `loss` multiplies it by sparsity_weight.
        """
        rho, lam = self.config.sparsity_target, self.config.sparsity_decay
        rho_hat = lam * self.rho_hat + (1 - lam) * h1.mean(0)
        if self.training:
            self.rho_hat.copy_(rho_hat.detach())
        rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
        return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()

    def contractive_penalty(self, h1: torch.Tensor) -> torch.Tensor:
        """mean_n ||d h_1 / d x||_F^2 = mean_n sum_j f'(z_nj)^2 * sum_i W_ji^2 (closed form)."""
        fprime = activation_derivative(h1, self.config.layer_activation(0))
        return fprime.pow(2).mv(self.weights[0].pow(2).sum(1)).mean()
