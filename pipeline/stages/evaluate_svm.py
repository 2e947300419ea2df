"""Stage `evaluate_svm@<kernel>`: the SVM_rbf / SVM_poly columns of the table, on raw pixels.

    python -m pipeline.stages.evaluate_svm --kernel rbf [--params params.yaml]

As Larochelle et al. 2007: each grid point is fit on train and scored on valid; the best is refit on
train + valid and scored once on test.
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, run_stage

TABLE_NAME = {"rbf": "SVM_rbf", "poly": "SVM_poly"}


def main(params, args: argparse.Namespace) -> None:
    import time

    import torch

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.evaluation.svm import svm_benchmark
    from pipeline.utils import write_json

    v = params.vincent
    grid = getattr(v.svm, args.kernel).model_dump()
    tracking_params = {"dataset": v.dataset, "kernel": args.kernel, "grid": grid}
    with tracking.stage_run(
        "evaluate_svm", params.tracking.experiment, tracking_params, run_name=TABLE_NAME[args.kernel]
    ):
        start = time.perf_counter()
        s = load_splits(paths.prepared(v.dataset))
        train, valid, test = s["train"], s["valid"], s["test"]
        tracking.log_splits(s, v.dataset)
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
            "test_wrong": result["test_wrong"],
        }
        log.info("SVM %s: selected %s, valid %.2f%%, test %.2f%%", args.kernel, result["selected"],
                 100 * record["valid_error"], 100 * record["test_error"])  # fmt: skip
        out = paths.results("evaluate", f"svm_{args.kernel}")
        write_json(out, record)
        tracking.log_metrics({k: record[k] for k in ("test_error", "valid_error", "ci95")})
        tracking.log_artifacts([out], "results")
        tracking.log_timing("evaluate_svm", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage(
        "evaluate_svm", __doc__, main, lambda p: p.add_argument("--kernel", choices=sorted(TABLE_NAME), required=True)
    )
