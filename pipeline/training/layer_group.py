"""One lockstep group of pretraining layers, trained for its epochs: the inner loop of `search.pretrain_stacks`.

The candidates of a group share a shape (kind, width, epochs) and the minibatch order; each has its own learning
rate (and masking level, and noise stream). The group is run by `run_epochs`, so it is checkpointed each epoch and
resumes where it stopped. A candidate whose training or validation loss stops being finite or passes
DIVERGED_FACTOR times its untrained validation loss (about log 2 per input) has diverged (too large a rate): it is
frozen at its initial weights and reported, and the others go on. The kind (`layer_kind`) makes the layers;
with `labels`, the layer is the lab DBN's joint top RBM over (input, label) (families/rbm.py), and the exact
P(y | input) is scored on validation each epoch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from pipeline.common.seeding import make_generator
from pipeline.training.checkpoints import config_hash, data_fingerprint
from pipeline.training.layer_kind import Options, load_kind
from pipeline.training.loop import History, run_epochs

CHUNK_ROWS = 4096  # rows gathered and corrupted at once
DIVERGED_FACTOR = 10.0  # a loss above this many times the untrained layer's validation loss has diverged
log = logging.getLogger(__name__)


@dataclass
class LayerResult:
    """One candidate's layer: its per-epoch history, where it diverged (or None), its weights at the kept epochs:
    epoch -> (W, b, c), with (U, e) after them for a joint top."""

    history: History
    diverged: dict | None
    snapshots: dict[int, tuple]


class _Snapshots:
    """The weights at the snapshot epochs, the noise generator's state and the candidates that diverged (by
    index in the group), checkpointed with the group (run_epochs' `extra`; run_epochs saves the order generator)."""

    def __init__(self, noise: torch.Generator):
        self.saved: dict[int, dict[str, torch.Tensor]] = {}
        self.diverged: dict[int, dict] = {}
        self.noise = noise

    def state_dict(self) -> dict:
        return {"saved": self.saved, "noise": self.noise.get_state(), "diverged": self.diverged}

    def load_state_dict(self, state: dict) -> None:
        self.saved = state["saved"]
        self.noise.set_state(state["noise"])
        self.diverged = state.get("diverged", {})


def train_layers(
    kind: str,
    hidden: int,
    lrs: Sequence[float],
    noise: Sequence[float],
    names: Sequence[str],
    x: torch.Tensor,
    xv: torch.Tensor,
    *,
    layer: int,
    epochs: int,
    keep: set[int],
    seed: int,
    batch_size: int,
    device: torch.device,
    checkpoint_dir: str | Path | None,
    progress: bool,
    labels: tuple[torch.Tensor, torch.Tensor] | None = None,
    options: Sequence[Options] | None = None,
) -> list[LayerResult]:
    """Train K layers (x: (K or 1, n, d) inputs, xv the validation inputs) for `epochs`; one result per candidate.

    `names` name the candidates (their noise stream follows from them, so a candidate does not depend on the others
    of its group); `options` are each candidate's own hyperparameters (the kind's); `keep` are the epochs whose
    weights are returned.
    """
    layer_kind = load_kind(kind)
    w0 = layer_kind.initial_weights(layer, (hidden, x.shape[-1]), seed).to(device)
    top = "softmax" if labels is None else "joint"
    model = layer_kind.group(w0, lrs, noise, top, [{}] * len(lrs) if options is None else options)
    y, yv = (None, None) if labels is None else (t.to(device) for t in labels)
    order = make_generator(seed, "pretrain", kind, layer, device=device)
    noise_gen = make_generator(seed, "noise", layer, *names, device=device)
    valid_in = model.corrupt(xv, make_generator(seed, "valid", layer, device=device))

    def valid_loss() -> torch.Tensor:
        return model.loss(valid_in, xv, yv)

    snaps = _Snapshots(noise_gen)
    chunk = batch_size * max(1, CHUNK_ROWS // batch_size)
    limits = DIVERGED_FACTOR * valid_loss()
    initial = {k: v.clone() for k, v in model.state_dict().items()}

    def train_epoch(epoch: int) -> dict[str, float]:
        for i in snaps.diverged:  # frozen (after a resume too: the rates are not checkpointed)
            model.lr[i] = 0.0
        perm = torch.randperm(x.shape[1], generator=order, device=device)
        total = torch.zeros(len(names), dtype=torch.float64, device=device)
        for start in range(0, len(perm), chunk):
            rows = perm[start : start + chunk]
            clean = x[:, rows]
            noisy = model.corrupt(clean, noise_gen)
            for s in range(0, clean.shape[1], batch_size):
                batch, labels_in = clean[:, s : s + batch_size], None if y is None else y[rows[s : s + batch_size]]
                # step returns the mean loss per example of the minibatch: weighted by its rows, the epoch's sum
                total += model.step(batch, noisy[:, s : s + batch_size], noise_gen, labels_in) * batch.shape[1]
        valid = valid_loss()
        errors = model.errors(valid_in, yv).tolist() if labels is not None else None
        metrics = {}
        for i, values in enumerate(zip(total / x.shape[1], valid, strict=True)):
            if i in snaps.diverged:
                continue
            losses = {"train_loss": float(values[0]), "valid_loss": float(values[1])}
            bad = [k for k, v in losses.items() if not math.isfinite(v) or v > float(limits[i])]
            if bad:
                value = losses[bad[0]]
                snaps.diverged[i] = {
                    "epoch": epoch,
                    "loss": bad[0],
                    "limit": float(limits[i]),
                    "value": value if math.isfinite(value) else str(value),
                }
                log.warning(
                    "%s layer %d diverged at epoch %d: %s %.4g > %.4g (%.0fx the untrained loss); frozen",
                    names[i],
                    layer,
                    epoch,
                    bad[0],
                    value,
                    limits[i],
                    DIVERGED_FACTOR,
                )
                for key, tensor in model.state_dict().items():  # finite again, so the others' checks still hold
                    tensor[i] = initial[key][i]
                model.lr[i] = 0.0
            elif errors is not None:
                losses["valid_error"] = errors[i]
            metrics |= {f"{i}.{k}": v for k, v in losses.items() if math.isfinite(v)}
        if epoch in keep:
            snaps.saved[epoch] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return metrics

    fingerprints = [data_fingerprint(x), data_fingerprint(xv)]
    if labels is not None:
        fingerprints += [data_fingerprint(t.float()) for t in labels]
    run_hash = config_hash(kind, list(names), epochs, batch_size, seed, device.type, *fingerprints)
    path = None if checkpoint_dir is None else Path(checkpoint_dir) / f"layer{layer}-{run_hash}.pt"
    history = run_epochs(
        train_epoch,
        name=f"{names[0]}+{len(names) - 1}" if len(names) > 1 else names[0],
        layer=layer,
        module=model,
        generator=order,
        epochs=epochs,
        extra=snaps,
        checkpoint_path=path,
        config_hash=run_hash,
        on_epoch=None,
        progress=progress,
    )
    keys = model.STATE
    results = []
    for i in range(len(names)):
        kinds = ("train_loss", "valid_loss") + (("valid_error",) if labels is not None else ())
        results.append(
            LayerResult(
                {k: history.get(f"{i}.{k}", []) for k in kinds},
                snaps.diverged.get(i),
                {e: tuple(snaps.saved[e][k][i] for k in keys) for e in keep},
            )
        )
    return results
