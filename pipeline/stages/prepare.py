"""Stage `prepare`: MNIST (or Fashion-MNIST) -> data/prepared/{basic,full}/*.npy + a sample figure.

    python -m pipeline.stages.prepare [--params params.yaml]

`basic` is the MNIST-basic substitute: train/valid/test drawn with the params seed from all 70,000
images, since Larochelle et al. 2007 did not publish their 62,000 indices. `full` is the standard
split: the first 50,000 training images, the last 10,000 as validation, the 10,000 test images.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import log, run_stage

RESULTS = "results/prepare.json"
FIGURE = "reports/figures/prepare_samples.png"


def main(params, args: argparse.Namespace) -> None:
    import time

    import numpy as np

    from pipeline.common.figures import save_figure
    from pipeline.common.io import atomic_dir, write_json
    from pipeline.core import paths, tracking
    from pipeline.data import mnist
    from pipeline.data.arrays import save_dataset
    from pipeline.reporting.digits import samples_figure

    p, d = params.prepare, params.data
    with tracking.stage_run(
        "prepare", params.tracking.experiment, {"seed": params.seed, "data": d.model_dump(), "prepare": p.model_dump()}
    ):
        start = time.perf_counter()
        x, y = mnist.load_raw(d.source, d.root, d.mirrors)
        log.info("loaded %s: %d images", d.source, len(x))
        metrics: dict = {"source": d.source}
        for name, sizes in (("basic", p.basic), ("full", p.full)):
            indices = mnist.split_indices(name, sizes, params.seed)
            with atomic_dir(paths.prepared(name)) as tmp:
                save_dataset(tmp, x, y, indices)
            metrics[name] = {
                split: {
                    "n": int(len(idx)),
                    "class_counts": np.bincount(y[idx], minlength=10).tolist(),
                    "pixel_mean": round(float(x[idx].mean() / 255.0), 6),
                }
                for split, idx in indices.items()
            }
            log.info("wrote %s: %s", paths.prepared(name), {s: len(i) for s, i in indices.items()})
        train = mnist.split_indices("basic", p.basic, params.seed)["train"]
        title = f"{d.source}: {p.samples_per_class} training digits per class (basic)"
        save_figure(samples_figure(x[train], y[train], p.samples_per_class, title), FIGURE)
        write_json(RESULTS, metrics)
        tracking.log_metrics({k: v for k, v in metrics.items() if k != "source"})
        tracking.log_artifacts([FIGURE, RESULTS])
        tracking.log_timing("prepare", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("prepare", __doc__, main)
