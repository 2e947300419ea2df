"""The pretraining stacks (vincent.stacks) and the models, the table's columns, built on them (vincent.models)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, model_serializer, model_validator

from pipeline.params.base import IntGrid, NoiseLevel, PositiveGrid, PositiveInt, Section


@dataclass(frozen=True)
class KindTraits:
    """A layer kind's family (the file of pipeline/training/families/ it builds on) and what its stacks may set:
    `noise`, what its noise grid means (None: it takes none, and its candidates' names carry none); `tops`, the tops
    it may have; `options`, the names of its own hyperparameters, each a grid every stack of the kind sets."""

    family: str
    noise: str | None = None
    tops: tuple[str, ...] = ("softmax",)
    options: tuple[str, ...] = ()


# The pretraining layer kinds: each is the file pipeline/training/kinds/<kind>.py (tests/test_kinds.py keeps the two
# in step); a new kind adds its line here.
KINDS = {
    "rbm": KindTraits("rbm", tops=("softmax", "joint")),  # Bernoulli RBMs by CD-1 (DBN); joint: the lab's DBN top
    "ae": KindTraits("autoencoder", noise="masking"),  # tied sigmoid autoencoders: SAA with noise 0, SdA with masking
    # contractive autoencoders (Rifai et al. 2011): the Frobenius norm of the encoder's Jacobian, weighted
    "cae": KindTraits("autoencoder", options=("contraction",)),
    # denoising autoencoders with salt-and-pepper noise and emphasis (Vincent et al. 2010): corrupted components'
    # reconstruction error weighted alpha, the others beta
    "dae_sp": KindTraits("autoencoder", noise="salt_and_pepper", options=("alpha", "beta")),
}


class StackParams(Section):
    """One pretraining stage (pretrain@<stack>): every candidate of its grid, as a tree of shared prefixes."""

    kind: str
    """a key of KINDS (pipeline/training/kinds/<kind>.py): rbm, Bernoulli RBMs by CD-1 (DBN); ae, tied sigmoid
    autoencoders (SAA with noise 0, SdA with masking)"""
    layers: PositiveInt
    lr: PositiveGrid
    epochs: IntGrid
    """epochs per layer; the shorter runs' first layers are snapshots of the longest"""
    noise: Annotated[list[NoiseLevel], Field(min_length=1)] = [0.0]
    """noise levels, for a kind that takes noise (ae: masking levels nu, a fixed count of zeroed pixels per example)"""
    top: Literal["softmax", "joint"] = "softmax"
    """softmax: fine-tuned with a softmax layer on top; joint (kind rbm only): the lab's DBN (Larochelle et al. 2007),
    whose last RBM models (the layer below, the label) jointly and classifies by its exact P(y | h)
    (pipeline/training/families/rbm.py); a model on it must use every layer"""
    options: dict[str, Annotated[list[Annotated[float, Field(ge=0)]], Field(min_length=1)]] = {}
    """the kind's own hyperparameters (KINDS' `options`), each a grid searched with the others"""

    @model_validator(mode="after")
    def _what_the_kind_takes(self) -> StackParams:
        if self.kind not in KINDS:
            raise ValueError(f"kind = {self.kind!r}: expected one of {sorted(KINDS)} (pipeline/training/kinds/)")
        traits = KINDS[self.kind]
        if traits.noise is None and self.noise != [0.0]:
            raise ValueError(f"noise = {self.noise} is only allowed for {kinds_where(lambda t: t.noise)}")
        if self.top not in traits.tops:
            raise ValueError(f"top = {self.top!r} is only allowed for {kinds_where(lambda t: self.top in t.tops)}")
        if max(self.noise) >= 1.0:
            raise ValueError(f"noise = {self.noise}: a noise level must be below 1")
        if set(self.options) != set(traits.options):
            raise ValueError(
                f"options = {self.options}: kind {self.kind!r} takes the options {list(traits.options) or 'none'}, "
                "each a grid"
            )
        return self

    @model_serializer(mode="wrap")
    def _options_only_where_a_kind_has_some(self, handler: Callable) -> dict:
        """As written before kinds had options: a stack without any dumps (and is saved with its models) unchanged."""
        data = handler(self)
        if not self.options:
            data.pop("options", None)
        return data


def kinds_where(has: Callable[[KindTraits], object]) -> str:
    """ "kind 'a' or kind 'b'": the kinds whose traits `has`."""
    return " or ".join(f"kind {k!r}" for k, t in KINDS.items() if has(t)) or "no kind"


class ModelSpec(Section):
    """One column of the table: the first `layers` layers of a stack's candidates, fine-tuned."""

    stack: str
    """a key of vincent.stacks"""
    layers: PositiveInt
    table_name: str
    """the model's column in the paper's table (DBN-1, DBN-3, SAA-3, SdA-3)"""
