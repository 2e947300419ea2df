"""Stage `pretrain@<dataset>-<stack>`: greedy layer-wise pretraining of every candidate of one stack's grid.

    python -m pipeline.stages.pretrain --dataset basic --stack sda [--params params.yaml]

A DBN stacks RBMs (CD-1), SAA stacks autoencoders, SdA stacks denoising autoencoders with masking noise
drawn afresh for every minibatch; layer k trains on the clean codes of layers < k. The candidates
(hidden x lr x noise x epochs of vincent.stacks.<stack>) are trained as a tree of shared prefixes:
the shorter epoch counts read the first layer from snapshots of the longest run (pipeline/training/search.py).
Writes models/pretrain/<dataset>/<stack>.pt with every candidate's layers; each model of the table built on this
stack (DBN-1 and DBN-3 share `dbn`) fine-tunes its first `layers` layers. A candidate whose loss diverged is kept
with status "diverged" (the layer, epoch and loss) and never fine-tuned; when every candidate diverged, the stage
fails and writes nothing.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import StageError, log, row_args, row_stage, run_stage


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    from pipeline.common.io import save_torch, write_history_csv, write_json
    from pipeline.common.seeding import get_device
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.training.grid import check_pretrain_memory, group_size, is_out_of_memory
    from pipeline.training.layer_kind import stack_specs
    from pipeline.training.search import pretrain_stacks

    v, dataset, stack = params.vincent, args.dataset, args.stack
    with row_stage("pretrain", params, args, {"pretrain": v.pretrain.model_dump()}):
        spec = v.stack_for(dataset, stack)  # vincent.stacks.<stack>, with what vincent.rows.<dataset> changes
        start = time.perf_counter()
        splits = load_splits(paths.prepared(dataset))
        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, dataset)
        device = get_device(v.device, "vincent.device")
        specs = stack_specs(v.pretrain.hidden, spec)
        log.info("%s %s: %d candidates, %d layers, on %s", dataset, stack, len(specs), spec.layers, device)
        check_pretrain_memory(v, stack, spec, len(splits["train"]) + len(splits["valid"]), device)
        checkpoints = paths.checkpoint_dir("pretrain", dataset, stack)
        try:
            stacks, cost = pretrain_stacks(
                specs,
                spec.layers,
                splits["train"].x,
                splits["valid"].x,
                seed=params.seed,
                batch_size=v.pretrain.batch_size,
                device=device,
                group_size=group_size(v, device),
                checkpoint_dir=checkpoints,
                labels=(splits["train"].y, splits["valid"].y),
            )
        except RuntimeError as exc:
            if not is_out_of_memory(exc):
                raise
            raise StageError(
                f"vincent.pretrain.hidden = {v.pretrain.hidden}: out of memory pretraining vincent.stacks.{stack} on "
                f"{device} ({str(exc).splitlines()[0][:200]}); expected widths (or vincent.pretrain.group_size) "
                "whose candidates fit"
            ) from None
        log.info(
            "%s: %d layer-epochs trained instead of %d (%.0f%% saved by sharing)",
            stack,
            cost.trained,
            cost.from_scratch,
            100 * cost.saved_fraction,
        )
        diverged = {name: s.diverged for name, s in stacks.items() if s.diverged is not None}
        if len(diverged) == len(stacks):
            shutil.rmtree(checkpoints, ignore_errors=True)  # the same params would diverge again: nothing to resume
            raise StageError(
                f"every candidate of vincent.stacks.{stack} on {dataset} diverged, so there is nothing to fine-tune: "
                + "; ".join(
                    f"{n}: layer {d['layer']} epoch {d['epoch']} {d['loss']} {float(d['value']):.4g} > {d['limit']:.4g}"
                    for n, d in diverged.items()
                )
                + f". Lower the learning rates of vincent.rows.{dataset}.stacks.{stack} (or vincent.stacks.{stack}.lr)"
            )
        candidates, summary = [], {}
        for s in specs:
            result = stacks[s.name]
            hparams = s.hparams()
            with tracking.candidate_run(s.name, hparams, {"status": result.status}):
                tracking.log_history(
                    {f"layer{layer}.{k}": x for layer, h in enumerate(result.history, start=1) for k, x in h.items()}
                )
            candidates.append(
                {
                    "name": s.name,
                    "hparams": hparams,
                    "weights": result.weights,
                    "status": result.status,
                    "diverged": result.diverged,
                    "visible_biases": result.visible_biases,
                    "history": result.history,
                }
            )
            summary[s.name] = {
                "status": result.status,
                "final_train_loss": [h["train_loss"][-1] for h in result.history if h["train_loss"]],
                "final_valid_loss": [h["valid_loss"][-1] for h in result.history if h["valid_loss"]],
                **({"diverged": result.diverged} if result.diverged else {}),
            }
            for layer, h in enumerate(result.history, start=1):
                write_history_csv(paths.plot_data("pretrain", f"{dataset}/{stack}/{s.name}-layer{layer}"), h)
        saved = {"dataset": dataset, "stack": stack, "spec": spec.model_dump(), "candidates": candidates}
        save_torch(saved, paths.pretrained_model(dataset, stack))
        shutil.rmtree(checkpoints, ignore_errors=True)
        work = {"layer_epochs_trained": cost.trained, "layer_epochs_from_scratch": cost.from_scratch}
        write_json(paths.results("pretrain", f"{dataset}/{stack}"), {"candidates": summary, "work": work})
        tracking.log_metrics(
            {"layer_epochs_trained": cost.trained, "layer_epochs_saved": cost.from_scratch - cost.trained}
        )
        tracking.log_timing(f"pretrain@{dataset}-{stack}", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("pretrain", __doc__, main, row_args)
