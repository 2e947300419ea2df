"""The pretraining candidates of a Vincent 2008 model entry: which stack, which grid points, their names."""

from __future__ import annotations

import itertools
from typing import Any

from pipeline.params import ModelSpec, VincentParams

INPUT_DIM = 784


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
