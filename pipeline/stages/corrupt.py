"""Stage `corrupt`: fixed corrupted copies of the validation and test sets, one per noise kind and level.

    python -m pipeline.stages.corrupt [--params params.yaml]

Pretraining corrupts every minibatch afresh (pipeline.data.corruption); these fixed copies are for
denoising metrics and figures, so that every model is scored on the same corrupted digits.
Output: data/corrupted/<dataset>/<kind>-<level>/x_{valid,test}.npy (uint8; Gaussian noise is
rounded to the 1/255 grid of the images).
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, run_stage

RESULTS = "results/corrupt.json"
FIGURE = "reports/figures/corrupt_examples.png"


def main(params, args: argparse.Namespace) -> None:
    import time

    import numpy as np

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_split
    from pipeline.data.corruption import corrupt_uint8, noise_name
    from pipeline.reporting.digits import digit_rows
    from pipeline.utils import atomic_dir, make_generator, save_figure, write_json

    c = params.corrupt
    with tracking.stage_run("corrupt", params.tracking.experiment, {"seed": params.seed, "corrupt": c.model_dump()}):
        start = time.perf_counter()
        metrics: dict = {}
        figure_rows: list[np.ndarray] = []
        figure_labels: list[str] = []
        for dataset in c.datasets:
            splits = {s: load_split(paths.prepared(dataset), s) for s in ("valid", "test")}
            if not figure_rows:
                figure_rows.append(splits["test"].x[: c.figure_examples].numpy())
                figure_labels.append("clean")
            for kind, level in c.noises():
                name = noise_name(kind, level)
                with atomic_dir(paths.corrupted(dataset, name)) as tmp:
                    for split, clean in splits.items():
                        g = make_generator(params.seed, "corrupt", dataset, kind, level, split)
                        noisy = corrupt_uint8(clean.x, kind, level, g)
                        np.save(tmp / f"x_{split}.npy", noisy)
                        if split == "test":
                            diff = np.abs(noisy / 255.0 - clean.x.numpy())
                            metrics[f"{dataset}/{name}"] = {
                                "changed_fraction": round(float((diff > 0.5 / 255).mean()), 6),
                                "mean_abs_change": round(float(diff.mean()), 6),
                            }
                            if dataset == c.datasets[0]:
                                figure_rows.append(noisy[: c.figure_examples])
                                figure_labels.append(f"{kind} {level:g}")
                log.info("wrote %s", paths.corrupted(dataset, name))
        if figure_rows:
            title = f"Test digits of '{c.datasets[0]}': clean, then each noise kind and level"
            save_figure(digit_rows(figure_rows, figure_labels, title), FIGURE)
        write_json(RESULTS, metrics)
        tracking.log_metrics({k.replace("/", "."): v for k, v in metrics.items()})
        tracking.log_artifacts([FIGURE, RESULTS])
        tracking.log_timing("corrupt", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("corrupt", __doc__, main)
