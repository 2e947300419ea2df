"""Checkpoints: atomic saves, and loads that refuse a file written for another configuration.

A checkpoint carries a hash of everything that shapes the run (`config_hash`) and cheap fingerprints
of its data (`data_fingerprint`); `load_checkpoint` returns it only when the hash matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from pipeline.common.io import save_torch
from pipeline.training.errors import CheckpointError

CHECKPOINT_FORMAT = 1


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"__type__": type(obj).__name__, **_jsonable(dataclasses.asdict(obj))}
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.device | Path):
        return str(obj)
    return obj


def config_hash(*parts: Any) -> str:
    """Stable hash of dataclasses, mappings, lists and scalars (everything that shapes a training run)."""
    text = json.dumps(_jsonable(list(parts)), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def data_fingerprint(x: torch.Tensor) -> list:
    """Shape, dtype and two float64 sums of `x`: cheap, changes when the data or its row order changes."""
    x = x.reshape(1) if x.dim() == 0 else x
    row_sums = x.reshape(len(x), -1).sum(1, dtype=torch.float64)
    position = torch.arange(1, len(x) + 1, dtype=torch.float64, device=x.device)
    return [list(x.shape), str(x.dtype), float(row_sums.sum()), float(row_sums @ position)]


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """torch.save `state` atomically: a crash mid-write leaves the previous checkpoint in place."""
    save_torch({"format": CHECKPOINT_FORMAT, **state}, path)


RUN_KEYS = ("epoch", "history", "model", "generator")  # what run_epochs saves


def load_checkpoint(path: str | os.PathLike, expected_hash: str, required: tuple[str, ...] = RUN_KEYS) -> dict | None:
    """The checkpoint at `path` if it exists and was written for `expected_hash`, else None.

    A file that exists but cannot be read raises `CheckpointError`; one written for another
    configuration is ignored with a warning (it is overwritten after the first new epoch).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, bad pickle, ...: all mean the same to the caller
        raise CheckpointError(path, f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(path, f"expected a dict, found {type(state).__name__}")
    missing = {"format", "config_hash", *required} - set(state)
    if missing:
        raise CheckpointError(path, f"missing entries {sorted(missing)}")
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(path, f"format {state['format']}, expected {CHECKPOINT_FORMAT}")
    if state["config_hash"] != expected_hash:
        warnings.warn(f"checkpoint {path} belongs to another configuration; starting afresh", stacklevel=2)
        return None
    return state
