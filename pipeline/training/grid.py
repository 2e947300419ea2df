"""The grids of params.yaml as candidates: a stack's pretraining specs, the lockstep group size."""

from __future__ import annotations

import itertools

import torch

from pipeline.params import StackParams, VincentParams
from pipeline.training.search import StackSpec

INPUT_DIM = 784
GPU_GROUP = 16  # candidates per lockstep group on CUDA when vincent.pretrain.group_size is 0


def stack_specs(hidden: list[int], s: StackParams) -> list[StackSpec]:
    """Every pretraining candidate of a stack (`VincentParams.stack_for`: a row's own grid) with vincent.pretrain.hidden
    units per layer: hidden x lr x noise x epochs, in a fixed order."""
    return [
        StackSpec(s.kind, h, lr, e, nu, s.top) for h, lr, nu, e in itertools.product(hidden, s.lr, s.noise, s.epochs)
    ]


def group_size(v: VincentParams, device: torch.device) -> int:
    """vincent.pretrain.group_size, or for 0: 16 on CUDA, 1 on a CPU (where lockstep groups do not pay)."""
    if v.pretrain.group_size:
        return v.pretrain.group_size
    return GPU_GROUP if device.type == "cuda" else 1
