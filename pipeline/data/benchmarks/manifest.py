"""Write a benchmark dataset folder (the prepared-dataset format of pipeline.data.arrays) and its manifest.json.

The manifest records what is needed to trust and reproduce the arrays: dataset name, source ("generated"
or "published"), the seed and split sizes, every recipe parameter (including each [P] choice), the
SHA-256 of every natural image used (with how many patches each split took from it), the published zip's
SHA1 where the data were read from a file, and the SHA-256 of every array written. It holds nothing that
can change while the arrays stay the same, so the folder's DVC hash depends on the data alone: the versions
of the packages that touch the pixels and the images' rejection rates are `provenance()`, which the stage
writes to results/benchmark/<dataset>.json, a file no stage depends on.

`idx_<split>.npy` holds, for the MNIST variants, the index of each example's digit among the 70,000
MNIST images (train file first); for the other datasets, the example's position in its split.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.common.io import atomic_dir, write_json
from pipeline.data.arrays import SPLITS, save_dataset
from pipeline.data.benchmarks.common import Arrays

PACKAGES = ("numpy", "scipy", "scikit-image", "scikit-learn", "imageio", "pillow", "torch")
IMAGE_DATASETS = ("bg-img", "rot-bg-img", "rect-img")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the generators use (and of Python)."""
    out = {"python": platform.python_version()}
    for pkg in PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def array_sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def image_usage(record: dict | None) -> dict[str, dict[str, int]]:
    """Per image name, how many patches each split took from it (from a generator's `record`)."""
    from pipeline.data.benchmarks.images import load_images

    names = [i.name for i in load_images()]
    usage: dict[str, dict[str, int]] = {n: {} for n in names}
    for split, info in (record or {}).items():
        for key in ("image_id", "fg_image", "bg_image"):
            if key in info:
                counts = np.bincount(info[key], minlength=len(names))
                for n, c in zip(names, counts, strict=True):
                    usage[n][split] = usage[n].get(split, 0) + int(c)
    return usage


def build_manifest(
    name: str,
    arrays: Arrays,
    seed: int | None,
    recipe: Any = None,
    source: str = "generated",
    record: dict | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest dictionary of one dataset (see the module docstring)."""
    manifest: dict[str, Any] = {
        "dataset": name,
        "source": source,
        "seed": seed,
        "sizes": {s: int(len(arrays[s][1])) for s in SPLITS},
        "recipe": {"class": type(recipe).__name__, **dataclasses.asdict(recipe)} if recipe is not None else None,
        "arrays_sha256": {f"{k}_{s}": array_sha256(arrays[s][i]) for s in SPLITS for i, k in enumerate("xy")},
        "label_counts": {s: np.bincount(arrays[s][1], minlength=2).tolist() for s in SPLITS},
    }
    if source == "generated" and name in IMAGE_DATASETS:
        from pipeline.data.benchmarks.images import image_records

        usage = image_usage(record)
        manifest["images"] = [{**rec, "patches": usage[rec["name"]]} for rec in image_records()]
    if extra:
        manifest.update(extra)
    return manifest


def provenance(name: str, recipe: Any = None, source: str = "generated") -> dict[str, Any]:
    """What describes how a dataset was made without defining its arrays: package versions and, for the image
    rows, the fraction of windows each image's variance threshold rejects."""
    out: dict[str, Any] = {"packages": package_versions()}
    if source == "generated" and name in IMAGE_DATASETS:
        from pipeline.data.benchmarks.images import rejection_rates

        out["rejected_fraction"] = rejection_rates(getattr(recipe, "std_threshold", 0.05))
    return out


def write_dataset(folder: str | Path, arrays: Arrays, manifest: dict[str, Any], record: dict | None = None) -> Path:
    """Atomically write x_/y_/idx_<split>.npy (via save_dataset) and manifest.json into `folder`."""
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        for split in SPLITS:
            x, y = arrays[split]
            save_dataset(tmp, x, y, {split: np.arange(len(y))})
            source = (record or {}).get(split, {}).get("source_index")
            if source is not None:  # MNIST variants: point idx_<split> at the 70,000 MNIST images
                np.save(tmp / f"idx_{split}.npy", np.asarray(source, dtype=np.int64))
        write_json(tmp / "manifest.json", manifest)
    return folder
