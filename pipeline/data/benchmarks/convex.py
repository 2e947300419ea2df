"""convex: is the white region convex?

Recipe (LISA's ConvexNonConvex page and OpenML 40765; [P] marks our proposals):
- A "set" is the intersection of K half-planes of uniformly random location and orientation. [P] each
  half-plane is {p : (p - q) . (cos phi, sin phi) >= 0} with q uniform on the image square [0, 28)^2 and
  phi uniform in [0, 2pi); a pixel is on when its centre (col + 0.5, row + 0.5) is in every half-plane.
- Convex image: one set, K ~ Geometric(0.195); candidates with fewer than 19 on pixels are redrawn.
- Non-convex image: the union of m ~ U{2, 3, 4} sets, each with K ~ Geometric(0.07) and at least 10 on
  pixels (smaller sets are redrawn), kept only if the union is not convex; otherwise redrawn.
- [P] K counts from 0 (`count_start=0`: K = G - 1 with numpy's G ~ Geometric(p) on {1, 2, ...}; K = 0 is
  the whole image). Chosen because it reproduces the documented balance of on pixels: at seed 0, 2000
  examples, the class means are 434 (convex) vs 443 (non-convex) with count_start=0, but 269 vs 465 with
  count_start=1.
- [P] convexity test ("hull"): the on-pixel set S is convex iff every pixel whose centre lies in the convex
  hull of S's centres is on (digital convexity, S = conv(S) ∩ grid). A single set always passes it.
- [P] `location` (default "uniform-image-square"): "contains-point" turns every half-plane of a set to contain
  one uniform point of the image (drawn per set), "contains-centre" the image centre.
- [P] `count_match_pool` (default 0, off): k > 0 draws k x as many convex candidates and keeps, for each
  non-convex image, the candidate with the nearest on-pixel count (the two classes' count distributions
  agree, not only their means: a count-only classifier is then at chance).
- [P] `nonconvex_connected` (default False, the recipe as documented): True also redraws non-convex unions
  made of more than one 8-connected piece (an easy non-convex case; calibration, reports/calibration/convex.md).
- [P] label 1 = convex, 0 = non-convex; each split exactly balanced, in random order. On pixels are 255.
The source paper says the parameters balance the two classes' mean number of on pixels;
`class_means` reports them for a generated dataset.
"""

from __future__ import annotations

import math
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
)

_ROW, _COL = np.divmod(np.arange(PIXELS), SIDE)
_CENTRES = np.stack([_COL + 0.5, _ROW + 0.5], axis=1)  # (784, 2) as (x, y)
CHUNK = 4096
LOCATIONS = ("uniform-image-square", "contains-centre", "contains-point")


@dataclass(frozen=True)
class ConvexRecipe:
    convex_p: float = 0.195
    convex_min_pixels: int = 19
    nonconvex_p: float = 0.07
    nonconvex_min_pixels: int = 10
    nonconvex_min_sets: int = 2
    nonconvex_max_sets: int = 4
    count_start: int = 0  # 0: K = numpy geometric - 1 (K = 0 allowed); 1: K >= 1
    location: str = "uniform-image-square"
    convexity_test: str = "hull"
    label_one: str = "convex"
    balanced: bool = True
    nonconvex_connected: bool = False  # True: unions in more than one 8-connected piece are redrawn too
    count_match_pool: int = 0  # k > 0: convex images picked from k x as many candidates to match on-pixel counts

    def __post_init__(self) -> None:
        """Refuse, before anything is drawn, values no image meets (a RecipeError naming the fields)."""
        for name in ("convex_p", "nonconvex_p"):
            if not 0 < getattr(self, name) <= 1:
                raise RecipeError(f"recipe {fields_of(self, name)}: expected a probability in (0, 1]")
        for name in ("convex_min_pixels", "nonconvex_min_pixels"):
            if not 0 <= getattr(self, name) <= PIXELS:
                raise RecipeError(f"recipe {fields_of(self, name)}: expected 0 to {PIXELS}, the pixels of the image")
        sets = fields_of(self, "nonconvex_min_sets", "nonconvex_max_sets")
        if not 1 <= self.nonconvex_min_sets <= self.nonconvex_max_sets:
            raise RecipeError(f"recipe {sets}: expected 1 <= nonconvex_min_sets <= nonconvex_max_sets")
        if self.nonconvex_max_sets < 2:
            raise RecipeError(f"recipe {sets}: one set alone is always convex; expected nonconvex_max_sets >= 2")
        if self.count_start not in (0, 1):
            raise RecipeError(f"recipe {fields_of(self, 'count_start')}: expected 0 or 1")
        if self.count_match_pool < 0:
            raise RecipeError(f"recipe {fields_of(self, 'count_match_pool')}: expected 0 (off) or a positive factor")


def intersections(counts: np.ndarray, g: np.random.Generator, location: str = LOCATIONS[0]) -> np.ndarray:
    """Boolean (n, 784): for each n, the pixels inside all of its counts[i] random half-planes (0: all pixels).

    location: "uniform-image-square" (each half-plane's side as drawn), "contains-centre" or "contains-point"
    (every half-plane of a set turned to contain the image centre, or one uniform point of the image per set).
    """
    if location not in LOCATIONS:
        raise RecipeError(f"location must be one of {LOCATIONS}, got {location!r}")
    n = len(counts)
    used = np.maximum(counts, 1)
    total = int(used.sum())
    q = g.random((total, 2)) * SIDE
    phi = g.random(total) * (2 * math.pi)
    normal = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    if location != LOCATIONS[0]:
        ref = np.full((n, 2), SIDE / 2) if location == "contains-centre" else g.random((n, 2)) * SIDE
        ref = np.repeat(ref, used, axis=0)
        normal *= np.where(((ref - q) * normal).sum(1) >= 0, 1.0, -1.0)[:, None]
    offset = (q * normal).sum(1)
    starts = np.concatenate([[0], np.cumsum(used)[:-1]])
    out = np.empty((n, PIXELS), dtype=bool)
    for lo in range(0, n, CHUNK):
        hi = min(lo + CHUNK, n)
        a, b = starts[lo], (starts[hi] if hi < n else total)
        inside = normal[a:b] @ _CENTRES.T >= offset[a:b, None]
        out[lo:hi] = np.logical_and.reduceat(inside, starts[lo:hi] - a, axis=0)
    out[counts == 0] = True
    return out


def _counts(n: int, p: float, g: np.random.Generator, start: int) -> np.ndarray:
    if start not in (0, 1):
        raise RecipeError(f"count_start must be 0 or 1, got {start}")
    return g.geometric(p, size=n) - (1 - start)


def sample_sets(
    n: int,
    p: float,
    min_pixels: int,
    g: np.random.Generator,
    start: int,
    location: str = LOCATIONS[0],
    names: tuple[str, str] = ("p", "min_pixels"),
) -> np.ndarray:
    """n intersections with at least min_pixels on pixels (rejection sampling, in batches). `names`: the recipe's
    fields for p and min_pixels, which an error names."""
    kept: list[np.ndarray] = [np.zeros((0, PIXELS), dtype=bool)]
    have = 0
    fields = f"{names[0]} {p!r}, {names[1]} {min_pixels!r}, count_start {start!r}, location {location!r}"
    tally = Rejections("sets", fields)
    while have < n:
        batch = intersections(_counts(max(256, 2 * (n - have)), p, g, start), g, location)
        drawn = len(batch)
        batch = batch[batch.sum(1) >= min_pixels]
        tally.tally(drawn, len(batch))
        kept.append(batch[: n - have])
        have += len(kept[-1])
    return np.concatenate(kept)


def is_convex(on: np.ndarray) -> bool:
    """Digital convexity of one boolean 784-pixel image: every pixel centre inside the hull of on-pixels is on."""
    from scipy.spatial import ConvexHull, QhullError

    pts = _CENTRES[on]
    if len(pts) <= 2:
        return len(pts) < 2 or bool(np.abs(pts[0] - pts[1]).max() <= 1)
    try:
        hull = ConvexHull(pts)
    except QhullError:  # all centres collinear: convex iff they are every grid point of their segment
        span = pts.max(0) - pts.min(0)
        return len(pts) == math.gcd(int(span[0]), int(span[1])) + 1
    off = _CENTRES[~on]
    inside = (off @ hull.equations[:, :2].T + hull.equations[:, 2] <= 1e-9).all(1)
    return not inside.any()


def pieces(on: np.ndarray) -> int:
    """Number of 8-connected pieces of one boolean 784-pixel image."""
    from scipy import ndimage

    return int(ndimage.label(on.reshape(SIDE, SIDE), np.ones((3, 3), dtype=bool))[1])


def sample_nonconvex(n: int, recipe: ConvexRecipe, g: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n non-convex unions (boolean (n, 784)) and how many sets each has."""
    kept, kept_m, have = [np.zeros((0, PIXELS), dtype=bool)], [np.zeros(0, dtype=np.int64)], 0
    names = ("nonconvex_p", "nonconvex_min_pixels", "nonconvex_min_sets", "nonconvex_max_sets", "nonconvex_connected")
    tally = Rejections("non-convex unions", fields_of(recipe, *names, "count_start", "location"))
    while have < n:
        m = g.integers(recipe.nonconvex_min_sets, recipe.nonconvex_max_sets + 1, size=max(64, 2 * (n - have)))
        sets = sample_sets(
            int(m.sum()),
            recipe.nonconvex_p,
            recipe.nonconvex_min_pixels,
            g,
            recipe.count_start,
            recipe.location,
            ("nonconvex_p", "nonconvex_min_pixels"),
        )
        starts = np.concatenate([[0], np.cumsum(m)[:-1]])
        unions = np.logical_or.reduceat(sets, starts, axis=0)
        ok = np.fromiter((not is_convex(u) for u in unions), dtype=bool, count=len(unions))
        if recipe.nonconvex_connected:
            ok &= np.fromiter((ok[i] and pieces(u) == 1 for i, u in enumerate(unions)), dtype=bool, count=len(unions))
        tally.tally(len(ok), int(ok.sum()))
        kept.append(unions[ok][: n - have])
        kept_m.append(m[ok][: n - have])
        have += len(kept[-1])
    return np.concatenate(kept), np.concatenate(kept_m)


def match_counts(pool: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """For each target on-pixel count in turn, the index of an unused pool entry with the nearest count."""
    order = np.argsort(pool, kind="stable")
    sorted_counts = pool[order].astype(np.float64)
    used = np.zeros(len(pool), dtype=bool)
    picks = np.empty(len(targets), dtype=np.int64)
    for i, t in enumerate(targets):
        j = int(np.searchsorted(sorted_counts, t))
        lo, hi = j - 1, j
        while lo >= 0 and used[lo]:
            lo -= 1
        while hi < len(pool) and used[hi]:
            hi += 1
        best = lo if hi >= len(pool) or (lo >= 0 and t - sorted_counts[lo] <= sorted_counts[hi] - t) else hi
        used[best] = True
        picks[i] = order[best]
    return picks


def generate_convex(
    sizes: Sizes, seed: int, recipe: ConvexRecipe = ConvexRecipe(), record: dict | None = None
) -> Arrays:
    """convex vs non-convex white regions; see the module docstring."""
    if recipe.convexity_test != "hull" or recipe.location not in LOCATIONS or recipe.label_one != "convex":
        raise RecipeError(f"only convexity_test='hull', location in {LOCATIONS}, label_one='convex' exist")
    out: Arrays = {}
    for split in SPLITS:
        n = getattr(sizes, split)
        g = rng(seed, "convex", split)
        y = balanced_labels(n, g) if recipe.balanced else g.integers(0, 2, n).astype(np.uint8)
        n_convex = int(y.sum())
        pool = max(1, recipe.count_match_pool)
        convex = sample_sets(
            pool * n_convex,
            recipe.convex_p,
            recipe.convex_min_pixels,
            g,
            recipe.count_start,
            recipe.location,
            ("convex_p", "convex_min_pixels"),
        )
        nonconvex, n_sets = sample_nonconvex(n - n_convex, recipe, g)
        if recipe.count_match_pool > 0 and len(nonconvex):
            convex = convex[match_counts(convex.sum(1), np.resize(nonconvex.sum(1), n_convex))]
        x = np.empty((n, PIXELS), dtype=bool)
        x[y == 1], x[y == 0] = convex, nonconvex
        out[split] = (x.astype(np.uint8) * np.uint8(255), y)
        if record is not None:
            sets = np.zeros(n, dtype=np.int64)
            sets[y == 0] = n_sets
            record[split] = {"n_sets": sets}
    return check_arrays(out)


def class_means(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Mean number of on pixels (> 127) per class: {'convex': ..., 'nonconvex': ...}."""
    on = (x > 127).sum(1)
    return {"convex": float(on[y == 1].mean()), "nonconvex": float(on[y == 0].mean())}
