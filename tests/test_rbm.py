"""Bernoulli RBM: exact agreement with sklearn's update, the free energy, and learning on MNIST."""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neural_network import BernoulliRBM

from tests.mnist_fixture import mnist
from tests.reference.rbm import RBM, RBMConfig, bernoulli_sampler


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def numpy_sampler(rng: np.random.RandomState):
    """Bernoulli samples from the same uniforms, in the same order, as sklearn's `rng.uniform(size) < p`."""
    return lambda p: torch.from_numpy(rng.uniform(size=tuple(p.shape)) < p.numpy()).to(p.dtype)


def _pair(n_hidden: int, n_visible: int, lr: float, batch: int, **kwargs):
    rbm = RBM(RBMConfig(n_visible=n_visible, n_hidden=n_hidden, lr=lr, n_chains=batch, **kwargs), _gen(0)).double()
    with torch.no_grad():
        rbm.hidden_bias.normal_(0, 0.1, generator=_gen(1))
        rbm.visible_bias.normal_(0, 0.1, generator=_gen(2))
    sk = BernoulliRBM(n_components=n_hidden, learning_rate=lr, batch_size=batch)
    sk.components_ = rbm.weight.numpy().copy()
    sk.intercept_hidden_ = rbm.hidden_bias.numpy().copy()
    sk.intercept_visible_ = rbm.visible_bias.numpy().copy()
    return rbm, sk


def _assert_same(rbm: RBM, sk: BernoulliRBM) -> None:
    np.testing.assert_allclose(rbm.weight.numpy(), sk.components_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rbm.hidden_bias.numpy(), sk.intercept_hidden_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(rbm.visible_bias.numpy(), sk.intercept_visible_, rtol=0, atol=1e-12)


def test_cd1_update_equals_sklearn():
    x, _ = mnist(16)
    v = x.double()
    rbm, sk = _pair(n_hidden=32, n_visible=784, lr=0.05, batch=16)
    before = rbm.weight.clone()
    h_sample = bernoulli_sampler(_gen(3))(rbm.hidden_probs(v))  # the CD-1 chain start, sample of P(h|v)
    sk.h_samples_ = h_sample.numpy().copy()
    sk._fit(v.numpy(), np.random.RandomState(4))
    rbm.cd_step(v, sampler=numpy_sampler(np.random.RandomState(4)), start_hidden=h_sample)
    _assert_same(rbm, sk)
    assert (rbm.weight - before).abs().max() > 1e-4  # the update did something


def test_pcd_updates_and_chains_equal_sklearn():
    x, _ = mnist(32)
    rbm, sk = _pair(n_hidden=24, n_visible=784, lr=0.1, batch=16, persistent=True)
    sk.h_samples_ = np.zeros((16, 24))
    sk_rng, our_rng = np.random.RandomState(5), np.random.RandomState(5)
    for batch in x.double().split(16):  # sklearn's chains start at zero; so do ours
        sk._fit(batch.numpy(), sk_rng)
        rbm.cd_step(batch, sampler=numpy_sampler(our_rng))
        _assert_same(rbm, sk)
        np.testing.assert_array_equal(rbm.chains.numpy(), sk.h_samples_)


def test_free_energy_and_pseudo_likelihood_against_brute_force():
    n_visible, n_hidden = 5, 3
    rbm = RBM(RBMConfig(n_visible=n_visible, n_hidden=n_hidden), _gen(6)).double()
    with torch.no_grad():
        rbm.weight.normal_(0, 1.0, generator=_gen(7))
        rbm.hidden_bias.normal_(0, 1.0, generator=_gen(8))
        rbm.visible_bias.normal_(0, 1.0, generator=_gen(9))
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_visible)), dtype=torch.float64)
    hiddens = torch.tensor(list(itertools.product([0.0, 1.0], repeat=n_hidden)), dtype=torch.float64)
    # F(v) = -log sum_h exp(-E(v, h)),  E(v, h) = -v.c - h.b - h W v
    energy = (
        -(states @ rbm.visible_bias)[:, None] - (hiddens @ rbm.hidden_bias)[None] - states @ rbm.weight.T @ hiddens.T
    )
    torch.testing.assert_close(rbm.free_energy(states), -torch.logsumexp(-energy, dim=1))

    # exact pseudo-log-likelihood sum_i log P(v_i | v_-i); the one-bit estimator is unbiased for it
    exact = torch.zeros(len(states), dtype=torch.float64)
    for i in range(n_visible):
        flipped = states.clone()
        flipped[:, i] = 1 - flipped[:, i]
        exact += -F.softplus(rbm.free_energy(states) - rbm.free_energy(flipped))
    estimate = rbm.pseudo_likelihood(states.repeat(20000, 1), _gen(10)).view(20000, -1).mean(0)
    torch.testing.assert_close(estimate, exact, rtol=0.03, atol=0.03)


def test_training_raises_pseudo_likelihood_on_mnist():
    x, _ = mnist(2500)
    train, held_out = x[:2000], x[2000:]
    rbm = RBM(RBMConfig(n_visible=784, n_hidden=100, lr=0.05), _gen(11))
    before = float(rbm.pseudo_likelihood(held_out, _gen(12)).mean())
    recon_before = float(rbm.reconstruction_error(held_out))
    g = _gen(13)
    for _ in range(3):
        for idx in torch.randperm(len(train), generator=g).split(20):
            rbm.cd_step(train[idx], g)
    after = float(rbm.pseudo_likelihood(held_out, _gen(12)).mean())
    assert after > before + 100 and after > -200, (
        before,
        after,
    )  # nats per image (784 pixels); starts ~ -540
    assert float(rbm.reconstruction_error(held_out)) < 0.5 * recon_before
    features = rbm.transform(held_out)
    assert features.shape == (500, 100) and float(features.min()) >= 0 and float(features.max()) <= 1


def test_momentum_first_step_equals_plain_step_and_weight_decay_shrinks():
    x, _ = mnist(20)
    plain = RBM(RBMConfig(n_visible=784, n_hidden=10, lr=0.1), _gen(14))
    heavy = RBM(RBMConfig(n_visible=784, n_hidden=10, lr=0.1, momentum=0.9), _gen(14))
    plain.cd_step(x, _gen(15))
    heavy.cd_step(x, _gen(15))
    torch.testing.assert_close(heavy.weight, plain.weight)  # velocity starts at zero
    heavy.cd_step(x, _gen(16))
    plain.cd_step(x, _gen(16))
    assert not torch.allclose(heavy.weight, plain.weight)

    decayed = RBM(RBMConfig(n_visible=784, n_hidden=10, lr=0.1, weight_decay=0.5), _gen(14))
    start = decayed.weight.clone()
    reference = RBM(RBMConfig(n_visible=784, n_hidden=10, lr=0.1), _gen(14))
    decayed.cd_step(x, _gen(15))
    reference.cd_step(x, _gen(15))
    torch.testing.assert_close(decayed.weight, reference.weight - 0.1 * 0.5 * start)


def test_cd_k_and_pcd_also_learn():
    x, _ = mnist(1200)
    train, held_out = x[:1000], x[1000:]
    for config in (RBMConfig(n_hidden=50, lr=0.05, k=3), RBMConfig(n_hidden=50, lr=0.05, persistent=True)):
        rbm = RBM(config, _gen(17))
        before = float(rbm.pseudo_likelihood(held_out, _gen(18)).mean())
        g = _gen(19)
        for idx in torch.randperm(len(train), generator=g).split(20):
            rbm.cd_step(train[idx], g)
        assert float(rbm.pseudo_likelihood(held_out, _gen(18)).mean()) > before + 100, config
