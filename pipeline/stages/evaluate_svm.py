"""Stage `evaluate_svm@<kernel>`: the SVM_rbf / SVM_poly columns of the table, on raw pixels.

    python -m pipeline.stages.evaluate_svm --kernel rbf [--params params.yaml]

As Larochelle et al. 2007: each grid point is fit on train and scored on valid; the best is refit on
train + valid and scored once on test.
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, run_stage

TABLE_NAME = {"rbf": "SVM_rbf", "poly": "SVM_poly"}


def metrics_path(kernel: str) -> str:
    return f"metrics/evaluate/svm_{kernel}.json"


def main(params, args: argparse.Namespace) -> None:
    import torch

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.evaluation.svm import svm_benchmark
    from pipeline.utils import write_json

    v = params.vincent
    grid = getattr(v.svm, args.kernel).model_dump()
    tracking_params = {"dataset": v.dataset, "kernel": args.kernel, "grid": grid}
    with tracking.stage_run("evaluate_svm", params.tracking.experiment, tracking_params, run_name=TABLE_NAME[args.kernel]):
        s = load_splits(paths.prepared(v.dataset))
        train, valid, test = s["train"], s["valid"], s["test"]
        log.info("SVM %s: grid %s on %d train / %d valid", args.kernel, grid, len(train), len(valid))
        result = svm_benchmark(
            args.kernel, grid, train.x, train.y, valid.x, valid.y, test.x, test.y, n_jobs=torch.get_num_threads()
        )
        record = {
            "dataset": v.dataset,
            "model": TABLE_NAME[args.kernel],
            "test_error": result["test_error"],
            "ci95": result["ci95"],
            "n_test": result["n_test"],
            "valid_error": result["valid_error"],
            "selected": result["selected"],
            "valid_grid": result["valid_grid"],
            "seconds": round(result["fit_seconds"], 1),
        }
        log.info("SVM %s: selected %s, valid %.2f%%, test %.2f%%", args.kernel, result["selected"],
                 100 * record["valid_error"], 100 * record["test_error"])  # fmt: skip
        write_json(metrics_path(args.kernel), record)
        tracking.log_metrics({k: record[k] for k in ("test_error", "valid_error", "ci95", "seconds")})
        tracking.log_artifacts([metrics_path(args.kernel)], "metrics")


if __name__ == "__main__":
    run_stage("evaluate_svm", __doc__, main, lambda p: p.add_argument("--kernel", choices=sorted(TABLE_NAME), required=True))
