"""Convolutional autoencoder for 28x28 images (the Keras blog's "convolutional autoencoder").

Encoder: Conv3x3(16)-ReLU-MaxPool2, Conv3x3(8)-ReLU-MaxPool2 -> an 8 x 7 x 7 code.
Decoder: Conv3x3(8)-ReLU-Upsample2, Conv3x3(16)-ReLU-Upsample2, Conv3x3(1) + sigmoid.
Loss: binary cross-entropy against the clean image, summed over pixels, mean over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.data.corruption import NOISE_KINDS, corrupt


@dataclass
class ConvAEConfig:
    channels: tuple[int, int] = (16, 8)
    noise_kind: str = "gaussian"
    noise_level: float = 0.0  # > 0 makes it a denoising conv autoencoder

    def __post_init__(self) -> None:
        if self.noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind={self.noise_kind!r}; expected one of {NOISE_KINDS}")


def torch_default_init_(module: nn.Module, generator: torch.Generator | None) -> None:
    """Re-draw every Linear/Conv2d layer's parameters with torch's default init, from `generator`."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
            fan_in = layer.weight[0].numel()
            nn.init.uniform_(layer.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in), generator=generator)


class ConvAutoencoder(nn.Module):
    """Accepts (n, 784) or (n, 1, 28, 28) inputs in [0, 1]; returns outputs of the input's shape."""

    input_dim = 784
    unit_interval = True

    def __init__(self, config: ConvAEConfig | None = None, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config or ConvAEConfig()
        c1, c2 = self.config.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(c2, c2, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c2, c1, 3, padding=1),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(c1, 1, 3, padding=1),
        )
        torch_default_init_(self, generator)

    @staticmethod
    def _as_images(x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2 and x.shape[1] == 784:
            return x.view(-1, 1, 28, 28)
        if x.dim() == 4 and tuple(x.shape[1:]) == (1, 28, 28):
            return x
        raise ValueError(f"ConvAutoencoder expects (n, 784) or (n, 1, 28, 28) inputs, got {tuple(x.shape)}")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The (n, 8, 7, 7) code."""
        return self.encoder(self._as_images(x))

    def decode_logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(code)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Images (n, 1, 28, 28) in (0, 1)."""
        return torch.sigmoid(self.decoder(code))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).reshape(x.shape)

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        images = self._as_images(x)
        x_in = images
        if self.config.noise_level > 0:
            flat = images.reshape(images.shape[0], -1)
            x_in = corrupt(flat, self.config.noise_kind, self.config.noise_level, generator).view_as(images)
        logits = self.decode_logits(self.encode(x_in))
        recon = F.binary_cross_entropy_with_logits(logits, images, reduction="sum") / images.shape[0]
        return recon, {"reconstruction": recon.detach()}
