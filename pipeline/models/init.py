"""The starting weights the networks share: Glorot-Bengio uniform ranges (the autoencoders, the MLP heads)."""

from __future__ import annotations

import math

import torch


def init_range(fan_in: int, fan_out: int, activation: str) -> float:
    """Glorot & Bengio (2010) uniform range, times 4 for sigmoid units (as in the LISA tutorials)."""
    r = math.sqrt(6.0 / (fan_in + fan_out))
    return 4.0 * r if activation == "sigmoid" else r


def uniform_weights(shape: tuple[int, int], r: float, generator: torch.Generator | None) -> torch.Tensor:
    """A matrix of U(-r, r) entries drawn from `generator`."""
    return (torch.rand(shape, generator=generator) * 2 - 1) * r
