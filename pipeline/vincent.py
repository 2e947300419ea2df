"""What the Vincent 2008 stages share: the grid of pretraining candidates, file locations, loading."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import torch

from pipeline.data import Split, load_split
from pipeline.params import ModelSpec, VincentParams

INPUT_DIM = 784


def pretrain_path(model: str) -> Path:
    return Path(f"models/pretrain/{model}.pt")


def finetune_path(model: str) -> Path:
    return Path(f"models/finetune/{model}.pt")


def checkpoint_dir(stage: str, model: str) -> Path:
    return Path(f"models/checkpoints/{stage}/{model}")


def metrics_path(stage: str, model: str) -> Path:
    return Path(f"metrics/{stage}/{model}.json")


def stack_kind(spec: ModelSpec) -> str:
    """'rbm' for DBNs, 'ae' for a plain autoencoder stack (SAA), 'dae' for a denoising one (SdA)."""
    if spec.kind == "rbm":
        return "rbm"
    return "dae" if spec.noise > 0 else "ae"


def pretrain_grid(v: VincentParams, spec: ModelSpec) -> list[dict[str, Any]]:
    """Every pretraining candidate of a model: hidden size x learning rate x epochs."""
    p = v.pretrain
    lrs, epochs = (p.rbm_lr, p.rbm_epochs) if spec.kind == "rbm" else (p.ae_lr, p.ae_epochs)
    return [
        {"hidden": h, "lr": lr, "epochs": e, "batch_size": p.batch_size}
        for h, lr, e in itertools.product(p.hidden, lrs, epochs)
    ]


def candidate_name(hparams: dict[str, Any]) -> str:
    return "h{hidden}-lr{lr:g}-e{epochs}".format(**hparams)


def load_splits(v: VincentParams, device: str | torch.device = "cpu") -> dict[str, Split]:
    folder = f"data/prepared/{v.dataset}"
    return {s: load_split(folder, s, device) for s in ("train", "valid", "test")}
