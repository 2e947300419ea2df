"""rot, bg-rand, bg-img and rot-bg-img: MNIST digits rotated and/or put on a background.

Recipes (Larochelle et al. 2007 as quoted; [P] marks our proposals for what is not documented):
- rot: each digit rotated by theta ~ U[0, 2pi); [P] bilinear interpolation about the image centre (13.5, 13.5),
  28x28 output, outside filled with 0.
- bg-rand: each background pixel uniform in {0..255}; [P] combined with the digit by the per-pixel maximum
  (`combine="max"`; `"overwrite"` puts the digit's nonzero pixels over the background).
- bg-img: a 28x28 natural-image patch behind the digit (see pipeline.data.benchmarks.images: std >= 0.05,
  twenty offline images); [P] per-pixel maximum.
- rot-bg-img: [P] the digit is rotated as in rot, then combined with an unrotated patch as in bg-img.

Digits [P]: train and valid digits are a seeded draw without replacement from the 60,000 MNIST train-file
images; test digits are all 10,000 test-file images followed by a seeded draw of the remaining train-file
images not used in train/valid (the 50,000-example test set is larger than the test file; Larochelle
likewise used 62,000 of the 70,000 digits), then shuffled. No digit appears twice in a dataset. Indices
refer to the 70,000 images of pipeline.data.mnist.load_raw (train file 0-59,999, test file 60,000-69,999).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.data.arrays import SPLITS
from pipeline.data.benchmarks.common import PIXELS, SIDE, Arrays, RecipeError, Sizes, check_arrays, rng, to_uint8
from pipeline.data.benchmarks.images import sample_patches, stretch

MNIST_TRAIN, MNIST_TOTAL = 60_000, 70_000
CHUNK = 8192


@dataclass(frozen=True)
class DigitRecipe:
    """Which MNIST digits are used (see the module docstring)."""

    digit_pool: str = "train-valid:train-file; test:test-file+unused-train-file"


@dataclass(frozen=True)
class RotRecipe(DigitRecipe):
    angle_min: float = 0.0
    angle_max: float = 2 * math.pi
    interpolation: str = "bilinear"  # bilinear | nearest
    centre: float = 13.5
    fill: float = 0.0


@dataclass(frozen=True)
class BgRandRecipe(DigitRecipe):
    combine: str = "max"  # max | overwrite
    background: str = "uniform-integer-0-255"


@dataclass(frozen=True)
class BgImgRecipe(DigitRecipe):
    combine: str = "max"
    std_threshold: float = 0.05
    redraw: str = "image_and_position"  # image_and_position | position
    patch_size: int = SIDE
    patch_scale: float = 1.0  # images resized by this before 28x28 patches are cut (images.grays)
    patch_contrast: str = "none"  # none | minmax (each patch stretched to [0, 1]: images.stretch)


@dataclass(frozen=True)
class RotBgImgRecipe(RotRecipe):
    combine: str = "max"
    std_threshold: float = 0.05
    redraw: str = "image_and_position"
    patch_size: int = SIDE
    patch_scale: float = 1.0  # images resized by this before 28x28 patches are cut (images.grays)
    patch_contrast: str = "none"  # none | minmax (each patch stretched to [0, 1]: images.stretch)
    rotate_background: bool = False


def select_digits(sizes: Sizes, seed: int, name: str) -> dict[str, np.ndarray]:
    """Indices into the 70,000 MNIST images for each split (no repeats; see module docstring)."""
    n_tv = sizes.train + sizes.valid
    if n_tv > MNIST_TRAIN:
        raise RecipeError(f"train + valid = {n_tv} exceeds the {MNIST_TRAIN:,} MNIST train-file images")
    if n_tv + sizes.test > MNIST_TOTAL:
        raise RecipeError(f"train + valid + test = {n_tv + sizes.test} exceeds the {MNIST_TOTAL:,} MNIST images")
    g = rng(seed, name, "digits")
    perm = g.permutation(MNIST_TRAIN)
    test_file = np.arange(MNIST_TRAIN, MNIST_TOTAL)
    n_from_test = min(sizes.test, MNIST_TOTAL - MNIST_TRAIN)
    test_part = g.permutation(test_file)[:n_from_test]
    extra = perm[n_tv : n_tv + sizes.test - n_from_test]
    test = g.permutation(np.concatenate([test_part, extra]))
    return {"train": perm[: sizes.train], "valid": perm[sizes.train : n_tv], "test": test}


def rotate(images: np.ndarray, angles: np.ndarray, recipe: RotRecipe) -> np.ndarray:
    """Rotate uint8 or [0, 1] float images (n, 784) by `angles` (radians, clockwise as displayed, rows down).

    Output pixel (r, c) samples the input at the centre-relative point rotated by -theta; pixels whose
    source lies outside the image take `fill`. Returns float64 in [0, 1], processed in chunks.
    """
    if recipe.interpolation not in ("bilinear", "nearest"):
        raise RecipeError(f"interpolation must be 'bilinear' or 'nearest', got {recipe.interpolation!r}")
    src = images.astype(np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
    r, c = np.divmod(np.arange(PIXELS), SIDE)
    dy, dx = r - recipe.centre, c - recipe.centre
    out = np.empty_like(src)
    for lo in range(0, len(src), CHUNK):
        theta = angles[lo : lo + CHUNK, None]
        cos, sin = np.cos(theta), np.sin(theta)
        xs = cos * dx + sin * dy + recipe.centre  # source column
        ys = -sin * dx + cos * dy + recipe.centre  # source row
        block = src[lo : lo + CHUNK]
        if recipe.interpolation == "nearest":
            corners = [(np.rint(ys).astype(np.int64), np.rint(xs).astype(np.int64), 1.0)]
        else:
            x0, y0 = np.floor(xs), np.floor(ys)
            fx, fy = xs - x0, ys - y0
            x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
            corners = [
                (y0, x0, (1 - fy) * (1 - fx)),
                (y0, x0 + 1, (1 - fy) * fx),
                (y0 + 1, x0, fy * (1 - fx)),
                (y0 + 1, x0 + 1, fy * fx),
            ]
        acc = np.zeros_like(block)
        for yi, xi, w in corners:
            inside = (yi >= 0) & (yi < SIDE) & (xi >= 0) & (xi < SIDE)
            flat = np.clip(yi, 0, SIDE - 1) * SIDE + np.clip(xi, 0, SIDE - 1)
            vals = np.where(inside, np.take_along_axis(block, flat, axis=1), recipe.fill)
            acc += w * vals
        out[lo : lo + CHUNK] = acc
    return np.clip(out, 0.0, 1.0)


def combine(digit: np.ndarray, background: np.ndarray, rule: str) -> np.ndarray:
    """Digit over background, both float in [0, 1]: per-pixel maximum, or the digit's nonzero pixels on top."""
    if rule == "max":
        return np.maximum(digit, background)
    if rule == "overwrite":
        return np.where(digit > 0, digit, background)
    raise RecipeError(f"combine must be 'max' or 'overwrite', got {rule!r}")


def _generate(
    name: str,
    sizes: Sizes,
    seed: int,
    mnist_x: np.ndarray,
    mnist_y: np.ndarray,
    recipe: DigitRecipe,
    record: dict | None,
) -> Arrays:
    if mnist_x.shape != (MNIST_TOTAL, PIXELS) or mnist_x.dtype != np.uint8:
        raise ValueError(
            f"mnist_x must be the uint8 (70000, 784) array of load_raw, got {mnist_x.dtype} {mnist_x.shape}"
        )
    digits = select_digits(sizes, seed, name)
    out: Arrays = {}
    for split in SPLITS:
        idx = digits[split]
        info: dict[str, np.ndarray] = {"source_index": idx.astype(np.int64)}
        x = mnist_x[idx].astype(np.float64) / 255.0
        if isinstance(recipe, RotRecipe):
            angles = rng(seed, name, split, "angle").uniform(recipe.angle_min, recipe.angle_max, len(idx))
            x = rotate(x, angles, recipe)
            info["angle"] = angles
        if isinstance(recipe, BgRandRecipe):
            bg = rng(seed, name, split, "background").integers(0, 256, size=x.shape, dtype=np.uint8) / 255.0
            x = combine(x, bg, recipe.combine)
        elif isinstance(recipe, BgImgRecipe | RotBgImgRecipe):
            g = rng(seed, name, split, "background")
            bg, ids, window = sample_patches(len(idx), g, recipe.std_threshold, recipe.redraw, recipe.patch_scale)
            bg = stretch(bg, recipe.patch_contrast)
            x = combine(x, bg, recipe.combine)
            info["image_id"], info["window"] = ids, window
        out[split] = (to_uint8(x), mnist_y[idx].astype(np.uint8))
        if record is not None:
            record[split] = info
    return check_arrays(out)


def generate_rot(
    sizes: Sizes,
    seed: int,
    mnist_x: np.ndarray,
    mnist_y: np.ndarray,
    recipe: RotRecipe = RotRecipe(),
    record: dict | None = None,
) -> Arrays:
    """mnist-rot: digits rotated by a uniform angle."""
    return _generate("rot", sizes, seed, mnist_x, mnist_y, recipe, record)


def generate_bg_rand(
    sizes: Sizes,
    seed: int,
    mnist_x: np.ndarray,
    mnist_y: np.ndarray,
    recipe: BgRandRecipe = BgRandRecipe(),
    record: dict | None = None,
) -> Arrays:
    """mnist-back-rand: digits on uniform random noise."""
    return _generate("bg-rand", sizes, seed, mnist_x, mnist_y, recipe, record)


def generate_bg_img(
    sizes: Sizes,
    seed: int,
    mnist_x: np.ndarray,
    mnist_y: np.ndarray,
    recipe: BgImgRecipe = BgImgRecipe(),
    record: dict | None = None,
) -> Arrays:
    """mnist-back-image: digits on natural-image patches."""
    return _generate("bg-img", sizes, seed, mnist_x, mnist_y, recipe, record)


def generate_rot_bg_img(
    sizes: Sizes,
    seed: int,
    mnist_x: np.ndarray,
    mnist_y: np.ndarray,
    recipe: RotBgImgRecipe = RotBgImgRecipe(),
    record: dict | None = None,
) -> Arrays:
    """mnist-rot-back-image: rotated digits on unrotated natural-image patches."""
    if recipe.rotate_background:
        raise NotImplementedError("rotate_background=True is not implemented; the [P] recipe keeps patches upright")
    return _generate("rot-bg-img", sizes, seed, mnist_x, mnist_y, recipe, record)
