"""Stage `evaluate@<model>`: test error of the fine-tuned network, and probes of its pretrained layers.

    python -m pipeline.evaluate --model sda3_nu25 [--params params.yaml]

- The fine-tuned network's test error with its 95% interval 1.96*sqrt(p(1-p)/n).
- How good each pretrained layer is by itself, before fine-tuning: a logistic-regression probe and
  an rbf SVM on its frozen features (the selected pretraining candidate's), C chosen on validation.
Writes metrics/evaluate/<model>.json, the record the report reads.
"""

from __future__ import annotations

import argparse
import time

import torch

from pipeline import evaluation, tracking
from pipeline.cli import log, run_stage
from pipeline.models.mlp import MLPClassifier
from pipeline.params import Params
from pipeline.pretrain import model_arg, model_spec
from pipeline.training.layerwise import propagate
from pipeline.utils import write_json
from pipeline.vincent import finetune_path, load_splits, metrics_path, pretrain_path


def main(params: Params, args: argparse.Namespace) -> None:
    v, model = params.vincent, args.model
    spec = model_spec(params, model)
    logged = {"model": model, "spec": spec.model_dump(), "probe": v.probe.model_dump(), "dataset": v.dataset}
    with tracking.stage_run("evaluate", params.tracking.experiment, logged, run_name=f"evaluate {model}"):
        start = time.perf_counter()
        splits = load_splits(v)
        n_jobs = torch.get_num_threads()
        saved = torch.load(finetune_path(model), weights_only=False)
        mlp = MLPClassifier(saved["sizes"])
        mlp.load_state_dict(saved["state_dict"])
        test_error = mlp.error_rate(splits["test"].x, splits["test"].y)
        valid_error = mlp.error_rate(splits["valid"].x, splits["valid"].y)
        n_test = len(splits["test"])
        log.info("%s (%s): test error %.2f%%", model, saved["selected"], 100 * test_error)

        pretrained = torch.load(pretrain_path(model), weights_only=False)
        cand = next(c for c in pretrained["candidates"] if c["name"] == saved["pretrain_candidate"])
        probes = []
        features = {s: split.x for s, split in splits.items()}
        for layer, (w, b) in enumerate(cand["weights"], start=1):
            features = {s: propagate(f, w, b) for s, f in features.items()}
            f_and_y = [t for s in ("train", "valid", "test") for t in (features[s], splits[s].y)]
            for probe, fn, Cs in (("logreg", evaluation.linear_probe, v.probe.logreg_C),
                                  ("svm", evaluation.feature_svm, v.probe.svm_C)):  # fmt: skip
                out = fn(*f_and_y, Cs=Cs, n_jobs=n_jobs)
                probes.append({"model": model, "layer": layer, "probe": probe, **out})
                log.info("%s layer %d %s probe: test error %.2f%%", model, layer, probe, 100 * out["test_error"])

        record = {
            "dataset": v.dataset,
            "model": spec.table_name,
            "entry": model,
            "noise_pct": round(100 * spec.noise) if spec.kind == "dae" else None,
            "test_error": test_error,
            "ci95": evaluation.error_ci95(test_error, n_test),
            "n_test": n_test,
            "valid_error": valid_error,
            "selected": {"finetune": saved["selected"], "pretrain": cand["hparams"]},
        }
        out = {"record": record, "probes": probes, "seconds": round(time.perf_counter() - start, 1)}
        write_json(metrics_path("evaluate", model), out)
        tracking.log_metrics({"test_error": test_error, "valid_error": valid_error, "ci95": record["ci95"]})
        tracking.log_metrics({f"layer{p['layer']}.{p['probe']}.test_error": p["test_error"] for p in probes})


if __name__ == "__main__":
    run_stage("evaluate", main, model_arg)
