"""Stage `zoo_train@<variant>`: train one autoencoder of the zoo and measure it on the test set.

    python -m pipeline.zoo_train --variant sparse_kl [--params params.yaml]

Trains the `zoo.variants.<variant>` entry with Adam on the training split (validation loss every
epoch, logged to MLflow as curves), then scores it on the test split: reconstruction error on clean
digits and on each fixed corrupted copy in `zoo.eval_noises` (a denoising variant's headline numbers
are on its own noise, against the clean digits), logistic-regression and k-NN probes on the codes,
sparsity of the hidden layer, and for `pca: true` the principal angles to PCA's subspace.
Writes models/zoo/<variant>.pt, metrics/zoo/<variant>.json and reports/figures/zoo/<variant>.png.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from pipeline import tracking, zoo
from pipeline import zoo_metrics as zm
from pipeline.cli import StageError, log, run_stage
from pipeline.data import Split, load_split, load_uint8
from pipeline.figures import digit_rows
from pipeline.params import Params, ZooParams, ZooVariant
from pipeline.training.loop import train_model
from pipeline.utils import atomic_path, derive_seed, get_device, make_generator, save_figure, write_json


def variant_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="a key of zoo.variants in params.yaml")


def noisy_test(z: ZooParams, noise: str, clean: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The fixed corrupted test set `noise` written by the `corrupt` stage, and its path."""
    path = Path(f"data/corrupted/{z.dataset}/{noise}/x_test.npy")
    if not path.is_file():
        kind, level = zoo.parse_noise(noise)
        raise StageError(
            f"{path}: not found; zoo.eval_noises asks for {noise!r}, so `corrupt` must make it: "
            f"add {level:g} to corrupt.{kind} and '{z.dataset}' to corrupt.datasets in params.yaml"
        )
    x = load_uint8(path)
    if x.shape != clean.shape:
        raise StageError(f"{path}: shape {tuple(x.shape)} does not match the test split {tuple(clean.shape)}")
    return x, str(path)


def probe_subsample(n: int, size: int, seed: int, variant: str) -> torch.Tensor:
    rng = np.random.default_rng(derive_seed(seed, "zoo-probe", variant))
    return torch.from_numpy(np.sort(rng.permutation(n)[: min(size, n)]))


def evaluate(model, spec: ZooVariant, splits: dict[str, Split], noisy: dict[str, torch.Tensor], z: ZooParams,
             seed: int, variant: str) -> dict:  # fmt: skip
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


def main(params: Params, args: argparse.Namespace) -> None:
    z, name = params.zoo, args.variant
    if name not in z.variants:
        raise StageError(f"--variant {name!r} is not in zoo.variants; expected one of {sorted(z.variants)}")
    spec, title = z.variants[name], zoo.title(z, name)
    logged = {"variant": name, "spec": spec.model_dump(), "dataset": z.dataset, "batch_size": z.batch_size,
              "seed": params.seed}  # fmt: skip
    with tracking.stage_run("zoo_train", z.experiment, logged, run_name=f"zoo {name}"):
        start = time.perf_counter()
        splits = {s: load_split(f"data/prepared/{z.dataset}", s) for s in ("train", "valid", "test")}
        noises = list(dict.fromkeys([*z.eval_noises, *filter(None, [zoo.train_noise(spec)])]))
        noisy, sources = {}, {}
        for noise in noises:
            noisy[noise], sources[noise] = noisy_test(z, noise, splits["test"].x)
        try:
            model = zoo.build(spec, make_generator(params.seed, "zoo", name, "init"))
        except ValueError as exc:
            raise StageError(f"zoo.variants.{name}: {exc}") from None
        n_params = sum(p.numel() for p in model.parameters())
        log.info("%s: %s, %d parameters, %d epochs", name, spec.kind, n_params, spec.epochs)

        def on_epoch(layer, epoch, metrics):
            tracking.log_metrics(metrics, step=epoch)
            log.info("%s epoch %d: %s", name, epoch, {k: round(v, 4) for k, v in metrics.items()})

        t0 = time.perf_counter()
        result = train_model(
            model, splits["train"].x, splits["valid"].x, epochs=spec.epochs, lr=spec.lr, batch_size=z.batch_size,
            seed=params.seed, checkpoint_path=zoo.checkpoint_path(name), on_epoch=on_epoch, progress=False,
            name=f"zoo-{name}", device=get_device(z.device),
        )  # fmt: skip
        train_seconds = time.perf_counter() - t0
        model.eval()
        metrics = {
            "variant": name, "title": title, "kind": spec.kind, "code_dim": zoo.code_dim(spec),
            "parameters": n_params, "epochs": result.epochs, "test_sources": sources,
            "training": {"seconds": round(train_seconds, 2)},  # timings are always under a key named `seconds`
            **evaluate(model, spec, splits, noisy, z, params.seed, name), "history": result.history,
        }  # fmt: skip
        with atomic_path(zoo.model_path(name)) as tmp:
            torch.save({"variant": name, "spec": spec.model_dump(), "model": model.cpu().state_dict()}, tmp)
        save_figure(
            reconstruction_figure(model, spec, title, splits["test"].x, noisy, z.examples), zoo.figure_path(name)
        )
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        write_json(zoo.metrics_path(name), metrics)
        tracking.log_metrics({k: v for k, v in metrics.items() if k != "history"})
        tracking.log_artifacts([zoo.figure_path(name)])
        tracking.log_artifacts([zoo.metrics_path(name)], artifact_path="metrics")
        zoo.checkpoint_path(name).unlink(missing_ok=True)
        log.info("%s: test MSE %.4f, linear probe %.3f, k-NN %.3f (%.0f s)", name, metrics["test"]["mse"],
                 metrics["probe"]["linear_probe_acc"], metrics["probe"]["knn_acc"], metrics["seconds"])  # fmt: skip


if __name__ == "__main__":
    run_stage("zoo_train", main, variant_arg)
