"""Stage `corrupt@<dataset>`: fixed corrupted copies of a dataset's validation and test sets, one per noise kind and level.

    python -m pipeline.stages.corrupt --dataset basic [--params params.yaml]

Pretraining corrupts every minibatch afresh (pipeline.data.corruption); these fixed copies are for
denoising metrics and figures, so that every model is scored on the same corrupted digits.
Output: data/corrupted/<dataset>/<kind>-<level>/x_{valid,test}.npy (uint8; Gaussian noise is
rounded to the 1/255 grid of the images), results/corrupt/<dataset>.json and
reports/figures/corrupt/<dataset>.png. One stage per entry of corrupt.datasets.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import check_choice, log, run_stage


def dataset_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="an entry of corrupt.datasets in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import time

    import numpy as np

    from pipeline.common.figures import save_figure
    from pipeline.common.io import atomic_dir, write_json
    from pipeline.common.seeding import make_generator
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_split
    from pipeline.data.corruption import corrupt_uint8, noise_name
    from pipeline.reporting.digits import digit_rows

    c, dataset = params.corrupt, args.dataset
    check_choice("--dataset", dataset, "corrupt.datasets", c.datasets)
    results, figure = paths.results("corrupt", dataset), paths.corrupt_figure(dataset)
    logged = {"seed": params.seed, "dataset": dataset, "corrupt": c.model_dump(exclude={"datasets"})}
    with tracking.stage_run("corrupt", params.tracking.experiment, logged, run_name=f"corrupt {dataset}"):
        start = time.perf_counter()
        metrics: dict = {}
        splits = {s: load_split(paths.prepared(dataset), s) for s in ("valid", "test")}
        figure_rows = [splits["test"].x[: c.figure_examples].numpy()]
        figure_labels = ["clean"]
        for kind, level in c.noises():
            name = noise_name(kind, level)
            with atomic_dir(paths.corrupted(dataset, name)) as tmp:
                for split, clean in splits.items():
                    g = make_generator(params.seed, "corrupt", dataset, kind, level, split)
                    noisy = corrupt_uint8(clean.x, kind, level, g)
                    np.save(tmp / f"x_{split}.npy", noisy)
                    if split == "test":
                        diff = np.abs(noisy / 255.0 - clean.x.numpy())
                        metrics[name] = {
                            "changed_fraction": round(float((diff > 0.5 / 255).mean()), 6),
                            "mean_abs_change": round(float(diff.mean()), 6),
                        }
                        figure_rows.append(noisy[: c.figure_examples])
                        figure_labels.append(f"{kind} {level:g}")
            log.info("wrote %s", paths.corrupted(dataset, name))
        title = f"Test images of '{dataset}': clean, then each noise kind and level"
        save_figure(digit_rows(figure_rows, figure_labels, title), figure)
        write_json(results, metrics)
        tracking.log_metrics(metrics)
        tracking.log_artifacts([figure, results])
        tracking.log_timing("corrupt", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("corrupt", __doc__, main, dataset_arg)
