"""Stage `filters`: Vincent 2008's figure of first-layer filters learned at 0%, 25% and 50% destruction.

    python -m pipeline.stages.filters [--params params.yaml]

One tied sigmoid autoencoder layer per noise level, all from the same initial weights (same seed),
trained on the table's training split. More noise should give larger, stroke-like filters.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import log, run_stage

FIGURE = "reports/figures/vincent_filters.png"
RESULTS = "results/filters.json"


def main(params, args: argparse.Namespace) -> None:
    import time

    from pipeline.common.figures import save_figure
    from pipeline.common.io import write_json
    from pipeline.common.seeding import get_device
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_splits
    from pipeline.reporting.figures import filter_grid
    from pipeline.training.grid import group_size
    from pipeline.training.kinds.ae import KIND as AE  # the kind it trains: a dep
    from pipeline.training.layer_kind import StackSpec
    from pipeline.training.search import pretrain_stacks

    v, f = params.vincent, params.vincent.filters
    logged = {"filters": f.model_dump(), "batch_size": v.pretrain.batch_size}
    with tracking.stage_run("filters", params.tracking.experiment, logged):
        start = time.perf_counter()
        splits = load_splits(paths.prepared(f.dataset))
        device = get_device(v.device, "vincent.device")
        specs = [StackSpec(AE.name, f.hidden, f.lr, f.epochs, nu) for nu in f.noise]
        log.info("filters: one layer of %d units at %s destruction", f.hidden, [f"{100 * nu:g}%" for nu in f.noise])
        stacks, _ = pretrain_stacks(
            specs,
            1,
            splits["train"].x,
            splits["valid"].x,
            seed=params.seed,
            batch_size=v.pretrain.batch_size,
            device=device,
            group_size=group_size(v, device),
        )
        weights, titles, metrics = [], [], {}
        for s in specs:
            w = stacks[s.name].weights[0][0]
            weights.append(w[: f.shown])
            titles.append(f"{100 * s.noise:g}% destruction")
            metrics[f"noise_{100 * s.noise:g}"] = {
                "valid_loss": stacks[s.name].history[0]["valid_loss"][-1],
                "mean_abs_weight": float(w.abs().mean()),
            }
        save_figure(filter_grid(weights, titles, n=f.shown), FIGURE)
        write_json(RESULTS, metrics)
        tracking.log_metrics(metrics)
        tracking.log_artifacts([FIGURE])
        tracking.log_timing("filters", time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("filters", __doc__, main)
