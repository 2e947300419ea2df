"""Convolutional autoencoder and VAE: shapes, output range, and learning (ELBO / reconstruction improve)."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from pipeline.models.conv_ae import ConvAEConfig, ConvAutoencoder
from pipeline.models.vae import VAE, VAEConfig
from pipeline.training.loop import evaluate_loss, train_model
from tests.mnist_fixture import mnist


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_conv_autoencoder_preserves_shape_and_range():
    model = ConvAutoencoder(generator=_gen(0))
    x = torch.rand(3, 784, generator=_gen(1))
    with torch.no_grad():
        flat, images = model(x), model(x.view(3, 1, 28, 28))
        assert model.encode(x).shape == (3, 8, 7, 7)
    assert flat.shape == (3, 784) and images.shape == (3, 1, 28, 28)
    torch.testing.assert_close(flat, images.view(3, 784))
    assert float(flat.min()) > 0 and float(flat.max()) < 1
    with pytest.raises(ValueError, match="expects"):
        model(torch.rand(3, 1, 32, 32))


def test_conv_autoencoder_learns():
    x, _ = mnist(1200)
    train, held_out = x[:1000], x[1000:]
    model = ConvAutoencoder(ConvAEConfig(noise_kind="gaussian", noise_level=0.1), generator=_gen(2))
    before = evaluate_loss(model, held_out, generator=_gen(3))
    result = train_model(model, train, held_out, epochs=2, lr=2e-3, batch_size=50, seed=0, progress=False)
    after = result.history["valid_loss"][-1]
    assert after < 0.6 * before, (before, after)


def test_vae_elbo_improves_and_sampling_works():
    x, _ = mnist(2500)
    train, held_out = x[:2000], x[2000:]
    model = VAE(VAEConfig(hidden_sizes=[256], latent_dim=2), generator=_gen(4))
    before = evaluate_loss(model, held_out, generator=_gen(5))
    result = train_model(model, train, held_out, epochs=4, lr=1e-3, batch_size=50, seed=0, progress=False)
    after = evaluate_loss(model, held_out, generator=_gen(5))
    assert after < 0.45 * before, (before, after)  # negative ELBO in nats per image
    assert result.history["valid_loss"][-1] < result.history["valid_loss"][0]
    assert min(result.history["kl"]) > 0.1  # the latent code is used, not collapsed to the prior

    samples = model.sample(7, _gen(6))
    assert samples.shape == (7, 784) and float(samples.min()) >= 0 and float(samples.max()) <= 1
    torch.testing.assert_close(model.sample(7, _gen(6)), samples)
    with torch.no_grad():
        assert model.decode(torch.zeros(2, 2)).shape == (2, 784)
        assert model(held_out[:5]).shape == (5, 784)


def test_vae_kl_term_matches_torch_distributions():
    model = VAE(VAEConfig(hidden_sizes=[32], latent_dim=3), generator=_gen(7))
    x = torch.rand(6, 784, generator=_gen(8))
    _, parts = model.loss(x, _gen(9))
    with torch.no_grad():
        mu, logvar = model.encode(x)
        q = Normal(mu, torch.exp(0.5 * logvar))
        expected = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(1).mean()
    torch.testing.assert_close(parts["kl"], expected)
    assert model.encode(x)[0].shape == (6, 3)
