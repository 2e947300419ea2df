"""Report tables built from metrics records alone (no models, no data).

A result record is a dict like
    {"dataset": "basic", "model": "SdA-3", "test_error": 0.0281, "n_test": 50000,
     "valid_error": 0.03, "noise_pct": 25, "selected": {...}}
Errors in records are fractions; every table shows percentages with 2 decimals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.common.io import atomic_path
from pipeline.core.errors import StageError
from pipeline.evaluation.rates import error_ci95

PAPER_MODELS = ("SVM_rbf", "SVM_poly", "DBN-1", "SAA-3", "DBN-3", "SdA-3")
TABLE_COLUMNS = [
    "dataset",
    "model",
    "error_pct",
    "ci95_pct",
    "paper_error_pct",
    "paper_ci95_pct",
    "delta_pct",
    "valid_error_pct",  # the selection's validation error, beside the test error it chose (the paper gives none)
]
PROBE_NAMES = {"logreg": "logistic regression", "svm": "SVM (rbf)"}
DASH = "—"


class ReportError(StageError, ValueError):
    """A report CSV (the table, a row, a seeds file) that cannot be read: the message names the file, line and column."""


def read_report(
    path: str | os.PathLike,
    columns: tuple[str, ...] = ("error_pct",),
    optional: tuple[str, ...] = (),
    keys: tuple[str, ...] = ("dataset", "model"),
) -> pd.DataFrame:
    """A report CSV with the `keys` columns and the numeric `columns` (an empty cell is NaN: a missing result);
    the numeric `optional` columns are checked the same way where the file has them.

    A column pandas already read as numbers is kept as read (so a table written from it is byte-identical); a column
    with text in it must be numbers or empty, and becomes float. Raises ReportError naming the file, line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: report not found; run `dvc repro report` first")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: not a readable CSV report ({str(exc).splitlines()[0]})") from None
    missing = [c for c in (*keys, *columns) if c not in table.columns]
    if missing:
        raise ReportError(f"{path}: missing columns {sorted(missing)}; expected {', '.join((*keys, *columns))}")
    for column in (*columns, *(c for c in optional if c in table.columns)):
        if pd.api.types.is_numeric_dtype(table[column]) and not pd.api.types.is_bool_dtype(table[column]):
            continue
        numbers = pd.to_numeric(table[column], errors="coerce")
        bad = table[column].notna() & numbers.isna()
        if bad.any():
            i = int(bad.to_numpy().argmax())
            where = ", ".join(str(table[k].iloc[i]) for k in keys)
            expected = "a test error in percent" if "error" in column else "a number"
            raise ReportError(
                f"{path}, line {i + 2} ({where}): {column} {table[column].iloc[i]!r} is not a number; "
                f"expected {expected} (or an empty cell)"
            )
        table[column] = numbers.astype(float)
    return table


def load_paper(paper_csv: str | os.PathLike) -> pd.DataFrame:
    return pd.read_csv(paper_csv)


def ordered(values: list[str], preferred: list[str]) -> list[str]:
    """`values` sorted by their position in `preferred`; unknown ones after, in first-seen order."""
    unique = list(dict.fromkeys(values))
    known = [v for v in preferred if v in unique]
    return known + [v for v in unique if v not in preferred]


def vincent_table(results: list[dict[str, Any]], paper_csv: str | os.PathLike) -> pd.DataFrame:
    """One row per (dataset, model): our test error and 95% interval next to the paper's.

    Covers every dataset that has at least one result, with all of the paper's models for it (ours
    left NaN where we have no result) plus any extra models of ours after them.
    """
    paper = load_paper(paper_csv)
    ours: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        key = (r["dataset"], r["model"])
        if key in ours:
            raise ValueError(f"two results for dataset={key[0]!r} model={key[1]!r}")
        ours[key] = r
    datasets = ordered([d for d, _ in ours], list(dict.fromkeys(paper["dataset"])))
    paper_models = list(dict.fromkeys(paper["model"]))
    paper_by_key = {(row.dataset, row.model): row for row in paper.itertuples()}

    rows = []
    for dataset in datasets:
        models = ordered(
            [m for d, m in paper_by_key if d == dataset] + [m for d, m in ours if d == dataset], paper_models
        )
        for model in models:
            r, p = ours.get((dataset, model)), paper_by_key.get((dataset, model))
            err = round(100 * r["test_error"], 2) if r else np.nan
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "error_pct": err,
                    "ci95_pct": round(100 * error_ci95(r["test_error"], r["n_test"]), 2) if r else np.nan,
                    "paper_error_pct": p.test_error_pct if p is not None else np.nan,
                    "paper_ci95_pct": p.ci95_pct if p is not None else np.nan,
                    # from the rounded numbers, so the table reads consistently
                    "delta_pct": round(err - p.test_error_pct, 2) if r and p is not None else np.nan,
                    "valid_error_pct": round(100 * r["valid_error"], 2) if r and "valid_error" in r else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def beyond_interval(table: pd.DataFrame) -> pd.DataFrame:
    """The cells above the paper's 95% interval (error > paper + its ci95), with `excess` over that upper bound: the
    fidelity count (the gate's allowances are separate). Needs `paper_ci95_pct`; a missing result counts."""
    upper = table["paper_error_pct"] + table["paper_ci95_pct"]
    out = table.assign(excess=table["error_pct"] - upper)
    return out[(out["excess"] > 1e-9) | out["error_pct"].isna()]


def interval_summary(table: pd.DataFrame) -> str:
    """One sentence: how many cells (those the paper has) are within its 95% interval or better, and the others."""
    cells = table.dropna(subset=["paper_error_pct"])
    beyond = beyond_interval(cells)
    named = ", ".join(
        f"{r.dataset} {r.model} " + ("missing" if pd.isna(r.excess) else f"+{r.excess:.2f}")
        for r in beyond.itertuples()
    )
    return f"{len(cells) - len(beyond)} of {len(cells)} cells within the paper's 95% interval or better" + (
        f"; beyond it (points above its upper bound): {named}" if named else ""
    )


def bold_mask(errors: list[float], cis: list[float]) -> list[bool]:
    """The paper's bold rule: the best (lowest) error, and every entry whose 95% interval overlaps it.

    NaN entries are never bold.
    """
    valid = [i for i, e in enumerate(errors) if not np.isnan(e)]
    if not valid:
        return [False] * len(errors)
    best = min(valid, key=lambda i: errors[i])
    upper = errors[best] + cis[best]
    return [i in valid and errors[i] - cis[i] <= upper + 1e-9 for i in range(len(errors))]


def _fmt(err: float, ci: float) -> str:
    return f"{err:.2f} ±{ci:.2f}"


def _signed(x: float) -> str:
    return f"−{abs(x):.2f}" if x < 0 else f"+{x:.2f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _wide(table: pd.DataFrame, err_col: str, ci_col: str, cell) -> str:
    models = ordered(list(table["model"]), list(PAPER_MODELS))
    rows = []
    for dataset, group in table.groupby("dataset", sort=False):
        by_model = {row["model"]: row for _, row in group.iterrows()}
        present = [by_model.get(m) for m in models]
        errors = [np.nan if r is None else float(r[err_col]) for r in present]
        cis = [np.nan if r is None else float(r[ci_col]) for r in present]
        bold = bold_mask(errors, cis)
        cells = [DASH if np.isnan(e) else cell(r, b) for r, e, b in zip(present, errors, bold, strict=True)]
        rows.append([str(dataset), *cells])
    return markdown_table(["dataset", *models], rows)


def _ours_cell(r: pd.Series, bold: bool) -> str:
    text = _fmt(r["error_pct"], r["ci95_pct"])
    text = f"**{text}**" if bold else text
    if not np.isnan(r["paper_error_pct"]):
        text += f" (paper {_fmt(r['paper_error_pct'], r['paper_ci95_pct'])}, {_signed(r['delta_pct'])})"
    return text


def _paper_cell(r: pd.Series, bold: bool) -> str:
    text = _fmt(r["paper_error_pct"], r["paper_ci95_pct"])
    return f"**{text}**" if bold else text


def vincent_markdown(table: pd.DataFrame, include_paper: bool = True) -> str:
    """Vincent 2008 Table 1 layout (rows datasets, columns models) for a `vincent_table` frame.

    Bold: the row's best model and every model whose 95% interval overlaps it, on our numbers.
    With include_paper, a second table shows the paper's own numbers with the same rule.
    """
    out = "Test error % ±95% interval (paper's value, ours − paper). Bold: best of the row and every\n"
    out += "model whose 95% interval overlaps the best one's.\n\n"
    out += _wide(table, "error_pct", "ci95_pct", _ours_cell)
    if include_paper:
        out += "\nPaper (Vincent et al. 2008, Table 1), same bold rule:\n\n"
        out += _wide(table, "paper_error_pct", "paper_ci95_pct", _paper_cell)
    return out


def probe_markdown(probe_records: list[dict[str, Any]]) -> str:
    """One row per (model, layer); test error % ±95% of a logistic-regression and an SVM probe."""
    cells: dict[tuple[str, int], dict[str, str]] = {}
    for r in probe_records:
        err = 100 * r["test_error"]
        ci = 100 * error_ci95(r["test_error"], r["n_test"])
        cells.setdefault((r["model"], int(r["layer"])), {})[r["probe"]] = _fmt(err, ci)
    models = list(dict.fromkeys(m for m, _ in cells))
    keys = sorted(cells, key=lambda k: (models.index(k[0]), k[1]))
    probes = ordered([*PROBE_NAMES, *(p for c in cells.values() for p in c)], list(PROBE_NAMES))
    header = ["model", "layer", *(f"{PROBE_NAMES.get(p, p)} test error %" for p in probes)]
    rows = [[m, str(layer), *(cells[(m, layer)].get(p, DASH) for p in probes)] for m, layer in keys]
    return markdown_table(header, rows)


def write_csv_atomic(df: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
