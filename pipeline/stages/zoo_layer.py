"""Stage `zoo_layer@<name>`: one layer of a table kind (`zoo.layers.<name>`) trained on the zoo's digits and scored.

    python -m pipeline.stages.zoo_layer --layer cae [--params params.yaml]

The table's stacks pretrain with the layer kinds of pipeline/training/kinds (cae: the contractive penalty in closed
form; dae_sp: salt-and-pepper noise with emphasis). This stage trains one such layer with the same code
(`pipeline.zoo.layer_training`: the kind's step, its initial weights, SGD at the table's minibatch) on the zoo's training
split, then measures it exactly as zoo_train measures a variant, so the zoo report sets the table's kinds beside the
zoo's Adam-trained autoencoders. Writes what zoo_train writes, under the layer's name: models/zoo/<name>.pt,
results/zoo/<name>.json, metrics/zoo/<name>.json, plots/zoo/<name>.csv, reports/figures/zoo/<name>.png.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import StageError, check_choice, log, run_stage


def layer_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", required=True, help="a key of zoo.layers in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    from pipeline.common.figures import save_figure
    from pipeline.common.io import save_torch, write_history_csv, write_json
    from pipeline.common.seeding import get_device
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.zoo import layers
    from pipeline.zoo.evaluate import evaluate, noisy_test, reconstruction_figure
    from pipeline.zoo.layer_training import train

    z, name = params.zoo, args.layer
    check_choice("--layer", name, "zoo.layers", z.layers)
    layer = z.layers[name]
    spec, title = layers.as_variant(layer), layer.title or name
    logged = {"layer": name, "spec": layer.model_dump(), "dataset": z.dataset, "seed": params.seed}
    with tracking.stage_run("zoo_layer", z.experiment, logged, run_name=f"zoo {name}"):
        start = time.perf_counter()
        splits = load_splits(paths.prepared(z.dataset))
        noisy, sources = {}, {}
        for noise in z.eval_noises:
            noisy[noise], sources[noise] = noisy_test(z, noise, splits["test"].x)
        log.info("%s: kind %s, 784-%d, rate %g, %d epochs", name, layer.kind, layer.hidden, layer.lr, layer.epochs)
        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, z.dataset)
        checkpoints = paths.zoo_checkpoint(name).with_suffix("")
        t0 = time.perf_counter()
        model, history, diverged = train(
            name,
            layer,
            splits["train"].x,
            splits["valid"].x,
            seed=params.seed,
            device=get_device(z.device, "zoo.device"),
            checkpoint_dir=checkpoints,
        )
        train_seconds = time.perf_counter() - t0
        if diverged is not None:
            raise StageError(
                f"zoo.layers.{name}: diverged at epoch {diverged['epoch']} ({diverged['loss']} {diverged['value']} > "
                f"{diverged['limit']:.4g}); lower its lr ({layer.lr:g})"
            )
        for epoch, values in enumerate(zip(*history.values(), strict=True), start=1):
            tracking.log_metrics(dict(zip(history, values, strict=True)), step=epoch)
        model.eval()
        results = {
            "variant": name,
            "title": title,
            "kind": layer.kind,
            "code_dim": layer.hidden,
            "parameters": sum(p.numel() for p in model.parameters()),
            "epochs": layer.epochs,
            "test_sources": sources,
            **evaluate(model, spec, splits, noisy, z, params.seed, name),
            "history": history,
        }
        save_torch({"variant": name, "spec": spec.model_dump(), "model": model.state_dict()}, paths.zoo_model(name))
        figure = reconstruction_figure(model, spec, title, splits["test"].x, noisy, z.examples)
        save_figure(figure, paths.zoo_figure(name))
        write_json(paths.zoo_results(name), results)
        headline = {
            "test_mse": results["test"]["mse"],
            "probe_acc": results["probe"]["linear_probe_acc"],
            "knn_acc": results["probe"]["knn_acc"],
        }
        write_json(paths.zoo_metrics(name), {k: round(v, 6) for k, v in headline.items()})
        write_history_csv(paths.plot_data("zoo", name), history)
        tracking.log_metrics({k: v for k, v in results.items() if k != "history"})
        tracking.log_artifacts([paths.zoo_figure(name)])
        tracking.log_model(model, "model", splits["test"].x[:5])
        shutil.rmtree(checkpoints, ignore_errors=True)
        seconds = time.perf_counter() - start
        tracking.log_metrics({"train_seconds_per_epoch": train_seconds / layer.epochs})
        tracking.log_timing("zoo_layer", seconds)
        log.info(
            "%s: test MSE %.4f, linear probe %.3f, k-NN %.3f (%.0f s)",
            name,
            headline["test_mse"],
            headline["probe_acc"],
            headline["knn_acc"],
            seconds,
        )


if __name__ == "__main__":
    run_stage("zoo_layer", __doc__, main, layer_arg)
