"""Stage `prepare`: MNIST (or Fashion-MNIST) -> data/prepared/{basic,full}/*.npy + a sample figure.

    python -m pipeline.prepare [--params params.yaml]

`basic` is the MNIST-basic substitute: train/valid/test drawn with the params seed from all 70,000
images, since Larochelle et al. 2007 did not publish their 62,000 indices. `full` is the standard
split: the first 50,000 training images, the last 10,000 as validation, the 10,000 test images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pipeline import data, tracking
from pipeline.cli import log, run_stage
from pipeline.figures import digit_rows
from pipeline.params import Params
from pipeline.utils import atomic_dir, save_figure, write_json

OUT_DIR = "data/prepared"
METRICS = "metrics/prepare.json"
FIGURE = "reports/figures/prepare_samples.png"


def samples_figure(x, y, per_class: int, source: str):
    rows = [x[np.flatnonzero(y == c)[:per_class]] for c in range(10)]
    return digit_rows(rows, [str(c) for c in range(10)], f"{source}: {per_class} training digits per class (basic)")


def main(params: Params, args: argparse.Namespace) -> None:
    p, d = params.prepare, params.data
    with tracking.stage_run("prepare", params.tracking.experiment, {"seed": params.seed, "data": d.model_dump(), "prepare": p.model_dump()}):
        start = time.perf_counter()
        x, y = data.load_raw(d.source, d.root, d.mirrors)
        log.info("loaded %s: %d images", d.source, len(x))
        metrics: dict = {"source": d.source}
        for name, sizes in (("basic", p.basic), ("full", p.full)):
            indices = data.split_indices(name, sizes, params.seed)
            with atomic_dir(f"{OUT_DIR}/{name}") as tmp:
                data.save_dataset(tmp, x, y, indices)
            metrics[name] = {
                split: {
                    "n": int(len(idx)),
                    "class_counts": np.bincount(y[idx], minlength=10).tolist(),
                    "pixel_mean": round(float(x[idx].mean() / 255.0), 6),
                }
                for split, idx in indices.items()
            }
            log.info("wrote %s/%s: %s", OUT_DIR, name, {s: len(i) for s, i in indices.items()})
        train = data.split_indices("basic", p.basic, params.seed)["train"]
        save_figure(samples_figure(x[train], y[train], p.samples_per_class, d.source), FIGURE)
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        write_json(METRICS, metrics)
        tracking.log_metrics({k: v for k, v in metrics.items() if k != "source"})
        tracking.log_artifacts([FIGURE, METRICS])


if __name__ == "__main__":
    run_stage("prepare", main)
