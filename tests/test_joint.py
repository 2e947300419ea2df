"""The lab's DBN top: the joint RBM's exact P(y | h), its CD-1 step, and fine-tuning through it."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from pipeline.training.families.rbm import JointRBMGroup
from pipeline.training.mlp_group import MLPGroup, joint_logits


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_joint_logits_are_the_exact_conditional_by_enumeration():
    """P(y | h) of a joint RBM, by summing exp(-E(h, y, t)) over every hidden configuration t."""
    g = _gen(0)
    d, hidden, classes = 3, 4, 3
    w, u = torch.randn(hidden, d, generator=g), torch.randn(hidden, classes, generator=g)
    b, e = torch.randn(hidden, generator=g), torch.randn(classes, generator=g)
    h = torch.rand(5, d, generator=g)
    logits, a = joint_logits(h.unsqueeze(0), w[None], b[None], u[None], e[None])
    assert a.shape == (1, 5, hidden, classes)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=hidden)))  # (16, H)
    unnormalised = torch.stack(
        [torch.exp(e[y] + states @ (b[:, None] + w @ h.T + u[:, y : y + 1])).sum(0) for y in range(classes)], dim=1
    )
    torch.testing.assert_close(logits[0].softmax(1), unnormalised / unnormalised.sum(1, keepdim=True))


@pytest.mark.parametrize("hidden_layers", [0, 2])
def test_joint_head_step_equals_autograd_sgd(hidden_layers):
    g = _gen(1)
    d, widths, top, classes, m, lrs = 6, [5, 4], 7, 3, 8, [0.3, 1.1]
    sizes = [d, *widths[:hidden_layers]]
    params = []
    for _ in lrs:
        ps = [
            t
            for a, b in itertools.pairwise(sizes)
            for t in (torch.randn(b, a, generator=g), torch.randn(b, generator=g))
        ]
        ps += [
            torch.randn(top, sizes[-1], generator=g),
            torch.randn(top, generator=g),
            torch.randn(top, classes, generator=g),
            torch.randn(classes, generator=g),
        ]
        params.append(ps)
    x, y = torch.rand(m, d, generator=g), torch.randint(0, classes, (m,), generator=g)
    group = MLPGroup(params, lrs, head="joint")
    loss, err = group.step(x, y)
    for k, lr in enumerate(lrs):
        ref = [p.clone().requires_grad_() for p in params[k]]
        h = x
        for i in range(hidden_layers):
            h = torch.sigmoid(h @ ref[2 * i].T + ref[2 * i + 1])
        logits, _ = joint_logits(h.unsqueeze(0), *(t.unsqueeze(0) for t in ref[-4:]))
        ce = F.cross_entropy(logits[0], y)
        ce.backward()
        assert float(loss[k]) == pytest.approx(float(ce.detach()), rel=1e-5)
        assert float(err[k]) == float((logits[0].argmax(1) != y).float().mean())
        for new, old in zip(group.candidate_params(k), ref, strict=True):
            torch.testing.assert_close(new, (old - lr * old.grad).detach(), rtol=1e-4, atol=1e-5)


def test_mlp_group_rejects_an_unknown_head_or_a_short_joint_head():
    ps = [torch.zeros(4, 6), torch.zeros(4)]
    with pytest.raises(ValueError, match="head"):
        MLPGroup([ps], [0.1], head="rbm")
    with pytest.raises(ValueError, match="head"):
        MLPGroup([ps], [0.1], head="joint")


def test_joint_rbm_step_is_cd1_on_pixels_and_label():
    """The update from the same uniforms and categorical draws, written out by hand."""
    g = _gen(2)
    d, hidden, classes, m, lr = 6, 5, 3, 4, 0.5
    group = JointRBMGroup(torch.randn(hidden, d, generator=g) * 0.1, [lr], classes)
    group.label_weight.normal_(generator=g)
    group.label_bias.normal_(generator=g)
    w, u = group.weight[0].clone(), group.label_weight[0].clone()
    b, c, e = group.hidden_bias[0].clone(), group.visible_bias[0].clone(), group.label_bias[0].clone()
    v, y = (torch.rand(m, d, generator=g) < 0.5).float(), torch.randint(0, classes, (m,), generator=g)
    draws = _gen(3)
    group.step(v.unsqueeze(0), None, draws, y)
    draws = _gen(3)
    y1 = F.one_hot(y, classes).float()
    t_pos = torch.sigmoid(v @ w.T + y1 @ u.T + b)
    t = (torch.rand(t_pos.shape, generator=draws) < t_pos).float()
    v_neg = (torch.rand(m, d, generator=draws) < torch.sigmoid(t @ w + c)).float()
    y_neg = F.one_hot(torch.multinomial((t @ u + e).softmax(1), 1, generator=draws).view(m), classes).float()
    t_neg = torch.sigmoid(v_neg @ w.T + y_neg @ u.T + b)
    s = lr / m
    torch.testing.assert_close(group.weight[0], w + s * (t_pos.T @ v - t_neg.T @ v_neg))
    torch.testing.assert_close(group.label_weight[0], u + s * (t_pos.T @ y1 - t_neg.T @ y_neg))
    torch.testing.assert_close(group.hidden_bias[0], b + s * (t_pos - t_neg).sum(0))
    torch.testing.assert_close(group.visible_bias[0], c + s * (v - v_neg).sum(0))
    torch.testing.assert_close(group.label_bias[0], e + s * (y1 - y_neg).sum(0))


def test_joint_rbm_learns_to_classify_by_cd1_alone():
    """Generative training on (pixels, label) makes the exact P(y | v) a classifier far better than chance."""
    g = _gen(4)
    classes, d, n = 4, 20, 400
    prototypes = (torch.rand(classes, d, generator=g) < 0.5).float()
    y = torch.randint(0, classes, (n,), generator=g)
    flips = (torch.rand(n, d, generator=g) < 0.1).float()
    x = (prototypes[y] - flips).abs()
    group = JointRBMGroup(torch.randn(16, d, generator=g) * 0.01, [0.1], classes)
    before = float(group.errors(x.unsqueeze(0), y)[0])
    draws = _gen(5)
    for _ in range(30):
        for idx in torch.randperm(n, generator=draws).split(10):
            group.step(x[idx].unsqueeze(0), None, draws, y[idx])
    after = float(group.errors(x.unsqueeze(0), y)[0])
    assert after < 0.1 < before
    assert float(group.loss(x.unsqueeze(0), y=y)[0]) < 0.5 * d * 0.6931


def test_a_joint_stack_shares_the_plain_stacks_lower_layers_and_ends_in_a_joint_top():
    from pipeline.training.layer_kind import StackSpec
    from pipeline.training.search import pretrain_stacks

    g = _gen(6)
    y = torch.randint(0, 10, (300,), generator=g)
    x = (torch.rand(300, 16, generator=g) < 0.2 + 0.05 * y[:, None]).float()
    data, labels = (x[:200], x[200:]), (y[:200], y[200:])
    plain, joint = StackSpec("rbm", 8, 0.1, 3), StackSpec("rbm", 8, 0.1, 3, top="joint")
    kwargs = {"seed": 1, "batch_size": 20, "device": torch.device("cpu"), "progress": False}
    stacks, _ = pretrain_stacks([plain, joint], 2, *data, labels=labels, **kwargs)
    assert joint.name == plain.name + "-joint" and stacks[joint.name].status == "ok"
    lower, top = stacks[joint.name].weights
    assert all(torch.equal(a, b) for a, b in zip(lower, stacks[plain.name].weights[0], strict=True))
    assert [t.shape for t in top] == [(8, 8), (8,), (8, 10), (10,)]
    assert not torch.equal(top[0], stacks[plain.name].weights[1][0])
    history = stacks[joint.name].history[1]
    assert len(history["valid_error"]) == 3 and 0 <= history["valid_error"][-1] < 1
    with pytest.raises(ValueError, match="labels"):
        pretrain_stacks([joint], 1, *data, **kwargs)
    with pytest.raises(ValueError, match="joint"):
        StackSpec("ae", 8, 0.1, 3, top="joint")


@pytest.mark.parametrize("top", ["joint", "softmax"])
def test_the_stages_pretrain_finetune_and_evaluate_a_dbn_stack(
    top, tmp_path, monkeypatch, isolated_mlflow, mlflow_store
):
    """pretrain -> finetune -> evaluate on a tiny row with a two-layer DBN stack, the lab's (joint top) and the plain
    one: the network evaluate rebuilds from the saved file (models/mlp.JointTop or the MLP) scores the validation
    split as the fine-tuning search (MLPGroup) did; pretraining again (Gibbs sampling) gives the same weights."""
    import argparse
    import json

    import numpy as np
    import torch
    import yaml

    from pipeline.params import parse_params
    from pipeline.stages import evaluate, finetune, pretrain
    from tests.conftest import SMOKE_PARAMS

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    rng = np.random.default_rng(0)  # ten binary prototypes, 10% of the pixels flipped: an easy 10-class problem
    prototypes, folder = rng.random((10, 784)) < 0.3, tmp_path / "data/prepared/basic"
    folder.mkdir(parents=True)
    for split, n in (("train", 200), ("valid", 60), ("test", 60)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        np.save(folder / f"x_{split}.npy", (prototypes[y] ^ (rng.random((n, 784)) < 0.1)).astype(np.uint8) * 255)
        np.save(folder / f"y_{split}.npy", y)
    raw = yaml.safe_load(SMOKE_PARAMS.read_text())
    raw["vincent"] |= {
        "datasets": ["basic"],
        "stacks": {"dbnl": {"kind": "rbm", "layers": 2, "top": top, "lr": [0.1], "epochs": [5]}},
        "models": {"dbnl": {"dbn2l": {"layers": 2, "table_name": "DBN-3"}}},
        "rows": {"basic": {"finetune": {"batch_size": 8, "lr": [0.5, 2.0], "max_epochs": 15}, "stacks": {"dbnl": {}}}},
        "probe": {"logreg_C": [0.1], "svm_C": [1.0], "svm_layers": "top"},
    }
    params = parse_params(raw)
    args = argparse.Namespace(dataset="basic", stack="dbnl")
    pretrained = lambda: torch.load(tmp_path / "models/pretrain/basic/dbnl.pt", weights_only=False)["candidates"]  # noqa: E731
    pretrain.main(params, args)
    first = pretrained()
    pretrain.main(params, args)
    assert all(
        torch.equal(a, b)
        for x, y in zip(first, pretrained(), strict=True)
        for a, b in zip(sum(x["weights"], ()), sum(y["weights"], ()), strict=True)
    )
    for stage in (finetune, evaluate):
        stage.main(params, args)
    tuned = json.loads((tmp_path / "results/finetune/basic/dbnl.json").read_text())["dbn2l"]
    record = json.loads((tmp_path / "results/evaluate/basic/dbnl.json").read_text())["dbn2l"]["record"]
    suffix = "-joint" if top == "joint" else ""
    assert tuned["selected"].endswith((f"{suffix}-ftlr0.5", f"{suffix}-ftlr2"))
    assert record["valid_error"] == pytest.approx(tuned["valid_error"], abs=1e-6) and record["valid_error"] < 0.2
    assert 0 <= record["test_error"] <= 1 and record["selected"]["pretrain"].get("top", "softmax") == top
    probes = json.loads((tmp_path / "results/evaluate/basic/dbnl.json").read_text())["dbn2l"]["probes"]
    # the joint top needs the label: only the layer below is probed
    assert {p["layer"] for p in probes} == ({1} if top == "joint" else {1, 2})
