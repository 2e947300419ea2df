import numpy as np
import pytest
from sklearn.svm import SVC

from pipeline.evaluation import kernels
from pipeline.evaluation.kernels import PrecomputedSVC, grid_errors, kernel_matrix, squared_distances
from pipeline.evaluation.svm import select_svm


def digits_like(n: int, seed: int, dim: int = 30, classes: int = 3):
    """Overlapping classes in [0, 1]^dim (so that some points are support vectors with slack)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centers = np.random.default_rng(0).random((classes, dim))
    return np.clip(centers[y] + 0.35 * rng.normal(size=(n, dim)), 0, 1), y


def test_kernel_matrices_are_sklearns_kernels():
    from sklearn.metrics.pairwise import polynomial_kernel, rbf_kernel

    a, _ = digits_like(40, 1)
    b, _ = digits_like(25, 2)
    np.testing.assert_allclose(squared_distances(a, b), ((a[:, None] - b[None]) ** 2).sum(-1), atol=1e-12)
    np.testing.assert_allclose(kernel_matrix("rbf", a, b, 0.07), rbf_kernel(a, b, gamma=0.07), rtol=1e-12)
    np.testing.assert_allclose(
        kernel_matrix("poly", a, b, 0.05, degree=3, coef0=1.0),
        polynomial_kernel(a, b, degree=3, gamma=0.05, coef0=1.0),
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="'linear'.*rbf"):
        kernel_matrix("linear", a, b, 1.0)


@pytest.mark.parametrize(
    "kernel, params",
    [
        ("rbf", {"C": 1.0, "gamma": "scale"}),
        ("rbf", {"C": 10.0, "gamma": 0.02}),
        ("poly", {"C": 1.0, "degree": 2, "coef0": 1.0}),
        ("poly", {"C": 10.0, "degree": 3, "coef0": 0.0, "gamma": "auto"}),
    ],
)
def test_precomputed_svc_is_libsvms_own_solution(kernel, params, monkeypatch):
    monkeypatch.setattr(kernels, "ROWS", 64)  # several prediction blocks
    x, y = digits_like(300, 3)
    xs, _ = digits_like(200, 4)
    ref = SVC(kernel=kernel, **params).fit(x, y)
    ours = PrecomputedSVC(kernel, **params).fit(x, y)
    assert 20 < len(ref.support_) < len(x)
    np.testing.assert_array_equal(ours.svc_.support_, ref.support_)
    np.testing.assert_array_equal(ours.predict(xs), ref.predict(xs))
    np.testing.assert_allclose(ours.decision_function(xs), ref.decision_function(xs), atol=1e-9)


@pytest.mark.parametrize(
    "kernel, grid",
    [
        ("rbf", {"C": [0.01, 1.0, 10.0], "gamma": [0.01, 0.1]}),
        ("poly", {"C": [0.1, 10.0], "degree": [2, 3], "coef0": [0.0, 1.0]}),
    ],
)
def test_grid_errors_equal_the_grid_search_of_libsvms_kernels(kernel, grid):
    x, y = digits_like(250, 5)
    xv, yv = digits_like(150, 6)
    _, table = select_svm(kernel, grid, x, y, xv, yv, n_jobs=1)
    ours = grid_errors(kernel, grid, x, y, xv, yv, n_jobs=2)
    assert [{k: r[k] for k in grid} for r in ours] == [{k: r[k] for k in grid} for r in table]
    assert [r["valid_error"] for r in ours] == pytest.approx([r["valid_error"] for r in table], abs=1e-12)
    assert len({r["valid_error"] for r in ours}) > 1  # the grid matters: not all points score the same


def test_unknown_kernel_is_named():
    with pytest.raises(ValueError, match="kernel 'sigmoid': expected one of"):
        PrecomputedSVC("sigmoid")
