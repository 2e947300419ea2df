"""The published Larochelle et al. 2007 files: find or download the zip, verify its SHA1, parse the .amat files.

Each zip (base address BASE_URL) holds a train(+valid) and a test .amat file: one example per line, 784
space-separated floats in [0, 1] (the 28x28 image) then the label. Validation is the last rows of the
train file (2000; 200 for rect). The result has the same form as a generated dataset: x uint8 (n, 784)
(round(255 v)), upright and row-major, and y uint8.

Orientation: bg-rand and bg-img store each image transposed (skdata and pylearn2 agree), so they are
transposed back. For rot-bg-img the loaders disagree and the files could not be inspected here (no
network); the default [P] is no transpose, as for rot, which comes from the same "_new" generation.
Pass `transpose=True` if digits such as 2, 3, 7 show mirrored (a transposed rotated digit looks mirrored).
"""

from __future__ import annotations

import io
import os
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.common.io import atomic_path, file_digest
from pipeline.data.arrays import DataFileError
from pipeline.data.benchmarks.common import PIXELS, SIDE, Arrays, check_arrays, to_uint8
from pipeline.data.mnist import OFFLINE_ENV, mirror_folders

BASE_URL = "http://www.iro.umontreal.ca/~lisa/icml2007data/"
SUBFOLDER = "larochelle2007"  # a mirror may hold the zips at <mirror>/<zip> or <mirror>/larochelle2007/<zip>


@dataclass(frozen=True)
class PublishedFile:
    zip: str
    train: str
    test: str
    sha1: str
    valid: int = 2000
    transpose: bool = False


PUBLISHED: dict[str, PublishedFile] = {
    "basic": PublishedFile(
        "mnist.zip", "mnist_train.amat", "mnist_test.amat", "14ac2e9135705499b80bf7efac981377940150c8"
    ),
    "rot": PublishedFile(
        "mnist_rotation_new.zip",
        "mnist_all_rotation_normalized_float_train_valid.amat",
        "mnist_all_rotation_normalized_float_test.amat",
        "e67f72fa42029f62fd8eb92b0638c1b9761c9a63",
    ),
    "bg-rand": PublishedFile(
        "mnist_background_random.zip",
        "mnist_background_random_train.amat",
        "mnist_background_random_test.amat",
        "75e11ec966459c1162979e78ab4e21f9ab7fb5cd",
        transpose=True,
    ),
    "bg-img": PublishedFile(
        "mnist_background_images.zip",
        "mnist_background_images_train.amat",
        "mnist_background_images_test.amat",
        "fb6fce9ed6372e0068ff7cb3e7b9e78dbda7ceae",
        transpose=True,
    ),
    "rot-bg-img": PublishedFile(
        "mnist_rotation_back_image_new.zip",
        "mnist_all_background_images_rotation_normalized_train_valid.amat",
        "mnist_all_background_images_rotation_normalized_test.amat",
        "902bb7e96136dd76e9f2924d7fdb9eb832f7bc33",
    ),
    "rect": PublishedFile(
        "rectangles.zip",
        "rectangles_train.amat",
        "rectangles_test.amat",
        "b8d456b1f83bea5efebe76a47a9535adc4b72586",
        valid=200,
    ),
    "rect-img": PublishedFile(
        "rectangles_images.zip",
        "rectangles_im_train.amat",
        "rectangles_im_test.amat",
        "2700ba92129ae195e93070d8b27f830323573a57",
    ),
    "convex": PublishedFile(
        "convex.zip", "convex_train.amat", "50k/convex_test.amat", "61eab3c60e0e1caeaa0b82abf827f1809cfd2ef9"
    ),
}


def sha1_of(path: Path) -> str:
    return file_digest(path, "sha1")


def verify_sha1(path: Path, expected: str) -> None:
    """Raise DataFileError naming `path` unless its SHA1 is `expected`."""
    actual = sha1_of(path)
    if actual != expected:
        raise DataFileError(
            f"{path}: SHA1 {actual} but the published file has {expected} "
            f"({path.stat().st_size:,} bytes; truncated or corrupted). Delete or replace it and run again."
        )


def find_zip(name: str, folders: Sequence[str | Path] = (), download_to: str | Path | None = None) -> Path:
    """The verified zip of dataset `name`: from a local folder or mirror, else downloaded into `download_to`.

    Searched in order: each of `folders`, then the mirrors of $PIPELINE_DATA_MIRROR, as <folder>/<zip> or
    <folder>/larochelle2007/<zip>. A download happens only when `download_to` is given and
    $PIPELINE_OFFLINE is not 1; the file is verified before it is moved into place.
    """
    spec = PUBLISHED[name]
    roots = [Path(f).expanduser() for f in folders] + mirror_folders([])
    candidates = [c for r in roots for c in (r / spec.zip, r / SUBFOLDER / spec.zip)]
    for candidate in candidates:
        if candidate.is_file():
            verify_sha1(candidate, spec.sha1)
            return candidate
    if download_to is None or os.environ.get(OFFLINE_ENV) == "1":
        searched = ", ".join(map(str, candidates)) or "no folder given"
        raise DataFileError(f"{spec.zip}: missing; looked in {searched} (download it from {BASE_URL}{spec.zip})")
    target = Path(download_to) / spec.zip
    with atomic_path(target) as tmp:
        try:
            urllib.request.urlretrieve(BASE_URL + spec.zip, tmp)
        except OSError as exc:
            raise DataFileError(f"{spec.zip}: download from {BASE_URL}{spec.zip} failed: {exc}") from None
        verify_sha1(tmp, spec.sha1)
    return target


def parse_amat(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of 784 floats then a label -> (x float64 (n, 784), y int64); DataFileError naming `source` if malformed."""
    try:
        table = np.loadtxt(io.BytesIO(data), dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataFileError(f"{source}: malformed or truncated .amat ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] != PIXELS + 1:
        raise DataFileError(f"{source}: expected rows of {PIXELS + 1} numbers, got shape {table.shape}")
    x, label = table[:, :PIXELS], table[:, PIXELS]
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise DataFileError(f"{source}: pixel values outside [0, 1]")
    y = np.rint(label).astype(np.int64)
    if np.abs(label - y).max() > 1e-6 or y.min() < 0 or y.max() > 9:
        raise DataFileError(f"{source}: labels must be integers 0-9")
    return x, y


def load_published(
    name: str,
    zip_path: str | Path,
    expected_sha1: str | None = "published",
    transpose: bool | None = None,
    valid: int | None = None,
) -> Arrays:
    """Read a published zip into {split: (x uint8 (n, 784), y uint8)}, upright.

    expected_sha1: "published" checks the table's SHA1, a hex string checks that one, None skips the check.
    transpose / valid: override the table's orientation and validation size (e.g. for test fixtures).
    """
    spec = PUBLISHED[name]
    path = Path(zip_path)
    if not path.is_file():
        raise DataFileError(f"{path}: missing")
    if expected_sha1 is not None:
        verify_sha1(path, spec.sha1 if expected_sha1 == "published" else expected_sha1)
    parts = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for part in ("train", "test"):
                member = getattr(spec, part)
                try:
                    data = zf.read(member)
                except KeyError:
                    raise DataFileError(f"{path}: has no member {member}") from None
                parts[part] = parse_amat(data, f"{path}:{member}")
    except (zipfile.BadZipFile, EOFError, OSError) as exc:  # includes CRC errors from a damaged member
        raise DataFileError(f"{path}: unreadable zip ({exc})") from None
    n_valid = spec.valid if valid is None else valid
    (x_tv, y_tv), (x_test, y_test) = parts["train"], parts["test"]
    if len(y_tv) <= n_valid:
        raise DataFileError(f"{path}:{spec.train}: {len(y_tv)} rows, not more than the {n_valid} validation rows")
    flip = spec.transpose if transpose is None else transpose

    def finish(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x8 = to_uint8(x)
        if flip:
            x8 = np.ascontiguousarray(x8.reshape(-1, SIDE, SIDE).transpose(0, 2, 1).reshape(-1, PIXELS))
        return x8, y.astype(np.uint8)

    cut = len(y_tv) - n_valid
    return check_arrays(
        {
            "train": finish(x_tv[:cut], y_tv[:cut]),
            "valid": finish(x_tv[cut:], y_tv[cut:]),
            "test": finish(x_test, y_test),
        }
    )
