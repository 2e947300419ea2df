"""Stage `report@<dataset>`: one row of the Vincent 2008 table, its figures and its own report.

    python -m pipeline.stages.report --dataset basic [--params params.yaml]

One model per column the row has (the models of vincent.models on the stacks it runs, vincent.rows.<dataset>.stacks:
what it declares, and all it reads), each already selected on validation by its fine-tuning search;
McNemar's test compares SdA-3 with every other column on the same test examples. Writes the row
(results/report/<dataset>.csv, which the `table` stage assembles), the headline DVC metric
metrics/vincent/<dataset>.json (test error % per model), reports/vincent/<dataset>.md and the figures
under reports/figures/vincent/<dataset>/, and logs them to MLflow. They are written together
(utils.output_batch): a failure part-way leaves every one of them as it was.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import check_choice, dataset_arg, log, run_stage

PAPER_CSV = "reports/reference/vincent2008_table1.csv"
FIGURES = ("probes", "finetune_curves", "pretrain_curves", "reconstructions")


def main(params, args: argparse.Namespace) -> None:
    import torch

    from pipeline.common.figures import save_figure
    from pipeline.common.io import atomic_path, load_torch, output_batch, write_json
    from pipeline.core import paths, tracking
    from pipeline.data.arrays import load_array, load_split
    from pipeline.data.corruption import masking
    from pipeline.reporting import figures, tables
    from pipeline.reporting import vincent as report

    v, dataset = params.vincent, args.dataset
    check_choice("--dataset", dataset, "vincent.datasets", v.datasets)
    row_stacks = v.stacks_of(dataset)  # the stacks this row runs, and their models (params order, the table's)
    row_models = v.row_models(dataset)
    with tracking.stage_run("report", params.tracking.experiment, {"dataset": dataset}, run_name=f"report {dataset}"):
        svm = [report.read_json(paths.results("evaluate", f"{dataset}/svm_{k}")) for k in ("rbf", "poly")]
        evaluated, finetuned = {}, {}
        for stack in row_stacks:
            evaluated |= report.read_json(paths.results("evaluate", f"{dataset}/{stack}"))
            finetuned |= report.read_json(paths.results("finetune", f"{dataset}/{stack}"))
        evaluated = {m: evaluated[m] for m in row_models}
        finetuned = {m: finetuned[m] for m in row_models}
        records = svm + [e["record"] | {"valid_loss": finetuned[m].get("valid_loss")} for m, e in evaluated.items()]
        chosen, _ = report.select_entries(records)
        table = tables.vincent_table(chosen, PAPER_CSV)
        with output_batch() as batch:
            # SdA-3 against each column (McNemar) travels with the row, for the whole table's claim
            tables.write_csv_atomic(report.with_mcnemar(table, chosen), paths.vincent_row(dataset))
            probes = [p for e in evaluated.values() for p in e["probes"]]

            fig = {name: paths.vincent_row_figure(dataset, name) for name in FIGURES}
            save_figure(figures.probe_plot(probes), fig["probes"])
            save_figure(figures.training_curves(report.selected_curves(finetuned)), fig["finetune_curves"])
            stacks = {
                s: load_torch(paths.pretrained_model(dataset, s), f"pretrain@{dataset}-{s}", ("candidates",))
                for s in row_stacks
            }
            selected = {
                m: next(
                    c
                    for c in stacks[spec.stack]["candidates"]
                    if c["name"] == evaluated[m]["record"]["selected"]["pretrain_candidate"]
                )
                for m, spec in row_models.items()
            }
            save_figure(
                figures.pretrain_curves({m: selected[m]["history"][: spec.layers] for m, spec in row_models.items()}),
                fig["pretrain_curves"],
            )
            # The selected SdA's first layer, on test examples masked at the level it was trained with (a fixed draw).
            sda = next((m for m, e in evaluated.items() if e["record"]["model"] == "SdA-3"), None)
            if sda is not None:
                cand, n = selected[sda], 10
                (w, b), c = cand["weights"][0], cand["visible_biases"][0]
                nu = cand["hparams"]["noise"]
                clean = load_split(paths.prepared(dataset), "test").x[:n]
                noisy = masking(clean, nu, torch.Generator().manual_seed(params.seed))
                recon = torch.sigmoid(torch.sigmoid(noisy @ w.T + b) @ w + c)
                figure = figures.corrupted_and_reconstructed(clean, noisy, recon, n=n)
                figure.suptitle(f"{dataset}: SdA-3 first layer, test examples, {100 * nu:g}% masked, reconstruction")
                save_figure(figure, fig["reconstructions"])
            shown = [p for p in fig.values() if batch.writes(p) or p.exists()]  # written, or there before

            source = "prepare" if dataset in ("basic", "full") else f"benchmark@{dataset}"
            stages = [
                source,
                *(f"evaluate_svm@{dataset}-{k}" for k in ("rbf", "poly")),
                *(f"{stage}@{dataset}-{s}" for s in row_stacks for stage in ("pretrain", "finetune", "evaluate")),
            ]
            sizes = {
                s: len(load_array(paths.prepared(dataset) / f"y_{s}.npy", mmap=True))
                for s in ("train", "valid", "test")
            }
            seconds = report.stage_seconds(stages)
            text = report.row_markdown(
                params,
                dataset,
                table,
                finetuned,
                evaluated,
                probes,
                seconds,
                shown,
                tracking.git_commit(),
                sizes,
                report.mcnemar_rows(chosen),
            )
            # the row's stage times beside its CSV, for the whole table's time (logs/timings stays on the machine)
            write_json(paths.vincent_row(dataset).with_suffix(".json"), {"stage_seconds": seconds})
            with atomic_path(paths.vincent_row_report(dataset)) as tmp:
                tmp.write_text(text)
            headline = {row.model: row.error_pct for row in table.dropna(subset=["error_pct"]).itertuples()}
            write_json(paths.vincent_metrics(dataset), headline)
        log.info("report %s: %s", dataset, ", ".join(f"{k} {x:.2f}%" for k, x in headline.items()))
        tracking.log_metrics({f"{k}.error_pct": x for k, x in headline.items()})
        tracking.log_artifacts([paths.vincent_row_report(dataset), paths.vincent_row(dataset), *shown], "report")


if __name__ == "__main__":
    run_stage("report", __doc__, main, dataset_arg)
