"""The `benchmarks` section of params.yaml: the seven other datasets of Larochelle et al. 2007 (Vincent 2008's rows)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from pipeline.params.base import PositiveInt, Section

BenchmarkName = Literal["rot", "bg-rand", "bg-img", "rot-bg-img", "rect", "rect-img", "convex"]


class SplitSizes(Section):
    train: PositiveInt
    valid: PositiveInt
    test: PositiveInt


class BenchmarkSpec(Section):
    """How one dataset is made: generated from its recipe (offline) or read from the published LISA zip."""

    source: Literal["generated", "published"] = "generated"
    sizes: SplitSizes | None = None
    """generated only; none: the published sizes (10000/2000/50000; rect 1000/200/50000; convex 6000/2000/50000)"""
    recipe: dict[str, bool | int | float | str] = {}
    """generated only: values for the recipe's named unknowns (pipeline/data/benchmarks), e.g. {combine: overwrite}"""
    calibration: str | None = None
    """generated only: the committed report of the calibration that chose `recipe`'s values on SVM_rbf validation
    error (reports/calibration/<row>.md); the row is then a calibrated substitute in every report"""

    @model_validator(mode="after")
    def _generated_only(self) -> BenchmarkSpec:
        if self.source == "published" and (self.sizes is not None or self.recipe or self.calibration):
            raise ValueError(
                "sizes, recipe and calibration apply to generated datasets only (a published file comes as published)"
            )
        return self


class BenchmarksParams(Section):
    zips: list[str] = []
    """folders searched for the published zips (as <folder>/<zip> or <folder>/larochelle2007/<zip>), then the mirror"""
    download_to: str = "data/raw/larochelle2007"
    """where a published zip found nowhere is downloaded (unless PIPELINE_OFFLINE=1)"""
    examples_per_class: PositiveInt = 10
    datasets: dict[BenchmarkName, BenchmarkSpec] = {}
