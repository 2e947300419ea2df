"""The autoencoder zoo: every variant builds and learns, the PCA angles are right, the params are checked."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.common.seeding import make_generator
from pipeline.core import paths
from pipeline.data.corruption import corrupt_uint8, noise_name
from pipeline.params import ZooParams, load_params
from pipeline.zoo import metrics as zm
from pipeline.zoo import registry as zoo
from pipeline.zoo import tables as zt
from pipeline.zoo.comparisons import tour_section
from tests.mnist_fixture import mnist
from tests.test_params import assert_params_error

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml").zoo
SMOKE = load_params(ROOT / "tests/smoke_params.yaml").zoo


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("profile", "name"),
    [("params", n) for n in sorted(PARAMS.variants)] + [("smoke", n) for n in sorted(SMOKE.variants)],
)
def test_each_variant_builds_and_one_step_reduces_its_loss(profile: str, name: str) -> None:
    z: ZooParams = {"params": PARAMS, "smoke": SMOKE}[profile]
    spec = z.variants[name]
    model = zoo.build(spec, _gen(0))
    x, _ = mnist(64)
    assert zoo.codes(model, x).shape == (64, zoo.code_dim(spec))
    assert zoo.reconstruct(model, x).shape == (64, 784)
    assert zoo.hidden(model, x).shape[0] == 64
    buffers = {k: v.clone() for k, v in model.named_buffers()}

    def loss() -> float:  # same noise and same sparsity running average before and after the step
        model.eval()
        model.load_state_dict({**model.state_dict(), **buffers})
        with torch.no_grad():
            return float(model.loss(x, _gen(1))[0])

    before = loss()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    opt.zero_grad()
    model.loss(x, _gen(2))[0].backward()
    opt.step()
    after = loss()
    assert math.isfinite(after) and after < before, (name, before, after)


def test_principal_angles_known_answer() -> None:
    e = np.eye(5)
    a = e[[0, 1]]
    b = np.stack([e[0], math.cos(math.radians(30)) * e[1] + math.sin(math.radians(30)) * e[2]])
    np.testing.assert_allclose(zm.principal_angles_deg(a, b), [0.0, 30.0], atol=1e-6)
    # the angles depend on the subspaces only: mixing and scaling the rows changes nothing
    np.testing.assert_allclose(zm.principal_angles_deg(np.array([[2.0, 0], [1, 1]]) @ a, 3 * b), [0.0, 30.0], atol=1e-6)
    np.testing.assert_allclose(zm.principal_angles_deg(e[[0]], e[[3]]), [90.0], atol=1e-6)


def test_pca_recovers_a_known_subspace() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(20, 3)))[0].T  # 3 orthonormal directions in R^20
    data = (rng.normal(size=(2000, 3)) * [5.0, 3.0, 2.0]) @ basis + 0.01 * rng.normal(size=(2000, 20)) + 0.5
    pca = zm.fit_pca(torch.from_numpy(data).float(), 3, seed=0)
    mixed = np.array([[1.0, 2, 0], [0, 1, -1], [3, 0, 1]]) @ basis  # another basis of the same subspace
    assert zm.principal_angles_deg(mixed, pca.components_).max() < 0.5
    tilted = basis.copy()
    tilted[2] = (
        math.cos(math.radians(40)) * basis[2]
        + math.sin(math.radians(40)) * np.linalg.qr(np.c_[basis.T, rng.normal(size=20)])[0][:, 3]
    )
    np.testing.assert_allclose(zm.principal_angles_deg(tilted, pca.components_).max(), 40.0, atol=0.5)


def test_reconstruction_errors_and_sparsity_on_known_values() -> None:
    target = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    recon = torch.tensor([[0.5, 1.0], [1.0, 0.5]])
    errors = zm.reconstruction_errors(recon, target)
    assert errors["mse"] == pytest.approx(0.125)
    assert errors["bce"] == pytest.approx(math.log(2), abs=1e-4)  # one pixel at 0.5 per image
    s = zm.sparsity(torch.tensor([[0.0, 2.0], [0.01, -4.0]]), near_zero=0.05)
    assert s == pytest.approx({"mean_activation": 1.5025, "near_zero_fraction": 0.5, "dead_unit_fraction": 0.5})


def test_missing_corrupted_copy_is_a_clear_error_and_a_present_one_is_used(tmp_path: Path, monkeypatch) -> None:
    from pipeline.data.arrays import DataFileError
    from pipeline.zoo.evaluate import noisy_test

    monkeypatch.chdir(tmp_path)
    clean, _ = mnist(50)
    with pytest.raises(DataFileError, match=r"gaussian-0.5/x_test.npy: not found.*add 0.5 to corrupt.gaussian"):
        noisy_test(SMOKE, "gaussian-0.5", clean)
    expected = corrupt_uint8(clean, "gaussian", 0.5, make_generator(3, "corrupt", "full", "gaussian", 0.5, "test"))
    folder = tmp_path / "data/corrupted/full/gaussian-0.5"
    folder.mkdir(parents=True)
    np.save(folder / "x_test.npy", expected)
    fixed, source = noisy_test(SMOKE, "gaussian-0.5", clean)
    assert source.endswith("gaussian-0.5/x_test.npy")
    torch.testing.assert_close(fixed, torch.from_numpy(expected).float() / 255)


def test_zoo_params_and_dvc_stages_agree() -> None:
    assert set(SMOKE.variants) <= set(PARAMS.variants), "the smoke profile runs variants of the real zoo"
    assert {s.kind for s in SMOKE.variants.values()} == {"dense", "conv", "vae"}, "every kind of model runs in CI"
    report = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["zoo_report"]
    for name in PARAMS.variants:  # the report depends on the folders every variant writes into
        assert (
            str(paths.zoo_model(name).parent) in report["deps"]
            and str(paths.zoo_results(name).parent) in report["deps"]
        )
    corrupt = load_params(ROOT / "params.yaml").corrupt
    fixed = {noise_name(kind, level) for kind, level in corrupt.noises()}
    assert PARAMS.dataset in corrupt.datasets
    for name, spec in PARAMS.variants.items():  # the real run scores on the corrupt stage's own copies
        assert zoo.train_noise(spec) in fixed | {None}, name
    assert set(PARAMS.eval_noises) <= fixed
    train = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["zoo_train"]["do"]
    for noise in PARAMS.eval_noises:  # dvc.yaml lists the noisy copies the zoo reads, one line each
        dep = f"data/corrupted/${{zoo.dataset}}/{noise}/x_test.npy"
        assert dep in train["deps"] and dep in report["deps"], dep


def _zoo(variants: dict, **rest) -> dict:
    return {"zoo": {"variants": variants, **rest}}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (_zoo({"a": {"epochs": 0}}), ["zoo.variants.a.epochs", "greater than 0"]),
        (_zoo({"a": {"epochs": 1, "hiden": 3}}), ["zoo.variants.a.hiden", "unknown key"]),
        (_zoo({"a": {}}), ["zoo.variants.a.epochs", "missing"]),
        (_zoo({"a": {"epochs": 1, "noise_level": 1.5}}), ["zoo.variants.a.noise_level", "1.5"]),
        (_zoo({"a": {"epochs": 1, "hidden_activation": "gelu"}}), ["zoo.variants.a.hidden_activation", "'gelu'"]),
        (_zoo({"a": {"epochs": 1, "lr": "1e-3"}}), ["zoo.variants.a.lr", "'1e-3'"]),
        (_zoo({"a": {"kind": "conv", "epochs": 1, "l1": 0.1}}), ["zoo.variants.a", "l1", "not used by kind 'conv'"]),
        (_zoo({"a": {"epochs": 1, "sparsity_weight": 3.0}}), ["zoo.variants.a", "sparsity_weight", "sigmoid"]),
        (_zoo({"a": {"epochs": 1, "sizes": [100, 2]}}), ["zoo.variants.a", "784"]),
        (_zoo({"a": {"epochs": 1, "sizes": [784, 8, 2], "pca": True}}), ["zoo.variants.a", "pca"]),
        (_zoo({"a": {"epochs": 1, "reference": "b"}}), ["zoo", "variants.a.reference", "'b'"]),
        (_zoo({"a": {"epochs": 1, "tour_of": "b"}}), ["zoo", "variants.a.tour_of", "'b'"]),
        (_zoo({"a": {"epochs": 1, "tour_of": "a"}}), ["zoo", "variants.a.tour_of", "must name another variant"]),
        (_zoo({"a": {"epochs": 1, "output_activation": "softmax"}}), ["zoo.variants.a.output_activation", "'softmax'"]),
        (_zoo({"a": {"epochs": 1, "output_activation": "tanh"}}), ["zoo.variants.a", "cross_entropy", "sigmoid"]),
        (_zoo({"Bad-Name": {"epochs": 1}}), ["zoo.variants.Bad-Name", "pattern"]),
        (_zoo({}, eval_noises=["gauss-0.5"]), ["zoo.eval_noises.0", "'gauss-0.5'"]),
        (_zoo({}, near_zero=0), ["zoo.near_zero", "greater than 0"]),
        (_zoo({}, device="tpu"), ["zoo.device", "'tpu'"]),
    ],
)
def test_bad_zoo_params_name_the_key(raw: dict, expected: list[str]) -> None:
    assert_params_error(raw, expected)


def test_the_tours_models_are_ours_but_for_what_the_tour_writes_differently() -> None:
    tour = {n: s.tour_of for n, s in PARAMS.variants.items() if s.tour_of}
    assert tour == {"tour_basic": "basic", "tour_stacked": "stacked", "tour_sparse_l1": "sparse_l1"}
    expected = {
        "tour_basic": "output_activation sigmoid, not relu",
        "tour_stacked": "loss cross_entropy, not mse; output_activation sigmoid, not tanh",
        "tour_sparse_l1": "l1 0.1, not 0.00784",
    }
    for name, ours in tour.items():
        assert zt.spec_changes(PARAMS, name, ours) == expected[name], name
        t, o = PARAMS.variants[name], PARAMS.variants[ours]
        assert (t.sizes, t.epochs, t.kind) == (o.sizes, o.epochs, o.kind), name  # same net, same training length
    model = zoo.build(PARAMS.variants["tour_stacked"], _gen(0))
    assert float(zoo.reconstruct(model, -mnist(16)[0]).min()) < 0  # a tanh output is not squashed into (0, 1)


def _metrics(title: str, mse: float, acc: float) -> dict:
    return {"title": title, "test": {"mse": mse}, "probe": {"linear_probe_acc": acc}}


def test_tour_section_reports_each_pair_from_the_metrics_and_is_skipped_without_tour_variants() -> None:
    z = ZooParams.model_validate(
        {
            "variants": {
                "ours": {"epochs": 1, "sizes": [784, 2]},
                "theirs": {
                    "epochs": 1,
                    "sizes": [784, 2],
                    "output_activation": "relu",
                    "loss": "mse",
                    "tour_of": "ours",
                },
            }
        }
    )
    metrics = {"ours": _metrics("ours 784-2", 0.04, 0.72), "theirs": _metrics("tour 784-2", 0.05, 0.70)}
    frame = zt.tour_table(z, metrics)
    assert frame.to_dict("records") == [
        {
            "tour_variant": "tour 784-2",
            "our_variant": "ours 784-2",
            "tour_test_mse": 0.05,
            "our_test_mse": 0.04,
            "tour_linear_probe_acc": 0.70,
            "our_linear_probe_acc": 0.72,
        }
    ]
    [sentence] = zt.tour_sentences(z, metrics)
    assert sentence == (
        "ours 784-2 against the tour's tour 784-2 (loss cross_entropy, not mse; output_activation sigmoid, not relu): "
        "ours lowers test MSE per pixel from 0.05 to 0.04 (20.0%) and moves linear-probe accuracy from 70.0% to "
        "72.0% (+2.0 points)."
    )
    metrics["theirs"] = _metrics("tour 784-2", 0.03, 0.75)
    assert "ours raises test MSE per pixel from 0.03 to 0.04 (33.3%)" in zt.tour_sentences(z, metrics)[0]
    assert "(-3.0 points)" in zt.tour_sentences(z, metrics)[0]
    lines = tour_section(z, metrics)
    assert lines[0] == "## The tour's models beside ours" and "| tour 784-2 " in "\n".join(lines)
    assert not any(s.tour_of for s in SMOKE.variants.values())
    assert tour_section(SMOKE, {}) == []  # the smoke profile has no tour variant: no section, no metrics read
