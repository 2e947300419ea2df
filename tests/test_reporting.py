import math

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.common.figures import save_figure
from pipeline.reporting.figures import (
    corrupted_and_reconstructed,
    filter_grid,
    ours_vs_paper,
    probe_plot,
    tile_filters,
    training_curves,
)
from pipeline.reporting.tables import (
    PAPER_MODELS,
    TABLE_COLUMNS,
    bold_mask,
    probe_markdown,
    vincent_markdown,
    vincent_table,
    write_csv_atomic,
)

# The paper's rows for two datasets (Vincent et al. 2008, Table 1).
PAPER_ROWS = """dataset,model,test_error_pct,ci95_pct,noise_pct
basic,SVM_rbf,3.03,0.15,
basic,SVM_poly,3.69,0.17,
basic,DBN-1,3.94,0.17,
basic,SAA-3,3.46,0.16,
basic,DBN-3,3.11,0.15,
basic,SdA-3,2.80,0.14,10
rot,SVM_rbf,11.11,0.28,
rot,SVM_poly,15.42,0.32,
rot,DBN-1,14.69,0.31,
rot,SAA-3,10.30,0.27,
rot,DBN-3,10.30,0.27,
rot,SdA-3,10.29,0.27,10
"""


@pytest.fixture
def paper_csv(tmp_path):
    path = tmp_path / "paper.csv"
    path.write_text(PAPER_ROWS)
    return path


def record(model: str, test_error: float, dataset: str = "basic", n_test: int = 50_000) -> dict:
    return {
        "dataset": dataset,
        "model": model,
        "test_error": test_error,
        "n_test": n_test,
        "valid_error": test_error,
        "noise_pct": None,
        "selected": {},
    }


# On basic: SdA-3 2.71 ±0.14 is best (upper end 2.85); SVM_rbf 2.95 ±0.15 overlaps it (lower end 2.80);
# DBN-3 3.01 ±0.15 does not (lower end 2.86).
RESULTS = [record("SdA-3", 0.0271), record("DBN-3", 0.0301), record("SVM_rbf", 0.0295)]


def test_vincent_table_columns_order_and_deltas(paper_csv):
    table = vincent_table(RESULTS, paper_csv)
    assert list(table.columns) == TABLE_COLUMNS
    assert list(table["model"]) == ["SVM_rbf", "SVM_poly", "DBN-1", "SAA-3", "DBN-3", "SdA-3"]
    assert set(table["dataset"]) == {"basic"}  # rot has no result: not in the table
    sda = table.set_index("model").loc["SdA-3"]
    assert sda["error_pct"] == 2.71 and sda["ci95_pct"] == 0.14
    assert sda["paper_error_pct"] == 2.80 and sda["paper_ci95_pct"] == 0.14
    assert sda["delta_pct"] == pytest.approx(-0.09)
    rbf = table.set_index("model").loc["SVM_rbf"]
    assert rbf["delta_pct"] == pytest.approx(-0.08) and rbf["ci95_pct"] == 0.15
    assert table.set_index("model").loc["SVM_poly"][["error_pct", "ci95_pct", "delta_pct"]].isna().all()
    assert sda["valid_error_pct"] == 2.71, "the selection's validation error beside the test error"


def test_the_whole_table_counts_the_cells_beyond_the_papers_interval_and_shows_valid_beside_test(paper_csv):
    from pipeline.reporting.tables import interval_summary
    from pipeline.reporting.vincent_table import validation_rows

    # basic's paper: SdA-3 2.80 ±0.14, DBN-3 3.11 ±0.15, SVM_rbf 3.03 ±0.15
    results = [record("SdA-3", 0.0300), record("DBN-3", 0.0301), record("SVM_rbf", 0.0295)]
    results[0]["valid_error"] = 0.0250
    table = vincent_table(results, paper_csv)
    line = interval_summary(table)
    assert line.startswith("2 of 6 cells within") and "basic SdA-3 +0.06" in line
    assert "basic SVM_poly missing" in line, "a cell without a result is not within the interval (as in the gate)"
    rows = validation_rows(table)
    assert rows[0][0] == "basic" and "2.50 → 3.00" in rows[0] and rows[0][2] == "—", "SVM_poly has no result"
    assert rows[-1][rows[0].index("2.50 → 3.00")] == "+0.50", "the mean test - valid gap per column"


def test_vincent_table_ci_uses_n_test_and_extra_models_go_last(paper_csv):
    results = [record("SdA-3", 0.10, "rot", n_test=1000), record("SdA-3-gauss", 0.09, "rot")]
    table = vincent_table(results, paper_csv)
    assert list(table["model"])[-1] == "SdA-3-gauss"
    assert table["model"].iloc[0] == "SVM_rbf"
    row = table.set_index("model").loc["SdA-3"]
    assert row["ci95_pct"] == round(100 * 1.96 * math.sqrt(0.1 * 0.9 / 1000), 2) == 1.86
    extra = table.set_index("model").loc["SdA-3-gauss"]
    assert np.isnan(extra["paper_error_pct"]) and np.isnan(extra["delta_pct"])


def test_vincent_table_rejects_duplicates(paper_csv):
    with pytest.raises(ValueError):
        vincent_table([record("SdA-3", 0.03), record("SdA-3", 0.04)], paper_csv)


def test_bold_mask_overlap_rule():
    assert bold_mask([2.0, 2.15, 2.3], [0.1, 0.1, 0.1]) == [True, True, False]
    assert bold_mask([3.0, 2.0], [0.5, 0.5]) == [True, True]  # 2.5 <= 2.5: touching counts
    assert bold_mask([float("nan"), 5.0, 1.0], [0.1, 0.1, 0.1]) == [False, False, True]
    assert bold_mask([float("nan")], [float("nan")]) == [False]


def test_vincent_markdown_cells_and_bold(paper_csv):
    md = vincent_markdown(vincent_table(RESULTS, paper_csv))
    ours, paper = md.split("Paper (Vincent")
    header = next(line for line in ours.splitlines() if line.startswith("| dataset"))
    assert header == "| dataset | SVM_rbf | SVM_poly | DBN-1 | SAA-3 | DBN-3 | SdA-3 |"
    row = next(line for line in ours.splitlines() if line.startswith("| basic"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "basic"
    assert cells[6] == "**2.71 ±0.14** (paper 2.80 ±0.14, −0.09)"
    assert cells[1] == "**2.95 ±0.15** (paper 3.03 ±0.15, −0.08)"
    assert cells[5] == "3.01 ±0.15 (paper 3.11 ±0.15, −0.10)"
    assert cells[2] == cells[3] == cells[4] == "—"
    # The paper's own numbers: SdA-3 2.80 ±0.14 best; SVM_rbf 3.03 ±0.15 overlaps, DBN-3 3.11 ±0.15 not.
    prow = next(line for line in paper.splitlines() if line.startswith("| basic"))
    pcells = [c.strip() for c in prow.strip("|").split("|")]
    assert pcells[1:] == [
        "**3.03 ±0.15**",
        "3.69 ±0.17",
        "3.94 ±0.17",
        "3.46 ±0.16",
        "3.11 ±0.15",
        "**2.80 ±0.14**",
    ]


def test_vincent_markdown_positive_delta_and_two_datasets(paper_csv):
    results = [record("SdA-3", 0.0300), record("DBN-1", 0.1500, "rot")]
    md = vincent_markdown(vincent_table(results, paper_csv), include_paper=False)
    assert "Paper (Vincent" not in md
    assert "**3.00 ±0.15** (paper 2.80 ±0.14, +0.20)" in md
    rows = [line for line in md.splitlines() if line.startswith(("| basic", "| rot"))]
    assert [r.split("|")[1].strip() for r in rows] == ["basic", "rot"]
    assert "**15.00 ±0.31** (paper 14.69 ±0.31, +0.31)" in rows[1]


PROBES = [
    {
        "model": "SdA-3",
        "layer": 1,
        "probe": "logreg",
        "valid_error": 0.05,
        "test_error": 0.04,
        "n_test": 50_000,
    },
    {"model": "SdA-3", "layer": 1, "probe": "svm", "valid_error": 0.04, "test_error": 0.03, "n_test": 50_000},
    {
        "model": "SdA-3",
        "layer": 2,
        "probe": "logreg",
        "valid_error": 0.06,
        "test_error": 0.05,
        "n_test": 50_000,
    },
    {
        "model": "SAA-3",
        "layer": 1,
        "probe": "svm",
        "valid_error": 0.05,
        "test_error": 0.035,
        "n_test": 50_000,
    },
]


def test_probe_markdown_rows_and_missing_cells():
    md = probe_markdown(PROBES)
    lines = md.strip().splitlines()
    assert lines[0] == "| model | layer | logistic regression test error % | SVM (rbf) test error % |"
    assert lines[2:] == [
        "| SdA-3 | 1 | 4.00 ±0.17 | 3.00 ±0.15 |",
        "| SdA-3 | 2 | 5.00 ±0.19 | — |",
        "| SAA-3 | 1 | — | 3.50 ±0.16 |",
    ]


def test_write_csv_atomic_roundtrip(tmp_path, paper_csv):
    table = vincent_table(RESULTS, paper_csv)
    path = tmp_path / "out" / "table1.csv"
    write_csv_atomic(table, path)
    back = pd.read_csv(path)
    assert list(back.columns) == TABLE_COLUMNS
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert [p.name for p in path.parent.iterdir()] == ["table1.csv"]


def test_tile_filters_layout_and_scaling():
    w = torch.randn(100, 784) * 5
    tiles = tile_filters(w)
    assert tiles.shape == (10 * 29 + 1, 10 * 29 + 1)
    assert tiles.min() == 0.0 and tiles.max() == 1.0
    first = tiles[1:29, 1:29]
    assert first.min() == 0.0 and first.max() == 1.0
    np.testing.assert_allclose(
        first.ravel(), (w[0] - w[0].min()).numpy() / (w[0].max() - w[0].min()).item(), rtol=1e-5, atol=1e-6
    )
    assert tile_filters(np.ones((7, 784))).shape == (3 * 29 + 1, 3 * 29 + 1)  # constant filters: no NaN


def _png(fig, path) -> bytes:
    save_figure(fig, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def test_figures_render_to_png(tmp_path, paper_csv):
    rng = np.random.default_rng(0)
    table = vincent_table(RESULTS + [record("SdA-3", 0.10, "rot")], paper_csv)
    fig = ours_vs_paper(table)
    assert len(fig.axes) == 2
    _png(fig, tmp_path / "bars.png")

    fig = filter_grid([rng.normal(size=(100, 784)) for _ in range(3)], ["0%", "25%", "50%"])
    assert [ax.get_title() for ax in fig.axes] == ["0%", "25%", "50%"]
    _png(fig, tmp_path / "filters.png")

    clean = rng.random((10, 784))
    _png(
        corrupted_and_reconstructed(clean, clean * (rng.random((10, 784)) > 0.25), torch.tensor(clean)),
        tmp_path / "recon.png",
    )

    histories = {
        "SdA-3": {"train_loss": [3.0, 2.0, 1.5], "valid_error": [0.1, 0.05]},
        "SAA-3": {"train_loss": [3.2, 2.5]},
    }
    fig = training_curves(histories)
    assert [ax.get_xlabel() for ax in fig.axes] == ["epoch", "epoch"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["train loss", "valid error"]
    assert [len(ax.get_lines()) for ax in fig.axes] == [2, 1]
    _png(fig, tmp_path / "curves.png")

    fig = probe_plot(PROBES)
    assert [ax.get_title() for ax in fig.axes] == [
        "logistic regression on frozen features",
        "SVM (rbf) on frozen features",
    ]
    _png(fig, tmp_path / "probes.png")


def test_the_whole_table_lists_pending_rows_marks_substitutes_and_counts_sdA_wins(tmp_path, paper_csv) -> None:
    from pipeline.params import parse_params
    from pipeline.reporting.claim import best_or_tied, paper_best_or_tied
    from pipeline.reporting.vincent_table import read_rows, table_markdown

    basic = vincent_table([record(m, e) for m, e in (("SVM_rbf", 0.030), ("SdA-3", 0.026))], paper_csv)
    rot = vincent_table([record(m, e, "rot") for m, e in (("SVM_rbf", 0.12), ("SdA-3", 0.14))], paper_csv)
    rows = {"basic": tmp_path / "basic.csv", "rot": tmp_path / "rot.csv", "rect": tmp_path / "rect.csv"}
    write_csv_atomic(basic, rows["basic"])
    write_csv_atomic(rot, rows["rot"])
    table, pending = read_rows(rows)
    assert pending == ["rect"] and list(table["dataset"].unique()) == ["basic", "rot"]
    assert best_or_tied(table) == {"basic": True, "rot": False}
    assert paper_best_or_tied(table) == {"basic": True, "rot": True}  # rot: 10.29 ties 10.30
    later = tmp_path / "later.csv"
    later.write_text("dataset,method,test_error_pct,label\nbasic,SDAE-3,2.84,\nrot,CAE-2,9.66,U\n")
    params = parse_params(
        {
            "vincent": {"datasets": ["basic", "rot", "rect"]},
            "benchmarks": {"datasets": {"rot": {"source": "generated"}, "rect": {}}},
        }
    )
    examples = {d: f"figures/datasets/{d}.png" for d in params.vincent.datasets}
    md = table_markdown(params, table, pending, later, examples, "abc")
    assert "4 of 18 cells filled; rows pending: rect." in md
    assert "| rot † |" in md and "| basic |" in md, "generated rows are marked as substitutes"
    assert "SdA-3 is bold on 1 of 2 rows run (rot not)" in md
    assert "| rot | 14.00 | — | 9.66 [U] |" in md
    assert "`rot`: SVM_rbf 12.00% vs the paper's 11.11 (+0.89)" in md
    assert "### rect (pending)" in md
    calibrated = {"source": "generated", "recipe": {"x": 1}, "calibration": "reports/calibration/rot.md"}
    params = parse_params(
        {"vincent": {"datasets": ["basic", "rot", "rect"]}, "benchmarks": {"datasets": {"rot": calibrated, "rect": {}}}}
    )
    md = table_markdown(params, table, pending, later, examples, "abc")
    assert "| rot ‡ |" in md and "‡ generated and calibrated" in md
    assert "a CALIBRATED substitute" in md and "reports/calibration/rot.md" in md


def test_a_column_one_row_has_and_another_does_not_run_is_a_dash_there(tmp_path, paper_csv) -> None:
    """A new column added to one row first (its stack in vincent.rows.basic.stacks only): the other rows show `—`."""
    from pipeline.params import parse_params
    from pipeline.reporting.vincent_table import read_rows, table_markdown

    basic = [record(m, e) for m, e in (("SVM_rbf", 0.030), ("SdA-3", 0.026), ("CAE-2", 0.024))]
    rot = [record(m, e, "rot") for m, e in (("SVM_rbf", 0.12), ("SdA-3", 0.14))]
    rows = {"basic": tmp_path / "basic.csv", "rot": tmp_path / "rot.csv"}
    write_csv_atomic(vincent_table(basic, paper_csv), rows["basic"])
    write_csv_atomic(vincent_table(rot, paper_csv), rows["rot"])
    table, pending = read_rows(rows)
    assert list(table[table["dataset"] == "rot"]["model"]) == list(PAPER_MODELS), "rot's CSV: no CAE-2 cell"
    later = tmp_path / "later.csv"
    later.write_text("dataset,method,test_error_pct,label\n")
    params = parse_params(
        {"vincent": {"datasets": ["basic", "rot"]}, "benchmarks": {"datasets": {"rot": {"source": "generated"}}}}
    )
    md = table_markdown(params, table, pending, later, {d: f"{d}.png" for d in rows}, "abc")
    assert "4 of 12 cells filled (and 1 of columns the paper has not: CAE-2)." in md
    header = next(line for line in md.splitlines() if line.startswith("| dataset | SVM_rbf"))
    assert header.endswith("| SdA-3 | CAE-2 |"), "the paper's columns, then the new one"
    rot_row = next(line for line in md.splitlines() if line.startswith("| rot † | **12.00"))
    assert rot_row.endswith("| — |"), "rot does not run the new column: a dash"
    basic_row = next(line for line in md.splitlines() if line.startswith("| basic | 3.00"))
    assert "**2.40 ±" in basic_row.split("|")[-2], "basic's new cell is its best"


def test_the_whole_table_with_no_row_run_yet_lists_every_row_as_pending(tmp_path) -> None:
    from pipeline.params import parse_params
    from pipeline.reporting.vincent_table import read_rows, table_markdown

    rows = {"basic": tmp_path / "basic.csv", "rect": tmp_path / "rect.csv"}
    table, pending = read_rows(rows)
    assert pending == ["basic", "rect"] and list(table.columns) == TABLE_COLUMNS and table.empty
    later = tmp_path / "later.csv"
    later.write_text("dataset,method,test_error_pct,label\nbasic,SDAE-3,2.84,\n")
    params = parse_params({"vincent": {"datasets": ["basic", "rect"]}, "benchmarks": {"datasets": {"rect": {}}}})
    examples = {d: f"figures/datasets/{d}.png" for d in params.vincent.datasets}
    md = table_markdown(params, table, pending, later, examples, "abc")
    assert "0 of 12 cells filled; rows pending: basic, rect." in md


def test_the_row_note_names_what_a_row_changes():
    from pipeline.params.finetune import FinetuneParams
    from pipeline.reporting.vincent import row_note

    base = FinetuneParams(lr=[0.1], batch_size=32)
    assert row_note(base, base) == ""
    assert (
        row_note(base, base.model_copy(update={"batch_size": 8})) == " (batch_size 8: this row's own, `vincent.rows`)"
    )


def test_the_claim_per_row_against_the_best_other_column_on_the_test_set_and_over_seeds(tmp_path, paper_csv) -> None:
    from pipeline.reporting.claim import claim_rows
    from pipeline.reporting.vincent import with_mcnemar

    n = 1000
    results = [
        {"dataset": "basic", "model": m, "test_error": len(w) / n, "n_test": n, "test_wrong": w}
        for m, w in (("SdA-3", list(range(30))), ("DBN-3", list(range(10, 60))), ("SVM_rbf", list(range(70))))
    ]
    table = with_mcnemar(vincent_table(results, paper_csv), results)
    dbn = table.set_index("model").loc["DBN-3"]
    assert (dbn["mcnemar_b"], dbn["mcnemar_c"]) == (10, 30) and dbn["mcnemar_p"] < 0.01  # 0-9 vs 30-59
    assert pd.isna(table.set_index("model").loc["SdA-3", "mcnemar_p"])
    (tmp_path / "basic.csv").write_text(
        "model,entry,seed,test_error_pct\nSdA-3,sda3,7,3.0\nSdA-3,sda3,1,3.4\nSdA-3,sda3,2,3.2\n"
        "DBN-3,dbn3,7,4.0\nDBN-3,dbn3,1,3.1\nDBN-3,dbn3,2,3.3\n"
    )
    (row,) = claim_rows(table, tmp_path)
    assert row[:4] == ["basic", "3.00", "DBN-3", "5.00"] and row[4].startswith("b 10 / c 30, p 0.00")
    assert row[6:] == ["3.20 ± 0.20 (3)", "3.10–4.00 (3)", "yes"]
    (tmp_path / "basic.csv").write_text(
        "model,entry,seed,test_error_pct\nSdA-3,sda3,7,3.0\nSdA-3,sda3,1,5.4\nDBN-3,dbn3,7,4.0\nDBN-3,dbn3,1,3.5\n"
    )
    assert claim_rows(table, tmp_path)[0][-1] == "no", "SdA-3's mean (4.2) above every DBN-3 seed (3.5-4.0)"


def test_the_table_sums_each_rows_stage_time_and_marks_a_row_with_an_unmeasured_stage(tmp_path) -> None:
    import json

    from pipeline.reporting.vincent_table import time_rows

    (tmp_path / "basic.json").write_text(json.dumps({"stage_seconds": {"a": 3600.0, "b": 1800.0}}))
    (tmp_path / "rect.json").write_text(json.dumps({"stage_seconds": {"a": 360.0, "b": None}}))
    assert time_rows(["basic", "rot", "rect"], tmp_path) == [
        ["basic", "2", "1.50"],
        ["rect", "2", "0.10 +"],
        ["**all rows**", "", "**1.60** +"],
    ]


def test_a_column_beyond_the_paper_is_set_against_sda_apart_from_the_papers_claim(tmp_path, paper_csv) -> None:
    """CAE-2 better than SdA-3 on the test set: the paper's claim (its six columns) still has SdA-3 bold, and the
    section beyond the paper says CAE-2 beats it here, beside its published value."""
    from pipeline.reporting.claim import best_or_tied, beyond_rows, claim_rows
    from pipeline.reporting.vincent import with_mcnemar

    n = 1000
    results = [
        {"dataset": "basic", "model": m, "test_error": len(w) / n, "n_test": n, "test_wrong": w}
        for m, w in (("SdA-3", list(range(30))), ("DBN-3", list(range(10, 60))), ("CAE-2", list(range(5))))
    ]
    table = with_mcnemar(vincent_table(results, paper_csv), results)
    assert best_or_tied(table) == {"basic": True}, "CAE-2 is not one of the claim's columns"
    assert claim_rows(table, tmp_path)[0][2] == "DBN-3"
    (row,) = beyond_rows(table, {("basic", "CAE-2"): (2.48, "S")})
    assert row[:5] == ["basic", "CAE-2", "0.50", "2.48 [S]", "3.00"] and row[5].startswith("b 25 / c 0")
    assert row[6:] == ["yes", "yes"], "beats our SdA-3 (p < 0.05); 2.48 beat the paper's SdA-3 (2.80)"
    assert beyond_rows(table, {})[0][3] == "—" and beyond_rows(table, {})[0][7] == "—"
    paper_only = table[table["model"] != "CAE-2"]
    assert beyond_rows(paper_only, {}) == []
