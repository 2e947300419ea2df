"""Errors raised by training code.

Every `TrainingError` names the model, the layer and the epoch it happened at, so that a failed
DVC stage says where to look without a debugger.  `CheckpointError` names the checkpoint file.
"""

from __future__ import annotations

import os

from pipeline.core.errors import StageError


class TrainingError(StageError):
    """Training cannot go on; the message says which model, layer and epoch."""

    def __init__(self, message: str, *, model: str, layer: int | None = None, epoch: int | None = None):
        self.model, self.layer, self.epoch = model, layer, epoch
        where = f"model={model}, layer={'-' if layer is None else layer}, epoch={'-' if epoch is None else epoch}"
        super().__init__(f"[{where}] {message}")


class BadInputError(TrainingError, ValueError):
    """The data cannot be fed to this model: wrong width, or outside [0, 1] for a cross-entropy loss."""


class DivergenceError(TrainingError):
    """The loss or the weights became NaN or infinite; the last good checkpoint is left untouched."""


class CheckpointError(StageError):
    """A checkpoint file exists but cannot be read (truncated, corrupt or of the wrong layout)."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        super().__init__(f"checkpoint {self.path} is unusable: {reason}. Delete it to start afresh.")
