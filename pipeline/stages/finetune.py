"""Stage `finetune@<dataset>-<stack>`: each model built on the stack, its pretrained candidates + a softmax layer,
fine-tuned by successive halving.

    python -m pipeline.stages.finetune --dataset basic --stack dbn [--params params.yaml]

For every model of vincent.models on this stack (DBN-1 and DBN-3 share `dbn`): every (pretraining candidate,
truncated to the model's layers) x (learning rate) pair starts; at each rung of vincent.finetune.rungs only the
best 1/eta on validation error go on, and each stops early after `patience` epochs without improvement
(pipeline/training/halving.py). The network with the lowest validation error is kept
(models/finetune/<dataset>/<stack>/<model>.pt) and logged to MLflow as a model that predicts digits
(`mlflow.pyfunc.load_model(uri).predict(x)`). The test set is not read here.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import log, row_args, row_stage, run_stage

TOP = 5  # the selected network and the next four on validation are saved; evaluate tests them after selection


def main(params, args: argparse.Namespace) -> None:
    import shutil
    import time

    from pipeline.common.io import load_torch, save_torch, write_history_csv, write_json
    from pipeline.common.seeding import get_device
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.models.mlp import DigitPredictor, MLPClassifier
    from pipeline.training.grid import group_size
    from pipeline.training.select import select_and_test

    v, dataset, stack = params.vincent, args.dataset, args.stack
    f = v.finetune_for(dataset)  # vincent.finetune, with what vincent.rows.<dataset> changes
    with row_stage("finetune", params, args, {"finetune": f.model_dump()}) as models:
        start = time.perf_counter()
        splits = load_splits(paths.prepared(dataset))
        train, valid = splits["train"], splits["valid"]
        tracking.log_splits({k: splits[k] for k in ("train", "valid")}, dataset)
        pretrained = load_torch(paths.pretrained_model(dataset, stack), f"pretrain@{dataset}-{stack}", ("candidates",))
        # A candidate whose pretraining diverged is marked so by pretrain and never fine-tuned (nor selected).
        usable = [c for c in pretrained["candidates"] if c.get("status", "ok") == "ok"]
        diverged = {c["name"] for c in pretrained["candidates"] if c not in usable}
        for c in pretrained["candidates"]:
            if c not in usable:
                log.warning("%s: skipping pretraining candidate %s (%s)", stack, c["name"], c["status"])
        hparams = {c["name"]: c["hparams"] for c in usable}
        stacks = {c["name"]: c["weights"] for c in pretrained["candidates"]}
        device = get_device(v.device, "vincent.device")
        results = {}
        for model, spec in models.items():
            log.info(
                "%s %s: %d candidates (%d stacks x %d learning rates) from pretrain@%s-%s",
                dataset,
                model,
                len(usable) * len(f.lr),
                len(usable),
                len(f.lr),
                dataset,
                stack,
            )
            checkpoint = paths.checkpoint_dir("finetune", dataset, model) / "search.pt"
            # Ranked on validation only (no test split): evaluate tests the selected network and its runners-up.
            selection = select_and_test(
                stacks,
                f.lr,
                train,
                valid,
                None,
                layers=spec.layers,
                top=TOP,
                device=device,
                diverged=diverged,
                max_epochs=f.max_epochs,
                patience=f.patience,
                rungs=f.rungs,
                eta=f.eta,
                batch_size=f.batch_size,
                seed=params.seed,
                group_size=group_size(v, device),
                checkpoint_path=checkpoint,
            )
            trials = selection.trials
            for t in trials:
                with tracking.candidate_run(
                    f"{model} {t.name}", {**hparams[t.stack], "layers": spec.layers, "finetune_lr": t.lr}
                ):
                    tracking.log_history({k: t.history[k] for k in ("train_loss", "train_error", "valid_error")})
                    tracking.log_metrics(
                        {"best_valid_error": t.best_error, "best_epoch": t.best_epoch, "epochs": t.epochs}
                    )
            top = [trials[i] for i in selection.order[:TOP]]
            best = top[0]
            log.info(
                "%s %s: selected %s, validation error %.2f%% at epoch %d",
                dataset,
                model,
                best.name,
                100 * best.best_error,
                best.best_epoch,
            )
            mlp = MLPClassifier.from_params(best.best_params, best.head)
            names = list(mlp.state_dict())  # hidden.i.weight, hidden.i.bias, ..., then the head's (output.*)
            # The next best on validation, kept so that evaluate can show (after selection) how sensitive the result is.
            runners_up = [
                {
                    "name": t.name,
                    "valid_error": t.best_error,
                    "state_dict": dict(zip(names, t.best_params, strict=True)),
                }
                for t in top[1:]
            ]
            saved = {
                "dataset": dataset,
                "model": model,
                "sizes": mlp.sizes,
                "head": mlp.head,
                "state_dict": mlp.state_dict(),
                "selected": best.name,
                "valid_error": best.best_error,
                "pretrain_candidate": best.stack,
                "runners_up": runners_up,
            }
            save_torch(saved, paths.finetuned_model(dataset, model, stack))
            shutil.rmtree(checkpoint.parent, ignore_errors=True)
            epochs = sum(t.epochs for t in trials)
            results[model] = {
                "selected": best.name,
                "valid_error": best.best_error,
                "valid_loss": best.best_loss,
                "best_epoch": best.best_epoch,
                "work": {"candidate_epochs": epochs, "candidate_epochs_without_halving": len(trials) * f.max_epochs},
                "trials": [{**t.summary(), "pretrain": hparams[t.stack]} for t in trials],
            }
            write_history_csv(paths.plot_data("finetune", f"{dataset}/{stack}/{model}"), best.history)
            tracking.log_model(DigitPredictor(mlp), f"model-{model}", valid.x[:5].cpu())
            tracking.log_metrics(
                {
                    f"{model}.valid_error": best.best_error,
                    f"{model}.best_epoch": best.best_epoch,
                    f"{model}.candidate_epochs": epochs,
                }
            )
        write_json(paths.results("finetune", f"{dataset}/{stack}"), results)
        tracking.log_timing(f"finetune@{dataset}-{stack}", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("finetune", __doc__, main, row_args)
