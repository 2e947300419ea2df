"""Stage `evaluate_svm@<dataset>-<kernel>`: the SVM_rbf / SVM_poly cells of one row of the table, on raw pixels.

    python -m pipeline.stages.evaluate_svm --dataset basic --kernel rbf [--params params.yaml]

As Larochelle et al. 2007: each grid point is fit on train and scored on valid; the best is refit on
train + valid and scored once on test. The rbf grid's gamma is given in multiples of scikit-learn's 'scale'
(1 / (pixels x variance of the row's training pixels)), so one grid serves every row.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import check_choice, dataset_arg, log, run_stage

TABLE_NAME = {"rbf": "SVM_rbf", "poly": "SVM_poly"}


def main(params, args: argparse.Namespace) -> None:
    import time

    import torch

    from pipeline.common.io import write_json
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.evaluation.svm import svm_benchmark

    v, dataset = params.vincent, args.dataset
    check_choice("--dataset", dataset, "vincent.datasets", v.datasets)
    grid = getattr(v.svm, args.kernel).model_dump()
    tracking_params = {"dataset": dataset, "kernel": args.kernel, "grid": grid}
    with tracking.stage_run(
        "evaluate_svm", params.tracking.experiment, tracking_params, run_name=f"{TABLE_NAME[args.kernel]} {dataset}"
    ):
        start = time.perf_counter()
        s = load_splits(paths.prepared(dataset))
        train, valid, test = s["train"], s["valid"], s["test"]
        tracking.log_splits(s, dataset)
        if "gamma_scale" in grid:  # scikit-learn's gamma='scale' of this row's training pixels, times each factor
            scale = 1.0 / (train.x.shape[1] * float(train.x.double().var()))
            grid = {"C": grid["C"], "gamma": [float(f"{f * scale:.4g}") for f in grid.pop("gamma_scale")]}
        log.info("SVM %s: grid %s on %d train / %d valid", args.kernel, grid, len(train), len(valid))
        result = svm_benchmark(
            args.kernel, grid, train.x, train.y, valid.x, valid.y, test.x, test.y, n_jobs=torch.get_num_threads()
        )
        record = {
            "dataset": dataset,
            "model": TABLE_NAME[args.kernel],
            "test_error": result["test_error"],
            "ci95": result["ci95"],
            "n_test": result["n_test"],
            "valid_error": result["valid_error"],
            "selected": result["selected"],
            "valid_grid": result["valid_grid"],
            "test_wrong": result["test_wrong"],
        }
        log.info(
            "SVM %s: selected %s, valid %.2f%%, test %.2f%%",
            args.kernel,
            result["selected"],
            100 * record["valid_error"],
            100 * record["test_error"],
        )
        out = paths.results("evaluate", f"{dataset}/svm_{args.kernel}")
        write_json(out, record)
        tracking.log_metrics({k: record[k] for k in ("test_error", "valid_error", "ci95")})
        tracking.log_artifacts([out], "results")
        tracking.log_timing(f"evaluate_svm@{dataset}-{args.kernel}", time.perf_counter() - start)


if __name__ == "__main__":

    def arguments(parser: argparse.ArgumentParser) -> None:
        dataset_arg(parser)
        parser.add_argument("--kernel", choices=sorted(TABLE_NAME), required=True)

    run_stage("evaluate_svm", __doc__, main, arguments)
