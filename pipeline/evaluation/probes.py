"""Linear probes of frozen features: how good a learned representation is by itself, before fine-tuning.

A logistic regression on standardized features, C chosen on the validation split and refit on
train+valid, scored once on test (the rbf SVM probe is `pipeline.evaluation.svm.feature_svm`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.evaluation.rates import Array, as_numpy, error_ci95, error_rate


def _logreg(C: float) -> Any:
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def _logreg_score(C: float, f_train, y_train, f_valid, y_valid) -> float:
    return error_rate(_logreg(C).fit(f_train, y_train).predict(f_valid), y_valid)


def linear_probe(
    f_train: Array,
    y_train: Array,
    f_valid: Array,
    y_valid: Array,
    f_test: Array,
    y_test: Array,
    Cs: list[float] | tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
    n_jobs: int = 2,
) -> dict[str, Any]:
    """Logistic regression on standardized frozen features; C chosen on valid, refit on train+valid.

    Returns {"C", "valid_error", "test_error", "ci95", "n_test", "valid_grid"}.
    """
    ft, fv, fs = (as_numpy(f, np.float64) for f in (f_train, f_valid, f_test))
    yt, yv, ys = (as_numpy(y) for y in (y_train, y_valid, y_test))
    Cs = list(Cs)
    errors = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(_logreg_score)(C, ft, yt, fv, yv) for C in Cs)
    best = min(range(len(Cs)), key=lambda i: errors[i])
    model = _logreg(Cs[best]).fit(np.concatenate([ft, fv]), np.concatenate([yt, yv]))
    test_error = error_rate(model.predict(fs), ys)
    return {
        "C": Cs[best],
        "valid_error": errors[best],
        "test_error": test_error,
        "ci95": error_ci95(test_error, len(ys)),
        "n_test": len(ys),
        "valid_grid": [{"C": C, "valid_error": e} for C, e in zip(Cs, errors, strict=True)],
    }
