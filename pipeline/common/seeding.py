"""Seeds and the device: one params seed drives every generator, derived by purpose, stable across machines."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from the params seed and a purpose, stable across runs and machines."""
    text = ":".join([str(seed), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded by `derive_seed(seed, *names)`."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *names))
    return g


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python and ask torch for deterministic kernels."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def get_device(requested: str = "auto", key: str = "device") -> torch.device:
    """'auto' picks CUDA when present, else CPU. A name torch does not know, or CUDA where there is none, is a
    StageError naming `key` (the params key or flag `requested` came from)."""
    import torch

    from pipeline.core.errors import StageError

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    given = f"{key} {requested!r}" if key.startswith("--") else f"{key} = {requested!r}"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise StageError(f"{given}: not a device; expected auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        why = f"CUDA is not available here (torch {torch.__version__} finds no NVIDIA GPU or driver)"
        raise StageError(f"{given}: {why}; use cpu, or auto, which picks CUDA when present")
    return device
