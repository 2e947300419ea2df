"""The models of the benchmark, one per file, each with its config dataclass beside it."""

from pipeline.models.conv_ae import ConvAEConfig, ConvAutoencoder
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder
from pipeline.models.mlp import MLPClassifier
from pipeline.models.rbm import RBM, RBMConfig
from pipeline.models.vae import VAE, VAEConfig

__all__ = [
    "RBM",
    "VAE",
    "ConvAEConfig",
    "ConvAutoencoder",
    "DenseAEConfig",
    "DenseAutoencoder",
    "MLPClassifier",
    "RBMConfig",
    "VAEConfig",
]
