"""Corruption statistics, determinism and purity (the clean batch is never modified)."""

from __future__ import annotations

import pytest
import torch

from pipeline.data.corruption import NOISE_KINDS, corrupt

D = 784


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("nu", [0.1, 0.25, 0.4, 0.5])
def test_masking_zeroes_exactly_round_nu_d_per_example(nu: float) -> None:
    x = torch.rand(500, D) * 0.9 + 0.1  # no zeros before corruption
    out = corrupt(x, "masking", nu, gen())
    newly_zeroed = ((out == 0) & (x != 0)).sum(dim=1)
    assert torch.all(newly_zeroed == round(nu * D))
    kept = out != 0
    assert torch.equal(out[kept], x[kept]), "masking must leave the other components untouched"


def test_masking_positions_are_uniform() -> None:
    out = corrupt(torch.ones(20_000, D), "masking", 0.25, gen())
    per_pixel = (out == 0).float().mean(dim=0)
    # each pixel is chosen with probability 196/784 = 0.25; std of the mean over 20,000 is ~0.003
    assert torch.allclose(per_pixel, torch.full((D,), 0.25), atol=0.02)


def test_masking_bernoulli_fraction() -> None:
    out = corrupt(torch.ones(2_000, D), "masking_bernoulli", 0.3, gen())
    counts = (out == 0).sum(dim=1).float()
    assert abs(counts.mean().item() / D - 0.3) < 0.005
    assert counts.std().item() > 5, "Bernoulli masking should vary the count between examples"


def test_gaussian_mean_and_std_before_clipping() -> None:
    x = torch.full((4_000, D), 0.5)
    std = 0.1  # 5 sigma from either bound: clipping is negligible
    noise = corrupt(x, "gaussian", std, gen()) - x
    assert abs(noise.mean().item()) < 1e-3
    assert abs(noise.std().item() - std) < 1e-3


def test_gaussian_is_clipped_to_unit_interval() -> None:
    out = corrupt(torch.rand(1_000, D), "gaussian", 0.5, gen())
    assert out.min().item() == 0.0 and out.max().item() == 1.0
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_salt_and_pepper_fractions() -> None:
    nu = 0.2
    x = torch.full((3_000, D), 0.5)
    out = corrupt(x, "salt_and_pepper", nu, gen())
    changed = (out != 0.5).sum(dim=1)
    assert torch.all(changed == round(nu * D))
    salt = (out == 1.0).sum().item() / changed.sum().item()
    assert abs(salt - 0.5) < 0.01
    assert set(out.unique().tolist()) == {0.0, 0.5, 1.0}


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_determinism_and_fresh_noise(kind: str) -> None:
    x = torch.rand(64, D)
    a = corrupt(x, kind, 0.3, gen(7))
    b = corrupt(x, kind, 0.3, gen(7))
    assert torch.equal(a, b), "same seed must give the same corruption"
    g = gen(7)
    first, second = corrupt(x, kind, 0.3, g), corrupt(x, kind, 0.3, g)
    assert not torch.equal(first, second), "each call must draw fresh noise"


@pytest.mark.parametrize("kind", NOISE_KINDS)
def test_clean_input_is_never_modified(kind: str) -> None:
    x = torch.rand(64, D)
    before = x.clone()
    corrupt(x, kind, 0.4, gen())
    corrupt(x, kind, 0.0, gen())
    assert torch.equal(x, before)


def test_level_zero_is_identity_and_bad_input_is_rejected() -> None:
    x = torch.rand(8, D)
    assert torch.equal(corrupt(x, "masking", 0.0, gen()), x)
    with pytest.raises(ValueError, match="unknown noise kind 'blur'"):
        corrupt(x, "blur", 0.1, gen())
    with pytest.raises(ValueError, match="outside"):
        corrupt(x, "masking", 1.5, gen())
