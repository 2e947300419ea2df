"""The candidate search: pretraining as a tree of shared prefixes, and fine-tuning by successive halving."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.training import halving
from pipeline.training.errors import BadInputError
from pipeline.training.families.autoencoder import TiedAEGroup
from pipeline.training.families.rbm import RBMGroup
from pipeline.training.halving import best_trial, halving_search, ranked, schedule
from pipeline.training.layer_kind import StackSpec
from pipeline.training.mlp_group import MLPGroup
from pipeline.training.search import SearchCost, pretrain_stacks

CPU = torch.device("cpu")
WIDTH, HIDDEN, BATCH = 16, 8, 20


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def binary_data() -> tuple[torch.Tensor, torch.Tensor]:
    x = (torch.rand(300, WIDTH, generator=_gen(0)) < 0.3).float()
    return x[:200], x[200:]


def _pretrain(specs, data, layers=3, **kwargs):
    kwargs = {"seed": 1, "batch_size": BATCH, "device": CPU, "progress": False, **kwargs}
    return pretrain_stacks(specs, layers, *data, **kwargs)


def _assert_same_stack(a, b, exact: bool = True) -> None:
    assert len(a.weights) == len(b.weights)
    for (wa, ba), (wb, bb), ca, cb in zip(a.weights, b.weights, a.visible_biases, b.visible_biases, strict=True):
        for u, v in ((wa, wb), (ba, bb), (ca, cb)):
            if exact:
                assert torch.equal(u, v)
            else:
                torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)
    if exact:
        assert a.history == b.history
    else:
        for ha, hb in zip(a.history, b.history, strict=True):
            assert ha.keys() == hb.keys()
            for key in ha:
                assert ha[key] == pytest.approx(hb[key], rel=1e-5)


# --- StackSpec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sae", 8, 0.1, 2, 0.0),  # unknown kind
        ("ae", 0, 0.1, 2, 0.0),
        ("ae", 8, 0.0, 2, 0.0),
        ("ae", 8, -0.1, 2, 0.0),
        ("ae", 8, 0.1, 0, 0.0),
        ("ae", 8, 0.1, 2, 1.0),  # noise must be < 1
        ("ae", 8, 0.1, 2, -0.1),
        ("rbm", 8, 0.1, 2, 0.25),  # RBMs take no masking noise
        ("rbm", 8, 0.1, 2, 0.0, "softmax", (), (0.0, 1)),  # the layers above: a positive rate, at least an epoch
        ("rbm", 8, 0.1, 2, 0.0, "softmax", (), (0.1, 0)),
    ],
)
def test_stack_spec_rejects_bad_candidates(args):
    with pytest.raises(ValueError):
        StackSpec(*args)


def test_stack_spec_names_and_prefixes():
    ae, rbm = StackSpec("ae", 8, 0.1, 2, 0.25), StackSpec("rbm", 8, 0.1, 2)
    assert ae.name == "h8-lr0.1-e2-nu0.25" and rbm.name == "h8-lr0.1-e2"
    assert ae.prefix == StackSpec("ae", 8, 0.1, 50, 0.25).prefix != StackSpec("ae", 8, 0.1, 2, 0.1).prefix


# --- pretrain_stacks ---------------------------------------------------------------------------------


def test_shorter_candidate_reads_the_snapshot_of_the_shared_run(binary_data):
    short, long = StackSpec("ae", HIDDEN, 0.1, 2), StackSpec("ae", HIDDEN, 0.1, 4)
    stacks, cost = _pretrain([short, long], binary_data)
    alone, alone_cost = _pretrain([short], binary_data)
    assert set(stacks) == {short.name, long.name}
    _assert_same_stack(stacks[short.name], alone[short.name])  # snapshot at epoch 2 = a 2-epoch run
    for stack, spec in ((stacks[short.name], short), (stacks[long.name], long)):
        assert len(stack.weights) == len(stack.visible_biases) == len(stack.history) == 3
        assert [w.shape for w, _ in stack.weights] == [(HIDDEN, WIDTH), (HIDDEN, HIDDEN), (HIDDEN, HIDDEN)]
        assert all(len(h["train_loss"]) == len(h["valid_loss"]) == spec.epochs for h in stack.history)
    first_short, first_long = stacks[short.name].history[0], stacks[long.name].history[0]
    assert first_short["valid_loss"] == first_long["valid_loss"][:2]
    assert not torch.equal(stacks[short.name].weights[0][0], stacks[long.name].weights[0][0])
    # Layer 0 is trained once, to 4 epochs; layers 1 and 2 once per epoch count.
    assert (cost.trained, cost.from_scratch) == (4 + 2 * (2 + 4), 3 * (2 + 4))
    assert cost.trained < cost.from_scratch
    assert cost.saved_fraction == pytest.approx(1 - 16 / 18)
    assert (alone_cost.trained, alone_cost.from_scratch) == (6, 6) and alone_cost.saved_fraction == 0
    assert SearchCost().saved_fraction == 0.0


@pytest.mark.parametrize("kind", ["rbm", "ae"])
def test_layers_above_the_first_train_on_their_own_schedule(binary_data, kind):
    """`upper` (lr, epochs): a first layer searched at 2 and 4 epochs keeps its layers above at 1 epoch of rate 0.05,
    on the snapshot of its own epochs; the first layer is the plain stack's, bit for bit."""
    short, long = (StackSpec(kind, HIDDEN, 0.1, e, upper=(0.05, 1)) for e in (2, 4))
    levels = "-nu0" if kind == "ae" else ""
    assert short.name == f"h8-lr0.1-e2{levels}-up0.05x1" and (short.schedule(0), short.schedule(2)) == (
        (0.1, 2),
        (0.05, 1),
    )
    assert short.prefix == StackSpec(kind, HIDDEN, 0.1, 2).prefix and short.hparams()["upper"] == {
        "lr": 0.05,
        "epochs": 1,
    }
    stacks, cost = _pretrain([short, long], binary_data)
    plain, _ = _pretrain([StackSpec(kind, HIDDEN, 0.1, 2), StackSpec(kind, HIDDEN, 0.1, 4)], binary_data)
    for spec in (short, long):
        stack = stacks[spec.name]
        assert [len(h["valid_loss"]) for h in stack.history] == [spec.epochs, 1, 1]
        plain_first = plain[spec.name.removesuffix("-up0.05x1")]
        assert torch.equal(stack.weights[0][0], plain_first.weights[0][0])
        assert not torch.equal(stack.weights[1][0], plain_first.weights[1][0])
    # Layer 0 once, to 4 epochs; layers 1 and 2 once per first-layer epoch count, 1 epoch each.
    assert (cost.trained, cost.from_scratch) == (4 + 2 * 2 * 1, (2 + 1 + 1) + (4 + 1 + 1))
    # The layers above read their own rate: at another, the first layer is the same and the second is not.
    other, _ = _pretrain([StackSpec(kind, HIDDEN, 0.1, 2, upper=(0.2, 1))], binary_data)
    other = other[f"h8-lr0.1-e2{levels}-up0.2x1"]
    assert torch.equal(other.weights[0][0], stacks[short.name].weights[0][0])
    assert not torch.equal(other.weights[1][0], stacks[short.name].weights[1][0])


def test_shallower_stack_is_a_prefix_of_a_deeper_one(binary_data):
    spec = StackSpec("rbm", HIDDEN, 0.1, 2)
    deep, _ = _pretrain([spec], binary_data, layers=3)
    shallow, _ = _pretrain([spec], binary_data, layers=1)
    assert len(shallow[spec.name].weights) == 1
    assert torch.equal(shallow[spec.name].weights[0][0], deep[spec.name].weights[0][0])


@pytest.mark.parametrize(
    ("kind", "noise"),
    [
        ("ae", 0.0),
        pytest.param("ae", 0.25),
        pytest.param("rbm", 0.0),
    ],
)
def test_candidate_does_not_depend_on_the_other_epoch_counts_searched(binary_data, kind, noise):
    """Layer 0's noise generator is seeded by `node.specs[0].name`, which carries the epoch count of whichever
    candidate of the prefix was listed first: the 4-epoch SdA/DBN depends on whether (and where) a 2-epoch
    candidate of the same prefix is in the search."""
    short, long = StackSpec(kind, HIDDEN, 0.1, 2, noise), StackSpec(kind, HIDDEN, 0.1, 4, noise)
    alone, _ = _pretrain([long], binary_data, layers=1)
    shared, _ = _pretrain([short, long], binary_data, layers=1)
    _assert_same_stack(shared[long.name], alone[long.name])


def test_pretraining_is_deterministic(binary_data):
    specs = [StackSpec("ae", HIDDEN, lr, 2, 0.25) for lr in (0.05, 0.1)] + [
        StackSpec("rbm", HIDDEN, lr, 2) for lr in (0.05, 0.1)
    ]
    a, cost_a = _pretrain(specs, binary_data, group_size=2)
    b, cost_b = _pretrain(specs + specs[:2], binary_data, group_size=2)  # duplicates are searched once
    assert set(a) == set(b) == {s.name for s in specs}
    assert cost_a == cost_b == SearchCost(trained=3 * 4 * 2, from_scratch=3 * 4 * 2)
    for spec in specs:
        _assert_same_stack(a[spec.name], b[spec.name])


def test_candidate_alone_in_its_group_does_not_depend_on_other_prefixes(binary_data):
    """With group_size 1 every prefix is its own run: adding other candidates changes nothing (any kind)."""
    specs = [StackSpec("ae", HIDDEN, 0.1, 2, 0.25), StackSpec("rbm", HIDDEN, 0.1, 2)]
    others = [StackSpec("ae", HIDDEN, 0.05, 2, 0.25), StackSpec("rbm", HIDDEN, 0.05, 2), StackSpec("ae", 4, 0.1, 2)]
    alone = {s.name: _pretrain([s], binary_data, layers=2)[0][s.name] for s in specs}
    mixed, _ = _pretrain(others + specs, binary_data, layers=2, group_size=1)
    for spec in specs:
        _assert_same_stack(mixed[spec.name], alone[spec.name])


def test_noiseless_autoencoders_do_not_depend_on_the_grouping(binary_data):
    """Lockstep groups share minibatches and noise streams; a candidate without masking draws no noise, so
    its stack is the same alone as in a group (up to rounding). SdA and RBM candidates get noise streams
    named after their group and are not grouping-invariant."""
    specs = [StackSpec("ae", HIDDEN, lr, 2, nu) for lr in (0.05, 0.1) for nu in (0.0, 0.25)]
    solo, _ = _pretrain(specs, binary_data, layers=2, group_size=1)
    grouped, _ = _pretrain(specs, binary_data, layers=2, group_size=4)
    for spec in specs:
        if spec.noise == 0:
            _assert_same_stack(grouped[spec.name], solo[spec.name], exact=False)


@pytest.mark.parametrize("kind", ["ae", "rbm"])
def test_finished_pretraining_resumes_from_checkpoints_without_training(binary_data, tmp_path, monkeypatch, kind):
    specs = [StackSpec(kind, HIDDEN, 0.1, 2), StackSpec(kind, HIDDEN, 0.1, 3)]
    first, cost = _pretrain(specs, binary_data, checkpoint_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert [f.split("-")[0] for f in files] == ["layer0", "layer1", "layer1", "layer2", "layer2"]

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(TiedAEGroup, "step", no_training)
    monkeypatch.setattr(RBMGroup, "step", no_training)
    again, cost_again = _pretrain(specs, binary_data, checkpoint_dir=tmp_path)
    assert cost_again == cost
    for spec in specs:
        _assert_same_stack(again[spec.name], first[spec.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == files


@pytest.mark.parametrize(
    ("kind", "noise"),
    [
        ("ae", 0.0),
        pytest.param("ae", 0.25),
        pytest.param("rbm", 0.0),
    ],
)
def test_interrupted_pretraining_resumes_identical(binary_data, tmp_path, monkeypatch, kind, noise):
    spec = StackSpec(kind, HIDDEN, 0.1, 4, noise)
    reference, _ = _pretrain([spec], binary_data, layers=1)
    cls = RBMGroup if kind == "rbm" else TiedAEGroup
    step, calls = cls.step, []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) > 2 * 200 // BATCH + 3:  # during epoch 3, after the checkpoint of epoch 2
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(cls, "step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _pretrain([spec], binary_data, layers=1, checkpoint_dir=tmp_path)
    monkeypatch.setattr(cls, "step", step)
    resumed, _ = _pretrain([spec], binary_data, layers=1, checkpoint_dir=tmp_path)
    assert len(calls) < 4 * 200 // BATCH  # the first run did stop early
    _assert_same_stack(resumed[spec.name], reference[spec.name])


def test_pretraining_rejects_inputs_outside_the_unit_interval(binary_data):
    x_train, x_valid = binary_data
    with pytest.raises(BadInputError):
        _pretrain([StackSpec("ae", HIDDEN, 0.1, 1)], (x_train * 2, x_valid), layers=1)


@pytest.mark.parametrize("kind", ["ae", "rbm"])
def test_train_loss_is_the_mean_per_example_like_the_valid_loss(binary_data, kind):
    """At a rate too small to move the weights, an epoch's training loss is the untrained loss of the training set,
    per example, on the same scale as the validation loss (it once was divided by the minibatch size again)."""
    x_train, _ = binary_data
    spec = StackSpec(kind, HIDDEN, 1e-12, 1)
    stacks, _ = _pretrain([spec], (x_train, x_train), layers=1)
    history = stacks[spec.name].history[0]
    if kind == "ae":  # noiseless: the reconstruction loss itself
        assert history["train_loss"][0] == pytest.approx(history["valid_loss"][0], rel=1e-5)
    else:  # CD-1's loss reads a sampled hidden layer, the validation loss its probabilities: close, not equal
        assert history["train_loss"][0] == pytest.approx(history["valid_loss"][0], rel=0.05)


@pytest.mark.parametrize("kind", ["ae", "rbm"])
def test_a_diverged_candidate_is_marked_and_gets_no_more_layers(binary_data, kind, caplog):
    good, bad = StackSpec(kind, HIDDEN, 0.1, 2), StackSpec(kind, HIDDEN, 1e8, 2)
    stacks, _ = _pretrain([good, bad], binary_data)
    alone, _ = _pretrain([good], binary_data)
    _assert_same_stack(stacks[good.name], alone[good.name])  # the others are untouched
    assert stacks[good.name].status == "ok" and stacks[good.name].diverged is None
    marked = stacks[bad.name]
    assert marked.status == "diverged"
    assert marked.diverged["layer"] == 0 and marked.diverged["epoch"] == 1
    assert marked.diverged["loss"] in ("train_loss", "valid_loss")
    assert not math.isfinite(float(marked.diverged["value"])) or marked.diverged["value"] > marked.diverged["limit"]
    assert marked.weights == [] and len(marked.history) == 1  # no usable layer, no layer above
    assert f"{bad.name.split('-e')[0]}" in caplog.text and "diverged at epoch 1" in caplog.text


def test_a_candidate_read_before_the_shared_run_diverged_is_sound(binary_data, monkeypatch):
    """Layer 0 serves every epoch count of a prefix: a divergence at epoch 3 spoils the 4-epoch candidate only."""
    short, long = StackSpec("ae", HIDDEN, 0.1, 2), StackSpec("ae", HIDDEN, 0.1, 4)
    step, calls = TiedAEGroup.step, []

    def blowing_up(self, x, x_in, *rest):
        layer0 = x.shape[-1] == WIDTH
        calls.extend([1] if layer0 else [])
        loss = step(self, x, x_in, *rest)
        return loss * 1e9 if layer0 and len(calls) > 2 * 200 // BATCH else loss  # layer 0 from epoch 3

    monkeypatch.setattr(TiedAEGroup, "step", blowing_up)
    stacks, _ = _pretrain([short, long], binary_data, layers=2)
    assert stacks[short.name].status == "ok" and len(stacks[short.name].weights) == 2
    assert stacks[long.name].diverged == {**stacks[long.name].diverged, "layer": 0, "epoch": 3, "loss": "train_loss"}


# --- halving_search ----------------------------------------------------------------------------------

RUNGS, ETA, MAX_EPOCHS, PATIENCE = [2, 4], 2, 8, 3
FT_LRS = [0.5, 2.0]


@pytest.fixture(scope="module")
def problem():
    """A learnable 4-class problem (labels: argmax of a fixed random linear map) and 4 pretrained stacks."""
    g = _gen(0)
    x = torch.rand(400, WIDTH, generator=g)
    y = ((x - 0.5) @ torch.randn(WIDTH, 4, generator=g)).argmax(1)
    data = (x[:300], y[:300], x[300:], y[300:])
    specs = [StackSpec("ae", HIDDEN, lr, e) for lr in (0.05, 0.1) for e in (1, 2)]
    stacks, _ = pretrain_stacks(specs, 2, x[:300], x[300:], seed=1, batch_size=BATCH, device=CPU, progress=False)
    return {name: s.weights for name, s in stacks.items()}, data


def _search(problem, **kwargs):
    stacks, data = problem
    kwargs = {
        "max_epochs": MAX_EPOCHS,
        "patience": PATIENCE,
        "rungs": RUNGS,
        "eta": ETA,
        "batch_size": BATCH,
        "seed": 3,
        "device": CPU,
        "progress": False,
        **kwargs,
    }
    return halving_search(stacks, FT_LRS, *data, **kwargs)


def _assert_same_trials(a, b) -> None:
    assert [t.summary() for t in a] == [t.summary() for t in b]
    for s, t in zip(a, b, strict=True):
        assert all(torch.equal(u, v) for u, v in zip(s.params, t.params, strict=True))
        assert all(torch.equal(u, v) for u, v in zip(s.best_params, t.best_params, strict=True))


def test_schedule():
    assert schedule(8, [2, 4]) == [2, 4, 8]
    assert schedule(8, [4, 2, 4]) == [2, 4, 8]  # sorted, deduplicated
    assert schedule(4, [2, 4, 10]) == [2, 4]  # rungs at or past the end are dropped
    assert schedule(5, [0]) == [5]
    assert schedule(3, []) == [3]


def test_halving_rejects_eta_below_two(problem):
    with pytest.raises(ValueError, match="eta"):
        _search(problem, eta=1)


def test_halving_keeps_the_best_fraction_at_each_rung(problem):
    trials = _search(problem)
    stacks, (_, _, x_valid, y_valid) = problem
    assert [t.name for t in trials] == [f"{s}-ftlr{lr:g}" for s in stacks for lr in FT_LRS]
    ended = {}  # trial -> (how it ended, at which epoch)
    for t in trials:
        how = t.status.split(" at epoch ")[0]
        ended[t.name] = (how, int(t.status.split()[-1]) if how != "finished" else MAX_EPOCHS)
        assert how in ("pruned", "patience", "finished")
        assert t.epochs == ended[t.name][1]  # no candidate trained past the point it stopped
        assert all(len(h) == t.epochs for h in t.history.values())
        assert t.best_error == min(t.history["valid_error"])
        # the best epoch: the lowest error, ties to the lower validation cross-entropy
        pairs = list(zip(t.history["valid_error"], t.history["valid_loss"], strict=True))
        assert t.best_epoch == pairs.index(min(pairs)) + 1 and t.best_loss == min(pairs)[1]
        if how == "patience":  # counted from the first epoch at the lowest error: a tie is no improvement
            assert t.epochs - t.history["valid_error"].index(t.best_error) - 1 == PATIENCE
        if how == "pruned":
            assert t.epochs in RUNGS
    assert [t.status for t in trials].count("pruned at epoch 2") == 4  # 8 run to epoch 2 (patience 3 stops none)
    alive = list(trials)
    for rung in RUNGS:
        running = [t for t in alive if not (ended[t.name][0] == "patience" and ended[t.name][1] <= rung)]
        kept = [t for t in running if ended[t.name] != ("pruned", rung)]
        assert len(kept) == max(1, math.ceil(len(running) / ETA))

        def rank(t, rung=rung):  # best (validation error, cross-entropy) up to the rung; then the first listed
            return (
                *min(zip(t.history["valid_error"][:rung], t.history["valid_loss"][:rung], strict=True)),
                trials.index(t),
            )

        pruned = [t for t in running if ended[t.name] == ("pruned", rung)]
        assert max(map(rank, kept)) < min(map(rank, pruned), default=(math.inf, math.inf, 0))
        alive = kept
    assert sum(ended[t.name][0] == "pruned" for t in trials) > 0
    assert sum(t.epochs for t in trials) < len(trials) * MAX_EPOCHS

    winner = best_trial(trials)
    assert winner.best_error == min(t.best_error for t in trials)
    assert winner is min(trials, key=lambda t: (t.best_error, t.best_loss, trials.index(t)))
    assert winner.best_error < 1 - torch.bincount(y_valid).max().item() / len(y_valid)  # beats a constant guess
    for t in (winner, trials[0]):  # each keeps the weights of its best epoch
        net = MLPGroup([t.best_params], [t.lr])
        assert float(net.errors(x_valid, y_valid)[0]) == pytest.approx(t.best_error)


def test_ties_of_the_validation_error_go_to_the_lower_cross_entropy(problem):
    """Between epochs and between candidates: the same error, the lower loss wins (a small split ties often)."""
    trials = _search(problem, rungs=[], patience=MAX_EPOCHS)
    tied = [t for t in trials if t.history["valid_error"].count(t.best_error) > 1]
    assert tied, "the problem's 100 validation examples should give some tie between epochs"
    for t in tied:
        at_best = [
            loss for e, loss in zip(t.history["valid_error"], t.history["valid_loss"], strict=True) if e == t.best_error
        ]
        assert t.best_loss == min(at_best)
        net = MLPGroup([t.best_params], [t.lr])  # the weights kept are those of that epoch
        logits = net(problem[1][2])[0]
        assert float(torch.nn.functional.cross_entropy(logits, problem[1][3])) == pytest.approx(t.best_loss, rel=1e-5)
    a, b = trials[0], trials[1]
    a.best_error, b.best_error, a.best_loss, b.best_loss = 0.1, 0.1, 0.5, 0.4
    assert ranked([a, b])[0] is b and ranked([b, a])[0] is b


def test_halving_is_deterministic_and_grouping_invariant(problem):
    a = _search(problem)
    _assert_same_trials(a, _search(problem))
    grouped = _search(problem, group_size=4)
    assert [t.status for t in grouped] == [t.status for t in a]
    for s, t in zip(a, grouped, strict=True):
        assert s.history["valid_error"] == t.history["valid_error"]
        for u, v in zip(s.best_params, t.best_params, strict=True):
            torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_finished_halving_search_resumes_without_training(problem, tmp_path, monkeypatch):
    path = tmp_path / "search.pt"
    first = _search(problem, checkpoint_path=path, patience=MAX_EPOCHS)  # no early stops: 8 -> 4 -> 2 finish
    assert [t.status for t in first].count("finished") == 2
    assert path.exists()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished search was trained again")

    monkeypatch.setattr(halving, "_train_segment", no_training)
    _assert_same_trials(_search(problem, checkpoint_path=path, patience=MAX_EPOCHS), first)


def test_killed_halving_search_resumes_identical(problem, tmp_path, monkeypatch):
    reference = _search(problem, group_size=2)
    path = tmp_path / "search.pt"
    segment, calls = halving._train_segment, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # segment 0 (4 groups) and the first group of segment 1 are done
            raise KeyboardInterrupt
        return segment(*args, **kwargs)

    monkeypatch.setattr(halving, "_train_segment", killed)
    with pytest.raises(KeyboardInterrupt):
        _search(problem, group_size=2, checkpoint_path=path)
    monkeypatch.setattr(halving, "_train_segment", segment)
    _assert_same_trials(_search(problem, group_size=2, checkpoint_path=path), reference)


def test_the_pretrain_stage_marks_a_diverged_candidate_and_finetune_skips_it(
    tmp_path, monkeypatch, isolated_mlflow, mlflow_store
):
    import argparse
    import json

    import yaml

    from pipeline.params import parse_params
    from pipeline.stages import finetune, pretrain
    from tests.conftest import SMOKE_PARAMS, tiny_prepared

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    tiny_prepared(tmp_path)
    raw = yaml.safe_load(SMOKE_PARAMS.read_text())
    raw["vincent"]["datasets"] = ["basic"]
    raw["vincent"]["rows"] = {"basic": {"finetune": {}, "stacks": {"dbn": {}, "sda": {"lr": [0.05, 1.0e8]}}}}
    params = parse_params(raw)
    args = argparse.Namespace(dataset="basic", stack="sda")
    pretrain.main(params, args)
    finetune.main(params, args)
    results = json.loads((tmp_path / "results/pretrain/basic/sda.json").read_text())["candidates"]
    assert {n: r["status"] for n, r in results.items()} == {
        "h24-lr0.05-e1-nu0.25": "ok",
        "h24-lr0.05-e2-nu0.25": "ok",
        "h24-lr1e+08-e1-nu0.25": "diverged",
        "h24-lr1e+08-e2-nu0.25": "diverged",
    }
    assert results["h24-lr1e+08-e2-nu0.25"]["diverged"]["layer"] == 0
    curve = (tmp_path / "plots/pretrain/basic/sda/h24-lr1e+08-e1-nu0.25-layer1.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,valid_loss" and len(curve) == 2
    trials = json.loads((tmp_path / "results/finetune/basic/sda.json").read_text())["sda3"]["trials"]
    assert {t["stack"] for t in trials} == {"h24-lr0.05-e1-nu0.25", "h24-lr0.05-e2-nu0.25"}
