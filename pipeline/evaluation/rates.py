"""Error rates of classifiers and their 95% intervals; numpy views of tensors.

Imports no torch (tensors are recognised by their methods), so the CI gate that formats tables stays fast.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import torch

    Array: TypeAlias = np.ndarray | torch.Tensor
else:
    Array: TypeAlias = np.ndarray  # annotations only; tensors are accepted too


def error_ci95(p: float, n: int) -> float:
    """Half-width of the normal-approximation 95% interval of an error rate p measured on n examples."""
    return 1.96 * math.sqrt(p * (1.0 - p) / n)


def as_numpy(x: Array, dtype: Any = None) -> np.ndarray:
    """A numpy view/copy of a numpy array or torch tensor."""
    if hasattr(x, "detach"):  # a torch.Tensor
        x = x.detach().cpu().numpy()
    return np.ascontiguousarray(x, dtype=dtype)


def error_rate(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_pred) != np.asarray(y_true)))


def mcnemar(wrong_a: list[int] | set[int], wrong_b: list[int] | set[int]) -> dict[str, float]:
    """McNemar's exact test of two classifiers on the same test examples, from the indices each gets wrong.

    b = examples only A gets wrong, c = only B; under H0 (equal error rates) b ~ Binomial(b + c, 1/2).
    Returns b, c and the two-sided p-value (scipy's exact binomial test)."""
    from scipy.stats import binomtest

    a, b_set = set(wrong_a), set(wrong_b)
    b, c = len(a - b_set), len(b_set - a)
    p = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    return {"only_a_wrong": b, "only_b_wrong": c, "p_value": float(p)}
