"""Stage `evaluate@<dataset>-<stack>`: test errors of the fine-tuned networks built on the stack, and probes of
their pretrained layers.

    python -m pipeline.stages.evaluate --dataset basic --stack sda [--params params.yaml]

For every model of vincent.models on this stack:
- the fine-tuned network's test error with its 95% interval 1.96*sqrt(p(1-p)/n), and the test errors of
  the next four candidates on validation (saved by finetune), to show how sensitive the selection is;
- how good each pretrained layer is by itself, before fine-tuning: a logistic-regression probe on every
  layer and an rbf SVM on the top one (vincent.probe.svm_layers), on the frozen features of the selected
  pretraining candidate, C chosen on validation.
Writes results/evaluate/<dataset>/<stack>.json, the records the report reads.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import log, row_args, row_stage, run_stage


def main(params, args: argparse.Namespace) -> None:
    import time

    import torch
    from tqdm.auto import tqdm

    from pipeline.common.io import load_torch, write_json
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.evaluation.probes import linear_probe
    from pipeline.evaluation.rates import error_ci95
    from pipeline.evaluation.svm import feature_svm
    from pipeline.models.mlp import MLPClassifier
    from pipeline.params.stacks import KINDS
    from pipeline.training.stack import propagate

    v, dataset, stack = params.vincent, args.dataset, args.stack
    with row_stage("evaluate", params, args, {"probe": v.probe.model_dump()}) as models:
        start = time.perf_counter()
        splits = load_splits(paths.prepared(dataset))
        tracking.log_splits(splits, dataset)
        n_jobs = torch.get_num_threads()
        pretrained = load_torch(paths.pretrained_model(dataset, stack), f"pretrain@{dataset}-{stack}", ("candidates",))
        out = {}
        for model, spec in models.items():
            saved = load_torch(
                paths.finetuned_model(dataset, model, stack),
                f"finetune@{dataset}-{stack}",
                ("sizes", "state_dict", "pretrain_candidate", "runners_up"),
            )
            mlp = MLPClassifier.from_state_dict(saved["state_dict"])
            predicted = mlp.predict(splits["test"].x)
            wrong = torch.nonzero(predicted != splits["test"].y).flatten().tolist()  # for McNemar's test in the report
            test_error = len(wrong) / len(splits["test"])
            valid_error = mlp.error_rate(splits["valid"].x, splits["valid"].y)
            n_test = len(splits["test"])
            # Selection is final: the runners-up on validation, tested only now, show how sensitive the result is.
            top = [{"name": saved["selected"], "valid_error": saved["valid_error"], "test_error": test_error}]
            for other in saved["runners_up"]:
                net = MLPClassifier.from_state_dict(other["state_dict"])
                top.append(
                    {
                        "name": other["name"],
                        "valid_error": other["valid_error"],
                        "test_error": net.error_rate(splits["test"].x, splits["test"].y),
                    }
                )
            log.info("%s %s (%s): test error %.2f%%", dataset, model, saved["selected"], 100 * test_error)

            cand = next(c for c in pretrained["candidates"] if c["name"] == saved["pretrain_candidate"])
            # The frozen sigmoid layers are probed; a joint top RBM (W, b, U, e) needs the label, so it is not.
            layers = [w for w in cand["weights"][: spec.layers] if len(w) == 2]
            probes = []
            features = {s: split.x for s, split in splits.items()}
            planned = [
                (layer, kind)
                for layer in range(1, len(layers) + 1)
                for kind in ("logreg", "svm")
                if kind == "logreg" or v.probe.svm_layers == "all" or layer == len(layers)
            ]
            probe_fns = {"logreg": (linear_probe, v.probe.logreg_C), "svm": (feature_svm, v.probe.svm_C)}
            bar = tqdm(total=len(planned), desc=f"{dataset} {model} probes", unit="probe")
            for layer, (w, b) in enumerate(layers, start=1):
                features = {s: propagate(f, w, b) for s, f in features.items()}
                f_and_y = [t for s in ("train", "valid", "test") for t in (features[s], splits[s].y)]
                for probe in [k for at, k in planned if at == layer]:
                    bar.set_postfix_str(f"layer {layer} {probe}")
                    fn, Cs = probe_fns[probe]
                    result = fn(*f_and_y, Cs=Cs, n_jobs=n_jobs)
                    probes.append({"model": model, "layer": layer, "probe": probe, **result})
                    log.info(
                        "%s %s layer %d %s probe: test error %.2f%%",
                        dataset,
                        model,
                        layer,
                        probe,
                        100 * result["test_error"],
                    )
                    bar.update()
            bar.close()

            record = {
                "dataset": dataset,
                "model": spec.table_name,
                "entry": model,
                "noise_pct": round(100 * cand["hparams"]["noise"]) if KINDS[cand["hparams"]["kind"]].noise else None,
                "test_error": test_error,
                "ci95": error_ci95(test_error, n_test),
                "n_test": n_test,
                "valid_error": valid_error,
                "selected": {
                    "finetune": saved["selected"],
                    "pretrain_candidate": cand["name"],
                    "pretrain": cand["hparams"],
                },
                "test_wrong": wrong,
                "top": top,
            }
            out[model] = {"record": record, "probes": probes}
            tracking.log_metrics(
                {
                    f"{model}.test_error": test_error,
                    f"{model}.valid_error": valid_error,
                    f"{model}.ci95": record["ci95"],
                }
            )
            tracking.log_metrics(
                {f"{model}.layer{p['layer']}.{p['probe']}.test_error": p["test_error"] for p in probes}
            )
        write_json(paths.results("evaluate", f"{dataset}/{stack}"), out)
        tracking.log_timing(f"evaluate@{dataset}-{stack}", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("evaluate", __doc__, main, row_args)
