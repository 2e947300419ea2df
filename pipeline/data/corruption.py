"""Input corruption for denoising autoencoders (Vincent et al. 2008, 2010).

All functions take a batch `x` of shape (n, d) with values in [0, 1], never modify it in place,
and draw their randomness from an explicit `torch.Generator`, so that pretraining can corrupt each
minibatch afresh and still be reproducible from the params seed.

Kinds:
- ``masking``: for every example exactly round(nu * d) components, chosen uniformly at random,
  are set to 0 (the "destruction" of Vincent 2008).
- ``masking_bernoulli``: every component is set to 0 independently with probability nu
  (the LISA DeepLearningTutorials variant).
- ``gaussian``: x + level * N(0, 1), clipped to [0, 1] (the Keras tutorial's "noise factor").
- ``salt_and_pepper``: for every example exactly round(nu * d) components, chosen at random,
  are set to 0 or 1 by a fair coin flip (Vincent 2010).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

NoiseKind = Literal["masking", "masking_bernoulli", "gaussian", "salt_and_pepper"]
NOISE_KINDS: tuple[str, ...] = ("masking", "masking_bernoulli", "gaussian", "salt_and_pepper")


def _choose_components(n: int, d: int, count: int, generator: torch.Generator, device) -> torch.Tensor:
    """Boolean (n, d) mask with exactly `count` True entries per row, positions uniform at random."""
    mask = torch.zeros(n, d, dtype=torch.bool, device=device)
    if count <= 0:
        return mask
    scores = torch.rand(n, d, generator=generator, device=device)
    idx = scores.topk(count, dim=1, sorted=False).indices
    return mask.scatter_(1, idx, True)


def masking(x: torch.Tensor, nu: float, generator: torch.Generator) -> torch.Tensor:
    """Zero exactly round(nu * d) randomly chosen components of each example."""
    n, d = x.shape
    chosen = _choose_components(n, d, round(nu * d), generator, x.device)
    return x.masked_fill(chosen, 0.0)


def masking_bernoulli(x: torch.Tensor, nu: float, generator: torch.Generator) -> torch.Tensor:
    """Zero each component independently with probability nu."""
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= nu
    return x * keep


def gaussian(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add std * N(0, 1) noise and clip to [0, 1]."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + std * noise).clamp_(0.0, 1.0)


def salt_and_pepper(x: torch.Tensor, nu: float, generator: torch.Generator) -> torch.Tensor:
    """Set exactly round(nu * d) random components of each example to 0 or 1 (fair coin)."""
    n, d = x.shape
    chosen = _choose_components(n, d, round(nu * d), generator, x.device)
    salt = torch.rand(x.shape, generator=generator, device=x.device) < 0.5
    out = x.masked_fill(chosen & ~salt, 0.0)
    return out.masked_fill_(chosen & salt, 1.0)


_FUNCS = {
    "masking": masking,
    "masking_bernoulli": masking_bernoulli,
    "gaussian": gaussian,
    "salt_and_pepper": salt_and_pepper,
}


def corrupt(x: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """Corrupt a batch with the named noise `kind` at `level`; level 0 returns a copy of `x`."""
    if kind not in _FUNCS:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {', '.join(NOISE_KINDS)}")
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"noise level {level!r} for {kind!r} is outside [0, 1]")
    if x.dim() != 2:
        raise ValueError(f"corrupt expects a (n, d) batch, got shape {tuple(x.shape)}")
    if level == 0.0:
        return x.clone()
    return _FUNCS[kind](x, level, generator)


def noise_name(kind: str, level: float) -> str:
    """The name of a fixed corrupted copy (a `corrupt` output folder), e.g. gaussian-0.5."""
    return f"{kind}-{level:g}"


def parse_noise(name: str) -> tuple[str, float]:
    """noise_name's inverse: 'gaussian-0.5' -> ('gaussian', 0.5)."""
    kind, _, level = name.rpartition("-")
    return kind, float(level)


def corrupt_uint8(
    x: torch.Tensor, kind: str, level: float, generator: torch.Generator, chunk: int = 8192
) -> np.ndarray:
    """Corrupt (n, 784) floats in [0, 1] in chunks (bounded memory); return uint8 on the images' 1/255 grid."""
    out = torch.cat([corrupt(part, kind, level, generator) for part in x.split(chunk)])
    return out.mul_(255.0).round_().to(torch.uint8).numpy()
