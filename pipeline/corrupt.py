"""Stage `corrupt`: fixed corrupted copies of the validation and test sets, one per noise kind and level.

    python -m pipeline.corrupt [--params params.yaml]

Pretraining corrupts every minibatch afresh (pipeline.corruption); these fixed copies are for
denoising metrics and figures, so that every model is scored on the same corrupted digits.
Output: data/corrupted/<dataset>/<kind>-<level>/x_{valid,test}.npy (uint8; Gaussian noise is
rounded to the 1/255 grid of the images).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pipeline import corruption, tracking
from pipeline.cli import log, run_stage
from pipeline.data import load_split
from pipeline.figures import digit_rows
from pipeline.params import Params
from pipeline.utils import atomic_dir, make_generator, save_figure, write_json

IN_DIR = "data/prepared"
OUT_DIR = "data/corrupted"
METRICS = "metrics/corrupt.json"
FIGURE = "reports/figures/corrupt_examples.png"
CHUNK = 8192  # corrupt in chunks to bound the memory of the random scores


def noise_name(kind: str, level: float) -> str:
    return f"{kind}-{level:g}"


def corrupt_array(x: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> np.ndarray:
    """Corrupt (n, 784) floats in [0, 1]; return uint8."""
    out = torch.cat([corruption.corrupt(chunk, kind, level, generator) for chunk in x.split(CHUNK)])
    return out.mul_(255.0).round_().to(torch.uint8).numpy()


def main(params: Params, args: argparse.Namespace) -> None:
    c = params.corrupt
    with tracking.stage_run("corrupt", params.tracking.experiment, {"seed": params.seed, "corrupt": c.model_dump()}):
        start = time.perf_counter()
        metrics: dict = {}
        figure_rows: list[np.ndarray] = []
        figure_labels: list[str] = []
        for dataset in c.datasets:
            splits = {s: load_split(f"{IN_DIR}/{dataset}", s) for s in ("valid", "test")}
            if not figure_rows:
                figure_rows.append(splits["test"].x[: c.figure_examples].numpy())
                figure_labels.append("clean")
            for kind, level in c.noises():
                name = noise_name(kind, level)
                with atomic_dir(f"{OUT_DIR}/{dataset}/{name}") as tmp:
                    for split, clean in splits.items():
                        g = make_generator(params.seed, "corrupt", dataset, kind, level, split)
                        noisy = corrupt_array(clean.x, kind, level, g)
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
                log.info("wrote %s/%s/%s", OUT_DIR, dataset, name)
        if figure_rows:
            title = f"Test digits of '{c.datasets[0]}': clean, then each noise kind and level"
            save_figure(digit_rows(figure_rows, figure_labels, title), FIGURE)
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        write_json(METRICS, metrics)
        tracking.log_metrics({k.replace("/", "."): v for k, v in metrics.items()})
        tracking.log_artifacts([FIGURE, METRICS])


if __name__ == "__main__":
    run_stage("corrupt", main)
