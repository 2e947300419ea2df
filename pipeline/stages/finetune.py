"""Stage `finetune@<model>`: each pretrained stack + a softmax layer, fine-tuned with early stopping.

    python -m pipeline.stages.finetune --model sda3_nu25 [--params params.yaml]

Every pretraining candidate is fine-tuned at every learning rate of the grid; the network with the
lowest validation error is kept (models/finetune/<model>.pt), and logged to MLflow as a model that
predicts digits (`mlflow.pyfunc.load_model(uri).predict(x)`). The test set is not read here.
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, model_arg, model_stage, run_stage


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    import torch

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.models.mlp import DigitPredictor, MLPClassifier
    from pipeline.training.finetune import finetune
    from pipeline.utils import make_generator, save_torch, write_history_csv, write_json

    v, model, f = params.vincent, args.model, params.vincent.finetune
    with model_stage("finetune", params, model, {"finetune": f.model_dump()}):
        start = time.perf_counter()
        splits = load_splits(paths.prepared(v.dataset))
        train, valid = splits["train"], splits["valid"]
        pretrained = torch.load(paths.pretrained_model(model), weights_only=False)
        checkpoints = paths.checkpoint_dir("finetune", model)
        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, v.dataset)
        trials, best = [], None
        for cand in pretrained["candidates"]:
            for lr in f.lr:
                name = f"{cand['name']}-ftlr{lr:g}"
                mlp = MLPClassifier.from_stack(cand["weights"], generator=make_generator(params.seed, "output", model))
                log.info("%s: fine-tuning %s", model, name)

                def on_epoch(layer, epoch, metrics):
                    tracking.log_metrics(metrics, step=epoch)

                with tracking.candidate_run(name, {**cand["hparams"], "finetune_lr": lr}):
                    result = finetune(
                        mlp, train.x, train.y, valid.x, valid.y, lr=lr, max_epochs=f.max_epochs, patience=f.patience,
                        batch_size=f.batch_size, seed=params.seed, checkpoint_path=checkpoints / f"{name}.pt",
                        on_epoch=on_epoch, device=v.device,
                    )  # fmt: skip
                    tracking.log_metrics({"best_valid_error": result.best_valid_error, "best_epoch": result.best_epoch})
                trial = {
                    "name": name, "pretrain": cand["hparams"], "lr": lr, "best_epoch": result.best_epoch,
                    "valid_error": result.best_valid_error, "history": result.history,
                }  # fmt: skip
                trials.append(trial)
                log.info("%s: %s valid error %.2f%% (epoch %d)", model, name, 100 * result.best_valid_error, result.best_epoch)
                if best is None or result.best_valid_error < best[0]["valid_error"]:
                    best = (trial, cand, {k: t.cpu() for k, t in mlp.state_dict().items()}, mlp.sizes)
        trial, cand, state, sizes = best
        saved = {"model": model, "sizes": sizes, "state_dict": state, "selected": trial["name"],
                 "pretrain_candidate": cand["name"]}  # fmt: skip
        save_torch(saved, paths.finetuned_model(model))
        shutil.rmtree(checkpoints, ignore_errors=True)
        results = {"selected": trial["name"], "valid_error": trial["valid_error"], "best_epoch": trial["best_epoch"],
                   "trials": trials}  # fmt: skip
        write_json(paths.results("finetune", model), results)
        write_history_csv(paths.plot_data("finetune", model), trial["history"])
        selected = MLPClassifier(sizes)
        selected.load_state_dict(state)
        tracking.log_model(DigitPredictor(selected), "model", valid.x[:5].cpu())
        tracking.log_metrics({"valid_error": trial["valid_error"], "best_epoch": trial["best_epoch"]})
        tracking.log_timing("finetune", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("finetune", __doc__, main, model_arg)
