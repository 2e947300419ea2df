"""The rbf SVM of the table's SVM_rbf cell: libsvm's own kernel against precomputed kernel matrices.

    python benchmarks/svm.py [--n 10000] [--test 10000] [--C 1.0] [--gamma-scale 2.0] [--threads T]

On the first n MNIST training digits (the size of a row's training split), the same rbf SVM is fit and
then predicts the next --test digits twice, in the same run:
- scikit-learn's `SVC(kernel="rbf")` as `evaluate_svm@` ran it before the kernels were precomputed
  (libsvm computes every kernel value itself, one core, cache_size 2000 MB), predicting in 5,000-row
  blocks on --threads joblib threads;
- `pipeline.evaluation.kernels.PrecomputedSVC`: the kernel matrix as float64 torch matmuls on --threads
  threads, libsvm only looking values up; predictions from the kernel against the support vectors only.
Then the rbf grid of `evaluate_svm@` (C in {1, 10, 100} x gamma in {1, 2, 4} x 'scale') on --valid more digits,
as scikit-learn's GridSearchCV over a PredefinedSplit in threads (how the stage ran it before) against
`grid_errors` (the kernel matrices shared by the points that differ in C only, the distances by every gamma).
Defaults: the basic row's selection (C 1, gamma 2 x scikit-learn's 'scale'). Printed: both times, the
speed-up, the support vectors of each (they should be the same), how many test predictions differ
(should be 0), the largest gap between the decision values, and the float64 rate of the kernel matmul
against the float64 matmul peak measured in the same run. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.svm import SVC

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import default_raw_dir, load_average, load_mnist  # noqa: E402
from pipeline.evaluation.kernels import PrecomputedSVC, grid_errors, resolve_gamma, squared_distances  # noqa: E402


def float64_peak(n: int = 2048, repeats: int = 3) -> float:
    """Best FLOP/s of a square float64 torch.mm of size n."""
    a, b = torch.randn(n, n, dtype=torch.float64), torch.randn(n, n, dtype=torch.float64)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def libsvm_predict(model: SVC, x: np.ndarray, threads: int, rows: int = 5_000) -> np.ndarray:
    """model.predict over blocks of rows in joblib threads (libsvm releases the GIL)."""
    blocks = [x[i : i + rows] for i in range(0, len(x), rows)]
    return np.concatenate(Parallel(n_jobs=threads, prefer="threads")(delayed(model.predict)(b) for b in blocks))


def libsvm_grid(grid: dict, xt, yt, xv, yv, threads: int) -> list[float]:
    """Validation errors of the grid as `evaluate_svm@` computed them before: GridSearchCV, PredefinedSplit, threads."""
    from joblib import parallel_config
    from sklearn.model_selection import GridSearchCV, PredefinedSplit

    fold = PredefinedSplit(np.concatenate([np.full(len(xt), -1), np.zeros(len(xv), dtype=int)]))
    search = GridSearchCV(SVC(kernel="rbf", cache_size=2000.0), grid, cv=fold, refit=False, n_jobs=threads)
    with parallel_config(backend="threading"):
        search.fit(np.concatenate([xt, xv]), np.concatenate([yt, yv]))
    return [float(e) for e in 1.0 - search.cv_results_["mean_test_score"]]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="training digits")
    parser.add_argument("--test", type=int, default=10_000, help="test digits (the next ones in MNIST's file)")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--gamma-scale", type=float, default=2.0, help="gamma in multiples of 1 / (d x variance)")
    parser.add_argument("--valid", type=int, default=2_000, help="validation digits for the grid (0: no grid)")
    parser.add_argument("--threads", type=int, default=None, help="torch and joblib threads (default: torch's)")
    parser.add_argument("--raw-dir", default=default_raw_dir(), help="MNIST raw folder (env MNIST_RAW_DIR)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    x, y = load_mnist(args.n + args.test + args.valid, args.raw_dir, labels=True)
    x, y = x.numpy().astype(np.float64), y.numpy()
    xt, yt, xs = x[: args.n], y[: args.n], x[args.n : args.n + args.test]
    xv, yv = x[args.n + args.test :], y[args.n + args.test :]
    scale = resolve_gamma("scale", xt)  # scikit-learn's gamma='scale' of the training digits
    gamma = args.gamma_scale * scale
    print(f"threads={threads} n={args.n} test={args.test} C={args.C} gamma={gamma:.5f} load={load_average():.2f}")

    peak = float64_peak()
    _, gram_seconds = timed(lambda: squared_distances(xt, xt))
    gram_rate = 2 * args.n * args.n * xt.shape[1] / gram_seconds
    print(
        f"float64 matmul peak {peak / 1e9:.1f} GFLOP/s; n x n distances {gram_seconds:.2f} s = "
        f"{gram_rate / peak:.2f} of it"
    )

    ref, ref_fit = timed(lambda: SVC(kernel="rbf", C=args.C, gamma=gamma, cache_size=2000.0).fit(xt, yt))
    ref_pred, ref_predict = timed(lambda: libsvm_predict(ref, xs, threads))
    new, new_fit = timed(lambda: PrecomputedSVC("rbf", C=args.C, gamma=gamma).fit(xt, yt))
    new_pred, new_predict = timed(lambda: new.predict(xs))
    gap = float(np.abs(ref.decision_function(xs[:2000]) - new.decision_function(xs[:2000])).max())
    result = {
        "threads": threads,
        "n": args.n,
        "test": args.test,
        "sklearn_fit_s": round(ref_fit, 2),
        "sklearn_predict_s": round(ref_predict, 2),
        "precomputed_fit_s": round(new_fit, 2),
        "precomputed_predict_s": round(new_predict, 2),
        "fit_speedup": round(ref_fit / new_fit, 1),
        "predict_speedup": round(ref_predict / new_predict, 1),
        "speedup": round((ref_fit + ref_predict) / (new_fit + new_predict), 1),
        "support_vectors": [len(ref.support_), len(new.svc_.support_)],
        "same_support": bool(np.array_equal(ref.support_, new.svc_.support_)),
        "predictions_differing": int((ref_pred != new_pred).sum()),
        "max_decision_gap": gap,
        "distances_fraction_of_float64_peak": round(gram_rate / peak, 2),
    }
    print(f"scikit-learn SVC(rbf): fit {ref_fit:.1f} s, predict {ref_predict:.1f} s")
    print(f"PrecomputedSVC:        fit {new_fit:.1f} s, predict {new_predict:.1f} s")
    print(
        f"speed-up: fit {result['fit_speedup']}x, predict {result['predict_speedup']}x, "
        f"both {result['speedup']}x; support vectors {result['support_vectors']} "
        f"(same: {result['same_support']}); test predictions differing: {result['predictions_differing']}; "
        f"largest decision-value gap {gap:.1e}"
    )
    if args.valid:
        grid = {"C": [1.0, 10.0, 100.0], "gamma": [f * scale for f in (1.0, 2.0, 4.0)]}
        ref_errors, ref_grid = timed(lambda: libsvm_grid(grid, xt, yt, xv, yv, threads))
        new_table, new_grid = timed(lambda: grid_errors("rbf", grid, xt, yt, xv, yv, n_jobs=threads))
        same = ref_errors == [r["valid_error"] for r in new_table]
        result |= {
            "grid_points": 9,
            "sklearn_grid_s": round(ref_grid, 1),
            "precomputed_grid_s": round(new_grid, 1),
            "grid_speedup": round(ref_grid / new_grid, 1),
            "grid_same_errors": same,
        }
        print(
            f"the 3 x 3 rbf grid of evaluate_svm@ on {args.valid} validation digits: GridSearchCV {ref_grid:.1f} s, "
            f"grid_errors {new_grid:.1f} s, {ref_grid / new_grid:.1f}x; the same validation errors: {same}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
