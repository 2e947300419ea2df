"""The table's layer kinds in the zoo (`zoo.layers`) as the dense variants they are.

A `zoo.layers` entry names a kind of pipeline/training/kinds (cae, dae_sp, ae) and is trained by the table's own
pretraining step (`layer_training`). The trained (W, b, c) is a tied sigmoid autoencoder with cross-entropy, so it is
stored and scored as the zoo's dense variant of that shape (`as_variant`), and the zoo's evaluation, figures and report
treat it like any other variant (`with_layers`).
"""

from __future__ import annotations

from pipeline.params import ZooParams, ZooVariant
from pipeline.params.zoo import ZooLayer


def as_variant(layer: ZooLayer) -> ZooVariant:
    """The dense zoo variant the trained layer is: 784 -> hidden, tied, sigmoid both ways, cross-entropy. Its noise
    is the kind's business (inside its training), so the variant is scored on the clean digits and zoo.eval_noises."""
    return ZooVariant(
        title=layer.title,
        sizes=[784, layer.hidden],
        hidden_activation="sigmoid",
        output_activation="sigmoid",
        tied=True,
        loss="cross_entropy",
        epochs=layer.epochs,
        lr=layer.lr,
        reference=layer.reference,
    )


def with_layers(z: ZooParams) -> ZooParams:
    """The zoo with every `zoo.layers` entry among its variants (after them, as their dense variants)."""
    variants = {**z.variants, **{name: as_variant(layer) for name, layer in z.layers.items()}}
    return z.model_copy(update={"variants": variants})
