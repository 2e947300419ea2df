"""Tracking faults are clear and fast; metric keys are valid for any valid params."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.utils.validation import _validate_metric_name

from pipeline.tracking import metric_key

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
        [sys.executable, "-m", "pipeline.stages.prepare"], cwd=tmp_path, capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "MLFLOW_TRACKING_URI": uri, "PIPELINE_OFFLINE": "1"},
    )  # fmt: skip
    seconds = time.perf_counter() - start
    assert result.returncode == 2, result.stderr[-2000:]
    assert uri in result.stderr and "mlflow server" in result.stderr and "Traceback" not in result.stderr
    assert seconds < 30, f"took {seconds:.0f} s"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "the stage wrote something"
