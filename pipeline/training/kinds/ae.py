"""Kind `ae`: tied sigmoid autoencoders with masking noise (SAA-3 with noise 0, SdA-3 above), trained in lockstep.

Vincent et al. 2008: each example loses a fixed count round(nu * d) of its components, chosen afresh for every
minibatch, and the layer reconstructs the clean input (the autoencoder family's `TiedAEGroup`, its masking and its starting weights).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from pipeline.training.families.autoencoder import TiedAEGroup, initial_weights
from pipeline.training.layer_kind import LayerKind


def group(w0: torch.Tensor, lrs: Sequence[float], noise: Sequence[float], top: str, options: Sequence) -> TiedAEGroup:
    return TiedAEGroup(w0, lrs, noise)


KIND = LayerKind("ae", group, initial_weights)
