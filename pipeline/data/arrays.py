"""The prepared-dataset format every data source writes and every stage reads.

A prepared dataset is one folder: `x_<split>.npy` (uint8, n x 784), `y_<split>.npy` (uint8) and,
where the source has them, `idx_<split>.npy` (int64 indices into the source). `.npy` is byte-stable,
so the same params give identical files. `load_split` checks what every stage relies on, so that none of them
meets it deep in torch or scikit-learn: n > 0 rows of 784 pixels, one label per row, each one of the row's classes
(`row_classes`), and at least two classes in a training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.common.io import DamagedFileError

SPLITS = ("train", "valid", "test")
PIXELS = 784  # 28 x 28, every dataset of the table and the zoo
CLASSES = 10
BINARY_ROWS = ("rect", "rect-img", "convex")  # labels 0 and 1 (pipeline/stages/benchmark.py's DESCRIPTIONS)


class DataFileError(DamagedFileError):
    """A raw or prepared data file is missing, truncated, corrupted or holds what no stage can use."""


def row_classes(folder: str | Path) -> int:
    """How many classes the prepared dataset in `folder` (data/prepared/<dataset>) has: 2 for the binary rows."""
    return 2 if Path(folder).name in BINARY_ROWS else CLASSES


def load_array(path: str | Path, mmap: bool = False) -> np.ndarray:
    """np.load a prepared array; a missing, truncated or corrupt file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prepared data not found; run `dvc repro` for the stage that writes it")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(
            f"{path}: cannot be read as a .npy array ({str(exc).splitlines()[0][:200]}); the file is truncated or "
            f"corrupt (an interrupted copy, a full disk): restore it with `dvc checkout {path.parent}` or rerun the "
            "stage that writes it"
        ) from None


def save_dataset(folder: Path, x: np.ndarray, y: np.ndarray, indices: dict[str, np.ndarray]) -> None:
    """Write x_/y_/idx_<split>.npy for each split into `folder` (which the caller makes atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, idx in indices.items():
        np.save(folder / f"x_{split}.npy", np.ascontiguousarray(x[idx]))
        np.save(folder / f"y_{split}.npy", np.ascontiguousarray(y[idx]))
        np.save(folder / f"idx_{split}.npy", idx.astype(np.int64))


@dataclass(frozen=True)
class Split:
    """One split in memory: x float32 in [0, 1] of shape (n, 784), y int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


def load_split(folder: str | Path, split: str, device: str | torch.device = "cpu") -> Split:
    """Load one prepared split as float tensors in [0, 1]."""
    folder = Path(folder)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    x_path, y_path = folder / f"x_{split}.npy", folder / f"y_{split}.npy"
    x_raw, y_raw = load_array(x_path), load_array(y_path)
    if x_raw.dtype != np.uint8 or x_raw.ndim != 2:
        raise DataFileError(
            f"{x_path}: a {x_raw.dtype} array of shape {x_raw.shape}; expected uint8 of shape (n, pixels)"
        )
    if x_raw.shape[1] != PIXELS:
        raise DataFileError(
            f"{x_path}: rows of {x_raw.shape[1]} pixels (shape {x_raw.shape}); expected {PIXELS} (28 x 28 images)"
        )
    if len(x_raw) == 0:
        raise DataFileError(f"{x_path}: no examples (shape {x_raw.shape}); expected a non-empty {split} split")
    if y_raw.ndim != 1 or len(y_raw) != len(x_raw) or not np.issubdtype(y_raw.dtype, np.integer):
        raise DataFileError(
            f"{y_path}: a {y_raw.dtype} array of shape {y_raw.shape}; expected {len(x_raw)} integer labels, one per "
            f"row of {x_path.name}"
        )
    check_labels(y_path, y_raw, row_classes(folder), split)
    x = torch.from_numpy(x_raw).to(device=device, dtype=torch.float32).div_(255.0)
    y = torch.from_numpy(y_raw.astype(np.int64)).to(device)
    return Split(x, y)


def check_labels(path: Path, y: np.ndarray, classes: int, split: str) -> None:
    """Every label one of the `classes` of the row; a training split with at least two of them."""
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= classes:
        bad = np.unique(y[(y < 0) | (y >= classes)])
        raise DataFileError(
            f"{path}: labels {bad[:10].tolist()} outside the row's {classes} classes; expected labels 0 to {classes - 1}"
        )
    if split == "train" and lo == hi:
        raise DataFileError(
            f"{path}: every training label is {lo}, classes found: [{lo}]; expected at least two of the row's "
            f"{classes} classes (an SVM or a classifier cannot be fit on one)"
        )


def load_uint8(path: str | Path) -> torch.Tensor:
    """A uint8 .npy image array as float32 in [0, 1]."""
    return torch.from_numpy(load_array(path)).float().div_(255.0)


def load_splits(folder: str | Path, device: str | torch.device = "cpu") -> dict[str, Split]:
    """train, valid and test of a prepared dataset (load_split checks each, all of the same width)."""
    return {s: load_split(folder, s, device) for s in SPLITS}
