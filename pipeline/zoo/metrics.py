"""The zoo's numbers: reconstruction error, probes on the codes, sparsity, and the PCA comparison.

Conventions (the report states them too): MSE is the mean over pixels and images; cross-entropy is
summed over the 784 pixels and averaged over images (nats per image), computed on the reconstruction
clipped to [1e-6, 1 - 1e-6] (the linear autoencoder's outputs can leave [0, 1]).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA
from sklearn.neighbors import KNeighborsClassifier

from pipeline.evaluation.probes import linear_probe
from pipeline.evaluation.rates import as_numpy

EPS = 1e-6


def reconstruction_errors(recon: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """{"mse": mean per pixel, "bce": summed over pixels, mean over images} of `recon` against `target`."""
    p = recon.clamp(EPS, 1 - EPS)
    bce = -(target * p.log() + (1 - target) * (1 - p).log()).sum(1).mean()
    return {"mse": float((recon - target).pow(2).mean()), "bce": float(bce)}


def knn_accuracy(f_train: Any, y_train: Any, f_test: Any, y_test: Any, k: int) -> float:
    """Accuracy of a k-nearest-neighbour classifier (Euclidean distance in code space)."""
    model = KNeighborsClassifier(n_neighbors=k).fit(as_numpy(f_train, np.float64), as_numpy(y_train))
    return float(model.score(as_numpy(f_test, np.float64), as_numpy(y_test)))


def probes(codes: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], Cs: list[float], k: int) -> dict:
    """Logistic regression (C chosen on valid, refit on train + valid) and k-NN accuracy on the test codes."""
    lin = linear_probe(
        codes["train"], labels["train"], codes["valid"], labels["valid"], codes["test"], labels["test"], Cs=Cs
    )
    return {
        "linear_probe_acc": 1.0 - lin["test_error"],
        "linear_probe_C": lin["C"],
        "knn_acc": knn_accuracy(codes["train"], labels["train"], codes["test"], labels["test"], k),
    }


def sparsity(h: torch.Tensor, near_zero: float) -> dict[str, float]:
    """Mean |activation|, the fraction of activations with |h| < near_zero, and of units never above it."""
    a = h.abs()
    return {
        "mean_activation": float(a.mean()),
        "near_zero_fraction": float((a < near_zero).float().mean()),
        "dead_unit_fraction": float((a.amax(0) < near_zero).float().mean()),
    }


def principal_angles_deg(a_rows: Any, b_rows: Any) -> np.ndarray:
    """Principal angles in degrees, smallest first, between the row spaces of two (k, d) matrices."""
    a, b = as_numpy(a_rows, np.float64), as_numpy(b_rows, np.float64)
    return np.sort(np.degrees(subspace_angles(a.T, b.T)))


def angle_summary(angles: np.ndarray) -> dict[str, Any]:
    return {
        "max_deg": float(angles.max()),
        "mean_deg": float(angles.mean()),
        "median_deg": float(np.median(angles)),
        "angles_deg": [round(float(a), 3) for a in angles],
    }


def fit_pca(x_train: torch.Tensor, k: int, seed: int) -> PCA:
    return PCA(n_components=k, svd_solver="randomized", random_state=seed % 2**32).fit(as_numpy(x_train, np.float64))


def pca_codes(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(pca.transform(as_numpy(x, np.float64))).float()


def pca_reconstruct(pca: PCA, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(pca.inverse_transform(pca.transform(as_numpy(x, np.float64)))).float()


def explained_variance(pca: PCA) -> float:
    return float(pca.explained_variance_ratio_.sum())
