"""SVM baselines on raw pixels (or any features): grid on validation, refit on train+valid, test once.

SVM model selection follows Larochelle et al. 2007: every grid point is trained on the training
set and scored on the validation set; the best point is refit on train+validation and scored once on
the test set. libsvm runs on kernel matrices computed as float64 matmuls (`pipeline.evaluation.kernels`:
the same solutions as `SVC(kernel=...)`, its kernel values computed many times faster); grid points
that share a kernel matrix are fit in parallel joblib threads (libsvm releases the GIL).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.model_selection import ParameterGrid

from pipeline.evaluation.kernels import PrecomputedSVC, grid_errors
from pipeline.evaluation.rates import Array, as_numpy, error_ci95, error_rate


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """All combinations of a parameter grid, in scikit-learn's ParameterGrid order (keys sorted, last fastest)."""
    return list(ParameterGrid(grid))


def select_svm(
    kernel: str,
    grid: dict[str, list],
    x_train: Array,
    y_train: Array,
    x_valid: Array,
    y_valid: Array,
    n_jobs: int = 2,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit one SVC per grid point on train, score on valid; return (best params, [{**params, valid_error}]).

    The table is in scikit-learn's ParameterGrid order; ties go to the earliest grid point.
    """
    yt, yv = as_numpy(y_train), as_numpy(y_valid)
    table = grid_errors(
        kernel, grid, as_numpy(x_train, np.float64), yt, as_numpy(x_valid, np.float64), yv, n_jobs=n_jobs
    )
    best = min(range(len(table)), key=lambda i: table[i]["valid_error"])
    return {k: v for k, v in table[best].items() if k != "valid_error"}, table


def fit_svm_and_test(
    kernel: str,
    params: dict[str, Any],
    x_trainvalid: Array,
    y_trainvalid: Array,
    x_test: Array,
    y_test: Array,
) -> tuple[float, list[int]]:
    """Refit the selected SVC on train+valid; return its test error and the indices of the test examples it gets wrong."""
    model = PrecomputedSVC(kernel, **params).fit(as_numpy(x_trainvalid, np.float64), as_numpy(y_trainvalid))
    y_pred = model.predict(as_numpy(x_test, np.float64))
    y_true = as_numpy(y_test)
    return error_rate(y_pred, y_true), np.flatnonzero(y_pred != y_true).tolist()


def svm_benchmark(
    kernel: str,
    grid: dict[str, list],
    x_train: Array,
    y_train: Array,
    x_valid: Array,
    y_valid: Array,
    x_test: Array,
    y_test: Array,
    n_jobs: int = 2,
) -> dict[str, Any]:
    """Model selection on valid, refit on train+valid, test once. Returns a JSON-ready dict."""
    t0 = time.perf_counter()
    best, table = select_svm(kernel, grid, x_train, y_train, x_valid, y_valid, n_jobs=n_jobs)
    x_tv = np.concatenate([as_numpy(x_train, np.float64), as_numpy(x_valid, np.float64)])
    y_tv = np.concatenate([as_numpy(y_train), as_numpy(y_valid)])
    test_error, wrong = fit_svm_and_test(kernel, best, x_tv, y_tv, x_test, y_test)
    n_test = len(y_test)
    return {
        "kernel": kernel,
        "selected": best,
        "valid_grid": table,
        "valid_error": min(row["valid_error"] for row in table),
        "test_error": test_error,
        "ci95": error_ci95(test_error, n_test),
        "n_test": n_test,
        "test_wrong": wrong,
        "fit_seconds": time.perf_counter() - t0,
    }


def feature_svm(
    f_train: Array,
    y_train: Array,
    f_valid: Array,
    y_valid: Array,
    f_test: Array,
    y_test: Array,
    Cs: list[float] | tuple[float, ...] = (1.0, 10.0, 100.0),
    n_jobs: int = 2,
) -> dict[str, Any]:
    """RBF SVC (gamma='scale') on frozen features; C chosen on valid, refit on train+valid.

    Same return shape as `pipeline.evaluation.probes.linear_probe`.
    """
    out = svm_benchmark(
        "rbf", {"C": list(Cs), "gamma": ["scale"]}, f_train, y_train, f_valid, y_valid, f_test, y_test, n_jobs
    )
    return {
        "C": out["selected"]["C"],
        "valid_error": out["valid_error"],
        "test_error": out["test_error"],
        "ci95": out["ci95"],
        "n_test": out["n_test"],
        "valid_grid": [{"C": row["C"], "valid_error": row["valid_error"]} for row in out["valid_grid"]],
    }
