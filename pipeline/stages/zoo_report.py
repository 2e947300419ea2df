"""Stage `zoo_report`: the autoencoder zoo side by side -> reports/zoo.md, reports/zoo.csv, figures.

    python -m pipeline.stages.zoo_report [--params params.yaml]

Reads every variant's metrics/zoo/<variant>.json and models/zoo/<variant>.pt (the layers of `zoo.layers`, stage
zoo_layer, among them as the dense variants they are: pipeline/zoo/layers.py), draws the combined figures
(2-D codes beside PCA's, reconstructions, denoising, loss curves, sparsity, the VAE's manifold and
samples) and writes the table and a report whose sentences are generated from the measured numbers.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import StageError, log, run_stage


def main(params, args: argparse.Namespace) -> None:
    import time

    from pipeline.common.figures import save_figure
    from pipeline.common.io import atomic_path, output_batch
    from pipeline.core import tracking
    from pipeline.zoo.layers import with_layers
    from pipeline.zoo.report import ZooReport, markdown
    from pipeline.zoo.tables import CSV, FIGURES, MARKDOWN, params_hash, table

    if not params.zoo.variants:
        raise StageError("zoo.variants is empty: nothing to report")
    z = with_layers(params.zoo)
    params = params.model_copy(update={"zoo": z})
    with tracking.stage_run("zoo_report", z.experiment, {"variants": ",".join(z.variants)}, run_name="zoo report"):
        start = time.perf_counter()
        report = ZooReport(params)
        figures = {
            "codes": report.codes_figure,
            "reconstructions": report.reconstructions_figure,
            "denoising": report.denoising_figure,
            "curves": report.curves_figure,
            "sparsity": report.sparsity_figure,
            "vae": report.vae_figure,
        }
        with output_batch():  # all the report's files, or none of them
            for key, draw in figures.items():
                save_figure(draw(), FIGURES[key])
                log.info("wrote %s", FIGURES[key])
            frame = table(z, report.metrics)
            with atomic_path(CSV) as tmp:
                frame.to_csv(tmp, index=False, float_format="%.6g")
            with atomic_path(MARKDOWN) as tmp:
                tmp.write_text(markdown(report, frame, params_hash(z)))
        for _, row in frame.iterrows():
            tracking.log_metrics({f"{row['variant']}.{k}": row[k] for k in ("test_mse", "linear_probe_acc", "knn_acc")})
        tracking.log_artifacts([MARKDOWN, CSV], artifact_path="report")
        tracking.log_artifacts(list(FIGURES.values()))
        tracking.log_timing("zoo_report", time.perf_counter() - start)
        log.info("wrote %s and %s (%.0f s)", MARKDOWN, CSV, time.perf_counter() - start)


if __name__ == "__main__":
    run_stage("zoo_report", __doc__, main)
