"""How big the table's searches are: the lockstep group size, and whether a stack's widths fit in memory (its
candidates: `layer_kind.stack_specs`)."""

from __future__ import annotations

import math

import psutil
import torch

from pipeline.core.errors import StageError
from pipeline.params import StackParams, VincentParams

INPUT_DIM = 784
GPU_GROUP = 16  # candidates per lockstep group on CUDA when vincent.pretrain.group_size is 0
FLOAT_BYTES = 4
GB = 1e9
# What torch's allocators say when an allocation fails: torch.OutOfMemoryError (CUDA) or DefaultCPUAllocator's
# RuntimeError ("can't allocate memory" on Linux, "not enough memory" on Windows).
OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory", "cannot allocate memory")


def group_size(v: VincentParams, device: torch.device) -> int:
    """vincent.pretrain.group_size, or for 0: 16 on CUDA, 1 on a CPU (where lockstep groups do not pay)."""
    if v.pretrain.group_size:
        return v.pretrain.group_size
    return GPU_GROUP if device.type == "cuda" else 1


def pretrain_bytes(hidden: int, s: StackParams, n_examples: int, group: int) -> tuple[int, int]:
    """A lower bound on the bytes pretraining a stack's candidates of `hidden` units needs: (every candidate's layers,
    kept until the stage saves them; one lockstep group's training buffers).

    A group member's layer is held at least three times while it trains (its initial draw, the weights updated in
    place, the epoch's checkpoint copy), and a layer above the first reads the codes of the n_examples train + valid
    inputs and writes its own."""
    candidates = len(s.lr) * len(s.noise) * len(s.epochs) * math.prod(len(v) for v in s.options.values())
    widths = [INPUT_DIM] + [hidden] * s.layers
    layer_weights = [hidden * d_in + hidden + d_in for d_in in widths[:-1]]  # W, b, visible bias c
    kept = candidates * sum(layer_weights)
    codes = 2 * n_examples * hidden if s.layers > 1 else 0
    training = min(group, candidates) * (3 * max(layer_weights) + codes)
    return kept * FLOAT_BYTES, training * FLOAT_BYTES


def check_pretrain_memory(v: VincentParams, stack: str, s: StackParams, n_examples: int, device: torch.device) -> None:
    """Refuse (StageError naming vincent.pretrain.hidden) a width whose candidates cannot fit in memory, before
    anything is allocated: the host's available memory, and on CUDA the device's free memory for a group's buffers."""
    group = group_size(v, device)
    host = psutil.virtual_memory().available
    gpu = torch.cuda.mem_get_info(device)[0] if device.type == "cuda" else None
    for h in v.pretrain.hidden:
        kept, training = pretrain_bytes(h, s, n_examples, group)
        checks = (
            [(kept + training, host, "available")]
            if gpu is None
            else [(kept, host, "available"), (training, gpu, f"free on {device}")]
        )
        for need, have, where in checks:
            if need > have:
                raise StageError(
                    f"vincent.pretrain.hidden = {h}: pretraining vincent.stacks.{stack} ({s.layers} layer(s) of {h} "
                    f"units) needs about {need / GB:,.1f} GB of memory, {have / GB:,.1f} GB {where}; expected a width "
                    "whose stack fits (the paper's is 1000 units)"
                )


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is torch's allocator failing (CUDA's OutOfMemoryError, the CPU allocator's RuntimeError)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OUT_OF_MEMORY)
    )
