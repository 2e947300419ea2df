"""Greedy layer-wise pretraining and fine-tuning: determinism, checkpoint resume, bad input, learning."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models.mlp import MLPClassifier
from pipeline.training.checkpoints import load_checkpoint
from pipeline.training.errors import BadInputError, CheckpointError, DivergenceError
from pipeline.training.finetune import finetune
from pipeline.training.layerwise import PretrainConfig, pretrain_stack
from pipeline.training.loop import train_model
from tests.mnist_fixture import mnist

SIZES = [784, 64, 32]


@pytest.fixture(scope="module")
def data():
    x, y = mnist(1500)
    return x[:1000], y[:1000], x[1000:], y[1000:]


def _config(kind: str, epochs: int = 3) -> PretrainConfig:
    if kind == "rbm":  # PCD with momentum: the chains and velocities must survive a resume too
        return PretrainConfig(
            epochs=epochs, lr=0.05, batch_size=20, persistent=True, momentum=0.5, weight_decay=1e-4
        )
    return PretrainConfig(epochs=epochs, lr=0.1, batch_size=20, noise_level=0.25 if kind == "dae" else 0.0)


def _assert_same_stack(a, b) -> None:
    for (wa, ba), (wb, bb) in zip(a.weights, b.weights, strict=True):
        assert torch.equal(wa, wb) and torch.equal(ba, bb)
    assert a.history == b.history


@pytest.mark.parametrize("kind", ["ae", "dae", "rbm"])
def test_same_seed_gives_identical_weights(data, kind):
    x, _, xv, _ = data
    first = pretrain_stack(kind, SIZES, x, xv, _config(kind, 2), seed=3, progress=False)
    second = pretrain_stack(kind, SIZES, x, xv, _config(kind, 2), seed=3, progress=False)
    _assert_same_stack(first, second)
    other = pretrain_stack(kind, SIZES, x, xv, _config(kind, 2), seed=4, progress=False)
    assert not torch.equal(first.weights[0][0], other.weights[0][0])
    assert [w.shape for w, _ in first.weights] == [(64, 784), (32, 64)]
    assert first.first_layer_filters.shape == (64, 784)
    for history in first.history:
        assert len(history["train_loss"]) == len(history["valid_loss"]) == 2


def test_noise_makes_dae_differ_from_ae(data):
    x, _, xv, _ = data
    ae = pretrain_stack(
        "ae", SIZES[:2], x, xv, PretrainConfig(epochs=1, noise_level=0.25), seed=0, progress=False
    )
    dae = pretrain_stack(
        "dae", SIZES[:2], x, xv, PretrainConfig(epochs=1, noise_level=0.25), seed=0, progress=False
    )
    plain = pretrain_stack(
        "dae", SIZES[:2], x, xv, PretrainConfig(epochs=1, noise_level=0.0), seed=0, progress=False
    )
    assert not torch.equal(ae.weights[0][0], dae.weights[0][0])
    assert ae.history[0]["train_loss"] < dae.history[0]["train_loss"]  # denoising is the harder task
    # "ae" ignores noise_level: it is the noise-free special case of "dae"
    assert torch.allclose(ae.weights[0][0], plain.weights[0][0])


@pytest.mark.parametrize("kind", ["dae", "rbm"])
def test_resume_is_bitwise_identical(data, kind, tmp_path):
    x, _, xv, _ = data
    straight = pretrain_stack(kind, SIZES, x, xv, _config(kind, 4), seed=1, progress=False)

    # the brief's scenario: 2 epochs, then a fresh call that resumes layer 0 to 4 epochs
    pretrain_stack(
        kind, SIZES[:2], x, xv, _config(kind, 2), seed=1, checkpoint_dir=tmp_path / "a", progress=False
    )
    resumed = pretrain_stack(
        kind, SIZES, x, xv, _config(kind, 4), seed=1, checkpoint_dir=tmp_path / "a", progress=False
    )
    _assert_same_stack(straight, resumed)
    with pytest.warns(UserWarning, match="past epoch 2"):  # a checkpoint ahead of the request is not used
        shorter = pretrain_stack(
            kind, SIZES[:2], x, xv, _config(kind, 2), seed=1, checkpoint_dir=tmp_path / "a", progress=False
        )
    assert len(shorter.history[0]["train_loss"]) == 2

    # an interruption in the middle of layer 1 (e.g. a killed job), then a restart with the same arguments
    class Interrupted(Exception):
        pass

    def interrupt(layer, epoch, metrics):
        if (layer, epoch) == (1, 2):
            raise Interrupted

    def run_b(on_epoch):
        return pretrain_stack(
            kind, SIZES, x, xv, _config(kind, 4), seed=1, checkpoint_dir=tmp_path / "b", on_epoch=on_epoch,
            progress=False,
        )  # fmt: skip

    with pytest.raises(Interrupted):
        run_b(interrupt)
    calls = []
    restarted = run_b(lambda *a: calls.append(a[:2]))
    _assert_same_stack(straight, restarted)
    assert calls == [(1, 3), (1, 4)]  # only the epochs still to do were trained


def test_corrupt_checkpoint_raises_checkpoint_error(data, tmp_path):
    x, _, xv, _ = data
    pretrain_stack(
        "dae", SIZES[:2], x, xv, _config("dae", 1), seed=0, checkpoint_dir=tmp_path, progress=False
    )
    path = tmp_path / "layer0.pt"
    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.raises(CheckpointError, match="layer0.pt"):
        pretrain_stack(
            "dae", SIZES[:2], x, xv, _config("dae", 1), seed=0, checkpoint_dir=tmp_path, progress=False
        )
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="layer0.pt"):
        pretrain_stack(
            "dae", SIZES[:2], x, xv, _config("dae", 1), seed=0, checkpoint_dir=tmp_path, progress=False
        )


def test_bad_inputs_name_model_layer_and_epoch(data):
    x, y, xv, yv = data
    with pytest.raises(BadInputError, match=r"model=SdA, layer=0, epoch=1.*\[0, 1\]"):
        pretrain_stack("dae", SIZES, x * 2, xv, _config("dae"), seed=0, progress=False)
    with pytest.raises(BadInputError, match=r"model=DBN.*width 784"):
        pretrain_stack("rbm", SIZES, x[:, :700], xv[:, :700], _config("rbm"), seed=0, progress=False)
    with pytest.raises(BadInputError, match="NaN"):
        bad = x.clone()
        bad[3, 5] = float("nan")
        pretrain_stack("ae", SIZES, bad, xv, _config("ae"), seed=0, progress=False)
    with pytest.raises(BadInputError, match="MLPClassifier"):
        finetune(MLPClassifier(SIZES), x, y + 10, xv, yv, 0.1, 2, 2, 20, seed=0, progress=False)


def test_divergence_raises_and_keeps_the_last_good_checkpoint(data, tmp_path):
    x, _, xv, _ = data
    with pytest.raises(DivergenceError, match=r"model=SdA, layer=0, epoch=1"):
        pretrain_stack("dae", SIZES, x, xv, PretrainConfig(epochs=2, lr=1e38), seed=0, progress=False)

    class Flaky(nn.Module):
        """A model whose loss turns NaN in its third epoch."""

        input_dim, unit_interval = 784, True

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(784))
            self.calls = 0

        def loss(self, xb, generator):
            self.calls += 1
            value = ((xb - self.w) ** 2).sum(1).mean()
            return (value * float("nan") if self.calls > 2 * 10 else value), {}

    path = tmp_path / "flaky.pt"
    with pytest.raises(DivergenceError, match=r"model=Flaky, layer=-, epoch=3"):
        train_model(
            Flaky(),
            x,
            epochs=5,
            lr=0.01,
            batch_size=100,
            seed=0,
            optimizer="sgd",
            checkpoint_path=path,
            progress=False,
        )
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 2 and torch.isfinite(state["model"]["w"]).all()
    assert load_checkpoint(path, state["config_hash"]) is not None


def test_mlp_from_stack_and_finetune_learns_and_stops_early(data, tmp_path):
    x, y, xv, yv = data
    stack = pretrain_stack("dae", SIZES, x, xv, _config("dae", 3), seed=0, progress=False)
    mlp = MLPClassifier.from_stack(stack)
    assert torch.equal(mlp.hidden[0].weight.detach(), stack.weights[0][0])
    assert torch.equal(mlp.hidden[1].bias.detach(), stack.weights[1][1])
    assert not mlp.output.weight.any()
    assert mlp.error_rate(xv, yv) > 0.8  # a zero output layer predicts one class

    seen = []
    result = finetune(
        mlp,
        x,
        y,
        xv,
        yv,
        lr=0.5,
        max_epochs=12,
        patience=3,
        batch_size=20,
        seed=0,
        checkpoint_path=tmp_path / "ft.pt",
        on_epoch=lambda *a: seen.append(a),
        progress=False,
    )
    assert result.best_valid_error < 0.2, result
    assert mlp.error_rate(xv, yv) == result.best_valid_error  # the best epoch's weights were restored
    assert result.history["valid_error"][result.best_epoch - 1] == result.best_valid_error
    assert len(seen) == len(result.history["train_loss"]) and seen[0][0] is None
    assert set(seen[0][2]) == {"train_loss", "train_error", "valid_error"}

    frozen = MLPClassifier.from_stack(stack, generator=torch.Generator().manual_seed(0), output_init="random")
    stopped = finetune(
        frozen, x, y, xv, yv, lr=1e-12, max_epochs=20, patience=2, batch_size=100, seed=0, progress=False
    )
    assert len(stopped.history["valid_error"]) == 3 and stopped.best_epoch == 1


def test_finetune_resume_is_bitwise_identical(data, tmp_path):
    x, y, xv, yv = data
    stack = pretrain_stack("rbm", SIZES, x, xv, _config("rbm", 1), seed=0, progress=False)
    args = (x, y, xv, yv)
    kwargs = dict(lr=0.1, patience=5, batch_size=20, seed=2, progress=False)
    straight = MLPClassifier.from_stack(stack)
    finetune(straight, *args, max_epochs=4, **kwargs)
    resumed = MLPClassifier.from_stack(stack)
    finetune(resumed, *args, max_epochs=2, checkpoint_path=tmp_path / "ft.pt", **kwargs)
    resumed = MLPClassifier.from_stack(stack)  # a fresh process: same starting weights, same checkpoint
    finetune(resumed, *args, max_epochs=4, checkpoint_path=tmp_path / "ft.pt", **kwargs)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
