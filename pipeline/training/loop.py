"""The shared epoch loop: input checks, divergence checks, per-epoch checkpoints and resume.

`run_epochs` drives any per-epoch training function.  After every epoch it checks that the metrics and
the model's tensors are finite, then saves (atomically) the model, the optimizer, the generator state,
the epoch, the history, any extra state and a hash of the configuration.  Called again with the same
configuration hash, it resumes from that checkpoint, so an interrupted run ends bitwise-identical to an
uninterrupted one.  A diverged epoch raises before anything is written: the last good checkpoint stays.

Checkpoint files themselves: pipeline.training.checkpoints. `train_model` is the autograd training loop for the models with a `loss(x, generator)` method
(DenseAutoencoder, ConvAutoencoder, VAE).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from pipeline.common.seeding import get_device, make_generator
from pipeline.training.checkpoints import Stateful, config_hash, data_fingerprint, load_checkpoint, save_checkpoint
from pipeline.training.errors import BadInputError, CheckpointError, DivergenceError

History = dict[str, list[float]]
EpochCallback = Callable[[int | None, int, dict[str, float]], None]  # (layer or None, epoch, metrics)


def check_input(
    x: torch.Tensor,
    *,
    width: int,
    unit_interval: bool,
    model: str,
    layer: int | None = None,
    epoch: int | None = None,
) -> None:
    """Raise `BadInputError` unless `x` is a finite float (n, width) batch, in [0, 1] when asked."""
    ctx = {"model": model, "layer": layer, "epoch": epoch}
    if not torch.is_floating_point(x) or x.dim() < 2 or x[0].numel() != width:
        raise BadInputError(f"expected float inputs of width {width}, got {x.dtype} {tuple(x.shape)}", **ctx)
    if len(x) == 0:
        raise BadInputError("no examples", **ctx)
    if not bool(torch.isfinite(x).all()):
        raise BadInputError("inputs contain NaN or inf", **ctx)
    if unit_interval:
        lo, hi = float(x.min()), float(x.max())
        if lo < 0.0 or hi > 1.0:
            raise BadInputError(f"cross-entropy needs inputs in [0, 1], got values in [{lo:.4g}, {hi:.4g}]", **ctx)


def check_labels(y: torch.Tensor, n: int, n_classes: int, *, model: str) -> None:
    if y.dtype != torch.int64 or y.shape != (n,):
        raise BadInputError(f"labels must be int64 of shape ({n},), got {y.dtype} {tuple(y.shape)}", model=model)
    if n and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise BadInputError(f"labels must lie in [0, {n_classes}), got [{int(y.min())}, {int(y.max())}]", model=model)


def _check_finite(module: nn.Module, metrics: dict[str, float], *, name: str, layer: int | None, epoch: int):
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    bad += [k for k, t in module.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        shown = {k: metrics[k] for k in bad if k in metrics}
        raise DivergenceError(
            f"non-finite values in {bad} {shown or ''}; last good checkpoint kept".rstrip(),
            model=name,
            layer=layer,
            epoch=epoch,
        )


def run_epochs(
    train_epoch: Callable[[int], dict[str, float]],
    *,
    name: str,
    module: nn.Module,
    generator: torch.Generator,
    epochs: int,
    layer: int | None = None,
    optimizer: Stateful | None = None,
    extra: Stateful | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    config_hash: str = "",
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> History:
    """Call `train_epoch(epoch)` for epoch = 1..epochs (1-based) and return the per-epoch history.

    `train_epoch` returns the epoch's metrics (floats).  `extra` holds any further state to checkpoint
    (e.g. early stopping's best weights); `should_stop()` ends the run early (the stop is checkpointed).
    `on_epoch(layer, epoch, metrics)` is called after each epoch trained by this call.
    """
    history: History = {}
    start, stopped = 0, False
    if checkpoint_path is not None:
        state = load_checkpoint(checkpoint_path, config_hash)
        if state is not None and int(state["epoch"]) > epochs:  # trained past what is asked for now
            warnings.warn(f"checkpoint {checkpoint_path} is past epoch {epochs}; starting afresh", stacklevel=2)
            state = None
        if state is not None:
            try:
                module.load_state_dict(state["model"])
                generator.set_state(state["generator"])
                if optimizer is not None:
                    optimizer.load_state_dict(state["optimizer"])
                if extra is not None:
                    extra.load_state_dict(state["extra"])
            except Exception as exc:
                raise CheckpointError(checkpoint_path, f"{type(exc).__name__}: {exc}") from exc
            start, history, stopped = int(state["epoch"]), state["history"], bool(state.get("stopped"))
    desc = name if layer is None else f"{name} layer {layer}"
    bar = tqdm(total=epochs, initial=start, desc=desc, disable=not progress, leave=False)
    try:
        for epoch in range(start + 1, epochs + 1):
            if stopped:
                break
            metrics = {k: float(v) for k, v in train_epoch(epoch).items()}
            _check_finite(module, metrics, name=name, layer=layer, epoch=epoch)
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
            stopped = should_stop is not None and should_stop()
            if checkpoint_path is not None:
                state = {
                    "config_hash": config_hash,
                    "epoch": epoch,
                    "stopped": stopped,
                    "history": history,
                    "model": module.state_dict(),
                    "generator": generator.get_state(),
                    "optimizer": optimizer.state_dict() if optimizer is not None else None,
                    "extra": extra.state_dict() if extra is not None else None,
                }
                save_checkpoint(checkpoint_path, state)
            if on_epoch is not None:
                on_epoch(layer, epoch, metrics)
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in list(metrics.items())[:3]})
    finally:
        bar.close()
    return history


def backward_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One gradient step on `loss`."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def minibatch_epoch(
    n: int, batch_size: int, generator: torch.Generator, step: Callable[[torch.Tensor], Mapping[str, torch.Tensor]]
) -> dict[str, float]:
    """One pass over `n` examples in a fresh permutation drawn from `generator`, `batch_size` at a time.

    `step(idx)` trains on the rows `idx` and returns its batch means (0-d tensors); the result is their
    example-weighted means over the epoch, accumulated on the device in float64 (one sync at the end).
    """
    perm = torch.randperm(n, generator=generator, device=generator.device)
    sums: dict[str, torch.Tensor] = {}
    for idx in perm.split(batch_size):
        for key, value in step(idx).items():
            sums[key] = sums.get(key, 0) + value.double() * len(idx)
    return {k: float(v) / n for k, v in sums.items()}


@dataclass
class TrainResult:
    history: History  # train_loss (+ its parts) and valid_loss per epoch
    epochs: int


def train_model(
    model: nn.Module,
    x_train: torch.Tensor,
    x_valid: torch.Tensor | None = None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    optimizer: str = "adam",
    momentum: float = 0.0,
    checkpoint_path: str | os.PathLike | None = None,
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
    name: str | None = None,
    device: str | torch.device = "auto",
) -> TrainResult:
    """Minibatch training of a model with `loss(x, generator) -> (loss, parts)`, e.g. an autoencoder.

    Each epoch visits the data in a fresh permutation drawn from a generator seeded by `seed`; the same
    generator feeds the model's noise, so a run is reproducible bit for bit on CPU.  The model is moved
    to `device` in place.  valid_loss uses the same noise (a fixed generator) every epoch.
    """
    name = name or type(model).__name__
    device = get_device(str(device)) if not isinstance(device, torch.device) else device
    model.to(device)
    x_train = x_train.to(device)
    unit = bool(getattr(model, "unit_interval", False))
    check_input(x_train, width=model.input_dim, unit_interval=unit, model=name, epoch=1)
    if x_valid is not None:
        x_valid = x_valid.to(device)
        check_input(x_valid, width=model.input_dim, unit_interval=unit, model=name, epoch=1)
    generator = make_generator(seed, "train", name, device=device)
    if optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    else:
        raise ValueError(f"optimizer={optimizer!r}; expected 'adam' or 'sgd'")
    cfg = getattr(model, "config", None)
    run_hash = config_hash(  # without `epochs`: a finished run can be extended by resuming it
        name,
        cfg,
        [data_fingerprint(t) for t in model.state_dict().values() if t.dim() > 0],  # the starting weights
        lr,
        batch_size,
        seed,
        optimizer,
        momentum,
        device.type,
        data_fingerprint(x_train),
        None if x_valid is None else data_fingerprint(x_valid),
    )

    def step(idx: torch.Tensor) -> dict[str, torch.Tensor]:
        loss, parts = model.loss(x_train[idx], generator)
        backward_step(opt, loss)
        return {"train_loss": loss.detach(), **parts}

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        metrics = minibatch_epoch(len(x_train), batch_size, generator, step)
        if x_valid is not None:
            metrics["valid_loss"] = evaluate_loss(
                model, x_valid, batch_size=1024, generator=make_generator(seed, "valid", name, device=device)
            )
        return metrics

    history = run_epochs(
        train_epoch,
        name=name,
        module=model,
        generator=generator,
        epochs=epochs,
        optimizer=opt,
        checkpoint_path=checkpoint_path,
        config_hash=run_hash,
        on_epoch=on_epoch,
        progress=progress,
    )
    return TrainResult(history=history, epochs=len(history.get("train_loss", [])))


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, x: torch.Tensor, *, batch_size: int = 1024, generator: torch.Generator | None = None
) -> float:
    """Mean of `model.loss` over `x` in eval mode (no parameter or buffer updates)."""
    was_training = model.training
    model.eval()
    total = sum(float(model.loss(xb, generator)[0]) * len(xb) for xb in x.split(batch_size))
    model.train(was_training)
    return total / len(x)
