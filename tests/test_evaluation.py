import math

import numpy as np
import pytest
import torch

from pipeline.evaluation.probes import linear_probe
from pipeline.evaluation.rates import error_ci95
from pipeline.evaluation.svm import feature_svm, fit_svm_and_test, grid_points, select_svm, svm_benchmark


def blobs(n: int, seed: int, minority: float = 0.5, dim: int = 5, gap: float = 6.0):
    """Two Gaussian blobs `gap` apart along the first axis; a fraction `minority` has label 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(np.int64)
    x = rng.normal(size=(n, dim))
    x[:, 0] += gap * y
    return x, y


def test_error_ci95_matches_paper_intervals():
    assert error_ci95(0.028, 50_000) == pytest.approx(1.96 * math.sqrt(0.028 * 0.972 / 50_000))
    assert round(100 * error_ci95(0.0280, 50_000), 2) == 0.14  # SdA-3 on basic: 2.80 ±0.14
    assert round(100 * error_ci95(0.4449, 50_000), 2) == 0.44  # SdA-3 on rot-bg-img: 44.49 ±0.44
    assert error_ci95(0.0, 100) == 0.0
    assert error_ci95(0.1, 400) > error_ci95(0.1, 1600) == pytest.approx(error_ci95(0.1, 400) / 2)


def test_grid_points_is_the_full_product_in_grid_order():
    points = grid_points({"C": [1, 10], "degree": [2, 3, 4]})
    assert len(points) == 6
    assert points[0] == {"C": 1, "degree": 2} and points[-1] == {"C": 10, "degree": 4}


def test_select_svm_rejects_underregularized_c_and_breaks_ties_by_grid_order():
    # With 80/20 classes a tiny C cannot pay for the minority class: it predicts the majority.
    x_tr, y_tr = blobs(200, 0, minority=0.2)
    x_va, y_va = blobs(200, 1, minority=0.2)
    grid = {"C": [1e-4, 10.0, 100.0], "gamma": [0.1]}
    best, table = select_svm("rbf", grid, x_tr, y_tr, x_va, y_va, n_jobs=2)
    errors = {row["C"]: row["valid_error"] for row in table}
    assert errors[1e-4] > 0.1
    assert errors[10.0] == errors[100.0] == 0.0
    assert best == {"C": 10.0, "gamma": 0.1}  # first of the tied best points
    assert [{k: r[k] for k in ("C", "gamma")} for r in table] == grid_points(grid)
    _, serial = select_svm("rbf", grid, x_tr, y_tr, x_va, y_va, n_jobs=1)
    assert serial == table


def test_select_svm_poly_grid_and_torch_inputs():
    x_tr, y_tr = blobs(150, 2)
    x_va, y_va = blobs(100, 3)
    grid = {"C": [1.0], "degree": [2, 3], "coef0": [1.0]}
    best, table = select_svm("poly", grid, torch.tensor(x_tr), torch.tensor(y_tr), x_va, y_va, n_jobs=1)
    assert len(table) == 2 and best["degree"] in (2, 3)
    assert all(0.0 <= row["valid_error"] <= 0.05 for row in table)


def test_fit_svm_and_test_error_is_real():
    x_tv, y_tv = blobs(200, 4)
    x_te, y_te = blobs(300, 5)
    params = {"C": 10.0, "gamma": "scale"}
    assert fit_svm_and_test("rbf", params, x_tv, y_tv, x_te, y_te) == (0.0, [])
    flipped, wrong = fit_svm_and_test("rbf", params, x_tv, y_tv, x_te, 1 - y_te)
    assert flipped == 1.0 and wrong == list(range(len(y_te)))


def test_svm_benchmark_record():
    x_tr, y_tr = blobs(150, 6, minority=0.2)
    x_va, y_va = blobs(100, 7, minority=0.2)
    x_te, y_te = blobs(400, 8, minority=0.2)
    out = svm_benchmark("rbf", {"C": [1e-4, 10.0], "gamma": [0.1]}, x_tr, y_tr, x_va, y_va, x_te, y_te, n_jobs=1)
    assert out["selected"] == {"C": 10.0, "gamma": 0.1}
    assert len(out["valid_grid"]) == 2 and out["valid_error"] == 0.0
    assert out["n_test"] == 400 and out["test_error"] < 0.01
    assert out["ci95"] == pytest.approx(error_ci95(out["test_error"], 400))
    assert out["fit_seconds"] > 0


def test_linear_probe_selects_useful_c_and_refits():
    # Tiny C shrinks the weights to ~0 and the probe falls back to the 70% majority class.
    f_tr, y_tr = blobs(300, 9, minority=0.3, gap=4.0)
    f_va, y_va = blobs(200, 10, minority=0.3, gap=4.0)
    f_te, y_te = blobs(500, 11, minority=0.3, gap=4.0)
    out = linear_probe(f_tr, y_tr, f_va, y_va, torch.tensor(f_te), torch.tensor(y_te), Cs=[1e-5, 1.0], n_jobs=1)
    grid = {row["C"]: row["valid_error"] for row in out["valid_grid"]}
    assert grid[1e-5] > 0.2 and grid[1.0] < 0.05
    assert out["C"] == 1.0 and out["valid_error"] == grid[1.0]
    assert out["test_error"] < 0.05 and out["n_test"] == 500
    assert set(out) == {"C", "valid_error", "test_error", "ci95", "n_test", "valid_grid"}


def test_feature_svm_same_shape_as_linear_probe():
    f_tr, y_tr = blobs(150, 12, minority=0.2)
    f_va, y_va = blobs(100, 13, minority=0.2)
    f_te, y_te = blobs(200, 14, minority=0.2)
    out = feature_svm(f_tr, y_tr, f_va, y_va, f_te, y_te, Cs=[1e-4, 10.0], n_jobs=1)
    assert set(out) == {"C", "valid_error", "test_error", "ci95", "n_test", "valid_grid"}
    assert out["C"] == 10.0 and out["test_error"] < 0.02
    assert [row["C"] for row in out["valid_grid"]] == [1e-4, 10.0]


def test_mcnemar_counts_the_discordant_examples_and_matches_the_exact_binomial():
    from scipy.stats import binomtest

    from pipeline.evaluation.rates import mcnemar

    a, b = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [9, 10, 11]  # 8 wrong only by a, 1 only by b
    result = mcnemar(a, b)
    assert (result["only_a_wrong"], result["only_b_wrong"]) == (8, 1)
    assert result["p_value"] == pytest.approx(binomtest(8, 9, 0.5).pvalue)
    assert result["p_value"] < 0.05
    assert mcnemar(b, a)["p_value"] == pytest.approx(result["p_value"]), "symmetric"
    assert mcnemar([1, 2], [1, 2]) == {"only_a_wrong": 0, "only_b_wrong": 0, "p_value": 1.0}
