"""Everything the zoo measures of one trained model: the numbers of the zoo table and its own figure.

Reconstruction error on clean digits and on each fixed corrupted copy in `zoo.eval_noises` (a denoising
variant's headline numbers are on its own noise, against the clean digits), logistic-regression and
k-NN probes on the codes, sparsity of the hidden layer, and for `pca: true` the principal angles to
PCA's subspace and PCA's own numbers.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.common.seeding import derive_seed
from pipeline.core import paths
from pipeline.data.arrays import DataFileError, Split, load_uint8
from pipeline.data.corruption import parse_noise
from pipeline.params import ZooParams, ZooVariant
from pipeline.reporting.digits import digit_rows
from pipeline.zoo import metrics as zm
from pipeline.zoo import registry as zoo


def noisy_test(z: ZooParams, noise: str, clean: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The fixed corrupted test set `noise` written by the `corrupt` stage, and its path."""
    path = paths.corrupted(z.dataset, noise) / "x_test.npy"
    if not path.is_file():
        kind, level = parse_noise(noise)
        raise DataFileError(
            f"{path}: not found; zoo.eval_noises asks for {noise!r}, so `corrupt` must make it: "
            f"add {level:g} to corrupt.{kind} and '{z.dataset}' to corrupt.datasets in params.yaml"
        )
    x = load_uint8(path)
    if x.shape != clean.shape:
        raise DataFileError(f"{path}: shape {tuple(x.shape)} does not match the test split {tuple(clean.shape)}")
    return x, str(path)


def probe_subsample(n: int, size: int, seed: int, variant: str) -> torch.Tensor:
    rng = np.random.default_rng(derive_seed(seed, "zoo-probe", variant))
    return torch.from_numpy(np.sort(rng.permutation(n)[: min(size, n)]))


def evaluate(
    model,
    spec: ZooVariant,
    splits: dict[str, Split],
    noisy: dict[str, torch.Tensor],
    z: ZooParams,
    seed: int,
    variant: str,
) -> dict:
    """Every number of the zoo table for one trained model."""
    clean = splits["test"].x
    recon = {"clean": zm.reconstruction_errors(zoo.reconstruct(model, clean), clean)}
    for noise, x in noisy.items():
        recon[noise] = zm.reconstruction_errors(zoo.reconstruct(model, x), clean)
        recon[noise]["input_mse"] = float((x - clean).pow(2).mean())  # the noisy digits themselves
    own = zoo.train_noise(spec)
    idx = probe_subsample(len(splits["train"]), z.probe_train, seed, variant)
    inputs = {"train": splits["train"].x[idx], "valid": splits["valid"].x, "test": clean}
    labels = {"train": splits["train"].y[idx], "valid": splits["valid"].y, "test": splits["test"].y}
    codes = {s: zoo.codes(model, x) for s, x in inputs.items()}
    jac = zoo.jacobian_norms(model, clean)
    out = {
        "test_input": own or "clean",
        "test": recon[own or "clean"],
        "reconstruction": recon,
        "probe": zm.probes(codes, labels, z.logreg_C, z.knn_k),
        "probe_train_n": len(idx),
        "sparsity": zm.sparsity(zoo.hidden(model, clean), z.near_zero),
        "jacobian_fro2": None if jac is None else float(jac.mean()),
    }
    if spec.pca:
        out["pca"] = pca_comparison(model, spec, splits, noisy, z, seed)
    return out


def pca_comparison(model, spec: ZooVariant, splits: dict[str, Split], noisy: dict, z: ZooParams, seed: int) -> dict:
    """PCA with as many components as the code: principal angles to the autoencoder's subspaces, and
    PCA's own numbers (reconstruction, probes) for the table's `pca` row."""
    k, clean = zoo.code_dim(spec), splits["test"].x
    pca = zm.fit_pca(splits["train"].x, k, seed)
    weights = zoo.subspace_weights(model)
    idx = probe_subsample(len(splits["train"]), z.probe_train, seed, "pca")
    pca_inputs = {"train": splits["train"].x[idx], "valid": splits["valid"].x, "test": clean}
    pca_labels = {"train": splits["train"].y[idx], "valid": splits["valid"].y, "test": splits["test"].y}
    recon = {"clean": zm.reconstruction_errors(zm.pca_reconstruct(pca, clean), clean)}
    for noise, x in noisy.items():
        recon[noise] = zm.reconstruction_errors(zm.pca_reconstruct(pca, x), clean)
    return {
        "k": k,
        "explained_variance": zm.explained_variance(pca),
        "constant_pixels": int((splits["train"].x.std(0) == 0).sum()),
        "decoder_angles": zm.angle_summary(zm.principal_angles_deg(weights["decoder"], pca.components_)),
        "encoder_angles": zm.angle_summary(zm.principal_angles_deg(weights["encoder"], pca.components_)),
        "test": recon["clean"],
        "reconstruction": recon,
        "probe": zm.probes({s: zm.pca_codes(pca, x) for s, x in pca_inputs.items()}, pca_labels, z.logreg_C, z.knn_k),
    }


def reconstruction_figure(model, spec: ZooVariant, title: str, clean: torch.Tensor, noisy: dict, n: int):
    own = zoo.train_noise(spec)
    x_in = noisy[own] if own else clean
    rows, labels = [clean[:n].numpy()], ["original"]
    if own:
        rows.append(x_in[:n].numpy())
        labels.append(own.replace("-", " "))
    rows.append(zoo.reconstruct(model, x_in[:n]).clamp(0, 1).numpy())
    labels.append("denoised" if own else "reconstructed")
    return digit_rows(rows, labels, f"{title}: test digits and the autoencoder's output")
