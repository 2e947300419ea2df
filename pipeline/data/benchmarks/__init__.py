"""The seven Larochelle et al. 2007 benchmarks besides MNIST-basic: generated substitutes and published files.

Datasets: rot, bg-rand, bg-img, rot-bg-img (MNIST digits: mnist_variants), rect, rect-img (rectangles),
convex (convex). Each generator is seeded (every random stream is `derive_seed(seed, <dataset>, ...)`),
byte-identical for the same arguments, and returns {split: (x uint8 (n, 784), y uint8 (n,))}. Recipe
dataclasses hold every parameter, including each proposal [P] for what the papers leave unknown; the
manifest (manifest.py) records them. The published zips are read by `published.load_published` into the
same arrays. Rows built from generated data must say so in every report.

    arrays = generate("rot", seed=0, mnist_x=x, mnist_y=y)           # published sizes
    arrays = generate("rect", Sizes(100, 20, 100), seed=1, min_diff=4)  # recipe field overrides
    write_benchmark("data/prepared/rot", "rot", seed=0, mnist_x=x, mnist_y=y)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.data.benchmarks.common import PUBLISHED_SIZES, Arrays, Sizes
from pipeline.data.benchmarks.convex import ConvexRecipe, generate_convex
from pipeline.data.benchmarks.manifest import build_manifest, write_dataset
from pipeline.data.benchmarks.mnist_variants import (
    BgImgRecipe,
    BgRandRecipe,
    RotBgImgRecipe,
    RotRecipe,
    generate_bg_img,
    generate_bg_rand,
    generate_rot,
    generate_rot_bg_img,
)
from pipeline.data.benchmarks.rectangles import RectImgRecipe, RectRecipe, generate_rect, generate_rect_img

# name -> (generator, recipe class, needs MNIST)
REGISTRY: dict[str, tuple[Callable[..., Arrays], type, bool]] = {
    "rot": (generate_rot, RotRecipe, True),
    "bg-rand": (generate_bg_rand, BgRandRecipe, True),
    "bg-img": (generate_bg_img, BgImgRecipe, True),
    "rot-bg-img": (generate_rot_bg_img, RotBgImgRecipe, True),
    "rect": (generate_rect, RectRecipe, False),
    "rect-img": (generate_rect_img, RectImgRecipe, False),
    "convex": (generate_convex, ConvexRecipe, False),
}
DATASETS = tuple(REGISTRY)

__all__ = [
    "DATASETS",
    "PUBLISHED_SIZES",
    "REGISTRY",
    "Sizes",
    "generate",
    "make_recipe",
    "write_benchmark",
    "write_published",
]


def make_recipe(name: str, **overrides: Any) -> Any:
    """The recipe dataclass of `name` with its defaults, some fields overridden (unknown fields raise)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {DATASETS}")
    return REGISTRY[name][1](**overrides)


def generate(
    name: str,
    sizes: Sizes | None = None,
    seed: int = 0,
    mnist_x: np.ndarray | None = None,
    mnist_y: np.ndarray | None = None,
    record: dict | None = None,
    **recipe: Any,
) -> Arrays:
    """Generate dataset `name`: {split: (x uint8 (n, 784), y uint8 (n,))}.

    sizes defaults to the published sizes; mnist_x / mnist_y (load_raw's 70,000 images and labels) are
    required for the MNIST variants; `record`, if given, is filled with per-example draws (angles, digit
    indices, patch sources); **recipe overrides fields of the recipe dataclass.
    """
    rec = make_recipe(name, **recipe)
    gen, _, needs_mnist = REGISTRY[name]
    sizes = PUBLISHED_SIZES[name] if sizes is None else sizes
    if needs_mnist:
        if mnist_x is None or mnist_y is None:
            raise ValueError(f"{name} needs mnist_x and mnist_y (pipeline.data.mnist.load_raw)")
        return gen(sizes, seed, mnist_x, mnist_y, rec, record)
    return gen(sizes, seed, rec, record)


def write_benchmark(
    folder: str | Path,
    name: str,
    sizes: Sizes | None = None,
    seed: int = 0,
    mnist_x: np.ndarray | None = None,
    mnist_y: np.ndarray | None = None,
    **recipe: Any,
) -> dict[str, Any]:
    """Generate `name` and write it with its manifest.json into `folder` (atomically); return the manifest."""
    record: dict = {}
    arrays = generate(name, sizes, seed, mnist_x, mnist_y, record, **recipe)
    manifest = build_manifest(name, arrays, seed, make_recipe(name, **recipe), "generated", record)
    write_dataset(folder, arrays, manifest, record)
    return manifest


def write_published(folder: str | Path, name: str, zip_path: str | Path, **load_args: Any) -> dict[str, Any]:
    """Read a published zip (see published.load_published) and write it like a generated dataset."""
    from pipeline.data.benchmarks.published import PUBLISHED, load_published, sha1_of

    arrays = load_published(name, zip_path, **load_args)
    extra = {
        "zip": Path(zip_path).name,
        "zip_sha1": sha1_of(Path(zip_path)),
        "members": [PUBLISHED[name].train, PUBLISHED[name].test],
    }
    manifest = build_manifest(name, arrays, None, None, "published", None, {**extra, "load_args": load_args})
    write_dataset(folder, arrays, manifest)
    return manifest
