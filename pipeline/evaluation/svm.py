"""SVM baselines on raw pixels (or any features): grid on validation, refit on train+valid, test once.

SVM model selection follows Larochelle et al. 2007: every grid point is trained on the training
set and scored on the validation set (scikit-learn's GridSearchCV with a PredefinedSplit); the best
point is refit on train+validation and scored once on the test set. libsvm uses a single core but
releases the GIL in fit and predict, so grid points and test-set prediction batches run in parallel
joblib threads: no pickled models or data copies.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from joblib import Parallel, delayed, parallel_config
from sklearn.model_selection import GridSearchCV, ParameterGrid, PredefinedSplit
from sklearn.svm import SVC

from pipeline.evaluation.rates import Array, as_numpy, error_ci95, error_rate


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """All combinations of a parameter grid, in scikit-learn's ParameterGrid order (keys sorted, last fastest)."""
    return list(ParameterGrid(grid))


def make_svc(kernel: str, params: dict[str, Any], cache_size: float = 2000.0) -> SVC:
    return SVC(kernel=kernel, cache_size=cache_size, **params)


def predict_batched(model: Any, x: np.ndarray, batch_size: int = 10_000, n_jobs: int = 1) -> np.ndarray:
    """model.predict over row batches, in parallel threads when n_jobs > 1 (libsvm releases the GIL)."""
    batches = [x[i : i + batch_size] for i in range(0, len(x), batch_size)]
    if n_jobs == 1 or len(batches) == 1:
        return np.concatenate([model.predict(b) for b in batches])
    return np.concatenate(Parallel(n_jobs=n_jobs, prefer="threads")(delayed(model.predict)(b) for b in batches))


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

    scikit-learn's GridSearchCV over a PredefinedSplit (train rows -1, valid rows fold 0), in threads
    (libsvm releases the GIL, so the data is shared, not copied); verbose, so each fit is logged as it
    ends. Ties go to the earliest grid point, so the result does not depend on scheduling.
    """
    xt, xv = as_numpy(x_train, np.float64), as_numpy(x_valid, np.float64)
    yt, yv = as_numpy(y_train), as_numpy(y_valid)
    fold = PredefinedSplit(np.concatenate([np.full(len(xt), -1), np.zeros(len(xv), dtype=int)]))
    search = GridSearchCV(
        make_svc(kernel, {}), grid, scoring="accuracy", cv=fold, refit=False, n_jobs=n_jobs, verbose=2
    )
    with parallel_config(backend="threading"):
        search.fit(np.concatenate([xt, xv]), np.concatenate([yt, yv]))
    points = search.cv_results_["params"]
    errors = [float(e) for e in 1.0 - search.cv_results_["mean_test_score"]]
    table = [{**p, "valid_error": e} for p, e in zip(points, errors, strict=True)]
    best = min(range(len(points)), key=lambda i: errors[i])
    return points[best], table


def fit_svm_and_test(
    kernel: str,
    params: dict[str, Any],
    x_trainvalid: Array,
    y_trainvalid: Array,
    x_test: Array,
    y_test: Array,
    n_jobs: int = 2,
    batch_size: int = 5_000,
) -> tuple[float, list[int]]:
    """Refit the selected SVC on train+valid; return its test error and the indices of the test examples it gets wrong."""
    model = make_svc(kernel, params).fit(as_numpy(x_trainvalid, np.float64), as_numpy(y_trainvalid))
    y_pred = predict_batched(model, as_numpy(x_test, np.float64), batch_size=batch_size, n_jobs=n_jobs)
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
    test_error, wrong = fit_svm_and_test(kernel, best, x_tv, y_tv, x_test, y_test, n_jobs=n_jobs)
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
