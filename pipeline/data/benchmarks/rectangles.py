"""rect and rect-img: is the rectangle taller than wide?

Recipes (Larochelle et al. 2007 as quoted; [P] marks our proposals):
- rect: a white rectangle outline on black, binary pixels. Height and width sampled uniformly and the pair
  rejected when they differ by less than `min_diff` (3). [P] w, h uniform in {2..28} (outer size in pixels,
  the 1-pixel outline included), the top-left corner uniform among the positions where it fits.
- rect-img: the rectangle (border and inside) is one natural-image patch, the background another (patches
  as in bg-img: 28x28, std >= 0.05). [P] w, h uniform in {10..28}, rejected unless the area covers
  25-75% of the image and |w - h| >= 5; the two patches come from different images (`distinct_images`).

Labels [P]: 1 = taller than wide (h > w), 0 = wider; each split is exactly balanced (n // 2 ones, in
random order). Since the (w, h) rejection rule is symmetric, a pair is drawn and its sides are swapped
to match the label - the same distribution as conditioning the rejection sampler on the label.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.arrays import SPLITS
from pipeline.data.benchmarks.common import (
    PIXELS,
    SIDE,
    Arrays,
    RecipeError,
    Rejections,
    Sizes,
    balanced_labels,
    check_arrays,
    fields_of,
    rng,
    to_uint8,
)
from pipeline.data.benchmarks.images import extract_patches, image_probabilities, load_images


@dataclass(frozen=True)
class RectRecipe:
    min_side: int = 2
    max_side: int = SIDE
    min_diff: int = 3
    outline_width: int = 1
    label_one: str = "taller"  # label 1 = height > width
    balanced: bool = True

    def __post_init__(self) -> None:
        check_sides(self)
        if self.outline_width < 1:
            raise RecipeError(f"recipe outline_width {self.outline_width!r}: expected at least 1 pixel")


@dataclass(frozen=True)
class RectImgRecipe:
    min_side: int = 10
    max_side: int = SIDE
    min_diff: int = 5
    min_area_frac: float = 0.25
    max_area_frac: float = 0.75
    std_threshold: float = 0.05
    redraw: str = "image_and_position"
    distinct_images: bool = True
    patch_scale: float = 1.0  # images resized by this before 28x28 patches are cut (images.grays)
    label_one: str = "taller"
    balanced: bool = True

    def __post_init__(self) -> None:
        check_sides(self)


def kept_share(lo: int, hi: int, min_diff: int, area: tuple[float, float] = (0.0, 1.0)) -> float:
    """The share of side pairs (a, b) uniform in {lo..hi} that the rejection sampler keeps, counted exactly."""
    a, b = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1))
    frac = a * b / PIXELS
    return float(((np.abs(a - b) >= min_diff) & (frac >= area[0]) & (frac <= area[1])).mean())


def check_sides(recipe: RectRecipe | RectImgRecipe) -> None:
    """Refuse, before anything is drawn, side bounds outside the image or that no rectangle meets (a RecipeError
    naming the fields): the rejection sampler would never finish."""
    lo, hi, diff = recipe.min_side, recipe.max_side, recipe.min_diff
    if not 1 <= lo <= hi <= SIDE:
        raise RecipeError(
            f"recipe {fields_of(recipe, 'min_side', 'max_side')}: expected 1 <= min_side <= max_side <= {SIDE}, "
            f"the side of the {SIDE}x{SIDE} image"
        )
    if diff > hi - lo:
        raise RecipeError(
            f"recipe {fields_of(recipe, 'min_side', 'max_side', 'min_diff')}: no two sides in {lo}..{hi} differ by "
            f"min_diff or more; expected min_diff <= max_side - min_side = {hi - lo}"
        )
    area = (getattr(recipe, "min_area_frac", 0.0), getattr(recipe, "max_area_frac", 1.0))
    if not 0 <= area[0] <= area[1]:
        raise RecipeError(
            f"recipe {fields_of(recipe, 'min_area_frac', 'max_area_frac')}: expected 0 <= min_area_frac "
            "<= max_area_frac, shares of the image"
        )
    if kept_share(lo, hi, diff, area) == 0:
        names = ("min_side", "max_side", "min_diff", "min_area_frac", "max_area_frac")
        raise RecipeError(
            f"recipe {fields_of(recipe, *names)}: no rectangle with sides in {lo}..{hi} differing by {diff} or more "
            f"covers {area[0]:.0%} to {area[1]:.0%} of the image"
        )


def sample_sides(
    n: int, g: np.random.Generator, lo: int, hi: int, min_diff: int, area: tuple[float, float] = (0.0, 1.0)
) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (short, long) from the rejection sampler: a, b uniform in {lo..hi}, |a - b| >= min_diff, area ok."""
    short = np.empty(n, dtype=np.int64)
    long = np.empty(n, dtype=np.int64)
    filled = 0
    tally = Rejections("rectangles", f"min_side {lo}, max_side {hi}, min_diff {min_diff}, area {area[0]}-{area[1]}")
    while filled < n:
        need = n - filled
        a, b = g.integers(lo, hi + 1, size=(2, max(64, 2 * need)))
        frac = a * b / PIXELS
        ok = (np.abs(a - b) >= min_diff) & (frac >= area[0]) & (frac <= area[1])
        tally.tally(len(ok), int(ok.sum()))
        a, b = a[ok][:need], b[ok][:need]
        short[filled : filled + len(a)], long[filled : filled + len(a)] = np.minimum(a, b), np.maximum(a, b)
        filled += len(a)
    return short, long


def _layout(n: int, g: np.random.Generator, recipe: RectRecipe | RectImgRecipe) -> tuple[np.ndarray, ...]:
    """Labels, sides and top-left corners of n rectangles."""
    if recipe.label_one != "taller":
        raise RecipeError(f"recipe label_one {recipe.label_one!r}: only label_one='taller' is implemented")
    y = balanced_labels(n, g) if recipe.balanced else g.integers(0, 2, n).astype(np.uint8)
    area = (getattr(recipe, "min_area_frac", 0.0), getattr(recipe, "max_area_frac", 1.0))
    short, long = sample_sides(n, g, recipe.min_side, recipe.max_side, recipe.min_diff, area)
    h = np.where(y == 1, long, short)
    w = np.where(y == 1, short, long)
    top = (g.random(n) * (SIDE - h + 1)).astype(np.int64)
    left = (g.random(n) * (SIDE - w + 1)).astype(np.int64)
    return y, h, w, top, left


def masks(h: np.ndarray, w: np.ndarray, top: np.ndarray, left: np.ndarray, border: int | None) -> np.ndarray:
    """Boolean (n, 784): the filled rectangle (border=None) or its outline `border` pixels wide."""
    r, c = np.divmod(np.arange(PIXELS), SIDE)
    t, lf = top[:, None], left[:, None]
    b, rt = t + h[:, None], lf + w[:, None]
    inside = (r >= t) & (r < b) & (c >= lf) & (c < rt)
    if border is None:
        return inside
    core = (r >= t + border) & (r < b - border) & (c >= lf + border) & (c < rt - border)
    return inside & ~core


def generate_rect(sizes: Sizes, seed: int, recipe: RectRecipe = RectRecipe(), record: dict | None = None) -> Arrays:
    """rectangles: binary outlines; see the module docstring."""
    out: Arrays = {}
    for split in SPLITS:
        n = getattr(sizes, split)
        y, h, w, top, left = _layout(n, rng(seed, "rect", split, "layout"), recipe)
        x = masks(h, w, top, left, recipe.outline_width).astype(np.uint8) * np.uint8(255)
        out[split] = (x, y)
        if record is not None:
            record[split] = {"height": h, "width": w, "top": top, "left": left}
    return check_arrays(out)


def generate_rect_img(
    sizes: Sizes, seed: int, recipe: RectImgRecipe = RectImgRecipe(), record: dict | None = None
) -> Arrays:
    """rectangles-images: a patch-filled rectangle on a patch from another image; see the module docstring."""
    p = image_probabilities(recipe.std_threshold, recipe.redraw, recipe.patch_scale)
    n_images = len(load_images())
    out: Arrays = {}
    for split in SPLITS:
        n = getattr(sizes, split)
        y, h, w, top, left = _layout(n, rng(seed, "rect-img", split, "layout"), recipe)
        g = rng(seed, "rect-img", split, "patches")
        fg_id = g.choice(n_images, size=n, p=p)
        bg_id = g.choice(n_images, size=n, p=p)
        clash = (bg_id == fg_id) if recipe.distinct_images else np.zeros(n, dtype=bool)
        fields = fields_of(recipe, "distinct_images", "std_threshold", "redraw", "patch_scale")
        tally = Rejections("background images other than the rectangle's", fields)
        tally.tally(n, n - int(clash.sum()))
        while clash.any():  # redraw the background image until it differs (same distribution, conditioned)
            redrawn = int(clash.sum())
            bg_id[clash] = g.choice(n_images, size=redrawn, p=p)
            clash = bg_id == fg_id
            tally.tally(redrawn, redrawn - int(clash.sum()))
        fg, fg_win = extract_patches(fg_id, g, recipe.std_threshold, recipe.patch_scale)
        bg, bg_win = extract_patches(bg_id, g, recipe.std_threshold, recipe.patch_scale)
        x = np.where(masks(h, w, top, left, None), fg, bg)
        out[split] = (to_uint8(x), y)
        if record is not None:
            record[split] = {
                "height": h,
                "width": w,
                "top": top,
                "left": left,
                "fg_image": fg_id,
                "bg_image": bg_id,
                "fg_window": fg_win,
                "bg_window": bg_win,
            }
    return check_arrays(out)
