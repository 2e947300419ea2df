"""The wide search (python -m pipeline.explore) on a tiny synthetic dataset: every candidate is recorded, test errors
only for the best few of each column, after selection, and the summary files are written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import explore
from pipeline.params import ParamsError, load_params
from tests.conftest import tiny_prepared

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "hidden": [12],
    "ae_lr": [0.05],
    "noise": [0.0, 0.25],
    "rbm_lr": [0.05],
    "epochs": [1, 2],
    "finetune_lr": [0.1, 0.3],
    "max_epochs": 3,
    "patience": 2,
    "rungs": [1],
    "eta": 2,
    "group_size": 2,
    "top": 2,
}


def explore_project(root: Path, **grid: object) -> Path:
    """A folder to run the search in: the tiny `basic` prepared and params.yaml's explore section GRID (and `grid`)."""
    tiny_prepared(root)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["explore"] = {"dataset": "basic", **GRID, **grid}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(explore_project(tmp_path))
    return tmp_path


def test_every_candidate_is_recorded_and_only_the_best_are_tested(project: Path) -> None:
    explore.main(["--out", "out", "--device", "cpu", "--no-progress"])
    rows = pd.read_csv(project / "out/basic.csv")
    per_column = rows.groupby("column").size().to_dict()
    # autoencoders: 2 epochs x 1 lr per masking level, x 2 fine-tuning rates; RBMs: 2 stacks x 2 rates per depth
    assert per_column == {"SAA-3": 4, "SdA-3": 4, "DBN-1": 4, "DBN-3": 4}
    for _, group in rows.groupby("column"):
        tested = group.dropna(subset=["test_error_pct"]).sort_values("valid_rank")
        assert list(tested["valid_rank"]) == [1, 2]
        assert tested["valid_error_pct"].max() <= group.drop(tested.index)["valid_error_pct"].min()
    summary = (project / "out/basic.json").read_text()
    assert '"total_seconds"' in summary and '"selected"' in summary
    text = (project / "out/basic.md").read_text()
    assert "## SdA-3: 4 candidates" in text and "Interrupted" not in text


def test_columns_narrow_the_search_to_what_they_need(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["explore"]["columns"] = ["SdA-3"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    explore.main(["--out", "out", "--device", "cpu", "--no-progress"])
    rows = pd.read_csv(project / "out/basic.csv")
    assert rows.groupby("column").size().to_dict() == {"SdA-3": 4}
    assert set(rows["noise"]) == {0.25}  # masking 0 is SAA-3's: not pretrained
    summary = json.loads((project / "out/basic.json").read_text())
    assert list(summary["pretraining"]) == ["ae-h12"]  # no RBM stack: no column here needs one
    assert list(summary["columns"]) == ["SdA-3"]


def test_an_unknown_column_is_refused_by_name(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["explore"]["columns"] = ["SdA-4"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ParamsError, match=r"explore\.columns.*SdA-4"):
        load_params(project / "params.yaml")


def test_an_unreachable_scheduler_stops_the_search_with_a_clear_message(
    project: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.execution import cluster
    from tests.test_cluster import free_port

    address = f"tcp://127.0.0.1:{free_port()}"
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)  # Dask retries a refused connection until the timeout
    with pytest.raises(SystemExit) as stopped:
        explore.main(["--out", "out", "--device", "cpu", "--scheduler", address])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert address in err and "Traceback" not in err, err
    assert not (project / "out").exists()
