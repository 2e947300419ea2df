"""Stage `benchmark@<dataset>`: one of the seven other datasets of Larochelle et al. 2007 -> data/prepared/<dataset>.

    python -m pipeline.stages.benchmark --dataset rot [--params params.yaml]

`generated` (the default) builds the dataset from its published recipe, from MNIST digits (rot, bg-rand,
bg-img, rot-bg-img) or from scratch (rect, rect-img, convex), every unknown of the recipe a named
parameter (pipeline/data/benchmarks), seeded by the params seed, offline: a faithful substitute that
every report marks as generated. `published` reads the LISA zip from benchmarks.zips or the data mirror,
else downloads it, and verifies its SHA1. Either way data/prepared/<dataset>/ holds x_/y_/idx_<split>.npy
and manifest.json (recipe, seed, SHA-256 of every source image and array: nothing else, so that the folder's
DVC hash depends on the data alone), results/benchmark/<dataset>.json the sizes, class counts and provenance
(package versions), and reports/figures/datasets/<dataset>.png shows ten training examples per class.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.core.cli import StageError, check_choice, log, run_stage

DESCRIPTIONS = {  # one line per dataset, after Larochelle et al. 2007
    "rot": "MNIST digits rotated by an angle drawn uniformly in [0, 2 pi)",
    "bg-rand": "MNIST digits on a background of uniformly random pixels",
    "bg-img": "MNIST digits on patches of black-and-white natural images",
    "rot-bg-img": "rotated MNIST digits on patches of natural images",
    "rect": "white rectangle outlines: taller than wide (1) or wider than tall (0)?",
    "rect-img": "a rectangle of one image patch on another: taller than wide (1) or not (0)?",
    "convex": "is the white region convex (1) or not (0)?",
}


def dataset_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="a key of benchmarks.datasets in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import time

    import numpy as np

    from pipeline.common.figures import save_figure
    from pipeline.common.io import write_json
    from pipeline.core import paths, tracking
    from pipeline.data import benchmarks, mnist
    from pipeline.data.benchmarks.common import Sizes
    from pipeline.data.benchmarks.manifest import provenance
    from pipeline.data.benchmarks.published import find_zip
    from pipeline.reporting.digits import samples_figure

    b, name = params.benchmarks, args.dataset
    check_choice("--dataset", name, "benchmarks.datasets", b.datasets)
    spec = b.datasets[name]
    if spec.calibration is not None and not Path(spec.calibration).is_file():
        raise StageError(
            f"benchmarks.datasets.{name}.calibration: {spec.calibration} not found; expected the "
            "committed report of the calibration that chose the recipe's values"
        )
    try:  # a recipe that cannot be met is refused before the run opens and anything is drawn
        recipe = benchmarks.make_recipe(name, **spec.recipe) if spec.source == "generated" else None
    except (TypeError, ValueError) as exc:
        raise StageError(f"benchmarks.datasets.{name}: {exc}") from None
    logged = {"dataset": name, "seed": params.seed, "spec": spec.model_dump()}
    with tracking.stage_run("benchmark", params.tracking.experiment, logged, run_name=f"benchmark {name}"):
        start = time.perf_counter()
        folder = paths.prepared(name)
        if spec.source == "published":
            benchmarks.write_published(folder, name, find_zip(name, b.zips, download_to=b.download_to))
        else:
            digits = (
                mnist.load_raw("mnist", params.data.root, params.data.mirrors)
                if benchmarks.REGISTRY[name][2]
                else (None, None)
            )
            sizes = Sizes(**spec.sizes.model_dump()) if spec.sizes else None
            try:
                benchmarks.write_benchmark(folder, name, sizes, params.seed, *digits, **spec.recipe)
            except (TypeError, ValueError) as exc:
                raise StageError(f"benchmarks.datasets.{name}: {exc}") from None
        x, y = np.load(folder / "x_train.npy"), np.load(folder / "y_train.npy")
        title = f"{name} ({spec.source}): {DESCRIPTIONS[name]}"
        # pixel values as they are (white = 1), as the recipes describe the images
        save_figure(samples_figure(x, y, b.examples_per_class, title, cmap="gray"), paths.dataset_figure(name))
        summary = {
            "source": spec.source,
            "description": DESCRIPTIONS[name],
            "provenance": provenance(name, recipe, spec.source),
            **{
                split: {
                    "n": int(len(labels)),
                    "class_counts": np.bincount(labels).tolist(),
                    "pixel_mean": round(float(np.load(folder / f"x_{split}.npy").mean() / 255), 6),
                }
                for split in ("train", "valid", "test")
                for labels in [np.load(folder / f"y_{split}.npy")]
            },
        }
        write_json(paths.results("benchmark", name), summary)
        tracking.log_metrics(
            {s: {"n": summary[s]["n"], "pixel_mean": summary[s]["pixel_mean"]} for s in ("train", "valid", "test")}
        )
        tracking.log_artifacts([paths.dataset_figure(name), folder / "manifest.json"])
        tracking.log_timing("benchmark", time.perf_counter() - start)
        log.info("wrote %s (%s): %s", folder, spec.source, {s: summary[s]["n"] for s in ("train", "valid", "test")})


if __name__ == "__main__":
    run_stage("benchmark", __doc__, main, dataset_arg)
