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
    for stage, body in (
        ("finetune", {"selected": trial["name"], "trials": [trial]}),
        ("evaluate", {"record": {"valid_error": 0.5, "test_error": 0.6}}),
    ):
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


def _add_dbn_column(project: Path, dbn_test: float, sda_test: float) -> None:
    """A committed DBN-1 beside the fixture's SdA-3, and the row's table with both (and an SVM)."""
    pretrain = {"kind": "rbm", "hidden": 12, "lr": 0.05, "epochs": 2, "noise": 0.0}
    trial = {"name": "h12-lr0.05-e2-ftlr0.3", "lr": 0.3, "pretrain": pretrain}
    record = {"model": "DBN-1", "entry": "dbn1", "valid_error": 0.4, "test_error": dbn_test / 100}
    (project / "results/finetune/basic/dbn.json").write_text(
        json.dumps({"dbn1": {"selected": trial["name"], "trials": [trial]}})
    )
    (project / "results/evaluate/basic/dbn.json").write_text(json.dumps({"dbn1": {"record": record}}))
    sda = json.loads((project / "results/evaluate/basic/sda.json").read_text())
    sda["sda3"]["record"] |= {"model": "SdA-3", "entry": "sda3", "test_error": sda_test / 100}
    (project / "results/evaluate/basic/sda.json").write_text(json.dumps(sda))
    (project / "results/report").mkdir(parents=True)
    pd.DataFrame(
        {"dataset": "basic", "model": ["SVM_rbf", "DBN-1", "SdA-3"], "error_pct": [50.0, dbn_test, sda_test]}
    ).to_csv(project / "results/report/basic.csv", index=False)


def test_claim_seeds_sda_and_the_best_other_trained_column(project: Path) -> None:
    _add_dbn_column(project, dbn_test=40.0, sda_test=60.0)
    seeds.main(["--models", "claim", "--seeds", "1", "--device", "cpu", "--no-progress"])
    rows = pd.read_csv(project / "reports/seeds/basic.csv")
    assert list(zip(rows["entry"], rows["seed"], strict=True)) == [("sda3", 7), ("sda3", 1), ("dbn1", 7), ("dbn1", 1)]


def test_claim_leaves_out_an_svm_that_is_the_best_other_column(project: Path) -> None:
    _add_dbn_column(project, dbn_test=55.0, sda_test=60.0)
    pd.DataFrame({"dataset": "basic", "model": ["SVM_rbf", "DBN-1", "SdA-3"], "error_pct": [10.0, 55.0, 60.0]}).to_csv(
        project / "results/report/basic.csv", index=False
    )
    assert seeds.claim_models(seeds_params(project), "basic") == ["sda3"]


def seeds_params(project: Path):
    from pipeline.params import load_params

    return load_params(project / "params.yaml")


def test_runs_in_parallel_give_the_same_rows(project: Path) -> None:
    _add_dbn_column(project, dbn_test=40.0, sda_test=60.0)
    args = ["--models", "sda3", "dbn1", "--seeds", "1", "2", "--device", "cpu", "--no-progress"]
    seeds.main([*args, "--out", "serial"])
    seeds.main([*args, "--out", "parallel", "-j", "2"])
    serial, parallel = (
        pd.read_csv(project / f"{out}/basic.csv").drop(columns="seconds") for out in ("serial", "parallel")
    )
    assert len(serial) == 6 and serial.equals(parallel)


def test_a_killed_run_leaves_no_worker_training_on(project: Path) -> None:
    """SIGKILL to `pipeline.seeds -j 2` (no chance to stop its pool): its workers end within seconds, not after their run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    finetune = json.loads((project / "results/finetune/basic/sda.json").read_text())
    finetune["sda3"]["trials"][0]["pretrain"]["epochs"] = 100_000  # a run of hours
    (project / "results/finetune/basic/sda.json").write_text(json.dumps(finetune))
    command = [sys.executable, "-m", "pipeline.seeds", *"--models sda3 --device cpu --no-progress -j 2".split()]
    parent = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(ROOT)}, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(workers := psutil.Process(parent.pid).children()) < 2:
        assert parent.poll() is None and time.monotonic() < deadline, "the workers never started"
        time.sleep(0.2)
    time.sleep(3)  # into their runs
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _, alive = psutil.wait_procs(workers, timeout=15)
    for worker in alive:
        worker.kill()
    assert alive == [], "a worker trained on after its parent was killed"


def test_resume_keeps_the_runs_already_written(project: Path) -> None:
    args = ["--models", "sda3", "--device", "cpu", "--no-progress"]
    seeds.main([*args, "--seeds", "1"])
    csv = project / "reports/seeds/basic.csv"
    rows = pd.read_csv(csv)
    rows.loc[rows["seed"] == 1, "test_error_pct"] = 12.34  # as if an earlier run had written it
    rows.to_csv(csv, index=False)
    seeds.main([*args, "--seeds", "1", "2", "--resume"])
    rows = pd.read_csv(csv)
    assert list(rows["seed"]) == [7, 1, 2] and rows.loc[1, "test_error_pct"] == 12.34, "seed 1 was retrained"
    assert rows.loc[2, "test_error_pct"] != 12.34
    evaluated = json.loads((project / "results/evaluate/basic/sda.json").read_text())
    evaluated["sda3"]["record"]["test_error"] = 0.59  # the committed run, trained again
    (project / "results/evaluate/basic/sda.json").write_text(json.dumps(evaluated))
    seeds.main([*args, "--seeds", "1", "--resume"])
    assert pd.read_csv(csv).loc[1, "test_error_pct"] != 12.34, "seed 1 kept though its committed run changed"
