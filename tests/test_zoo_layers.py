"""The table's layer kinds in the zoo (zoo.layers): trained by the table's step, each is the dense variant it claims."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipeline import wire
from pipeline.models.dense_ae import DenseAEConfig, DenseAutoencoder
from pipeline.params import ZooParams, load_params
from pipeline.zoo import layers
from pipeline.zoo.comparisons import layers_section
from pipeline.zoo.layer_training import train
from tests.mnist_fixture import mnist
from tests.test_params import assert_params_error

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"plain": {"epochs": 1, "sizes": [784, 8], "hidden_activation": "sigmoid"}}


def zoo_with(**layer_entries: dict) -> ZooParams:
    return ZooParams.model_validate({"variants": VARIANTS, "layers": layer_entries})


def trained(kind: str, **settings) -> tuple:
    x, _ = mnist(96)
    layer = zoo_with(t={"kind": kind, "hidden": 8, "lr": 0.05, "epochs": 2, "batch_size": 16, **settings}).layers["t"]
    model, history, diverged = train(
        "t", layer, x[:64], x[64:], seed=3, device=torch.device("cpu"), checkpoint_dir=None
    )
    return layer, model, history, diverged, x[64:]


def test_a_contractive_layer_is_the_dense_autoencoder_whose_loss_its_history_reports() -> None:
    """The dense model scores the validation digits exactly as the kind did after its last epoch: the weights went in
    the right way round, and the kind's closed-form ||J||_F^2 is the dense net's own contractive penalty."""
    layer, model, history, diverged, xv = trained("cae", options={"contraction": 0.3})
    assert diverged is None and list(history) == ["train_loss", "valid_loss"] and len(history["valid_loss"]) == 2
    assert isinstance(model, DenseAutoencoder) and model.config.tied and model.config.sizes == [784, 8]
    with torch.no_grad():
        recon = model.reconstruction_loss(xv, xv)
        penalty = model.contractive_penalty(model.encode_layers(xv)[0])
    assert float(recon + 0.3 * penalty) == pytest.approx(history["valid_loss"][-1], rel=1e-5)
    assert history["valid_loss"][-1] < history["valid_loss"][0] * 1.05


def test_a_salt_and_pepper_layer_learns_and_its_dense_model_reconstructs() -> None:
    layer, model, history, diverged, xv = trained("dae_sp", noise=0.25, options={"alpha": 1.0, "beta": 0.5})
    assert diverged is None and history["train_loss"][-1] < history["train_loss"][0]
    untrained = DenseAutoencoder(DenseAEConfig(sizes=[784, 8], tied=True), torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert float(model.reconstruction_loss(xv, xv)) < float(untrained.reconstruction_loss(xv, xv))


def test_the_same_seed_trains_the_same_layer() -> None:
    a, b = trained("cae", options={"contraction": 0.1})[1], trained("cae", options={"contraction": 0.1})[1]
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_with_layers_adds_each_layer_after_the_variants_as_its_dense_variant() -> None:
    z = layers.with_layers(load_params(ROOT / "params.yaml").zoo)
    assert list(z.variants)[-2:] == ["cae", "dae_sp"] and z.layers
    cae = z.variants["cae"]
    assert (cae.kind, cae.sizes, cae.tied, cae.hidden_activation, cae.loss) == (
        "dense",
        [784, 64],
        True,
        "sigmoid",
        "cross_entropy",
    )
    assert (
        cae.noise_level == 0 and cae.reference == "shallow_sigmoid"
    )  # scored on the clean digits, beside its reference


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"kind": "rbm", "lr": 0.1, "epochs": 1}, ["kind = 'rbm'", "['ae', 'cae', 'dae_sp']"]),
        ({"kind": "cae", "lr": 0.1, "epochs": 1}, ["options = {}", "['contraction']"]),
        ({"kind": "cae", "lr": 0.1, "epochs": 1, "noise": 0.2, "options": {"contraction": 0.1}}, ["takes no noise"]),
        ({"kind": "ae", "lr": 0.1, "epochs": 1, "reference": "nope"}, ["layers.t.reference = 'nope'", "zoo.variants"]),
    ],
)
def test_a_bad_layer_entry_names_what_is_wrong(entry: dict, expected: list[str]) -> None:
    assert_params_error({"zoo": {"variants": VARIANTS, "layers": {"t": entry}}}, expected)


def test_a_layer_may_not_share_a_variants_name() -> None:
    entry = {"kind": "ae", "lr": 0.1, "epochs": 1}
    assert_params_error({"zoo": {"variants": VARIANTS, "layers": {"plain": entry}}}, ["layers.plain", "name it apart"])


def test_each_layer_is_a_stage_declaring_its_own_kind() -> None:
    assert wire.zoo_layer_items(ROOT / "params.yaml") == {
        "cae": {"layer": "cae", "kind": "cae", "family": "autoencoder"},
        "dae_sp": {"layer": "dae_sp", "kind": "dae_sp", "family": "autoencoder"},
    }
    assert wire.code_deps("pipeline.stages.zoo_layer")[-2:] == wire.KIND_DEPS


def _metrics(title: str, jac: float) -> dict:
    return {
        "title": title,
        "test": {"mse": 0.02},
        "probe": {"linear_probe_acc": 0.9, "knn_acc": 0.95},
        "jacobian_fro2": jac,
        "sparsity": {"mean_activation": 0.2},
        "history": {"valid_loss": [120.0, 80.0]},
    }


def test_the_layers_section_sets_each_layer_beside_its_reference_and_is_skipped_without_layers() -> None:
    z = zoo_with(t={"kind": "cae", "lr": 0.03, "epochs": 2, "options": {"contraction": 0.3}, "reference": "plain"})
    text = "\n".join(layers_section(z, {"t": _metrics("cae 784-8", 6.5), "plain": _metrics("plain 784-8", 60.0)}))
    assert text.startswith("## The table's layer kinds") and "| reference " in text and " 6.5 |" in text
    assert "kind `cae`, 784-64, contraction 0.3, SGD at rate 0.03, minibatch 32, 2 epochs" in text
    assert layers_section(ZooParams.model_validate({"variants": VARIANTS}), {}) == []
