"""Candidates in lockstep: every closed-form step against autograd and the one-candidate models."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder
from pipeline.models.mlp import MLPClassifier
from pipeline.training.families.autoencoder import TiedAEGroup, lowest_ranked, mask_counts, masking_group
from pipeline.training.families.rbm import RBMGroup
from pipeline.training.mlp_group import MLPGroup
from tests.reference.rbm import RBM, RBMConfig

D, H, M = 20, 12, 16
LRS = [0.5, 0.25, 0.125]  # exact in float32, so the group's float32 learning rates lose nothing in float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _binary(shape: tuple[int, ...], seed: int, p: float = 0.4) -> torch.Tensor:
    return (torch.rand(shape, generator=_gen(seed)) < p).float()


def _random_biases(group: torch.nn.Module) -> None:
    with torch.no_grad():
        group.hidden_bias.normal_(0, 0.3, generator=_gen(11))
        group.visible_bias.normal_(0, 0.3, generator=_gen(12))


def _tied_ae_autograd(group: TiedAEGroup, x: torch.Tensor, x_in: torch.Tensor):
    """(K,) losses before the step, and the weights after one SGD step of each candidate's loss (autograd)."""
    w = group.weight.detach().clone().requires_grad_()
    b = group.hidden_bias.detach().clone().requires_grad_()
    c = group.visible_bias.detach().clone().requires_grad_()
    hid = torch.sigmoid(x_in @ w.mT + b.unsqueeze(1))
    a = hid @ w + c.unsqueeze(1)
    loss = F.binary_cross_entropy_with_logits(a, x.expand_as(a), reduction="none").sum((1, 2)) / x.shape[-2]
    loss.sum().backward()  # the candidates share no parameter: each gets its own loss's gradient
    lr = torch.tensor([float(v) for v in group.lr], dtype=w.dtype)
    after = [p.detach() - lr.view(-1, *[1] * (p.dim() - 1)) * p.grad for p in (w, b, c)]
    return loss.detach(), after


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_tied_ae_step_equals_autograd_sgd(dtype, tol):
    k = len(LRS)
    w0 = torch.randn(H, D, generator=_gen(0)) * 0.3
    group = TiedAEGroup(w0, LRS, [0.0] * k).to(dtype)
    _random_biases(group)
    x = torch.rand(1, M, D, generator=_gen(1), dtype=dtype)  # targets anywhere in [0, 1]
    x_in = x * (torch.rand(k, M, D, generator=_gen(2), dtype=dtype) > 0.3)  # a different corruption per candidate
    expected_loss, (w, b, c) = _tied_ae_autograd(group, x, x_in)
    loss = group.step(x, x_in)
    assert loss.dtype == dtype and group.weight.dtype == dtype
    torch.testing.assert_close(loss, expected_loss, rtol=tol, atol=tol)
    torch.testing.assert_close(group.weight, w, rtol=tol, atol=tol)
    torch.testing.assert_close(group.hidden_bias, b, rtol=tol, atol=tol)
    torch.testing.assert_close(group.visible_bias, c, rtol=tol, atol=tol)
    assert (group.weight - w0.to(dtype)).abs().amax((1, 2)).min() > 1e-3  # every candidate moved


def test_tied_ae_loss_equals_step_loss():
    w0 = torch.randn(H, D, generator=_gen(0)) * 0.3
    group = TiedAEGroup(w0, LRS, [0.0, 0.1, 0.3])
    _random_biases(group)
    x = _binary((1, M, D), 1)
    x_in = group.corrupt(x, _gen(2))
    torch.testing.assert_close(group.loss(x_in, x), group.step(x, x_in))


def test_tied_ae_single_candidate_equals_dense_autoencoder_with_sgd():
    ae = DenseAutoencoder(DenseAEConfig(sizes=[D, H]), _gen(0))
    group = TiedAEGroup(ae.weights[0], [0.25], [0.0])
    opt = torch.optim.SGD(ae.parameters(), lr=0.25)
    for i in range(3):
        x = _binary((M, D), 10 + i)
        x_in = x * _binary((M, D), 20 + i, p=0.7)
        opt.zero_grad()
        loss = ae.reconstruction_loss(x_in, x)
        loss.backward()
        opt.step()
        torch.testing.assert_close(group.step(x.unsqueeze(0), x_in.unsqueeze(0)), loss.detach().view(1))
    torch.testing.assert_close(group.weight[0], ae.weights[0].detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(group.hidden_bias[0], ae.biases[0].detach(), rtol=0, atol=1e-6)
    torch.testing.assert_close(group.visible_bias[0], ae.decoder_biases[0].detach(), rtol=0, atol=1e-6)


def test_tied_ae_candidate_does_not_depend_on_its_group():
    w0 = torch.randn(H, D, generator=_gen(0)) * 0.3
    noise = [0.0, 0.25, 0.4]
    trio = TiedAEGroup(w0, LRS, noise)
    solo = TiedAEGroup(w0, LRS[1:2], noise[1:2])
    g = _gen(3)
    for i in range(5):
        x = _binary((1, M, D), 30 + i)
        x_in = trio.corrupt(x, g)
        loss_trio = trio.step(x, x_in)
        loss_solo = solo.step(x, x_in[1:2])
        torch.testing.assert_close(loss_solo, loss_trio[1:2], rtol=1e-6, atol=1e-6)
    for name in ("weight", "hidden_bias", "visible_bias"):
        torch.testing.assert_close(getattr(solo, name)[0], getattr(trio, name)[1], rtol=1e-6, atol=1e-6)
    assert not torch.allclose(trio.weight[0], trio.weight[1])  # the three candidates did differ


def test_mask_counts_are_rounded_fractions_of_the_width():
    assert mask_counts(torch.tensor([0.0, 0.1, 0.25, 0.5, 0.99]), 20).tolist() == [0, 2, 5, 10, 20]


def test_masking_group_destroys_exactly_the_count_per_row():
    noise = torch.tensor([0.0, 0.1, 0.25, 0.5])
    counts = mask_counts(noise, D)
    x = torch.ones(1, 50, D)
    out = masking_group(x, counts, _gen(4))
    assert out.shape == (4, 50, D)
    zeros = (out == 0).sum(-1)  # (K, m)
    assert (zeros == counts.view(-1, 1)).all()
    torch.testing.assert_close(out[0], x[0], rtol=0, atol=0)  # count 0: unchanged
    assert len({tuple(row.tolist()) for row in out[3]}) > 1  # each row draws its own subset
    assert torch.equal(out, masking_group(x, counts, _gen(4)))  # the same generator seed, the same masks
    assert not torch.equal(out, masking_group(x, counts, _gen(5)))


def test_lowest_ranked_is_the_rank_definition_ties_included():
    # The masks were first defined as ranks (argsort of argsort) < count; lowest_ranked selects them without
    # sorting every row. The two must agree bit for bit, also where scores tie at the boundary, or pretrained
    # stacks would change. 784 components, as MNIST's, with the pipeline's counts (nu = 0.1, 0.25, 0.4).
    d = 784
    cases = ([0, 78, 196], [196], [314, 314, 1, d - 1], [0, d, 196, 196], [0, 0])
    for levels in (2, 3, 16, 1024, None):  # None: uniform scores, as the pipeline draws them
        for counts in cases:
            counts = torch.tensor(counts)
            scores = torch.rand(len(counts), 64, d, generator=_gen(11))
            if levels is not None:
                scores = (scores * levels).floor()  # many ties, in every row
            expected = scores.argsort(dim=-1).argsort(dim=-1) < counts.view(-1, 1, 1)
            assert torch.equal(lowest_ranked(scores, counts), expected), (levels, counts.tolist())


def test_lowest_ranked_sorts_only_the_rows_that_tie_at_the_boundary():
    # Uniform scores with a few rows forced to tie across the boundary: only those take the sorting path, and
    # a row sorted alone is ordered as it is among the others (the fallback depends on that).
    d, count = 784, 196
    scores = torch.rand(1, 500, d, generator=_gen(12))
    for row in (3, 250, 499):
        kth = scores[0, row].sort().values[count - 1]
        scores[0, row, scores[0, row].argsort()[count - 1 : count + 3]] = kth  # four equal scores across it
    expected = scores.argsort(dim=-1).argsort(dim=-1) < count
    assert torch.equal(lowest_ranked(scores, torch.tensor([count])), expected)
    rows = [3, 250, 499]
    assert torch.equal(scores[0, rows].argsort(dim=-1), scores.argsort(dim=-1)[0, rows])


def test_masking_group_keeps_values_it_does_not_destroy():
    x = torch.rand(2, 30, D, generator=_gen(6)) + 0.5  # no zeros to start with, one input per candidate
    out = masking_group(x, torch.tensor([3, 7]), _gen(7))
    kept = out != 0
    assert torch.equal(out[kept], x[kept])
    assert kept.sum(-1).tolist() == [[D - 3] * 30, [D - 7] * 30]


def test_masking_group_without_noise_draws_nothing():
    g = _gen(8)
    state = g.get_state()
    x = torch.rand(1, 10, D, generator=_gen(9))
    out = masking_group(x, torch.zeros(3, dtype=torch.long), g)
    assert out.shape == (3, 10, D) and torch.equal(out, x.expand(3, 10, D))
    assert torch.equal(g.get_state(), state)


def test_rbm_step_is_cd1_from_the_same_uniforms():
    lrs = [0.5, 0.25]
    w0 = torch.randn(H, D, generator=_gen(0)) * 0.1
    group = RBMGroup(w0, lrs)
    _random_biases(group)
    v = _binary((1, M, D), 1)
    w, b, c = (t.clone() for t in (group.weight, group.hidden_bias, group.visible_bias))
    g_group, g_hand = _gen(5), _gen(5)
    loss = group.step(v, v, g_group)

    h_pos = torch.sigmoid(v @ w.mT + b.unsqueeze(1))  # (K, m, h)
    h = (torch.rand(h_pos.shape, generator=g_hand) < h_pos).float()
    logits = h @ w + c.unsqueeze(1)
    v_neg = (torch.rand(logits.shape, generator=g_hand) < torch.sigmoid(logits)).float()
    h_neg = torch.sigmoid(v_neg @ w.mT + b.unsqueeze(1))
    scale = torch.tensor(lrs) / M
    w_new = w + scale.view(-1, 1, 1) * (h_pos.mT @ v - h_neg.mT @ v_neg)
    b_new = b + scale.view(-1, 1) * (h_pos.sum(1) - h_neg.sum(1))
    c_new = c + scale.view(-1, 1) * (v.sum(1) - v_neg.sum(1))
    expected_loss = F.binary_cross_entropy_with_logits(logits, v.expand_as(logits), reduction="none").sum((1, 2)) / M

    torch.testing.assert_close(loss, expected_loss, rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(group.weight, w_new, rtol=0, atol=1e-6)
    torch.testing.assert_close(group.hidden_bias, b_new, rtol=0, atol=1e-6)
    torch.testing.assert_close(group.visible_bias, c_new, rtol=0, atol=1e-6)
    assert torch.equal(g_group.get_state(), g_hand.get_state())  # the same draws, in the same order
    assert (group.weight - w).abs().amax((1, 2)).min() > 1e-3


def test_rbm_single_candidate_equals_rbm_cd_step():
    rbm = RBM(RBMConfig(n_visible=D, n_hidden=H, lr=0.25, n_chains=M), _gen(0))
    group = RBMGroup(rbm.weight, [0.25])
    g_group, g_rbm = _gen(1), _gen(1)
    for i in range(3):
        v = _binary((M, D), 40 + i)
        loss = group.step(v.unsqueeze(0), None, g_group)
        expected = rbm.cd_step(v, g_rbm) / M
        torch.testing.assert_close(loss, expected.view(1), rtol=1e-6, atol=1e-5)
    torch.testing.assert_close(group.weight[0], rbm.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(group.hidden_bias[0], rbm.hidden_bias, rtol=0, atol=1e-6)
    torch.testing.assert_close(group.visible_bias[0], rbm.visible_bias, rtol=0, atol=1e-6)


SIZES = [D, H, 8]  # two hidden layers
N_CLASSES = 10


def _mlp_params(seed: int) -> list[torch.Tensor]:
    g, out = _gen(seed), []
    for n_in, n_out in zip(SIZES, [*SIZES[1:], N_CLASSES], strict=False):
        out += [torch.randn(n_out, n_in, generator=g) * 0.5, torch.randn(n_out, generator=g) * 0.2]
    return out


def _classification_batch(seed: int, m: int = M) -> tuple[torch.Tensor, torch.Tensor]:
    g = _gen(seed)
    return torch.rand(m, D, generator=g), torch.randint(0, N_CLASSES, (m,), generator=g)


def _mlp_autograd(params: list[torch.Tensor], lr: float, x: torch.Tensor, y: torch.Tensor):
    ps = [p.detach().clone().requires_grad_() for p in params]
    h = x
    for w, b in zip(ps[0:-2:2], ps[1:-2:2], strict=True):
        h = torch.sigmoid(h @ w.T + b)
    logits = h @ ps[-2].T + ps[-1]
    loss = F.cross_entropy(logits, y)
    loss.backward()
    error = (logits.argmax(1) != y).to(x.dtype).mean()
    return loss.detach(), error, [p.detach() - lr * p.grad for p in ps]


def test_mlp_step_equals_autograd_sgd():
    lrs = [0.5, 0.125]
    params = [[p.double() for p in _mlp_params(s)] for s in (0, 1)]
    group = MLPGroup(params, lrs).double()
    x, y = _classification_batch(2)
    x = x.double()
    losses, errors = group.step(x, y)
    assert losses.shape == errors.shape == (2,)
    for k, lr in enumerate(lrs):
        loss, error, after = _mlp_autograd(params[k], lr, x, y)
        torch.testing.assert_close(losses[k], loss, rtol=1e-12, atol=1e-12)
        assert float(errors[k]) == pytest.approx(float(error))
        for got, want in zip(group.candidate_params(k), after, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_mlp_single_candidate_equals_mlp_classifier_with_sgd():
    params = _mlp_params(0)
    mlp = MLPClassifier(SIZES, N_CLASSES)
    names = ["hidden.0.weight", "hidden.0.bias", "hidden.1.weight", "hidden.1.bias", "output.weight", "output.bias"]
    mlp.load_state_dict(dict(zip(names, params, strict=True)))
    group = MLPGroup([params], [0.25])
    opt = torch.optim.SGD(mlp.parameters(), lr=0.25)
    for i in range(3):
        x, y = _classification_batch(10 + i)
        losses, _ = group.step(x, y)
        opt.zero_grad()
        loss = F.cross_entropy(mlp(x), y)
        loss.backward()
        opt.step()
        torch.testing.assert_close(losses[0], loss.detach(), rtol=1e-6, atol=1e-6)
    for got, name in zip(group.candidate_params(0), names, strict=True):
        torch.testing.assert_close(got, mlp.state_dict()[name], rtol=1e-5, atol=1e-6)
    x, y = _classification_batch(20, m=100)
    assert torch.equal(group.predictions(x)[0], mlp.predict(x))
    assert float(group.errors(x, y, chunk=7)[0]) == pytest.approx(mlp.error_rate(x, y))


def test_mlp_group_rejects_mismatched_candidates():
    a, b = _mlp_params(0), _mlp_params(1)
    with pytest.raises(ValueError):
        MLPGroup([a, b[:-2] + [torch.zeros(5, 8), torch.zeros(5)]], [0.1, 0.1])
    with pytest.raises(ValueError):
        MLPGroup([], [])
    with pytest.raises(ValueError):
        MLPGroup([a, b], [0.1])  # one learning rate per candidate


def test_mlp_keep_drops_candidates():
    params = [_mlp_params(s) for s in range(3)]
    lrs = [0.5, 0.25, 0.125]
    group = MLPGroup(params, lrs)
    x, y = _classification_batch(1)
    group.step(x, y)
    before = [group.candidate_params(k) for k in range(3)]
    group.keep(torch.tensor([0, 2]))
    assert group.size == 2
    assert group.lr.tolist() == [0.5, 0.125]
    xv, yv = _classification_batch(2, m=40)
    assert group.errors(xv, yv).shape == (2,)
    assert group.predictions(xv).shape == (2, 40)
    assert group(xv).shape == (2, 40, N_CLASSES)
    for k, old in ((0, 0), (1, 2)):
        for got, want in zip(group.candidate_params(k), before[old], strict=True):
            assert torch.equal(got, want)
    # The survivors go on training as they would in a group of their own.
    fresh = MLPGroup([before[0], before[2]], [0.5, 0.125])
    x2, y2 = _classification_batch(3)
    torch.testing.assert_close(group.step(x2, y2), fresh.step(x2, y2))
    for k in range(2):
        for got, want in zip(group.candidate_params(k), fresh.candidate_params(k), strict=True):
            torch.testing.assert_close(got, want)
