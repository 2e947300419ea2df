"""MNIST / Fashion-MNIST: fetch through torchvision, verify, and split into the `basic` and `full` datasets.

Raw files come from `torchvision.datasets.<Class>(root, download=True)`, which checks each file's
md5. Before that, any missing file is copied from a local mirror (a folder in torchvision's layout),
so a machine without internet access is served by e.g. `../shared/data`. A missing, truncated or
corrupted file stops with a `DataFileError` naming the file, never a gzip traceback.

The saved indices (`idx_<split>.npy`, see pipeline.data.arrays) point into the 70,000 images: the
train file 0-59,999, then the test file 60,000-69,999.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from pipeline.common.io import atomic_path, file_digest
from pipeline.common.seeding import derive_seed
from pipeline.data.arrays import DataFileError
from pipeline.params import BasicSplit, FullSplit

SOURCES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision.datasets classes
MIRROR_ENV = "PIPELINE_DATA_MIRROR"
OFFLINE_ENV = "PIPELINE_OFFLINE"  # set to 1 to never try the internet


def dataset_class(source: str):
    """The torchvision dataset class of `source` (torchvision is imported here: only `prepare` needs it)."""
    from torchvision import datasets

    return getattr(datasets, SOURCES[source])


def mirror_folders(configured: list[str]) -> list[Path]:
    """Mirrors from the environment first (PIPELINE_DATA_MIRROR, os.pathsep-separated), then params."""
    env = [p for p in os.environ.get(MIRROR_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in [*env, *configured]]


def stage_raw_files(source: str, root: str | Path, mirrors: list[str]) -> Path:
    """Make sure every raw .gz of `source` sits, md5-verified, in <root>/<Class>/raw; return that folder.

    A file already there must have the right md5. A missing one is copied from the first mirror
    that has it (and must have the right md5 there too); if no mirror has it, torchvision downloads it.
    """
    cls = dataset_class(source)
    raw = Path(root) / cls.__name__ / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for filename, md5 in cls.resources:
        target = raw / filename
        candidates = [target] + [Path(m) / cls.__name__ / "raw" / filename for m in mirror_folders(mirrors)]
        for candidate in candidates:
            if not candidate.is_file():
                continue
            actual = file_digest(candidate, "md5")
            if actual != md5:
                raise DataFileError(
                    f"{candidate}: md5 {actual} but torchvision expects {md5} "
                    f"({candidate.stat().st_size:,} bytes; truncated or corrupted). "
                    "Delete or replace the file and run again."
                )
            if candidate != target:
                with atomic_path(target) as tmp:
                    shutil.copyfile(candidate, tmp)
            break
        else:
            if os.environ.get(OFFLINE_ENV) == "1":
                searched = ", ".join(str(c) for c in candidates)
                raise DataFileError(f"{filename}: missing; looked in {searched} ({OFFLINE_ENV}=1, so no download)")
    return raw


def load_raw(source: str, root: str | Path, mirrors: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (uint8, 70000 x 784; train file first) and labels (uint8) of `source`."""
    raw = stage_raw_files(source, root, mirrors)
    cls = dataset_class(source)
    parts = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=True)
        except RuntimeError as exc:
            missing = [f for f, _ in cls.resources if not (raw / f).is_file()]
            raise DataFileError(
                f"could not get {', '.join(missing) or 'the raw files'} of {cls.__name__} into {raw}: "
                f"not in any mirror ({', '.join(map(str, mirror_folders(mirrors))) or 'none set'}) "
                f"and the download failed:\n{exc}"
            ) from None
        parts.append((ds.data.reshape(len(ds.data), -1).numpy(), ds.targets.numpy().astype(np.uint8)))
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.concatenate([parts[0][1], parts[1][1]])
    return x, y


def split_indices(name: str, sizes: BasicSplit | FullSplit, seed: int) -> dict[str, np.ndarray]:
    """Indices into the 70,000 images for each split of dataset `name` ('basic' or 'full')."""
    if name == "basic":
        perm = np.random.default_rng(derive_seed(seed, "basic-split")).permutation(70_000)
        cut = np.cumsum([sizes.train, sizes.valid, sizes.test])
        return {"train": perm[: cut[0]], "valid": perm[cut[0] : cut[1]], "test": perm[cut[1] : cut[2]]}
    if name == "full":
        return {
            "train": np.arange(sizes.train),
            "valid": np.arange(60_000 - sizes.valid, 60_000),
            "test": np.arange(60_000, 60_000 + sizes.test),
        }
    raise ValueError(f"unknown dataset {name!r}; expected 'basic' or 'full'")
