"""Error rates of classifiers and their 95% intervals; numpy views of tensors."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

Array = np.ndarray | torch.Tensor


def error_ci95(p: float, n: int) -> float:
    """Half-width of the normal-approximation 95% interval of an error rate p measured on n examples."""
    return 1.96 * math.sqrt(p * (1.0 - p) / n)


def as_numpy(x: Array, dtype: Any = None) -> np.ndarray:
    """A numpy view/copy of a numpy array or torch tensor."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


def error_rate(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_pred) != np.asarray(y_true)))
