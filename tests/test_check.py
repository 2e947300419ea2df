"""The CI gate: it fails on a doctored report and passes on the committed one; stale stages are named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.check import against_paper, against_reference, cells_not_run, read_report, stale_stages, with_published
from pipeline.params import load_params, parse_params
from pipeline.reporting.tables import beyond_interval

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports/vincent2008.csv"


def gate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.check", *args], cwd=ROOT, capture_output=True, text=True)


def test_committed_full_run_report_passes_the_gate() -> None:
    check = load_params(ROOT / "params.yaml").check
    paper = {"SVM_rbf", "SVM_poly", "DBN-1", "SAA-3", "DBN-3", "SdA-3"}
    assert paper <= set(check.allowed_excess_pct) and set(check.allowed_excess_pct) - paper <= {
        "CAE-2",
        "SDAE-3 (s&p, emphasis)",
    }
    table = read_report(REPORT)
    assert table["error_pct"].notna().all()
    assert against_paper(with_published(table), check.allowed_excess_pct, check.row_allowed_excess_pct) == []
    result = gate()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: all {len(table)} results" in result.stdout
    cells = read_report(REPORT, optional=("paper_ci95_pct",)).dropna(subset=["paper_error_pct"])  # the paper's
    n = len(cells) - len(beyond_interval(cells))
    assert f"{n} of {len(cells)} cells within the paper's 95% interval or better" in result.stdout


def test_gate_fails_on_a_doctored_report_with_a_table_of_breaches(tmp_path: Path) -> None:
    table = read_report(REPORT)
    doctored = table.copy()
    row = doctored["dataset"] == doctored["dataset"].iloc[0]
    sda = row & (doctored["model"] == "SdA-3")
    doctored.loc[sda, "error_pct"] = doctored.loc[sda, "paper_error_pct"] + 1.5
    doctored.loc[row & (doctored["model"] == "DBN-1"), "error_pct"] = float("nan")
    path = tmp_path / "doctored.csv"
    doctored.to_csv(path, index=False)
    result = gate("--report", str(path))
    assert result.returncode == 1
    assert f"FAIL: 2 of {len(table)} results" in result.stdout
    dataset = doctored["dataset"].iloc[0]
    lines = {
        line.split("|")[2].strip(): line for line in result.stdout.splitlines() if line.startswith(f"| {dataset} ")
    }
    assert set(lines) == {"SdA-3", "DBN-1"}
    check = load_params(ROOT / "params.yaml").check
    allowed = check.row_allowed_excess_pct.get(dataset, {}).get("SdA-3", check.allowed_excess_pct["SdA-3"])
    assert f"+{1.5 - allowed:.2f}" in lines["SdA-3"]


def test_the_gate_counts_the_cells_beyond_the_paper_s_interval() -> None:
    table = pd.DataFrame(
        {
            "dataset": ["rect"] * 4,
            "model": ["A", "B", "C", "D"],
            "error_pct": [2.0, 2.5, 2.7, float("nan")],
            "paper_error_pct": [2.0] * 4,
            "paper_ci95_pct": [0.6] * 4,
        }
    )
    beyond = beyond_interval(table)
    assert list(beyond["model"]) == ["C", "D"] and beyond["excess"].iloc[0] == pytest.approx(0.1)


def test_reference_comparison_is_two_sided() -> None:
    reference = pd.DataFrame({"dataset": ["basic"] * 2, "model": ["A", "B"], "error_pct": [10.0, 10.0]})
    ours = pd.DataFrame({"dataset": ["basic"] * 2, "model": ["A", "B"], "error_pct": [7.0, 11.0]})
    breaches = against_reference(ours, reference, tolerance=2.0)
    assert [(b.model, round(b.excess, 6)) for b in breaches] == [("A", 1.0)]


def test_bad_input_to_the_gate_is_a_clear_error(tmp_path: Path) -> None:
    result = gate("--report", str(tmp_path / "none.csv"))
    assert result.returncode == 2 and "none.csv: report not found" in result.stderr


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {
                "prepare": [
                    {"changed deps": {"data/raw": "deleted"}},
                    {"changed outs": {"data/prepared/basic": "not in cache"}},
                ]
            },
            {},
        ),
        (
            {"report": [{"changed deps": {"pipeline/report.py": "modified"}}]},
            {"report": ["pipeline/report.py modified"]},
        ),
        (
            {"pretrain@saa3": [{"changed deps": {"params.yaml": {"vincent.pretrain": "modified"}}}]},
            {"pretrain@saa3": ["param vincent.pretrain modified"]},
        ),
        ({"filters": [{"changed command": True}]}, {"filters": ["command changed"]}),
        (
            {"table": [{"changed outs": {"reports/vincent2008.csv": "modified", "reports/vincent2008.md": "deleted"}}]},
            {"table": ["output reports/vincent2008.csv modified since dvc.lock recorded it"]},
        ),
        ({"report@basic": [{"changed outs": {"reports/vincent/basic.md": "deleted"}}]}, {}),
    ],
)
def test_stale_stages_ignore_missing_data_and_name_changed_code_and_params(status: dict, expected: dict) -> None:
    assert stale_stages(status) == expected


def test_a_row_may_have_its_own_allowance_and_rows_not_run_are_named() -> None:
    table = pd.DataFrame(
        {
            "dataset": ["basic", "rect"],
            "model": ["SdA-3", "SdA-3"],
            "error_pct": [3.0, 3.0],
            "paper_error_pct": [2.8, 2.0],
        }
    )
    breaches = against_paper(table, {"SdA-3": 0.5})
    assert [(b.dataset, round(b.excess, 2)) for b in breaches] == [("rect", 0.5)]
    assert against_paper(table, {"SdA-3": 0.5}, {"rect": {"SdA-3": 1.0}}) == []
    result = gate()
    done = set(read_report(REPORT)["dataset"])
    pending = [d for d in load_params(ROOT / "params.yaml").vincent.datasets if d not in done]
    assert (f"not in {REPORT.relative_to(ROOT)} yet (not gated): {', '.join(pending)}" in result.stdout) == bool(
        pending
    )


def test_a_column_a_row_does_not_run_is_not_gated(tmp_path: Path) -> None:
    """rect runs saa and sda only (vincent.rows.rect.stacks): its DBN cells are empty by design, not missing."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["vincent"]["rows"]["rect"]["stacks"] = {"saa": {}, "sda": {}, "cae2": {}, "sdae_sp": {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    table = read_report(REPORT)
    dbn = (table["dataset"] == "rect") & table["model"].isin(["DBN-1", "DBN-3"])
    table.loc[dbn, ["error_pct", "ci95_pct", "delta_pct"]] = float("nan")
    table.to_csv(tmp_path / "table.csv", index=False)
    ours = load_params(tmp_path / "params.yaml")
    not_run = cells_not_run(ours, table)
    assert not_run == [("rect", "DBN-1"), ("rect", "DBN-3")]
    allowed = (ours.check.allowed_excess_pct, ours.check.row_allowed_excess_pct)
    assert [(b.dataset, b.model) for b in against_paper(table, *allowed)] == not_run
    assert against_paper(table, *allowed, not_run=not_run) == []
    result = gate("--params", str(tmp_path / "params.yaml"), "--report", str(tmp_path / "table.csv"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "their row does not run (vincent.rows.<row>.stacks; not gated): rect DBN-1, rect DBN-3" in result.stdout
    assert f"OK: all {len(table) - 2} results" in result.stdout
    assert "rect DBN-1 missing" not in result.stdout, "nor counted against the paper's intervals"
    result = gate("--report", str(tmp_path / "table.csv"))  # where rect runs every stack, they are missing results
    assert result.returncode == 1 and f"FAIL: 2 of {len(table)} results" in result.stdout


def test_a_column_only_some_rows_have_is_not_run_on_the_others() -> None:
    table = pd.DataFrame({"dataset": ["rect", "rect", "basic"], "model": ["SdA-3", "CAE-2", "SVM_rbf"]})
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    del raw["vincent"]["rows"]["rect"]["stacks"]["cae2"]
    assert cells_not_run(parse_params(raw), table) == [("rect", "CAE-2")], "no stack of rect's has a CAE-2 model"
    raw["vincent"]["rows"]["rect"]["stacks"]["cae2"] = {}
    assert cells_not_run(parse_params(raw), table) == []
    raw["vincent"]["rows"]["basic"]["stacks"].pop("cae2", None)
    assert cells_not_run(parse_params(raw), table.assign(dataset="basic")) == [("basic", "CAE-2")]


def test_a_column_beyond_the_paper_is_gated_against_its_published_value_where_its_row_has_one(tmp_path) -> None:
    from pipeline.check import against_paper, with_published

    later = tmp_path / "later.csv"
    later.write_text('dataset,method,test_error_pct,label\nbasic,CAE-2,2.48,S\nrot,"SDAE-3 (s&p, emphasis)",8.76,\n')
    table = pd.DataFrame(
        {
            "dataset": ["basic", "basic", "rect"],
            "model": ["SdA-3", "CAE-2", "CAE-2"],
            "error_pct": [2.9, 3.1, 9.0],
            "paper_error_pct": [2.80, float("nan"), float("nan")],
        }
    )
    gated = with_published(table, later)
    assert list(gated["paper_error_pct"][:2]) == [2.80, 2.48] and pd.isna(gated["paper_error_pct"][2])
    (breach,) = against_paper(gated, {"SdA-3": 0.5, "CAE-2": 0.5})
    assert (breach.dataset, breach.model, round(breach.excess, 2)) == ("basic", "CAE-2", 0.12)


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """`python -m pipeline.check | head -1`: the gate's output goes nowhere once the reader has closed the pipe."""
    gate = subprocess.Popen(
        [sys.executable, "-m", "pipeline.check"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    gate.stdout.close()  # before the gate has printed anything (it is still importing)
    _, err = gate.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
