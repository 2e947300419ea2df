"""The pretraining stacks (vincent.stacks) and the models, the table's columns, built on them (vincent.models)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, PositiveInt, Section


class StackParams(Section):
    """One pretraining stage (pretrain@<stack>): every candidate of its grid, as a tree of shared prefixes."""

    kind: Literal["rbm", "ae"]
    """rbm: Bernoulli RBMs by CD-1 (DBN); ae: tied sigmoid autoencoders (SAA with noise 0, SdA with masking)"""
    layers: PositiveInt
    lr: PositiveGrid
    epochs: IntGrid
    """epochs per layer; the shorter runs' first layers are snapshots of the longest"""
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0]
    """masking levels nu (a fixed count of zeroed pixels per example); kind ae only"""
    top: Literal["softmax", "joint"] = "softmax"
    """softmax: fine-tuned with a softmax layer on top; joint (kind rbm only): the lab's DBN (Larochelle et al. 2007),
    whose last RBM models (the layer below, the label) jointly and classifies by its exact P(y | h)
    (pipeline/training/joint.py); a model on it must use every layer"""

    @model_validator(mode="after")
    def _noise_only_for_ae(self) -> StackParams:
        if self.kind == "rbm" and self.noise != [0.0]:
            raise ValueError(f"noise = {self.noise} is only allowed for kind 'ae'")
        if self.top == "joint" and self.kind != "rbm":
            raise ValueError(
                "top = 'joint' (a joint RBM over the top layer and the label) is only allowed for kind 'rbm'"
            )
        if max(self.noise) >= 1.0:
            raise ValueError(f"noise = {self.noise}: a masking level must be below 1")
        return self


class ModelSpec(Section):
    """One column of the table: the first `layers` layers of a stack's candidates, fine-tuned."""

    stack: str
    """a key of vincent.stacks"""
    layers: PositiveInt
    table_name: str
    """the model's column in the paper's table (DBN-1, DBN-3, SAA-3, SdA-3)"""
