"""Atomic, byte-stable file I/O: every file a stage writes, and the model files it reads back.

Every file a stage writes goes through `atomic_path` / `atomic_dir`: the data is written to a
temporary sibling and renamed into place only when complete, so a failed run never leaves a
half-written file where a good one was. Inside `output_batch()` the renames wait for the end of the
block, so a stage with several outputs changes all of them or none. A write that the OS refuses (a
read-only folder, a full disk) raises an OSError naming the file being written, not its temporary.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.core.errors import StageError

if TYPE_CHECKING:
    pass


class DamagedFileError(StageError):
    """A file a stage reads exists but cannot be read (truncated, corrupt, another layout); the message names it."""


@functools.cache
def umask() -> int:
    """The process's file-creation mask, read once (reading it means setting it and setting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class OutputBatch:
    """The writes of one `output_batch` block: completed temporaries, renamed into place together at its end."""

    def __init__(self) -> None:
        self._writes: list[tuple[Path, Callable[[], None], Callable[[], None]]] = []  # target, commit, discard
        self._folders: list[Path] = []  # folders the batch made, removed again if it fails

    def writes(self, path: str | os.PathLike) -> bool:
        """Whether the batch will put `path` in place (the file is not there yet inside the block)."""
        return any(target == Path(path) for target, _, _ in self._writes)

    def add(self, target: Path, commit: Callable[[], None], discard: Callable[[], None]) -> None:
        self._writes.append((target, commit, discard))

    def made(self, folders: list[Path]) -> None:
        self._folders += folders

    def commit(self) -> None:
        """Rename every temporary into place, in the order written (renames in one folder need no space)."""
        for i, (target, commit, _) in enumerate(self._writes):
            try:
                with _names_target(target, None):
                    commit()
            except BaseException:
                self._writes = self._writes[i:]
                self.discard(remove_folders=False)
                raise
        self._writes = []

    def discard(self, remove_folders: bool = True) -> None:
        """Remove every temporary (and the folders the batch made, where empty): no target changes."""
        for _, _, discard in reversed(self._writes):
            discard()
        self._writes = []
        for folder in reversed(self._folders if remove_folders else []):
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._folders = []


_batch: contextvars.ContextVar[OutputBatch | None] = contextvars.ContextVar("output_batch", default=None)


@contextlib.contextmanager
def output_batch() -> Iterator[OutputBatch]:
    """All or nothing for a stage's outputs: inside the block `atomic_path` / `atomic_dir` (so `write_json`,
    `write_csv`, `save_figure`, `save_torch`) complete their temporaries, and only when the block ends without an
    error are they renamed into place; on an error they are removed and every target is as it was.

    Inside the block a written target still holds its old content (or is missing): read what was written after the
    block (MLflow's `log_artifact` of a figure), and ask `batch.writes(path)` whether a file will be there. Another
    thread's writes (the timings heartbeat) are not part of the batch. A nested block joins the outer one.
    """
    outer = _batch.get()
    if outer is not None:
        yield outer
        return
    batch = OutputBatch()
    token = _batch.set(batch)
    try:
        yield batch
    except BaseException:
        _batch.reset(token)
        batch.discard()
        raise
    _batch.reset(token)
    batch.commit()


def _is_temporary_of(name: str | os.PathLike, path: Path) -> bool:
    """Whether `name` is one of the temporaries `atomic_path` / `atomic_dir` make beside `path`."""
    name = Path(os.path.abspath(name))
    return name.parent == Path(os.path.abspath(path.parent)) and name.name.startswith(f".{path.name}.")


@contextlib.contextmanager
def _names_target(path: Path, tmp: Path | None) -> Iterator[None]:
    """Re-raise an OSError of writing `path` (its temporary, its folder, no file named) as one naming `path`.

    A file inside a temporary folder is named inside `path`. Errors about other files pass unchanged."""
    try:
        yield
    except OSError as exc:
        name = exc.filename
        if exc.strerror is None or not (name is None or isinstance(name, str | os.PathLike)):
            raise
        full = None if name is None else Path(os.path.abspath(name))
        if full is None or _is_temporary_of(full, path) or full in Path(os.path.abspath(path)).parents:
            where = path
        elif tmp is not None and full.is_relative_to(os.path.abspath(tmp)):
            where = path / full.relative_to(os.path.abspath(tmp))
        else:
            raise
        reason = exc.strerror if exc.strerror.startswith("cannot be written") else f"cannot be written ({exc.strerror})"
        raise OSError(exc.errno, reason, str(where)) from exc  # a write inside an atomic_dir is named once


def _make_parent(path: Path, batch: OutputBatch | None) -> None:
    """Make `path`'s folder; inside a batch, remember the folders made so that a failed batch removes them."""
    missing = [p for p in reversed(path.parent.absolute().parents) if not p.exists()]
    missing += [path.parent.absolute()] if not path.parent.exists() else []
    path.parent.mkdir(parents=True, exist_ok=True)
    if batch is not None:
        batch.made(missing)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; rename it onto `path` only on success (inside `output_batch`,
    when the batch ends).

    The file gets the mode `open()` would give it (0o666 less the umask), not mkstemp's owner-only 0o600,
    so a team sharing a DVC cache or workspace (`cache.shared group`) can read what a stage wrote.
    """
    path = Path(path)
    batch = _batch.get()
    with _names_target(path, None):
        _make_parent(path, batch)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path: Path | None = Path(tmp)
    try:
        with _names_target(path, tmp_path):
            yield tmp_path
            tmp_path.chmod(0o666 & ~umask())
            if batch is None:
                os.replace(tmp_path, path)
        if batch is not None:
            done = tmp_path
            batch.add(path, lambda: os.replace(done, path), lambda: done.unlink(missing_ok=True))
            tmp_path = None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)


def _swap_in(tmp: Path, path: Path) -> None:
    """Put the folder `tmp` where `path` is, the old `path` (if any) removed."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory next to `path`; swap it in for `path` only on success (inside `output_batch`,
    when the batch ends)."""
    path = Path(path)
    batch = _batch.get()
    with _names_target(path, None):
        _make_parent(path, batch)
        tmp: Path | None = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        with _names_target(path, tmp):
            tmp.chmod(0o777 & ~umask())  # mkdtemp's 0o700 would hide the folder from the group
            yield tmp
            if batch is None:
                _swap_in(tmp, path)
        if batch is not None:
            done = tmp
            batch.add(path, lambda: _swap_in(done, path), lambda: shutil.rmtree(done, ignore_errors=True))
            tmp = None
    finally:
        if tmp is not None:
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
    write_csv(
        path,
        [
            {"epoch": e, **{k: v[e - 1] if e <= len(v) else "" for k, v in history.items()}}
            for e in range(1, epochs + 1)
        ],
    )
