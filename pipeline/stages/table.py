"""Stage `table`: the whole Vincent 2008 table, assembled from the rows that report@<dataset> wrote.

    python -m pipeline.stages.table [--params params.yaml]

Rows not run yet are listed as pending (never filled in), so a partial run keeps every committed row:
each row is its own set of stages. Writes reports/vincent2008.md and .csv (the CSV the CI gate reads),
the ours-vs-paper figure, and logs them to the pipeline's MLflow run. The three are written together
(utils.output_batch): a row CSV that cannot be read, or any other failure, leaves all of them as they were.
"""

from __future__ import annotations

import argparse

from pipeline.core.cli import log, run_stage

PAPER_CSV = "reports/reference/vincent2008_table1.csv"
LATER_CSV = "reports/reference/later_results.csv"
TABLE_MD = "reports/vincent2008.md"
TABLE_CSV = "reports/vincent2008.csv"
BARS = "reports/figures/vincent_ours_vs_paper.png"


def main(params, args: argparse.Namespace) -> None:
    from pathlib import Path

    from pipeline.common.figures import save_figure
    from pipeline.common.io import atomic_path, output_batch
    from pipeline.core import paths, tracking
    from pipeline.reporting import figures, tables
    from pipeline.reporting import vincent_table as report

    v = params.vincent
    with tracking.stage_run("table", params.tracking.experiment, {"datasets": v.datasets}) as run_id:
        table, pending = report.read_rows({d: paths.vincent_row(d) for d in v.datasets})
        if pending:
            log.warning("table: rows not run yet: %s", ", ".join(pending))
        with output_batch():
            if len(table):
                tables.write_csv_atomic(table, TABLE_CSV)
                save_figure(figures.ours_vs_paper(table), BARS)
            examples = {d: str(paths.dataset_examples(d).relative_to("reports")) for d in v.datasets}  # from the .md
            text = report.table_markdown(params, table, pending, LATER_CSV, examples, tracking.git_commit())
            with atomic_path(TABLE_MD) as tmp:
                tmp.write_text(text)
        # after the batch: the files are in place for MLflow to copy
        log.info("table: wrote %s (%d rows, %d pending)", TABLE_MD, len(v.datasets) - len(pending), len(pending))
        written = [p for p in (TABLE_MD, TABLE_CSV, BARS) if Path(p).exists()]
        headline = {}
        if len(table):
            headline = {
                f"{r.dataset}.{r.model}.error_pct": r.error_pct for r in table.dropna(subset=["error_pct"]).itertuples()
            }
        tracking.log_artifacts(written, "report")
        tracking.log_metrics(headline)
        tracking.log_to_parent(run_id, written, headline)  # the pipeline's run: one per params, compared in the UI


if __name__ == "__main__":
    run_stage("table", __doc__, main)
