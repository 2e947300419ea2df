"""Small MNIST subsets for the model tests, loaded once through the project's own data path.

Raw files come from the mirror conftest finds ($PIPELINE_DATA_MIRROR or ../shared/data), else from
torchvision's download.
"""

from __future__ import annotations

import functools
import shutil
import tempfile

import torch

from pipeline.data.mnist import load_raw
from tests.conftest import mirror_root


@functools.cache
def _mnist_train() -> tuple[torch.Tensor, torch.Tensor]:
    root = tempfile.mkdtemp(prefix="mnist_root_")
    try:
        mirror = mirror_root()
        x, y = load_raw("mnist", root, [str(mirror)] if mirror else [])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return torch.from_numpy(x[:60_000]).float() / 255.0, torch.from_numpy(y[:60_000]).long()


def mnist(n: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Training-set images [offset, offset + n) as float32 (n, 784) in [0, 1], and int64 labels."""
    x, y = _mnist_train()
    return x[offset : offset + n].clone(), y[offset : offset + n].clone()
