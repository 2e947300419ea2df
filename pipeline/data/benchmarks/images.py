"""The twenty offline natural images behind bg-img, rot-bg-img and rect-img, and patch sampling from them.

Larochelle et al. 2007 took their backgrounds from "a set of 20 images downloaded from the internet" that
were never published. The substitute [P] is the twenty images that install with the project's
dependencies and load without network: 18 files bundled in the scikit-image wheel (`skimage/data/`) and
`china.jpg` / `flower.jpg` from scikit-learn (`sklearn/datasets/images/`). Each file is read from disk
(never through a fetcher), converted to gray in [0, 1] (`skimage.color.rgb2gray` for colour; uint8 / 255
otherwise) and identified in the manifest by its SHA-256.

Patch recipe [P]: pick one of the images uniformly, pick a 28x28 window at a uniform position, and redraw
while the patch's standard deviation (population, on the [0, 1] scale) is below `std_threshold` (0.05).
The rejection loop is computed exactly rather than simulated: the std of every window of every image is
precomputed from integral images, and a draw picks image i with probability proportional to its accepted
fraction (`redraw="image_and_position"`: a rejected draw is redrawn whole) or 1/20 (`redraw="position"`:
only the position is redrawn), then a uniform accepted window of it. `scale` (the recipes' `patch_scale`,
default 1.0 = the files as read) resizes every image before cutting, so a patch covers 1/scale times as
much of the scene (a calibrated unknown, reports/calibration/bg-img.md).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.data.benchmarks.common import SIDE, RecipeError

SKIMAGE_FILES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)
SKLEARN_FILES = ("china.jpg", "flower.jpg")
REDRAW_RULES = ("image_and_position", "position")


@dataclass(frozen=True)
class SourceImage:
    """One background image: its name, file, SHA-256 of the file and gray pixels (float64 in [0, 1])."""

    name: str
    path: Path
    sha256: str
    gray: np.ndarray


def image_paths() -> list[Path]:
    """The twenty image files, skimage's first, in a fixed order."""
    import skimage
    import sklearn.datasets

    sk = Path(skimage.__file__).parent / "data"
    sl = Path(sklearn.datasets.__file__).parent / "images"
    return [sk / f for f in SKIMAGE_FILES] + [sl / f for f in SKLEARN_FILES]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def load_images() -> tuple[SourceImage, ...]:
    """Read and convert the twenty images (cached per process); a missing file is a clear error."""
    from skimage import io
    from skimage.color import rgb2gray

    out = []
    for path in image_paths():
        if not path.is_file():
            raise FileNotFoundError(f"{path}: background image missing (reinstall scikit-image / scikit-learn)")
        raw = io.imread(path)
        if raw.ndim == 3:
            gray = rgb2gray(raw[..., :3])
        else:
            gray = raw.astype(np.float64) / np.iinfo(raw.dtype).max
        gray = np.ascontiguousarray(gray, dtype=np.float64)
        gray.setflags(write=False)
        out.append(SourceImage(path.stem, path, _sha256(path), gray))
    return tuple(out)


def window_std(gray: np.ndarray, side: int = SIDE) -> np.ndarray:
    """Population std of every side x side window, shape (H - side + 1, W - side + 1), via integral images."""
    padded = np.zeros((gray.shape[0] + 1, gray.shape[1] + 1))
    sq = np.zeros_like(padded)
    padded[1:, 1:] = gray.cumsum(0).cumsum(1)
    sq[1:, 1:] = (gray * gray).cumsum(0).cumsum(1)

    def box(s: np.ndarray) -> np.ndarray:
        return s[side:, side:] - s[:-side, side:] - s[side:, :-side] + s[:-side, :-side]

    n = side * side
    mean = box(padded) / n
    return np.sqrt(np.maximum(box(sq) / n - mean * mean, 0.0))


@functools.cache
def grays(scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """The twenty gray images, resized by `scale` (anti-aliased; 0.5 = patches cover twice the scene) or as read."""
    if scale == 1.0:
        return tuple(img.gray for img in load_images())
    if not scale > 0:
        raise RecipeError(f"recipe patch_scale {scale!r}: expected a positive factor (1.0: the images as read)")
    from skimage.transform import rescale

    out = []
    for img in load_images():
        g = np.ascontiguousarray(np.clip(rescale(img.gray, scale, anti_aliasing=scale < 1, order=1), 0.0, 1.0))
        if min(g.shape) < SIDE:
            raise RecipeError(
                f"recipe patch_scale {scale!r}: the image {img.name} becomes {g.shape}, smaller than the {SIDE}x{SIDE} "
                "patches; expected a larger patch_scale"
            )
        g.setflags(write=False)
        out.append(g)
    return tuple(out)


@functools.cache
def accepted_windows(std_threshold: float, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Per image, the flat indices (into the window grid) of windows whose std >= std_threshold."""
    out = []
    for img, gray in zip(load_images(), grays(scale), strict=True):
        idx = np.flatnonzero(window_std(gray) >= std_threshold)
        if idx.size == 0:
            raise RecipeError(
                f"recipe std_threshold {std_threshold!r} (patch_scale {scale!r}): no {SIDE}x{SIDE} patch of the image "
                f"{img.name} has a std that high, so no patch of it could ever be drawn; expected a lower std_threshold"
            )
        idx.setflags(write=False)
        out.append(idx)
    return tuple(out)


def rejection_rates(std_threshold: float, scale: float = 1.0) -> dict[str, float]:
    """Fraction of windows each image rejects at this threshold (for the manifest and reports)."""
    out = {}
    for img, gray, acc in zip(load_images(), grays(scale), accepted_windows(std_threshold, scale), strict=True):
        total = (gray.shape[0] - SIDE + 1) * (gray.shape[1] - SIDE + 1)
        out[img.name] = round(1.0 - acc.size / total, 6)
    return out


def image_probabilities(std_threshold: float, redraw: str, scale: float = 1.0) -> np.ndarray:
    """Probability that a kept patch comes from each image, under the redraw rule."""
    if redraw not in REDRAW_RULES:
        raise RecipeError(f"recipe redraw {redraw!r}: expected one of {REDRAW_RULES}")
    n = len(load_images())
    if redraw == "position":
        return np.full(n, 1.0 / n)
    frac = np.array([1.0 - r for r in rejection_rates(std_threshold, scale).values()])
    return frac / frac.sum()


def sample_image_ids(
    n: int, generator: np.random.Generator, std_threshold: float, redraw: str, scale: float = 1.0
) -> np.ndarray:
    """Which image each of n patches comes from (int64)."""
    return generator.choice(len(load_images()), size=n, p=image_probabilities(std_threshold, redraw, scale))


def extract_patches(
    image_ids: np.ndarray, generator: np.random.Generator, std_threshold: float, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform accepted 28x28 patch of each given image: (patches float64 (n, 784), window index (n,))."""
    images, accepted = grays(scale), accepted_windows(std_threshold, scale)
    pick = generator.random(len(image_ids))  # one uniform per patch, in the order of the patches
    patches = np.empty((len(image_ids), SIDE * SIDE))
    window = np.empty(len(image_ids), dtype=np.int64)
    for i, (img, acc) in enumerate(zip(images, accepted, strict=True)):
        rows = np.flatnonzero(image_ids == i)
        if rows.size == 0:
            continue
        flat = acc[np.minimum((pick[rows] * acc.size).astype(np.int64), acc.size - 1)]
        width = img.shape[1] - SIDE + 1
        views = np.lib.stride_tricks.sliding_window_view(img, (SIDE, SIDE))
        patches[rows] = views[flat // width, flat % width].reshape(rows.size, -1)
        window[rows] = flat
    return patches, window


def sample_patches(
    n: int,
    generator: np.random.Generator,
    std_threshold: float = 0.05,
    redraw: str = "image_and_position",
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n background patches: (patches float64 (n, 784) in [0, 1], image ids (n,), window indices (n,))."""
    ids = sample_image_ids(n, generator, std_threshold, redraw, scale)
    patches, window = extract_patches(ids, generator, std_threshold, scale)
    return patches, ids, window


def stretch(patches: np.ndarray, rule: str = "none") -> np.ndarray:
    """Patches (n, 784) as cut ("none") or each stretched linearly to span [0, 1] ("minmax")."""
    if rule == "none":
        return patches
    if rule != "minmax":
        raise RecipeError(f"patch_contrast must be 'none' or 'minmax', got {rule!r}")
    lo, hi = patches.min(1, keepdims=True), patches.max(1, keepdims=True)
    return (patches - lo) / np.maximum(hi - lo, 1e-12)


def image_records() -> list[dict[str, object]]:
    """Name, file name, shape and SHA-256 of each image, for manifests."""
    return [
        {"name": i.name, "file": i.path.name, "shape": list(i.gray.shape), "sha256": i.sha256} for i in load_images()
    ]
