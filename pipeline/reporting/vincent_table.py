"""The whole Vincent 2008 table from its rows: the paper's layout, the claim, later results beside it.

The `table` stage reads each row's CSV (written by report@<dataset>), calls these functions and writes
what they return. Rows not run yet are listed as pending, never filled in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.common.io import DamagedFileError
from pipeline.params import Params
from pipeline.reporting.claim import best_or_tied, beyond_rows, claim_rows, paper_best_or_tied
from pipeline.reporting.datasets import DESCRIPTIONS, calibration_of, dataset_origin, is_generated
from pipeline.reporting.tables import (
    PAPER_MODELS,
    TABLE_COLUMNS,
    interval_summary,
    markdown_table,
    read_report,
    vincent_markdown,
)

SUBSTITUTE = "†"
CALIBRATED = "‡"


ROW_COLUMNS = ("error_pct", "ci95_pct", "paper_error_pct", "paper_ci95_pct", "delta_pct")
ROW_OPTIONAL = ("valid_error_pct", "mcnemar_b", "mcnemar_c", "mcnemar_p")  # rows reported before them lack them


def read_rows(paths: dict[str, Path]) -> tuple[pd.DataFrame, list[str]]:
    """The rows that exist, in the given order, and the datasets still pending.

    Each row's CSV is checked as the gate checks the table (`read_report`): a damaged one raises ReportError naming
    the file, line and column."""
    frames = [read_report(p, ROW_COLUMNS, ROW_OPTIONAL) for p in paths.values() if p.is_file()]
    pending = [d for d, p in paths.items() if not p.is_file()]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TABLE_COLUMNS)
    return table, pending


def published(later_csv: str | os.PathLike) -> dict[tuple[str, str], tuple[float, str]]:
    """(dataset, method) -> (test error %, label) of the later results: a column of ours named like the method (its
    table_name, e.g. CAE-2) is set against that value; label S: quoted by a third party, U: unverified."""
    later = pd.read_csv(later_csv, keep_default_na=False)
    return {(r.dataset, r.method): (float(r.test_error_pct), str(r.label)) for r in later.itertuples()}


def later_rows(table: pd.DataFrame, later_csv: str | os.PathLike) -> list[list[str]]:
    """Our SdA-3 per row beside the JMLR 2010 SDAE-3 and the CAE-2 of Rifai et al. 2011 (context, not targets)."""
    later = published(later_csv)
    sda = table[table["model"] == "SdA-3"].set_index("dataset")
    rows = []
    for dataset in dict.fromkeys(table["dataset"]):
        cells = [f"{sda.loc[dataset, 'error_pct']:.2f}" if dataset in sda.index else "—"]
        for method in ("SDAE-3", "CAE-2"):
            hit = later.get((dataset, method))
            cells.append("—" if hit is None else f"{hit[0]:.2f}" + (f" [{hit[1]}]" if hit[1] else ""))
        rows.append([dataset, *cells])
    return rows


def time_rows(datasets: list[str], report_dir: str | os.PathLike = "results/report") -> list[list[str]]:
    """Per row run: its stages' wall time (report@<row> wrote them beside its CSV), then the whole table's."""
    rows, total, missing = [], 0.0, False
    for dataset in datasets:
        path = Path(report_dir) / f"{dataset}.json"
        if not path.is_file():
            continue
        seconds = read_stage_seconds(path, dataset)
        known = [s for s in seconds.values() if s is not None]
        missing |= len(known) < len(seconds)
        total += sum(known)
        rows.append(
            [dataset, str(len(seconds)), f"{sum(known) / 3600:.2f}" + ("" if len(known) == len(seconds) else " +")]
        )
    if rows:
        rows.append(["**all rows**", "", f"**{total / 3600:.2f}**" + (" +" if missing else "")])
    return rows


def read_stage_seconds(path: Path, dataset: str) -> dict[str, float | None]:
    """The `stage_seconds` report@<dataset> wrote beside its row ({stage: seconds or null}); DamagedFileError if not."""
    import json

    def damaged(reason: str) -> DamagedFileError:
        return DamagedFileError(
            f"{path}: {reason}; expected the JSON report@{dataset} writes, "
            f'{{"stage_seconds": {{<stage>: seconds or null}}}}: rerun `dvc repro report@{dataset}`'
        )

    try:
        record = json.loads(path.read_text())
    except ValueError as exc:  # not UTF-8 text, not JSON
        raise damaged(f"cannot be read ({str(exc).splitlines()[0][:120]})") from None
    seconds = record.get("stage_seconds") if isinstance(record, dict) else None
    if not isinstance(seconds, dict):
        raise damaged("has no mapping `stage_seconds`")
    for stage, value in seconds.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise damaged(f"stage_seconds of {stage!r} is {value!r}, not a number of seconds")
    return seconds


def data_shift_lines(params: Params, table: pd.DataFrame) -> list[str]:
    """Per generated row: how far our SVM_rbf is from the paper's, the first sign of how the data differ."""
    lines = []
    for dataset, group in table.groupby("dataset", sort=False):
        if not is_generated(params, str(dataset)):
            continue
        rbf = group[group["model"] == "SVM_rbf"]
        if not len(rbf) or np.isnan(rbf.iloc[0]["error_pct"]):
            continue
        # the paper's columns only: a later column has no paper value (its published one is in "Beyond the paper")
        deltas = group.dropna(subset=["error_pct", "delta_pct"])
        spread = ", ".join(f"{r.model} {r.delta_pct:+.2f}" for r in deltas.itertuples())
        lines.append(
            f"- `{dataset}`: SVM_rbf {rbf.iloc[0]['error_pct']:.2f}% vs the paper's "
            f"{rbf.iloc[0]['paper_error_pct']:.2f} ({rbf.iloc[0]['delta_pct']:+.2f}); every column, ours − paper: {spread}"
        )
    return lines


def validation_rows(table: pd.DataFrame) -> list[list[str]]:
    """Per row: each column's validation error (what selected it) and test error, valid -> test."""
    models = list(dict.fromkeys(table["model"]))
    rows = []
    for dataset, group in table.groupby("dataset", sort=False):
        cells = group.set_index("model")
        rows.append(
            [str(dataset)]
            + [
                f"{cells.loc[m, 'valid_error_pct']:.2f} → {cells.loc[m, 'error_pct']:.2f}"
                if m in cells.index
                and pd.notna(cells.loc[m].get("valid_error_pct", np.nan))
                and pd.notna(cells.loc[m, "error_pct"])
                else "—"
                for m in models
            ]
        )
    gaps = table["error_pct"] - table.get("valid_error_pct", np.nan)
    means = [f"{g:+.2f}" if pd.notna(g) else "—" for g in gaps.groupby(table["model"], sort=False).mean()]
    return [*rows, ["**mean test − valid**", *means]]


def beyond_lines(table: pd.DataFrame, later_csv: str | os.PathLike) -> list[str]:
    """The claim beyond the paper, where a row runs a later method's column (none: no lines, the table as before)."""
    rows = beyond_rows(table, published(later_csv))
    if not rows:
        return []
    return [
        "## Beyond the paper: do the later methods beat SdA-3 on our runs, as in their papers?",
        "",
        "Columns the paper has not (vincent.models; `../shared/reference/FIDELITY.md` section 5), each selected on its "
        "row's validation split by the same successive halving. Per row: ours beside its published value ([S] quoted "
        "by a third party, [U] unverified), McNemar's exact test against our SdA-3 on the same test examples (b: wrong "
        "only by SdA-3, c: only by the column; beats: p < 0.05 and lower), and whether its paper's value beat the "
        "paper's SdA-3 (Vincent et al. 2008).",
        "",
        markdown_table(
            [
                "dataset",
                "column",
                "ours %",
                "published %",
                "our SdA-3 %",
                "McNemar vs SdA-3",
                "beats SdA-3 here",
                "published beat the paper's SdA-3",
            ],
            rows,
        ),
        "",
    ]


def table_markdown(
    params: Params,
    table: pd.DataFrame,
    pending: list[str],
    later_csv: str | os.PathLike,
    examples: dict[str, str],
    revision: str,
    seeds_dir: str | os.PathLike = "reports/seeds",
) -> str:
    """reports/vincent2008.md: the table of every row run so far, the claim, later results, the datasets."""
    datasets = params.vincent.datasets
    labelled = table.copy()
    labelled["dataset"] = [
        f"{d} {CALIBRATED if calibration_of(params, d) else SUBSTITUTE}" if is_generated(params, d) else d
        for d in labelled["dataset"]
    ]
    done = table.dropna(subset=["error_pct"]) if len(table) else table
    cells = int(done["model"].isin(PAPER_MODELS).sum()) if len(table) else 0  # the paper's columns; others apart
    later = list(done[~done["model"].isin(PAPER_MODELS)]["model"]) if len(table) else []
    beyond = f" (and {len(later)} of columns the paper has not: {', '.join(dict.fromkeys(later))})" if later else ""
    ours, paper = best_or_tied(table), paper_best_or_tied(table) if len(table) else {}
    lines = [
        "# Vincent et al. 2008, Table 1: our reproduction",
        "",
        f"Assembled by `dvc repro` (stage `table`) from the rows' reports, code revision `{revision}`. "
        f"{cells} of {len(PAPER_MODELS) * len(datasets)} cells filled{beyond}"
        + (f"; rows pending: {', '.join(pending)}." if pending else "."),
        f"{SUBSTITUTE} generated from the published recipe (a substitute for Larochelle et al.'s file; see "
        "`data/prepared/<dataset>/manifest.json`): compare its SVM_rbf cell first. "
        f"{CALIBRATED} generated and calibrated: the recipe's unknowns tuned on SVM_rbf validation error alone, "
        "so that the row is as hard as the paper's (`reports/calibration/<dataset>.md`).",
        "",
        vincent_markdown(labelled) if len(table) else "(no row run yet)",
        "",
        "## The paper's claim: SdA-3 best or tied-best",
        "",
        f"Ours: SdA-3 is bold on {sum(ours.values())} of {len(ours)} rows run"
        + (f" ({', '.join(d for d, b in ours.items() if not b)} not)" if not all(ours.values()) else "")
        + f". The paper, on the same rows: {sum(paper.values())} of {len(paper)} (7 of all 8, bg-rand going to DBN-3).",
        "",
        "Per row, SdA-3 against the row's best other column: McNemar's exact test on the same test examples (b: wrong "
        "only by SdA-3, c: only by the other), and both retrained with other seeds (`python -m pipeline.seeds --models "
        "claim`, reports/seeds/): SdA-3's mean ± std (runs), the other's range. The seeds agree with the claim when "
        "SdA-3's mean is within that range or below it.",
        "",
        markdown_table(
            [
                "dataset",
                "SdA-3 %",
                "best other",
                "its %",
                "McNemar",
                "SdA-3 bold",
                "SdA-3 over seeds",
                "other over seeds",
                "seeds agree",
            ],
            claim_rows(table, seeds_dir),
        )
        if len(table)
        else "",
        "",
        *(beyond_lines(table, later_csv) if len(table) else []),
        "## Generated rows: is it the data or the models?",
        "",
        *(data_shift_lines(params, table) or ["(no generated row run yet)"]),
        "",
        "## Against the paper's 95% intervals",
        "",
        interval_summary(table) + "." if len(table) else "(no row run yet)",
        "",
        "## Validation and test",
        "",
        "Each cell's validation error (2,000 images, 200 on rect: what chose the column's candidate and, for the "
        "networks, its early-stopping epoch) beside its test error (50,000 images). The deep columns choose among more "
        "candidates and epochs on the same validation images than the SVMs do, so validation flatters them more. "
        "`—`: a row reported before this column was recorded.",
        "",
        markdown_table(["dataset", *dict.fromkeys(table["model"])], validation_rows(table)) if len(table) else "",
        "",
        "## Stage time",
        "",
        "The wall time of each row's stages, one thread per stage (`python -m pipeline.repro -j 2` on a 2-core "
        "machine), as each row's report lists them; `+`: some stage's time was not measured on that machine.",
        "",
        markdown_table(["row", "stages", "hours"], rows) if (rows := time_rows(datasets)) else "(no row run yet)",
        "",
        "## Later results on the same benchmarks (context)",
        "",
        "Test error %: Vincent et al. JMLR 2010 (SDAE-3) and Rifai et al. ICML 2011 (CAE-2), as listed in "
        "`../shared/reference/DATASETS.md` section 4 ([S] quoted by third parties, [U] unverified).",
        "",
        markdown_table(["dataset", "our SdA-3", "SDAE-3 (JMLR 2010)", "CAE-2 (2011)"], later_rows(table, later_csv))
        if len(table)
        else "",
        "## The datasets",
        "",
        "Each row's own report (selection, McNemar's tests, probes, figures, stage times): `reports/vincent/<dataset>.md`.",
        "",
    ]
    for d in datasets:
        status = "" if d not in pending else " (pending)"
        lines += [
            f"### {d}{status}",
            "",
            f"{DESCRIPTIONS.get(d, d)}. Source: {dataset_origin(params, d)}. Report: [vincent/{d}.md](vincent/{d}.md).",
            "",
            f"![{d}]({examples[d]})",
            "",
        ]
    lines += ["## Filters (Figure 3 of the paper)", "", "![filters](figures/vincent_filters.png)", ""]
    return "\n".join(lines)
