"""Tracking faults are clear and fast; metric keys are valid for any valid params."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.utils.validation import _validate_metric_name

from pipeline.core.tracking import metric_key

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["h50-lr1e+08-e1.layer0.train_loss", "a=b", "SdA-3 (25%)", "ok.key/with:colon"])
def test_metric_keys_are_valid_whatever_the_names(name: str) -> None:
    _validate_metric_name(metric_key(name))
    assert metric_key("layer0.valid_loss") == "layer0.valid_loss"


def test_a_stopped_tracking_server_stops_the_stage_in_seconds_naming_the_uri(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"mirrors": []}}))
    uri = "http://127.0.0.1:9"  # the discard port: nothing listens there
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.prepare"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri, "PIPELINE_OFFLINE": "1"},
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr[-2000:]
    assert uri in result.stderr and "python -m pipeline.server" in result.stderr and "Traceback" not in result.stderr
    assert seconds < 30, f"took {seconds:.0f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "the stage wrote something"


@pytest.mark.parametrize("launcher", [["dvc", "repro"], [sys.executable, "-m", "pipeline.repro", "-j", "2"]])
def test_stages_launched_by_one_dvc_repro_or_pipeline_repro_share_one_invocation(
    launcher: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline.core.tracking as tracking

    class Fake:
        def __init__(self, pid: int, cmdline: list[str], parents: list[Fake] = ()) -> None:
            self.pid, self._cmdline, self._parents = pid, cmdline, list(parents)

        def name(self) -> str:
            return Path(self._cmdline[0]).name

        def cmdline(self) -> list[str]:
            return self._cmdline

        def parents(self) -> list[Fake]:
            return self._parents

        def create_time(self) -> float:
            return 1.0

    shell = Fake(1, ["bash"])
    runner = Fake(10, launcher, [shell])
    stage = lambda pid: Fake(pid, [sys.executable, "-m", "pipeline.stages.pretrain"], [runner, shell])  # noqa: E731
    keys = []
    for pid in (100, 101):
        monkeypatch.setattr(tracking.psutil, "Process", lambda p=pid: stage(p))
        keys.append(tracking.invocation_key())
    assert keys[0] == keys[1] and ":10:" in keys[0]
    monkeypatch.setattr(tracking.psutil, "Process", lambda: Fake(200, [sys.executable, "-m", "x"], [shell]))
    assert ":200:" in tracking.invocation_key()  # a stage run on its own is its own invocation
    monkeypatch.setenv("PIPELINE_INVOCATION", "coordinator:42:run")  # a Dask worker's stage: the coordinator's key
    assert tracking.invocation_key() == "coordinator:42:run"


def test_a_split_another_stage_inserted_first_is_linked_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two stages of a row started at once both insert the new split into the sqlite store; the later insert fails
    # with an IntegrityError, and the stage must go on (retry: the split is found and linked to its run).
    from types import SimpleNamespace

    import mlflow
    import torch
    from mlflow.exceptions import MlflowException

    from pipeline.core import tracking

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    train = {"train": SimpleNamespace(x=torch.zeros(4, 3), y=torch.arange(4))}
    with mlflow.start_run():
        tracking.log_splits(train, "basic")  # the winner of the race
    real, calls = mlflow.log_input, []

    def lose_the_race_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MlflowException("(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id")
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_input", lose_the_race_once)
    with mlflow.start_run() as run:
        tracking.log_splits(train, "basic")
    assert len(calls) == 2
    assert [d.dataset.name for d in mlflow.get_run(run.info.run_id).inputs.dataset_inputs] == ["basic/train"]
    monkeypatch.setattr(mlflow, "log_input", lambda *a, **k: (_ for _ in ()).throw(MlflowException("other")))
    with mlflow.start_run(), pytest.raises(MlflowException, match="other"):
        tracking.log_splits(train, "basic")


def test_the_stage_that_loses_the_race_to_create_the_experiment_logs_into_it_not_into_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two stages start at once on a new experiment: both find no experiment by that name, the other one creates it
    # first, and this one's create fails with RESOURCE_ALREADY_EXISTS (seen once in 20 runs on PostgreSQL:
    # tests/test_server.py). Its stage and candidate runs must still land in the named experiment.
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    from pipeline.core import tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setattr(tracking, "invocation_key", lambda: "race")
    real = TrackingServiceClient.create_experiment

    def the_other_stage_creates_it_first(self, name, *args, **kwargs):
        real(self, name, *args, **kwargs)
        raise MlflowException(f"Experiment '{name}' already exists.", error_code=RESOURCE_ALREADY_EXISTS)

    monkeypatch.setattr(TrackingServiceClient, "create_experiment", the_other_stage_creates_it_first)
    with tracking.stage_run("stage", "raced", {"a": 1}) as stage_id:
        with tracking.candidate_run("c0", {"k": 0}) as candidate_id:
            pass
    experiment = mlflow.get_experiment_by_name("raced").experiment_id
    assert {mlflow.get_run(r).info.experiment_id for r in (stage_id, candidate_id)} == {experiment}


def test_error_rates_are_logged_in_percent() -> None:
    from pipeline.core.tracking import as_percent

    assert as_percent("sda3.test_error", 0.0572) == ("sda3.test_error_pct", pytest.approx(5.72))
    assert as_percent("ci95", 0.0015) == ("ci95_pct", pytest.approx(0.15))
    assert as_percent("basic.SdA-3.error_pct", 2.68) == ("basic.SdA-3.error_pct", 2.68)
    assert as_percent("layer1.valid_loss", 54.3) == ("layer1.valid_loss", 54.3)


def test_stages_creating_a_fresh_sqlite_store_at_once_all_succeed(tmp_path) -> None:
    """A first `pipeline.repro -j 2` starts two stages on a missing mlflow.db: unlocked, MLflow's migrations race and
    one fails ("Online migration expected to match one row"); `_create_store` makes them one at a time."""
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = f"from pipeline.core import tracking; tracking._create_store({uri!r})"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [p.communicate()[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
