"""The stacks pipeline.extend pretrains, kept on disk so that a follow-up run reads them instead of training again."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class StackCache:
    """The stacks extend pretrains, kept under models/extend/<dataset>/<stack>/ so a follow-up does not pay again.

    A file is named by the candidate and a hash of everything its weights depend on (layers, seed, minibatch,
    device, torch threads, the data's fingerprint and the pretraining code: the digests of `code`, the pretrain
    stage's .py files), so a changed input is a miss, never a stale hit."""

    def __init__(
        self, dataset, stack, layers, seed, batch_size, device, x_train, x_valid, code: Sequence[Path]
    ) -> None:
        import torch

        from pipeline.common.io import file_digest
        from pipeline.core import paths
        from pipeline.training.checkpoints import data_fingerprint

        self.root = paths.extend_cache(dataset, stack)
        self.context = [
            layers,
            seed,
            batch_size,
            device.type,
            torch.get_num_threads(),
            data_fingerprint(x_train),
            data_fingerprint(x_valid),
            [file_digest(f, "sha256") for f in code],
        ]

    def path(self, spec) -> Path:
        from pipeline.training.checkpoints import config_hash

        return self.root / f"{spec.name}-{config_hash(spec, *self.context)}.pt"

    def load(self, spec) -> list | None:
        """The candidate's weights, or None when this context has not pretrained it. A damaged file (a run killed
        while the disk was full) is a DamagedFileError naming it, not a miss: deleting it is the user's choice."""
        import pickle

        import torch

        from pipeline.common.io import DamagedFileError

        path = self.path(spec)
        if not path.is_file():
            return None
        try:
            obj = torch.load(path, weights_only=True)
        except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        else:
            if isinstance(obj, dict) and "weights" in obj:
                return obj["weights"]
            why = "no 'weights' in it"
        raise DamagedFileError(
            f"{path}: a stack pipeline.extend pretrained cannot be read ({why}); the file is truncated or corrupt: "
            "delete it, and the next run pretrains that candidate again"
        )

    def save(self, spec, weights: list) -> None:
        from pipeline.common.io import save_torch

        save_torch({"spec": spec.name, "weights": weights}, self.path(spec))
