"""Supervised fine-tuning of an `MLPClassifier` by minibatch SGD with early stopping.

The loss is the softmax cross-entropy (mean over the minibatch).  After every epoch the validation
error is measured; training stops when it has not improved for `patience` epochs and the weights of the
best epoch are restored.  Every epoch can be checkpointed (see `pipeline.training.loop.run_epochs`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.mlp import MLPClassifier
from pipeline.training.checkpoints import config_hash, data_fingerprint
from pipeline.training.errors import BadInputError
from pipeline.training.loop import EpochCallback, History, backward_step, check_input, minibatch_epoch, run_epochs
from pipeline.utils import get_device, make_generator


@dataclass
class FinetuneResult:
    history: History  # train_loss, train_error (running, over the epoch's minibatches), valid_error
    best_epoch: int  # 1-based; the model holds this epoch's weights
    best_valid_error: float


class EarlyStopping:
    """Keeps the best weights seen so far and says when `patience` epochs passed without improvement."""

    def __init__(self, module: nn.Module, patience: int):
        self.module, self.patience = module, patience
        self.best_error, self.best_epoch, self.bad_epochs = math.inf, 0, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    def update(self, epoch: int, error: float) -> None:
        if error < self.best_error:
            self.best_error, self.best_epoch, self.bad_epochs = error, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in self.module.state_dict().items()}
        else:
            self.bad_epochs += 1

    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def restore_best(self) -> None:
        if self.best_state is not None:
            self.module.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {
            "best_error": self.best_error,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict) -> None:
        self.best_error, self.best_epoch = state["best_error"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


def check_labels(y: torch.Tensor, n: int, n_classes: int, *, model: str) -> None:
    if y.dtype != torch.int64 or y.shape != (n,):
        raise BadInputError(
            f"labels must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}", model=model
        )
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise BadInputError(
            f"labels must lie in [0, {n_classes}), got [{int(y.min())}, {int(y.max())}]", model=model
        )


def finetune(
    mlp: MLPClassifier,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_valid: torch.Tensor,
    y_valid: torch.Tensor,
    lr: float,
    max_epochs: int,
    patience: int,
    batch_size: int,
    seed: int,
    checkpoint_path: str | os.PathLike | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    device: str | torch.device = "auto",
) -> FinetuneResult:
    """Fine-tune `mlp` in place (moved to `device`); see the module docstring.

    `on_epoch(None, epoch, metrics)` is called after every epoch with train_loss, train_error, valid_error.
    """
    name = type(mlp).__name__
    device = device if isinstance(device, torch.device) else get_device(device)
    mlp.to(device)
    data = [t.to(device) for t in (x_train, y_train, x_valid, y_valid)]
    x_train, y_train, x_valid, y_valid = data
    for x, y in ((x_train, y_train), (x_valid, y_valid)):
        check_input(x, width=mlp.input_dim, unit_interval=False, model=name, epoch=1)
        check_labels(y, len(x), mlp.n_classes, model=name)
    generator = make_generator(seed, "finetune", device=device)
    opt = torch.optim.SGD(mlp.parameters(), lr=lr)
    early = EarlyStopping(mlp, patience)
    run_hash = config_hash(  # without `max_epochs`: a finished run can be extended by resuming it
        name,
        mlp.sizes,
        mlp.n_classes,
        [data_fingerprint(t) for t in mlp.state_dict().values()],  # the starting weights (pretrained or not)
        lr,
        patience,
        batch_size,
        seed,
        device.type,
        *(data_fingerprint(t.float()) for t in data),
    )

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = mlp(x_train[idx])
        loss = F.cross_entropy(logits, y_train[idx])
        backward_step(opt, loss)
        return {"train_loss": loss.detach(), "train_error": (logits.argmax(1) != y_train[idx]).float().mean()}

    def train_epoch(epoch: int) -> dict[str, float]:
        mlp.train()
        metrics = minibatch_epoch(len(x_train), batch_size, generator, step)
        metrics["valid_error"] = mlp.error_rate(x_valid, y_valid)
        early.update(epoch, metrics["valid_error"])
        return metrics

    history = run_epochs(
        train_epoch,
        name=name,
        module=mlp,
        generator=generator,
        epochs=max_epochs,
        optimizer=opt,
        extra=early,
        should_stop=early.should_stop,
        checkpoint_path=checkpoint_path,
        config_hash=run_hash,
        on_epoch=on_epoch,
        progress=progress,
    )
    early.restore_best()
    return FinetuneResult(history=history, best_epoch=early.best_epoch, best_valid_error=early.best_error)
