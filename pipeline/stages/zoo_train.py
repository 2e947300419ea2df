"""Stage `zoo_train@<variant>`: train one autoencoder of the zoo and measure it on the test set.

    python -m pipeline.stages.zoo_train --variant sparse_kl [--params params.yaml]

Trains the `zoo.variants.<variant>` entry with Adam on the training split (validation loss every
epoch, logged to MLflow as curves), then scores it on the test split: reconstruction error on clean
digits and on each fixed corrupted copy in `zoo.eval_noises` (a denoising variant's headline numbers
are on its own noise, against the clean digits), logistic-regression and k-NN probes on the codes,
sparsity of the hidden layer, and for `pca: true` the principal angles to PCA's subspace.
Writes models/zoo/<variant>.pt, metrics/zoo/<variant>.json and reports/figures/zoo/<variant>.png.
"""

from __future__ import annotations

import argparse

from pipeline.cli import StageError, log, run_stage


def variant_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="a key of zoo.variants in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import time

    import torch

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.training.loop import train_model
    from pipeline.utils import atomic_path, get_device, make_generator, save_figure, write_json
    from pipeline.zoo import registry as zoo
    from pipeline.zoo.evaluate import evaluate, noisy_test, reconstruction_figure

    z, name = params.zoo, args.variant
    if name not in z.variants:
        raise StageError(f"--variant {name!r} is not in zoo.variants; expected one of {sorted(z.variants)}")
    spec, title = z.variants[name], zoo.title(z, name)
    logged = {"variant": name, "spec": spec.model_dump(), "dataset": z.dataset, "batch_size": z.batch_size,
              "seed": params.seed}  # fmt: skip
    with tracking.stage_run("zoo_train", z.experiment, logged, run_name=f"zoo {name}"):
        start = time.perf_counter()
        splits = load_splits(paths.prepared(z.dataset))
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
            seed=params.seed, checkpoint_path=paths.zoo_checkpoint(name), on_epoch=on_epoch, progress=False,
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
        with atomic_path(paths.zoo_model(name)) as tmp:
            torch.save({"variant": name, "spec": spec.model_dump(), "model": model.cpu().state_dict()}, tmp)
        figure = reconstruction_figure(model, spec, title, splits["test"].x, noisy, z.examples)
        save_figure(figure, paths.zoo_figure(name))
        metrics["seconds"] = round(time.perf_counter() - start, 2)
        write_json(paths.zoo_metrics(name), metrics)
        tracking.log_metrics({k: v for k, v in metrics.items() if k != "history"})
        tracking.log_artifacts([paths.zoo_figure(name)])
        tracking.log_artifacts([paths.zoo_metrics(name)], artifact_path="metrics")
        paths.zoo_checkpoint(name).unlink(missing_ok=True)
        log.info("%s: test MSE %.4f, linear probe %.3f, k-NN %.3f (%.0f s)", name, metrics["test"]["mse"],
                 metrics["probe"]["linear_probe_acc"], metrics["probe"]["knn_acc"], metrics["seconds"])  # fmt: skip


if __name__ == "__main__":
    run_stage("zoo_train", __doc__, main, variant_arg)
