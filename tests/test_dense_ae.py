"""Dense autoencoders: the science (PCA subspace, penalty gradients, denoising) and the lean DAE step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from pipeline.data.corruption import corrupt
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder
from pipeline.training.families.autoencoder import initial_weights
from pipeline.training.layer_kind import StackSpec
from pipeline.training.loop import train_model
from pipeline.training.search import pretrain_stacks
from tests.mnist_fixture import mnist


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_linear_autoencoder_learns_the_pca_subspace():
    x, _ = mnist(2000)
    x = x - x.mean(0)
    k = 4
    config = DenseAEConfig(
        sizes=[784, k], hidden_activation="linear", output_activation="linear", tied=False, loss="mse"
    )
    model = DenseAutoencoder(config, generator=_gen())
    train_model(model, x, epochs=50, lr=3e-3, batch_size=250, seed=0, optimizer="adam", progress=False)

    decoder_columns = model.decoder_weights[0].detach().double().T.numpy()  # (784, k): x_hat = h @ V
    components = PCA(n_components=k).fit(x.double().numpy()).components_.T
    angles = np.degrees(subspace_angles(decoder_columns, components))
    assert angles.max() < 10.0, angles
    # a random k-dim subspace of R^784 is almost orthogonal to it: the test can fail
    random_columns = np.random.default_rng(0).standard_normal((784, k))
    assert np.degrees(subspace_angles(random_columns, components)).max() > 60.0


@pytest.mark.parametrize("decay", [0.0, 0.9])
def test_kl_sparsity_gradient_matches_closed_form(decay):
    beta, rho, n = 3.0, 0.05, 16
    config = DenseAEConfig(
        sizes=[784, 20], sparsity_weight=beta, sparsity_target=rho, sparsity_decay=decay, noise_level=0.0
    )
    model = DenseAutoencoder(config, generator=_gen(1))
    model.rho_hat.copy_(torch.rand(20, generator=_gen(2)) * 0.4 + 0.05)  # a running average mid-training
    previous = model.rho_hat.clone()
    x = torch.rand(n, 784, generator=_gen(3))

    total, parts = model.loss(x)
    total.backward()
    grad_total = model.biases[0].grad.clone()
    model.zero_grad()
    model.reconstruction_loss(x, x).backward()
    grad_sparsity = grad_total - model.biases[0].grad  # d(beta * KL)/db = sum_n d(beta * KL)/dz_n

    with torch.no_grad():
        h = torch.sigmoid(x @ model.weights[0].T + model.biases[0])
        rho_hat = decay * previous + (1 - decay) * h.mean(0)
        dkl = -rho / rho_hat + (1 - rho) / (1 - rho_hat)
        expected = (beta * (1 - decay) / n * dkl * h * (1 - h)).sum(0)
        kl = (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()
    torch.testing.assert_close(grad_sparsity, expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(parts["sparsity"], beta * kl)
    torch.testing.assert_close(model.rho_hat, rho_hat)  # the running average was advanced


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_contractive_penalty_is_the_squared_frobenius_norm_of_the_jacobian(activation):
    config = DenseAEConfig(sizes=[784, 30], hidden_activation=activation, contractive=0.5)
    model = DenseAutoencoder(config, generator=_gen(4))
    x = torch.rand(5, 784, generator=_gen(5))
    penalty = model.contractive_penalty(model.encode_layers(x)[0])
    norms = [torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], xi).pow(2).sum() for xi in x]
    torch.testing.assert_close(penalty, torch.stack(norms).mean(), rtol=1e-5, atol=1e-6)
    _, parts = model.loss(x)
    torch.testing.assert_close(parts["contractive"], 0.5 * penalty.detach())


def test_dae_denoises_held_out_digits():
    x, _ = mnist(2500)
    train, held_out = x[:2000], x[2000:]
    spec = StackSpec("ae", 200, 0.1, 5, 0.25)

    def denoising_loss(w: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> float:
        model = DenseAutoencoder(DenseAEConfig(sizes=[784, 200]))
        with torch.no_grad():
            model.weights[0].copy_(w)
            model.biases[0].copy_(b)
            model.decoder_biases[0].copy_(c)
            noisy = corrupt(held_out, "masking", 0.25, _gen(10))
            return float(model.reconstruction_loss(noisy, held_out))

    stacks, _ = pretrain_stacks(
        [spec], 1, train, held_out, seed=0, batch_size=20, device=torch.device("cpu"), progress=False
    )
    trained = stacks[spec.name]
    w0 = initial_weights(0, (200, 784), seed=0)
    before = denoising_loss(w0, torch.zeros(200), torch.zeros(784))
    after = denoising_loss(trained.weights[0][0], trained.weights[0][1], trained.visible_biases[0])
    assert after < 0.7 * before, (before, after)  # cross-entropy drops by more than 30%
    # and it beats the best input-blind predictor (the per-pixel mean image) by a wide margin
    p = train.mean(0).clamp(1e-6, 1 - 1e-6)
    mean_image = float(-(held_out * p.log() + (1 - held_out) * (1 - p).log()).sum(1).mean())
    assert after < 0.6 * mean_image, (after, mean_image)
    losses = trained.history[0]["train_loss"]
    assert losses[-1] < losses[0]


def test_configured_variants_shapes_and_parameters():
    x = torch.rand(8, 784, generator=_gen(11))
    deep = DenseAEConfig(
        sizes=[784, 128, 64, 10, 2],
        hidden_activation="relu",
        code_activation="linear",
        tied=False,
        loss="mse",
        output_activation="sigmoid",
    )
    model = DenseAutoencoder(deep, generator=_gen())
    assert model.encode(x).shape == (8, 2)
    assert model(x).shape == (8, 784)
    with torch.no_grad():
        assert float(model(x).min()) >= 0 and float(model(x).max()) <= 1
    n_untied = sum(p.numel() for p in model.parameters())
    n_tied = sum(p.numel() for p in DenseAutoencoder(DenseAEConfig(**{**vars(deep), "tied": True})).parameters())
    assert n_untied - n_tied == 784 * 128 + 128 * 64 + 64 * 10 + 10 * 2
    basic = DenseAutoencoder(DenseAEConfig(sizes=[784, 2], code_activation="linear"), generator=_gen())
    assert basic.encode(x).shape == (8, 2)
    assert float(basic.encode(-x).detach().min()) < 0  # a linear code is not squashed into (0, 1)
    with pytest.raises(ValueError, match="sigmoid"):
        DenseAEConfig(sizes=[784, 10], loss="cross_entropy", output_activation="linear")
    with pytest.raises(ValueError):
        DenseAEConfig(sizes=[784, 10], hidden_activation="swish")
    with pytest.raises(ValueError, match="expects"):
        model.loss(torch.rand(4, 100))


def test_noise_is_fresh_per_call_and_reproducible():
    model = DenseAutoencoder(DenseAEConfig(sizes=[784, 20], noise_level=0.3), generator=_gen())
    x = torch.rand(6, 784, generator=_gen(12))
    g = _gen(13)
    with torch.no_grad():
        first, second = float(model.loss(x, g)[0]), float(model.loss(x, g)[0])
        assert not math.isclose(first, second)
        assert float(model.loss(x, _gen(13))[0]) == first


@pytest.mark.parametrize("output", ["relu", "tanh", "linear"])
def test_output_activations_for_the_mse_loss(output):
    config = DenseAEConfig(sizes=[784, 10], hidden_activation="relu", output_activation=output, tied=False, loss="mse")
    model = DenseAutoencoder(config, generator=_gen(14))
    x = torch.rand(6, 784, generator=_gen(15))
    with torch.no_grad():
        model.decoder_biases[0].normal_(0, 2.0, generator=_gen(16))  # outputs on both sides of 0 and beyond +-1
        logits = model.decode_logits(model.encode(x))
        expected = {"relu": logits.clamp(min=0), "tanh": torch.tanh(logits), "linear": logits}[output]
        torch.testing.assert_close(model(x), expected)
        torch.testing.assert_close(model.loss(x)[0], (expected - x).pow(2).sum() / 6)
        lo, hi = float(model(x).min()), float(model(x).max())
    assert {"relu": lo == 0 and hi > 1, "tanh": -1 < lo < 0 and 0 < hi < 1, "linear": lo < -1 and hi > 1}[output]
    with pytest.raises(ValueError, match="sigmoid"):
        DenseAEConfig(sizes=[784, 10], output_activation=output, loss="cross_entropy")
