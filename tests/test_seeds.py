"""`python -m pipeline.seeds`: the selected configuration of a column, retrained with other seeds and tested once."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import seeds
from tests.conftest import tiny_prepared

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tiny_prepared(tmp_path)
    params = yaml.safe_load((ROOT / "tests/smoke_params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    pretrain = {"kind": "ae", "hidden": 12, "lr": 0.05, "epochs": 2, "noise": 0.25}
    trial = {"name": "h12-lr0.05-e2-nu0.25-ftlr0.3", "lr": 0.3, "pretrain": pretrain}
    for stage, body in (("finetune", {"selected": trial["name"], "trials": [trial]}),
                        ("evaluate", {"record": {"valid_error": 0.5, "test_error": 0.6}})):  # fmt: skip
        (tmp_path / f"results/{stage}/basic").mkdir(parents=True)
        (tmp_path / f"results/{stage}/basic/sda.json").write_text(json.dumps({"sda3": body}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_seed_is_one_row_beside_the_committed_run(project: Path) -> None:
    seeds.main(["--models", "sda3", "--seeds", "1", "2", "--device", "cpu", "--no-progress"])
    rows = pd.read_csv(project / "reports/seeds/basic.csv")
    assert list(rows["seed"]) == [7, 1, 2] and set(rows["model"]) == {"SdA-3"}
    assert rows.loc[0, "test_error_pct"] == pytest.approx(60.0), "the committed run's row is read, not retrained"
    assert (
        rows["test_error_pct"].between(0, 100).all() and rows.loc[1, "test_error_pct"] != rows.loc[2, "test_error_pct"]
    )
    assert "± " in (project / "reports/seeds/basic.md").read_text()


def test_same_seed_same_result(project: Path) -> None:
    seeds.main(["--models", "sda3", "--seeds", "3", "--device", "cpu", "--no-progress", "--out", "a"])
    seeds.main(["--models", "sda3", "--seeds", "3", "--device", "cpu", "--no-progress", "--out", "b"])
    first, second = (pd.read_csv(project / f"{out}/basic.csv").drop(columns="seconds") for out in ("a", "b"))
    assert first.equals(second)
