"""What a trained zoo model leaves behind, the same for zoo_train's variants and zoo_layer's table-kind layers.

`write_variant` writes models/zoo/<name>.pt, its reconstruction figure, results/zoo/<name>.json, the headline DVC
metric metrics/zoo/<name>.json and plots/zoo/<name>.csv, and logs them (and the model) to the active MLflow run;
`log_summary` is the stage's last log line.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.common.figures import save_figure
from pipeline.common.io import save_torch, write_history_csv, write_json
from pipeline.core import paths, tracking
from pipeline.core.cli import log
from pipeline.data.arrays import Split
from pipeline.params import ZooParams, ZooVariant
from pipeline.zoo.evaluate import reconstruction_figure


def write_variant(
    name: str,
    title: str,
    spec: ZooVariant,
    model: nn.Module,
    results: dict,
    splits: dict[str, Split],
    noisy: dict[str, torch.Tensor],
    z: ZooParams,
) -> dict[str, float]:
    """Write and log everything of one trained model (`results`: what evaluate measured, with its identity and its
    per-epoch `history`); return its headline numbers (test MSE, linear-probe and k-NN accuracy)."""
    save_torch({"variant": name, "spec": spec.model_dump(), "model": model.cpu().state_dict()}, paths.zoo_model(name))
    figure = reconstruction_figure(model, spec, title, splits["test"].x, noisy, z.examples)
    save_figure(figure, paths.zoo_figure(name))
    write_json(paths.zoo_results(name), results)
    headline = {
        "test_mse": results["test"]["mse"],
        "probe_acc": results["probe"]["linear_probe_acc"],
        "knn_acc": results["probe"]["knn_acc"],
    }
    write_json(paths.zoo_metrics(name), {k: round(v, 6) for k, v in headline.items()})
    write_history_csv(paths.plot_data("zoo", name), results["history"])
    tracking.log_metrics({k: v for k, v in results.items() if k != "history"})
    tracking.log_artifacts([paths.zoo_figure(name)])
    tracking.log_model(model, "model", splits["test"].x[:5])
    return headline


def log_summary(name: str, headline: dict[str, float], seconds: float) -> None:
    log.info(
        "%s: test MSE %.4f, linear probe %.3f, k-NN %.3f (%.0f s)",
        name,
        headline["test_mse"],
        headline["probe_acc"],
        headline["knn_acc"],
        seconds,
    )
