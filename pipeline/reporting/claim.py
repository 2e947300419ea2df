"""The paper's claim, row by row: is SdA-3 best or tied (the bold rule), and does it hold on the test set
(McNemar) and over seeds (`python -m pipeline.seeds --models claim`)? The claim is about the paper's six columns;
columns beyond them (later methods, `beyond_rows`) are set against SdA-3 apart."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from pipeline.reporting.tables import PAPER_MODELS, bold_mask, read_report


def paper_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The cells of the paper's six columns (the claim's): a later method's column is not one of them."""
    return table[table["model"].isin(PAPER_MODELS)]


def best_or_tied(table: pd.DataFrame, model: str = "SdA-3") -> dict[str, bool]:
    """Per dataset: is `model` bold among the paper's columns (the row's best, or its 95% interval overlaps the
    best's)?"""
    out = {}
    for dataset, group in paper_columns(table).dropna(subset=["error_pct"]).groupby("dataset", sort=False):
        if model in set(group["model"]):
            bold = bold_mask(list(group["error_pct"]), list(group["ci95_pct"]))
            out[str(dataset)] = dict(zip(group["model"], bold, strict=True))[model]
    return out


def paper_best_or_tied(table: pd.DataFrame, model: str = "SdA-3") -> dict[str, bool]:
    renamed = table.drop(columns=["error_pct", "ci95_pct"]).rename(
        columns={"paper_error_pct": "error_pct", "paper_ci95_pct": "ci95_pct"}
    )
    return best_or_tied(renamed, model)


def mcnemar_p(group: pd.DataFrame, cell: pd.Series) -> float:
    """The cell's McNemar p against SdA-3 (the row's CSV), NaN where the row has none (SdA-3 itself, older rows)."""
    return cell["mcnemar_p"] if "mcnemar_p" in group and pd.notna(cell["mcnemar_p"]) else float("nan")


def mcnemar_text(group: pd.DataFrame, cell: pd.Series) -> str:
    """`b <only SdA-3 wrong> / c <only the other wrong>, p <p>`, or — without a test."""
    p = mcnemar_p(group, cell)
    return "—" if pd.isna(p) else f"b {int(cell['mcnemar_b'])} / c {int(cell['mcnemar_c'])}, p {p:.2g}"


def claim_rows(table: pd.DataFrame, seeds_dir: str | os.PathLike) -> list[list[str]]:
    """Per row: SdA-3 against the row's best other column, on the test set (McNemar) and over seeds.

    The seeds are `python -m pipeline.seeds --models claim` (reports/seeds/<dataset>.csv): SdA-3 and the best
    other trained column retrained with other seeds. They agree with the claim when SdA-3's mean is within the
    other column's seed range or better (an SVM has no seed: its one value is its range)."""
    rows = []
    bold = best_or_tied(table)
    for dataset, group in paper_columns(table).dropna(subset=["error_pct"]).groupby("dataset", sort=False):
        group = group.set_index("model")
        if "SdA-3" not in group.index:
            continue
        other = group.drop(index="SdA-3")["error_pct"].idxmin()
        cell = group.loc[other]
        test = mcnemar_text(group, cell)
        seeds_csv = Path(seeds_dir) / f"{dataset}.csv"
        ours, theirs, verdict = "not run", "not run", "—"
        if seeds_csv.is_file():
            runs = read_report(seeds_csv, ("test_error_pct",), keys=("model",))
            sda = runs[runs["model"] == "SdA-3"]["test_error_pct"]
            rival = runs[runs["model"] == other]["test_error_pct"]
            if other.startswith("SVM"):
                rival = pd.Series([cell["error_pct"]])
            if len(sda) > 1:
                ours = f"{sda.mean():.2f} ± {sda.std(ddof=1):.2f} ({len(sda)})"
            if len(rival):
                theirs = (
                    f"{rival.min():.2f}–{rival.max():.2f} ({len(rival)})" if len(rival) > 1 else f"{rival.iloc[0]:.2f}"
                )
            if len(sda) > 1 and len(rival):
                verdict = "yes" if sda.mean() <= rival.max() else "no"
        rows.append(
            [
                str(dataset),
                f"{group.loc['SdA-3', 'error_pct']:.2f}",
                str(other),
                f"{cell['error_pct']:.2f}",
                test,
                "yes" if bold.get(str(dataset)) else "no",
                ours,
                theirs,
                verdict,
            ]
        )
    return rows


def beyond_rows(table: pd.DataFrame, published: dict[tuple[str, str], tuple[float, str]]) -> list[list[str]]:
    """Per row and column beyond the paper's six: ours beside its published value, and against our SdA-3 on the same
    test examples (McNemar, from the row's CSV); does it beat SdA-3 here as it beat the paper's SdA-3 in its paper?

    `published`: (dataset, method) -> (test error %, label), reports/reference/later_results.csv. "beats" needs
    McNemar's p below 0.05 and a lower error; p at or above 0.05 is a tie."""
    rows = []
    done = table.dropna(subset=["error_pct"])
    for dataset, group in done.groupby("dataset", sort=False):
        group = group.set_index("model")
        if "SdA-3" not in group.index:
            continue
        sda, paper_sda = group.loc["SdA-3", "error_pct"], group.loc["SdA-3", "paper_error_pct"]
        for model in [m for m in group.index if m not in PAPER_MODELS]:
            cell = group.loc[model]
            value, label = published.get((str(dataset), str(model)), (float("nan"), ""))
            p = mcnemar_p(group, cell)
            test = mcnemar_text(group, cell)
            if pd.isna(p):
                ours = "—"
            elif p >= 0.05:
                ours = "tied"
            else:
                ours = "yes" if cell["error_pct"] < sda else "no (worse)"
            theirs = "—" if pd.isna(value) or pd.isna(paper_sda) else ("yes" if value < paper_sda else "no")
            rows.append(
                [
                    str(dataset),
                    str(model),
                    f"{cell['error_pct']:.2f}",
                    "—" if pd.isna(value) else f"{value:.2f}" + (f" [{label}]" if label else ""),
                    f"{sda:.2f}",
                    test,
                    ours,
                    theirs,
                ]
            )
    return rows
