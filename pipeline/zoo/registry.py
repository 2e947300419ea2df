"""The autoencoder zoo's registry: build a model from its `zoo.variants` entry, and apply it uniformly.

Every variant, whatever its kind, answers the same questions through this module:
`codes` (what the probes and 2-D scatter plots see: the dense code, the flattened conv code, the VAE's
mean mu), `hidden` (the layer whose sparsity is measured: the first hidden layer of a dense net, where
the L1 / KL penalties act; the conv code; the VAE encoder's hidden layer) and `reconstruct`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.common.io import DamagedFileError, load_torch
from pipeline.data.corruption import noise_name
from pipeline.models.conv_ae import ConvAEConfig, ConvAutoencoder
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder, activation_derivative
from pipeline.models.vae import VAE, VAEConfig
from pipeline.params import ZooParams, ZooVariant

INPUT_DIM = 784
BATCH = 2048  # rows per forward pass when applying a trained model


def title(zoo: ZooParams, variant: str) -> str:
    return zoo.variants[variant].title or variant


def train_noise(spec: ZooVariant) -> str | None:
    """The noise a denoising variant is trained (and scored) on, as a `corrupt` folder name; else None."""
    if spec.kind == "vae" or spec.noise_level == 0:
        return None
    return noise_name(spec.noise_kind, spec.noise_level)


def build(spec: ZooVariant, generator: torch.Generator | None = None) -> nn.Module:
    """A freshly initialised model for a `zoo.variants` entry (initial weights drawn from `generator`)."""
    if spec.kind == "dense":
        config = DenseAEConfig(
            sizes=list(spec.sizes),
            hidden_activation=spec.hidden_activation,
            code_activation=spec.code_activation,
            output_activation=spec.output_activation,
            tied=spec.tied,
            loss=spec.loss,
            noise_kind=spec.noise_kind,
            noise_level=spec.noise_level,
            l1=spec.l1,
            l1_layers=(0,),
            sparsity_weight=spec.sparsity_weight,
            sparsity_target=spec.sparsity_target,
            sparsity_decay=spec.sparsity_decay,
            contractive=spec.contractive,
        )
        return DenseAutoencoder(config, generator)
    if spec.kind == "conv":
        config = ConvAEConfig(channels=tuple(spec.channels), noise_kind=spec.noise_kind, noise_level=spec.noise_level)
        return ConvAutoencoder(config, generator)
    config = VAEConfig(input_dim=spec.sizes[0], hidden_sizes=list(spec.sizes[1:-1]), latent_dim=spec.sizes[-1])
    return VAE(config, generator)


def code_dim(spec: ZooVariant) -> int:
    if spec.kind == "conv":
        return spec.channels[1] * (28 // 4) ** 2
    return spec.sizes[-1]


def load(spec: ZooVariant, path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A trained model saved by zoo_train (models/zoo/<variant>.pt), in eval mode; a file that cannot be read or does
    not fit the variant's spec raises DamagedFileError naming it."""
    writer = f"zoo_train@{Path(path).stem}"
    state = load_torch(path, writer, ("model",), weights_only=True)
    model = build(spec)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:  # other keys or shapes, or not a state dict
        raise DamagedFileError(
            f"{path}: does not fit the variant's spec ({' '.join(str(exc).split())[:300]}); expected the weights "
            f"{writer} writes: rerun it"
        ) from None
    return model.to(device).eval()


@torch.no_grad()
def _apply(fn, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """fn(model, batch) over row batches on the model's device, concatenated on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([fn(model, xb.to(device)).cpu() for xb in x.split(BATCH)])
    model.train(was_training)
    return out


def _codes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(model, VAE):
        return model.encode(x)[0]
    return model.encode(x).flatten(1)


def _hidden(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(model, DenseAutoencoder):
        return model.encode_layers(x)[0]
    if isinstance(model, VAE):
        return model.encoder(x)
    return model.encode(x).flatten(1)


def _reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model(x).reshape(len(x), INPUT_DIM)


def _jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-example ||d h_1 / d x||_F^2 of a dense net's first hidden layer."""
    h1 = model.encode_layers(x)[0]
    fprime = activation_derivative(h1, model.config.layer_activation(0))
    return fprime.pow(2).mv(model.weights[0].pow(2).sum(1))


def codes(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, code_dim) codes: the dense code, the flattened conv code, the VAE's posterior mean."""
    return _apply(_codes, model, x)


def hidden(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, units) activations of the layer whose sparsity is measured."""
    return _apply(_hidden, model, x)


def reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(n, 784) reconstructions (the VAE decodes its posterior mean)."""
    return _apply(_reconstruct, model, x)


def jacobian_norms(model: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """Per-example squared Frobenius norm of the first hidden layer's Jacobian (dense nets only)."""
    if not isinstance(model, DenseAutoencoder):
        return None
    return _apply(_jacobian, model, x)


def subspace_weights(model: DenseAutoencoder) -> dict[str, torch.Tensor]:
    """(k, 784) matrices whose rows span a one-layer dense net's encoder and decoder subspaces."""
    return {"encoder": model.weights[0].detach().cpu(), "decoder": model.decoder_weight(0).detach().cpu()}
