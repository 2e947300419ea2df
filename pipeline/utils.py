"""Small shared helpers: atomic writes, seeding, device choice.

Every file a stage writes goes through `atomic_path` / `atomic_dir`: the data is written to a
temporary sibling and renamed into place only when complete, so a failed run never leaves a
half-written file where a good one was.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


class DamagedFileError(RuntimeError):
    """A file a stage reads exists but cannot be read (truncated, corrupt, another layout); the message names it."""


@functools.cache
def umask() -> int:
    """The process's file-creation mask, read once (reading it means setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; rename it onto `path` only on success.

    The file gets the mode `open()` would give it (0o666 less the umask), not mkstemp's owner-only 0o600,
    so a team sharing a DVC cache or workspace (`cache.shared group`) can read what a stage wrote.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.chmod(0o666 & ~umask())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; swap it in for `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    tmp.chmod(0o777 & ~umask())  # mkdtemp's 0o700 would hide the folder from the group
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def file_digest(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file's bytes (e.g. 'md5', 'sha1', 'sha256'), read in chunks."""
    with Path(path).open("rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """torch.save `obj` atomically and byte-stably: torch names the archive inside the file after the file,
    so saving straight to a temporary name would make every save of the same tensors differ."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def load_torch(path: str | os.PathLike, what: str, keys: tuple[str, ...] = (), weights_only: bool = False) -> Any:
    """torch.load a file a stage wrote (`what` says which stage writes it), on the CPU.

    A missing file raises FileNotFoundError, one that cannot be read or lacks `keys` DamagedFileError, each naming
    the file and what writes it, instead of torch's traceback.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; it is written by {what}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
        raise DamagedFileError(
            f"{path}: cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); the file is truncated "
            f"or corrupt: restore it with `dvc checkout {path}` or rerun {what}"
        ) from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise DamagedFileError(f"{path}: lacks {missing}; expected the layout {what} writes: rerun it")
    return obj


def write_csv(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    """Write rows (dicts with the same keys) as CSV with a header, atomically; floats with 6 significant digits."""
    import csv

    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()} for row in rows)


def write_history_csv(path: str | os.PathLike, history: dict[str, list[float]]) -> None:
    """Per-epoch curves ({metric: [value per epoch]}) as CSV: one row per epoch, column `epoch` first (1-based); a
    curve that ends early (a candidate that diverged) leaves its later cells empty."""
    epochs = max((len(v) for v in history.values()), default=0)
    write_csv(path, [{"epoch": e, **{k: v[e - 1] if e <= len(v) else "" for k, v in history.items()}}
                     for e in range(1, epochs + 1)])  # fmt: skip


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically as PNG and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed derived from the params seed and a purpose, stable across runs and machines."""
    text = ":".join([str(seed), *map(str, names)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def make_generator(seed: int, *names: object, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch.Generator seeded by `derive_seed(seed, *names)`."""
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *names))
    return g


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and python and ask torch for deterministic kernels."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def get_device(requested: str = "auto") -> torch.device:
    """'auto' picks CUDA when present, else CPU."""
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)
