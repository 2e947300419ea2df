"""Stage `zoo_layer@<name>`: one layer of a table kind (`zoo.layers.<name>`) trained on the zoo's digits and scored.

    python -m pipeline.stages.zoo_layer --layer cae [--params params.yaml]

The table's stacks pretrain with the layer kinds of pipeline/training/kinds (cae: the contractive penalty in closed
form; dae_sp: salt-and-pepper noise with emphasis). This stage trains one such layer with the same code
(`pipeline.zoo.layer_training`: the kind's step, its initial weights, SGD at the table's minibatch) on the zoo's
training split, then measures and writes it exactly as zoo_train does a variant (`pipeline.zoo.outputs`), so the zoo
report sets the table's kinds beside the zoo's Adam-trained autoencoders. Writes what zoo_train writes, under the
layer's name: models/zoo/<name>.pt, results/zoo/<name>.json, metrics/zoo/<name>.json, plots/zoo/<name>.csv,
reports/figures/zoo/<name>.png.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import StageError, check_choice, log, run_stage


def layer_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--layer", required=True, help="a key of zoo.layers in params.yaml")


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    from pipeline.common.seeding import get_device
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.zoo import layers
    from pipeline.zoo.evaluate import evaluate, noisy_test
    from pipeline.zoo.layer_training import train
    from pipeline.zoo.outputs import log_summary, write_variant

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
        headline = write_variant(name, title, spec, model, results, splits, noisy, z)
        shutil.rmtree(checkpoints, ignore_errors=True)
        seconds = time.perf_counter() - start
        tracking.log_metrics({"train_seconds_per_epoch": train_seconds / layer.epochs})
        tracking.log_timing("zoo_layer", seconds)
        log_summary(name, headline, seconds)


if __name__ == "__main__":
    run_stage("zoo_layer", __doc__, main, layer_arg)
