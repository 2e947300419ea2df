"""SVMs on precomputed kernel matrices: libsvm's rbf and poly kernels as float64 matrix products.

libsvm computes every kernel value it needs as its own dot product over the d inputs, on one core and
without BLAS; on 10,000 MNIST digits an rbf fit spends nearly all its time there, and predicting 50,000
test digits as long again. Here the kernel matrices are float64 torch matmuls (near the machine's matmul
peak, on every thread torch has) and scikit-learn's `SVC(kernel="precomputed")` only looks values up.
Same kernels, same solver and the same C: the values differ from libsvm's own in the last bits (a matmul
sums in another order), so a solution can differ from `SVC(kernel=...)`'s by as much as the solver's
tolerance, which is how much two libsvm builds may differ anyway.

    model = PrecomputedSVC("rbf", C=10.0, gamma="scale").fit(x_train, y_train)
    y_pred = model.predict(x_test)
    table = grid_errors("rbf", {"C": [1, 10], "gamma": [0.01, 0.02]}, x_train, y_train, x_valid, y_valid)
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.model_selection import ParameterGrid
from sklearn.svm import SVC

KERNELS = ("rbf", "poly")
CACHE_MB = 500.0  # libsvm's cache of kernel columns: with the values precomputed it saves little
ROWS = 4096  # rows of a kernel matrix computed (and held in float64) at a time when predicting

log = logging.getLogger(__name__)


def resolve_gamma(gamma: float | str, x: np.ndarray) -> float:
    """scikit-learn's gamma: 'scale' = 1 / (d * variance of x), 'auto' = 1 / d, else the number given."""
    if gamma == "scale":
        return 1.0 / (x.shape[1] * float(x.var()))
    if gamma == "auto":
        return 1.0 / x.shape[1]
    return float(gamma)


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    ta, tb = _tensor(a), _tensor(b)
    d = torch.addmm((tb * tb).sum(1).unsqueeze(0), ta, tb.T, alpha=-2.0)
    return d.add_((ta * ta).sum(1).unsqueeze(1))


def squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances, as libsvm's rbf forms them: |a|^2 + |b|^2 - 2 a.b."""
    return _squared_distances(a, b).numpy()


def kernel_matrix(
    kernel: str, a: np.ndarray, b: np.ndarray, gamma: float, degree: int = 3, coef0: float = 0.0
) -> np.ndarray:
    """(len(a), len(b)) float64 kernel values: rbf exp(-gamma |a-b|^2), poly (gamma a.b + coef0)^degree.

    Element-wise work in torch too (numpy's exp runs on one core, slower than the matmul)."""
    if kernel == "rbf":
        return _squared_distances(a, b).mul_(-gamma).exp_().numpy()
    if kernel == "poly":
        k = torch.addmm(torch.full((1, 1), float(coef0), dtype=torch.float64), _tensor(a), _tensor(b).T, alpha=gamma)
        return k.pow_(degree).numpy()
    raise ValueError(f"kernel {kernel!r}: expected one of {KERNELS}")


class PrecomputedSVC:
    """`SVC(kernel=kernel, C=C, gamma=gamma, degree=degree, coef0=coef0)` fit on its kernel matrix.

    fit(x, y) keeps x and fits libsvm on K(x, x); predict(x) computes K(x, support vectors) only, in blocks
    of ROWS rows (the other columns of the matrix libsvm is given are never read).
    """

    def __init__(
        self,
        kernel: str = "rbf",
        C: float = 1.0,
        gamma: float | str = "scale",
        degree: int = 3,
        coef0: float = 0.0,
        cache_size: float = CACHE_MB,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel {kernel!r}: expected one of {KERNELS}")
        self.kernel, self.C, self.gamma, self.degree, self.coef0 = kernel, C, gamma, degree, coef0
        self.cache_size = cache_size

    def _k(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return kernel_matrix(self.kernel, a, b, self.gamma_, self.degree, self.coef0)

    def fit(self, x: np.ndarray, y: np.ndarray) -> PrecomputedSVC:
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.gamma_ = resolve_gamma(self.gamma, x)
        self.svc_ = SVC(kernel="precomputed", C=self.C, cache_size=self.cache_size).fit(self._k(x, x), y)
        self.support_vectors_ = x[self.svc_.support_]
        self.n_fit_ = len(x)
        return self

    def _test_kernel(self, x: np.ndarray) -> np.ndarray:
        k = np.zeros((len(x), self.n_fit_))
        k[:, self.svc_.support_] = self._k(x, self.support_vectors_)
        return k

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.svc_.decision_function(self._test_kernel(b)) for b in _blocks(x)])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self.svc_.predict(self._test_kernel(b)) for b in _blocks(x)])


def _blocks(x: np.ndarray) -> list[np.ndarray]:
    return [x[i : i + ROWS] for i in range(0, len(x), ROWS)]


def grid_errors(
    kernel: str,
    grid: dict[str, list],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    n_jobs: int = 2,
) -> list[dict[str, Any]]:
    """Validation error of every grid point (scikit-learn's ParameterGrid order), each fit on train.

    Points that differ only in C share their kernel matrices (and every rbf gamma the squared distances);
    the fits of one kernel matrix run in joblib threads (libsvm releases the GIL).
    """
    xt, xv = (np.ascontiguousarray(x, dtype=np.float64) for x in (x_train, x_valid))
    points = list(ParameterGrid(grid))
    errors: dict[int, float] = {}
    distances = (_squared_distances(xt, xt), _squared_distances(xv, xt)) if kernel == "rbf" else None
    groups: dict[tuple, list[int]] = {}
    for i, p in enumerate(points):
        groups.setdefault(tuple(sorted((k, v) for k, v in p.items() if k != "C")), []).append(i)
    for key, members in groups.items():
        shape = dict(key)
        gamma = resolve_gamma(shape.pop("gamma", "scale"), xt)
        if distances is not None:
            k_train, k_valid = (d.mul(-gamma).exp_().numpy() for d in distances)
        else:
            k_train, k_valid = (kernel_matrix(kernel, a, xt, gamma, **shape) for a in (xt, xv))

        def error(i: int, k_train=k_train, k_valid=k_valid) -> float:
            start = time.perf_counter()
            svc = SVC(kernel="precomputed", C=points[i].get("C", 1.0), cache_size=CACHE_MB).fit(k_train, y_train)
            err = 1.0 - float(np.mean(svc.predict(k_valid) == y_valid))  # as GridSearchCV's 1 - accuracy
            log.info(
                "SVM %s %s: valid error %.2f%% (%.1f s)", kernel, points[i], 100 * err, time.perf_counter() - start
            )
            return err

        found = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(error)(i) for i in members)
        errors.update(zip(members, found, strict=True))
    return [{**p, "valid_error": errors[i]} for i, p in enumerate(points)]
