"""Stage `pretrain@<model>`: greedy layer-wise pretraining of one model of the table, for every grid point.

    python -m pipeline.stages.pretrain --model sda3_nu25 [--params params.yaml]

DBN-k stacks RBMs (CD-k), SAA-3 stacks autoencoders, SdA-3 stacks denoising autoencoders with
masking noise drawn afresh for every minibatch. Layer k trains on the clean codes of layers < k.
Writes models/pretrain/<model>.pt: one candidate per grid point (hidden size, learning rate,
epochs); fine-tuning then picks among them on validation error.
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, model_arg, model_stage, run_stage


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.training.grid import INPUT_DIM, candidate_name, pretrain_grid, stack_kind
    from pipeline.training.layerwise import PretrainConfig, pretrain_stack
    from pipeline.utils import save_torch, write_history_csv, write_json

    v, model = params.vincent, args.model
    with model_stage("pretrain", params, model, {"pretrain": v.pretrain.model_dump()}) as spec:
        start = time.perf_counter()
        splits = load_splits(paths.prepared(v.dataset))
        checkpoints = paths.checkpoint_dir("pretrain", model)
        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, v.dataset)
        candidates, summary = [], {}
        for hp in pretrain_grid(v, spec):
            name = candidate_name(hp)
            config = PretrainConfig(
                epochs=hp["epochs"], lr=hp["lr"], batch_size=hp["batch_size"], noise_kind="masking",
                noise_level=spec.noise, cd_k=v.pretrain.cd_k,
            )  # fmt: skip
            log.info("%s: pretraining %s (%s, %d layers)", model, name, stack_kind(spec), spec.layers)

            def on_epoch(layer, epoch, metrics):
                tracking.log_metrics({f"layer{layer}.{k}": v for k, v in metrics.items()}, step=epoch)

            with tracking.candidate_run(name, hp):
                stack = pretrain_stack(
                    stack_kind(spec), [INPUT_DIM] + [hp["hidden"]] * spec.layers, splits["train"].x,
                    splits["valid"].x, config, seed=params.seed, checkpoint_dir=checkpoints / name,
                    on_epoch=on_epoch, device=v.device,
                )  # fmt: skip
            candidates.append({
                "name": name, "hparams": hp, "kind": stack.kind, "sizes": stack.sizes, "weights": stack.weights,
                "visible_biases": stack.visible_biases, "history": stack.history,
            })  # fmt: skip
            summary[name] = {
                "final_train_loss": [h["train_loss"][-1] for h in stack.history],
                "final_valid_loss": [h["valid_loss"][-1] for h in stack.history],
            }
            for layer, h in enumerate(stack.history, start=1):
                write_history_csv(paths.plot_data("pretrain", f"{model}/{name}-layer{layer}"), h)
        save_torch({"model": model, "spec": spec.model_dump(), "candidates": candidates}, paths.pretrained_model(model))
        shutil.rmtree(checkpoints, ignore_errors=True)
        write_json(paths.results("pretrain", model), {"candidates": summary})
        tracking.log_timing("pretrain", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("pretrain", __doc__, main, model_arg)
