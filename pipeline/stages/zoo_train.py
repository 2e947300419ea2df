"""Stage `zoo_train@<variant>`: train one autoencoder of the zoo and measure it on the test set.

    python -m pipeline.stages.zoo_train --variant sparse_kl [--params params.yaml]

Trains the `zoo.variants.<variant>` entry with Adam on the training split (validation loss every
epoch, logged to MLflow as curves), then scores it on the test split: reconstruction error on clean
digits and on each fixed corrupted copy in `zoo.eval_noises` (a denoising variant's headline numbers
are on its own noise, against the clean digits), logistic-regression and k-NN probes on the codes,
sparsity of the hidden layer, and for `pca: true` the principal angles to PCA's subspace.
Writes models/zoo/<variant>.pt, results/zoo/<variant>.json (everything measured), the headline DVC
metric metrics/zoo/<variant>.json, plots/zoo/<variant>.csv (per-epoch losses) and
reports/figures/zoo/<variant>.png; logs the model to MLflow.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import StageError, check_choice, log, run_stage


def variant_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", required=True, help="a key of zoo.variants in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import time

    from pipeline.common.seeding import get_device, make_generator
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.training.loop import train_model
    from pipeline.zoo import registry as zoo
    from pipeline.zoo.evaluate import evaluate, noisy_test
    from pipeline.zoo.outputs import log_summary, write_variant

    z, name = params.zoo, args.variant
    check_choice("--variant", name, "zoo.variants", z.variants)
    spec, title = z.variants[name], zoo.title(z, name)
    logged = {
        "variant": name,
        "spec": spec.model_dump(),
        "dataset": z.dataset,
        "batch_size": z.batch_size,
        "seed": params.seed,
    }
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

        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, z.dataset)
        t0 = time.perf_counter()
        result = train_model(
            model,
            splits["train"].x,
            splits["valid"].x,
            epochs=spec.epochs,
            lr=spec.lr,
            batch_size=z.batch_size,
            seed=params.seed,
            checkpoint_path=paths.zoo_checkpoint(name),
            on_epoch=on_epoch,
            name=f"zoo-{name}",
            device=get_device(z.device, "zoo.device"),
        )
        train_seconds = time.perf_counter() - t0
        model.eval()
        results = {
            "variant": name,
            "title": title,
            "kind": spec.kind,
            "code_dim": zoo.code_dim(spec),
            "parameters": n_params,
            "epochs": result.epochs,
            "test_sources": sources,
            **evaluate(model, spec, splits, noisy, z, params.seed, name),
            "history": result.history,
        }
        headline = write_variant(name, title, spec, model, results, splits, noisy, z)
        paths.zoo_checkpoint(name).unlink(missing_ok=True)
        seconds = time.perf_counter() - start
        tracking.log_metrics({"train_seconds_per_epoch": train_seconds / max(result.epochs, 1)})
        tracking.log_timing("zoo_train", seconds)
        log_summary(name, headline, seconds)


if __name__ == "__main__":
    run_stage("zoo_train", __doc__, main, variant_arg)
