"""The layer-kind interface: every kind file answers the same calls, and params know exactly the kinds there are."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pipeline.params.stacks import KINDS, StackParams
from pipeline.training.layer_kind import LayerGroup, StackSpec, kind_files, load_kind, stack_specs

D, H, M = 12, 5, 8


def test_params_know_exactly_the_kinds_there_is_code_for() -> None:
    assert sorted(KINDS) == kind_files()
    for name in kind_files():
        assert load_kind(name).name == name


def test_an_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*\['ae', 'cae', 'dae_sp', 'rbm'\]"):
        load_kind("nope")
    with pytest.raises(ValueError, match="bad kind"):
        StackSpec("nope", 8, 0.1, 2)


@pytest.mark.parametrize("name", kind_files())
@pytest.mark.parametrize("top", ["softmax", "joint"])
def test_every_kind_trains_through_the_same_calls(name: str, top: str) -> None:
    """What `layer_group.train_layers` asks of a kind: starting weights, a group of K candidates, and corrupt, step,
    loss (with labels for a joint top) giving one finite loss per candidate, the weights changed, the state kept."""
    if top not in KINDS[name].tops:
        pytest.skip(f"kind {name!r} takes no {top} top")
    kind = load_kind(name)
    w0 = kind.initial_weights(0, (H, D), 0)
    assert w0.shape == (H, D) and torch.equal(w0, kind.initial_weights(0, (H, D), 0))
    options = [{k: 0.5 for k in KINDS[name].options}] * 2
    group = kind.group(w0, [0.1, 0.05], [0.25, 0.0] if KINDS[name].noise else [0.0, 0.0], top, options)
    assert isinstance(group, LayerGroup) and group.size == 2
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(1, M, D, generator=g) < 0.5).float()
    y = torch.randint(0, 10, (M,), generator=g) if top == "joint" else None
    x_in = group.corrupt(x, g)
    assert x_in.shape[-2] == M  # the loop slices its rows; what is beside x~ in them is the kind's
    before = group.weight.clone()
    loss = group.step(x, x_in, g, y)
    assert loss.shape == (2,) and torch.isfinite(loss).all()
    assert not torch.equal(group.weight, before)
    valid = group.loss(group.corrupt(x, g), x, y)
    assert valid.shape == (2,) and torch.isfinite(valid).all()
    state = group.state_dict()
    assert list(group.STATE[:3]) == ["weight", "hidden_bias", "visible_bias"] and set(group.STATE) <= set(state)
    assert state["weight"].shape == (2, H, D)


def test_a_candidates_name_carries_noise_only_for_a_kind_that_takes_it() -> None:
    assert StackSpec("ae", 8, 0.1, 2, 0.0).name == "h8-lr0.1-e2-nu0"
    assert StackSpec("rbm", 8, 0.1, 2).name == "h8-lr0.1-e2"
    assert StackSpec("rbm", 8, 0.1, 2, top="joint").name == "h8-lr0.1-e2-joint"
    with pytest.raises(ValueError):
        StackSpec("rbm", 8, 0.1, 2, 0.25)
    with pytest.raises(ValueError):
        StackSpec("ae", 8, 0.1, 2, top="joint")


def test_a_kinds_own_hyperparameters_are_grids_its_stacks_must_set() -> None:
    """A kind with options (cae's contraction weight, dae_sp's emphasis): every stack of it sets each as a grid, searched
    with the others; the candidates' names carry them; a stack without options dumps as it always did."""
    with pytest.raises(ValueError, match="takes the options"):
        StackParams(kind="dae_sp", layers=1, lr=[0.1], epochs=[2], noise=[0.25])
    with pytest.raises(ValueError, match="takes the options"):
        StackParams(kind="ae", layers=1, lr=[0.1], epochs=[2], options={"alpha": [1.0]})
    stack = StackParams(
        kind="dae_sp", layers=1, lr=[0.1], epochs=[2], noise=[0.25], options={"beta": [0.0, 0.5], "alpha": [1.0]}
    )
    specs = stack_specs([8], stack)
    assert [s.name for s in specs] == ["h8-lr0.1-e2-nu0.25-alpha1-beta0", "h8-lr0.1-e2-nu0.25-alpha1-beta0.5"]
    assert specs[1].hparams()["options"] == {"alpha": 1.0, "beta": 0.5} and specs[0].prefix != specs[1].prefix
    assert "options" in stack.model_dump()
    plain = StackParams(kind="ae", layers=1, lr=[0.1], epochs=[2])
    assert "options" not in plain.model_dump() and "options" not in stack_specs([8], plain)[0].hparams()


def _sgd_by_autograd(loss_fn, params: list[torch.Tensor], lr: float) -> tuple[torch.Tensor, list[torch.Tensor]]:
    params = [p.detach().clone().requires_grad_() for p in params]
    loss = loss_fn(*params)
    loss.backward()
    return loss.detach(), [(p - lr * p.grad).detach() for p in params]


def _binary(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.4).double()


def test_the_contractive_step_equals_autograd_sgd() -> None:
    from pipeline.training.kinds.cae import ContractiveAEGroup

    w0 = torch.randn(H, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    lrs, lams = [0.5, 0.25], [0.0, 0.7]
    group = ContractiveAEGroup(w0, lrs, lams).double()
    group.lr, group.contraction = group.lr.double(), group.contraction.double()
    x = _binary((1, M, D), 1)
    loss = group.step(x, group.corrupt(x, torch.Generator()))
    for k, (lr, lam) in enumerate(zip(lrs, lams, strict=True)):

        def objective(w, b, c, lam=lam):
            h = torch.sigmoid(x[0] @ w.T + b)
            bce = F.binary_cross_entropy_with_logits(h @ w + c, x[0], reduction="sum")
            jacobian = ((h * (1 - h)) ** 2 * (w**2).sum(1)).sum()
            return (bce + lam * jacobian) / M

        expected, (w, b, c) = _sgd_by_autograd(objective, [w0, torch.zeros(H).double(), torch.zeros(D).double()], lr)
        torch.testing.assert_close(loss[k], expected)
        torch.testing.assert_close(group.weight[k], w)
        torch.testing.assert_close(group.hidden_bias[k], b)
        torch.testing.assert_close(group.visible_bias[k], c)


def test_salt_and_pepper_destroys_a_fixed_count_and_emphasis_equals_autograd_sgd() -> None:
    from pipeline.training.kinds.dae_sp import EmphasisDAEGroup

    w0 = torch.randn(H, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.3
    lrs, noise, alpha, beta = [0.5, 0.25], [0.25, 0.5], [1.0, 1.0], [0.0, 0.5]
    group = EmphasisDAEGroup(w0, lrs, noise, alpha, beta).double()
    group.lr, group.alpha, group.beta = group.lr.double(), group.alpha.double(), group.beta.double()
    x = _binary((1, M, D), 2)
    x_in = group.corrupt(x, torch.Generator().manual_seed(3))
    noisy, mask = x_in[..., :D], x_in[..., D:].bool()
    assert mask.sum(-1).tolist() == [[round(0.25 * D)] * M, [round(0.5 * D)] * M]
    assert torch.equal(noisy[~mask], x.expand(2, M, D)[~mask]) and set(noisy[mask].unique().tolist()) <= {0.0, 1.0}
    loss = group.step(x, x_in)
    for k in range(2):
        weights = beta[k] + (alpha[k] - beta[k]) * mask[k].double()

        def objective(w, b, c, k=k, weights=weights):
            h = torch.sigmoid(noisy[k] @ w.T + b)
            return (weights * F.binary_cross_entropy_with_logits(h @ w + c, x[0], reduction="none")).sum() / M

        expected, (w, b, c) = _sgd_by_autograd(
            objective, [w0, torch.zeros(H).double(), torch.zeros(D).double()], lrs[k]
        )
        torch.testing.assert_close(loss[k], expected)
        torch.testing.assert_close(group.weight[k], w)
        torch.testing.assert_close(group.hidden_bias[k], b)
        torch.testing.assert_close(group.visible_bias[k], c)


@pytest.mark.parametrize(
    "spec",
    [
        StackSpec("cae", 6, 0.5, 4, options=(("contraction", 0.5),)),
        StackSpec("dae_sp", 6, 0.5, 4, 0.25, options=(("alpha", 1.0), ("beta", 0.5))),
    ],
    ids=["cae", "dae_sp"],
)
def test_a_kind_with_options_pretrains_a_stack_through_the_search(spec: StackSpec) -> None:
    from pipeline.training.search import pretrain_stacks

    x, xv = _binary((200, D), 4).float(), _binary((50, D), 5).float()
    stacks, _ = pretrain_stacks([spec], 2, x, xv, seed=0, batch_size=10, device=torch.device("cpu"), progress=False)
    stack = stacks[spec.name]
    assert stack.status == "ok" and [w.shape for w, _ in stack.weights] == [(6, D), (6, 6)]
    curve = stack.history[0]["valid_loss"]
    assert len(curve) == 4 and curve[-1] < curve[0]
