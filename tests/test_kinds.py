"""The layer-kind interface: every kind file answers the same calls, and params know exactly the kinds there are."""

from __future__ import annotations

import pytest
import torch

from pipeline.params.stacks import KINDS, KindTraits, StackParams
from pipeline.training.layer_kind import LayerGroup, StackSpec, kind_files, load_kind, stack_specs

D, H, M = 12, 5, 8


def test_params_know_exactly_the_kinds_there_is_code_for() -> None:
    assert sorted(KINDS) == kind_files()
    for name in kind_files():
        assert load_kind(name).name == name


def test_an_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ValueError, match=r"'nope'.*\['ae', 'rbm'\]"):
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
    assert x_in.shape[-2:] == (M, D)
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


def test_a_kinds_own_hyperparameters_are_grids_its_stacks_must_set(monkeypatch) -> None:
    """A kind with options (issue 39's contraction weight, emphasis): every stack of it sets each as a grid, searched
    with the others; the candidates' names carry them; a stack without options dumps as it always did."""
    monkeypatch.setitem(KINDS, "ae", KindTraits(noise="masking", options=("beta", "alpha")))
    with pytest.raises(ValueError, match="takes the options"):
        StackParams(kind="ae", layers=1, lr=[0.1], epochs=[2])
    stack = StackParams(kind="ae", layers=1, lr=[0.1], epochs=[2], options={"alpha": [1.0], "beta": [0.0, 0.5]})
    specs = stack_specs([8], stack)
    assert [s.name for s in specs] == ["h8-lr0.1-e2-nu0-alpha1-beta0", "h8-lr0.1-e2-nu0-alpha1-beta0.5"]
    assert specs[1].hparams()["options"] == {"alpha": 1.0, "beta": 0.5} and specs[0].prefix != specs[1].prefix
    assert "options" in stack.model_dump()
    monkeypatch.setitem(KINDS, "ae", KindTraits(noise="masking"))
    plain = StackParams(kind="ae", layers=1, lr=[0.1], epochs=[2])
    assert "options" not in plain.model_dump() and "options" not in stack_specs([8], plain)[0].hparams()
