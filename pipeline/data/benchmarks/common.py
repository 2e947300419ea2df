"""Shared pieces of the benchmark generators: split sizes, the output type, pixel quantisation, balanced labels.

Every generator returns `dict[split, (x, y)]` with x uint8 of shape (n, 784) (row-major 28x28, upright)
and y uint8 of shape (n,), for the splits train, valid and test - the same arrays the published-file
loader (pipeline.data.benchmarks.published) produces, and what `save_dataset` writes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.common.seeding import derive_seed
from pipeline.core.errors import StageError
from pipeline.data.arrays import SPLITS

SIDE = 28
PIXELS = SIDE * SIDE
# A rejection sampler that keeps fewer than 1 draw in 1000 over its first 10,000 draws stops: its recipe makes the
# kept examples too rare to finish in reasonable time (the committed recipes and every variant their calibrations
# tried keep more than 1 in 10).
MIN_KEPT_SHARE = 1e-3
JUDGED_AFTER = 10_000

Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


class RecipeError(StageError, ValueError):
    """A recipe that cannot be met, or only too rarely: the message names its fields and values.

    A ValueError too, as the generators' other refusals of bad recipe values are (the benchmark stage adds the
    params key to both)."""


def fields_of(recipe: object, *names: str) -> str:
    """'name value, name value' of the recipe's fields `names`: what a RecipeError names."""
    return ", ".join(f"{name} {getattr(recipe, name)!r}" for name in names)


class Rejections:
    """The tally of one rejection sampler; a RecipeError once it has drawn JUDGED_AFTER candidates and kept fewer
    than MIN_KEPT_SHARE of them (so a loop that a recipe makes impossible, or nearly, ends in seconds)."""

    def __init__(self, what: str, fields: str) -> None:
        self.what, self.fields = what, fields
        self.drawn = self.kept = 0

    def tally(self, drawn: int, kept: int) -> None:
        self.drawn, self.kept = self.drawn + drawn, self.kept + kept
        if self.drawn >= JUDGED_AFTER and self.kept < MIN_KEPT_SHARE * self.drawn:
            raise RecipeError(
                f"{self.what} are too rare under the recipe ({self.fields}): {self.kept} of {self.drawn:,} draws "
                f"kept, expected at least 1 in {1 / MIN_KEPT_SHARE:,.0f}; change these fields"
            )


@dataclass(frozen=True)
class Sizes:
    """Number of examples in train, valid and test."""

    train: int
    valid: int
    test: int

    def __post_init__(self) -> None:
        for split in SPLITS:
            if int(getattr(self, split)) < 0:
                raise ValueError(f"size of {split} must be >= 0, got {getattr(self, split)}")

    def as_dict(self) -> dict[str, int]:
        return {s: int(getattr(self, s)) for s in SPLITS}


# The published sizes (Larochelle et al. 2007; convex as on LISA's page and in pylearn2).
PUBLISHED_SIZES: dict[str, Sizes] = {
    "rot": Sizes(10_000, 2_000, 50_000),
    "bg-rand": Sizes(10_000, 2_000, 50_000),
    "bg-img": Sizes(10_000, 2_000, 50_000),
    "rot-bg-img": Sizes(10_000, 2_000, 50_000),
    "rect": Sizes(1_000, 200, 50_000),
    "rect-img": Sizes(10_000, 2_000, 50_000),
    "convex": Sizes(6_000, 2_000, 50_000),
}


def rng(seed: int, *names: object) -> np.random.Generator:
    """A numpy Generator for one named random stream, derived from the params seed."""
    return np.random.default_rng(derive_seed(seed, *names))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] to uint8 0-255 (round half to even, clipped)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def balanced_labels(n: int, generator: np.random.Generator) -> np.ndarray:
    """n binary labels, ceil(n/2) zeros and floor(n/2) ones, in random order (uint8)."""
    return generator.permutation(np.arange(n) % 2).astype(np.uint8)


def check_arrays(out: Arrays) -> Arrays:
    """Assert the output contract: uint8 (n, 784) images and uint8 (n,) labels for every split."""
    for split in SPLITS:
        x, y = out[split]
        assert x.dtype == np.uint8 and x.ndim == 2 and x.shape[1] == PIXELS, (split, x.dtype, x.shape)
        assert y.dtype == np.uint8 and y.shape == (x.shape[0],), (split, y.dtype, y.shape)
    return out
