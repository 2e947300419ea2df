"""What the reports say of a row's dataset: the paper's one-line description, and where its data come from
(MNIST, the published file, or a generated or calibrated substitute, which every report must say)."""

from __future__ import annotations

from pipeline.params import Params

DESCRIPTIONS = {  # the paper's one-line description of each dataset (Larochelle et al. 2007)
    "basic": "A subset of MNIST digits: 10,000 training, 2,000 validation, 50,000 test",
    "rot": "MNIST digits rotated by an angle drawn uniformly in [0, 2π]",
    "bg-rand": "MNIST digits on a background of uniform random noise",
    "bg-img": "MNIST digits on a background patch of a natural image",
    "rot-bg-img": "Rotated MNIST digits on a natural-image background",
    "rect": "White rectangle outlines: tall or wide?",
    "rect-img": "A rectangle of one image patch on a background patch of another: tall or wide?",
    "convex": "A white region: convex or not?",
}


def is_generated(params: Params, name: str) -> bool:
    """A row whose data were generated from the recipe here: a substitute for Larochelle et al.'s file."""
    b = params.benchmarks.datasets.get(name)
    return b is not None and b.source == "generated"


def calibration_of(params: Params, name: str) -> str | None:
    """The calibration report of a generated row whose recipe unknowns were tuned on SVM_rbf validation error."""
    b = params.benchmarks.datasets.get(name)
    return b.calibration if b is not None and b.source == "generated" else None


def dataset_origin(params: Params, name: str) -> str:
    """Where a row's dataset comes from, as the report must say it (generated rows are substitutes)."""
    if name == "basic":
        return "a seeded draw from the 70,000 MNIST images standing in for Larochelle et al.'s unpublished selection"
    if name == "full":
        return "the standard MNIST split, not one of the paper's datasets"
    if params.benchmarks.datasets[name].source == "published":
        return "the published file of Larochelle et al. 2007"
    origin = (
        "GENERATED from the published recipe by pipeline/data/benchmarks: a substitute for Larochelle et al.'s "
        f"file (recipe and seeds in data/prepared/{name}/manifest.json)"
    )
    if calibrated := calibration_of(params, name):
        origin += (
            f"; a CALIBRATED substitute: the recipe's unknowns were tuned on SVM_rbf validation error alone, so "
            f"that the row is as hard as the paper's (every variant tried: {calibrated})"
        )
    return origin
