"""Train one `zoo.layers` entry with the code that pretrains the table's stacks.

`layer_group.train_layers`, the table's pretraining loop, runs the entry as a group of one candidate: the kind's own
corruption and closed-form SGD step, its starting weights, the entry's minibatch size and rate. The result is loaded
into the dense autoencoder it is (`layers.as_variant`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipeline.models.dense_ae import DenseAutoencoder
from pipeline.params.zoo import ZooLayer
from pipeline.training.layer_group import train_layers
from pipeline.training.loop import History
from pipeline.zoo import registry
from pipeline.zoo.layers import as_variant


def candidate_name(name: str, layer: ZooLayer) -> str:
    """The candidate's name in the training loop (its noise stream follows from it), e.g. zoo-cae-h64-lr0.03."""
    options = "".join(f"-{k}{v:g}" for k, v in sorted(layer.options.items()))
    return f"zoo-{name}-h{layer.hidden}-lr{layer.lr:g}-nu{layer.noise:g}{options}"


def train(
    name: str,
    layer: ZooLayer,
    x: torch.Tensor,
    xv: torch.Tensor,
    *,
    seed: int,
    device: torch.device,
    checkpoint_dir: str | Path | None,
    progress: bool = True,
) -> tuple[DenseAutoencoder, History, dict | None]:
    """Train the layer on x (n, 784), validation xv; the dense autoencoder it is (on the CPU), its per-epoch history
    (train_loss, valid_loss: the kind's own objective per image), and where it diverged (None if it did not)."""
    (result,) = train_layers(
        layer.kind,
        layer.hidden,
        [layer.lr],
        [layer.noise],
        [candidate_name(name, layer)],
        x.to(device).unsqueeze(0),
        xv.to(device).unsqueeze(0),
        layer=0,
        epochs=layer.epochs,
        keep={layer.epochs},
        seed=seed,
        batch_size=layer.batch_size,
        device=device,
        checkpoint_dir=checkpoint_dir,
        progress=progress,
        options=[dict(layer.options)],
    )
    weight, hidden_bias, visible_bias = result.snapshots[layer.epochs][:3]
    model = registry.build(as_variant(layer))
    with torch.no_grad():
        model.weights[0].copy_(weight)
        model.biases[0].copy_(hidden_bias)
        model.decoder_biases[0].copy_(visible_bias)
    return model, result.history, result.diverged
