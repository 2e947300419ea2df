"""Stage `report`: the Vincent 2008 table and figures, from the stages' metrics alone.

    python -m pipeline.stages.report [--params params.yaml]

One model per column (vincent.models), each already selected on validation by its fine-tuning search;
McNemar's test compares SdA-3 with every other column on the same test digits. Writes reports/vincent2008.md and .csv,
figures under reports/figures/, the headline DVC metric metrics/vincent/<dataset>.json (test error %
per model), and logs them to the pipeline's parent MLflow run.
"""

from __future__ import annotations

import argparse

from pipeline.cli import log, run_stage

PAPER_CSV = "reports/reference/vincent2008_table1.csv"
TABLE_MD = "reports/vincent2008.md"
TABLE_CSV = "reports/vincent2008.csv"
FIG = {
    "bars": "reports/figures/vincent_ours_vs_paper.png",
    "probes": "reports/figures/vincent_probes.png",
    "curves": "reports/figures/vincent_finetune_curves.png",
    "pretrain": "reports/figures/vincent_pretrain_curves.png",
    "reconstructions": "reports/figures/vincent_reconstructions.png",
}
FILTERS_FIG = "reports/figures/vincent_filters.png"


def main(params, args: argparse.Namespace) -> None:
    from pathlib import Path

    import mlflow
    import numpy as np
    import torch

    from pipeline import paths, tracking
    from pipeline.data.arrays import load_split, load_uint8
    from pipeline.reporting import figures, tables
    from pipeline.reporting import vincent as report
    from pipeline.utils import atomic_path, save_figure, write_json

    v = params.vincent
    with tracking.stage_run("report", params.tracking.experiment, {"vincent.models": list(v.models)}) as run_id:
        svm = [report.read_json(paths.results("evaluate", f"svm_{k}")) for k in ("rbf", "poly")]
        evaluated = {m: report.read_json(paths.results("evaluate", m)) for m in v.models}
        finetuned = {m: report.read_json(paths.results("finetune", m)) for m in v.models}
        records = svm + [e["record"] for e in evaluated.values()]
        chosen, _ = report.select_entries(records)
        table = tables.vincent_table(chosen, PAPER_CSV)
        tables.write_csv_atomic(table, TABLE_CSV)
        probes = [p for e in evaluated.values() for p in e["probes"]]

        save_figure(figures.ours_vs_paper(table), FIG["bars"])
        save_figure(figures.probe_plot(probes), FIG["probes"])
        save_figure(figures.training_curves(report.selected_curves(finetuned)), FIG["curves"])
        stacks = {s: torch.load(paths.pretrained_model(s), weights_only=False) for s in v.stacks}
        selected = {m: next(c for c in stacks[spec.stack]["candidates"] if c["name"] == evaluated[m]["record"]["selected"]["pretrain_candidate"])
                    for m, spec in v.models.items()}  # fmt: skip
        curves = {m: selected[m]["history"][: spec.layers] for m, spec in v.models.items()}
        save_figure(figures.pretrain_curves(curves), FIG["pretrain"])

        sda = min((r for r in records if r["model"] == "SdA-3"), key=lambda r: r["valid_error"], default=None)
        if sda is not None:
            cand = selected[sda["entry"]]
            (w, b), c = cand["weights"][0], cand["visible_biases"][0]
            n = 10
            clean = load_split(paths.prepared(v.dataset), "test").x[:n]
            noisy = load_uint8(paths.corrupted(v.dataset, v.report_noise) / "x_test.npy")[:n]
            recon = torch.sigmoid(torch.sigmoid(noisy @ w.T + b) @ w + c)
            fig = figures.corrupted_and_reconstructed(clean, noisy, recon, n=n)
            fig.suptitle(f"{sda['entry']} first layer: test digits, {v.report_noise}, reconstruction")
            save_figure(fig, FIG["reconstructions"])

        source = "prepare" if v.dataset in ("basic", "full") else f"benchmark@{v.dataset}"
        stages = [source, f"corrupt@{v.dataset}", "evaluate_svm@rbf", "evaluate_svm@poly", "filters",
                  *(f"pretrain@{s}" for s in v.stacks), *(f"{stage}@{m}" for m in v.models for stage in ("finetune", "evaluate"))]  # fmt: skip
        revision = tracking.git_commit()
        shown = [*FIG.values(), FILTERS_FIG]
        with atomic_path(TABLE_MD) as tmp:
            sizes = {
                s: len(np.load(paths.prepared(v.dataset) / f"y_{s}.npy", mmap_mode="r"))
                for s in ("train", "valid", "test")
            }
            text = report.markdown(params, table, finetuned, evaluated, probes, report.stage_seconds(stages), shown, revision, sizes,
                                   report.mcnemar_rows(chosen))  # fmt: skip
            tmp.write_text(text)
        headline = {row.model: row.error_pct for row in table.dropna(subset=["error_pct"]).itertuples()}
        write_json(paths.vincent_metrics(v.dataset), headline)
        log.info("report: wrote %s and %s", TABLE_MD, TABLE_CSV)
        written = [p for p in shown if Path(p).exists()]
        tracking.log_artifacts([TABLE_MD, TABLE_CSV, *written], "report")
        parent = mlflow.get_run(run_id).data.tags.get("mlflow.parentRunId")
        if parent:
            client = mlflow.MlflowClient()
            for path in [TABLE_MD, TABLE_CSV, *written]:
                client.log_artifact(parent, path, "report")
            for row in table.dropna(subset=["error_pct"]).itertuples():
                client.log_metric(parent, f"{row.dataset}.{row.model}.error_pct", row.error_pct)


if __name__ == "__main__":
    run_stage("report", __doc__, main)
