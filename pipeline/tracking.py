"""MLflow tracking: one parent run per pipeline invocation, one child run per stage.

A `dvc repro` (or one `dvc exp run` experiment) runs every stage as a child process of one DVC
process; the stages find their shared parent run by tagging it with that process's id and start
time. A stage run on its own gets a parent of its own. `PIPELINE_PARENT_RUN_ID` overrides both.

The store is `MLFLOW_TRACKING_URI` when set, else the sqlite file `mlflow.db` at the repo root;
browse it with `mlflow ui --backend-store-uri sqlite:///mlflow.db`. Parallel workers
(`dvc queue start -j 2`) should share one `mlflow server` instead of the sqlite file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import psutil
from mlflow.tracking import MlflowClient

PARENT_ENV = "PIPELINE_PARENT_RUN_ID"
INVOCATION_TAG = "pipeline.invocation"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else mlflow.db at the repo root (DVC_ROOT: queued experiments run in a temp copy)."""
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def git_commit() -> str:
    """HEAD's hash, with '-dirty' when the code or settings differ from it; 'unknown' outside git.

    Outputs (metrics/, reports/, dvc.lock) change during every run, so they do not count as dirty.
    """
    code = ["pipeline", "params.yaml", "dvc.yaml", "pyproject.toml"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno", "--", *code], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.strip() + ("-dirty" if dirty.strip() else "")


def invocation_key() -> str:
    """Identifies the pipeline invocation this process belongs to: its nearest `dvc` ancestor, else itself."""
    process = psutil.Process()
    for ancestor in process.parents():
        try:
            cmdline = " ".join(ancestor.cmdline())
        except psutil.Error:
            continue
        if "dvc" in Path(ancestor.name()).name or "/dvc " in f"{cmdline} " or " -m dvc" in cmdline:
            process = ancestor
            break
    key = f"{os.uname().nodename}:{process.pid}:{process.create_time():.3f}"
    if exp := os.environ.get("DVC_EXP_NAME"):
        key += f":{exp}"
    return key


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _parent_run_id(client: MlflowClient, experiment_id: str, commit: str) -> str:
    if run_id := os.environ.get(PARENT_ENV):
        return run_id
    key = invocation_key()
    found = client.search_runs([experiment_id], filter_string=f"tags.`{INVOCATION_TAG}` = '{key}'", max_results=1)
    if found:
        return found[0].info.run_id
    name = os.environ.get("DVC_EXP_NAME") or "pipeline"
    run = client.create_run(
        experiment_id,
        run_name=name,
        tags={INVOCATION_TAG: key, "git.commit": commit, "pipeline.role": "parent"},
    )
    return run.info.run_id


@contextlib.contextmanager
def stage_run(stage: str, experiment: str, params: Mapping[str, Any], run_name: str | None = None) -> Iterator[str]:
    """Start the MLflow child run of `stage` (params logged flat); yield its run id.

    The DVC stage name comes from DVC's own `DVC_STAGE` variable when present (so matrix stages are
    named like `pretrain@sda-25`), else `stage`.
    """
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    exp = mlflow.set_experiment(experiment)
    client = MlflowClient()
    commit = git_commit()
    parent = _parent_run_id(client, exp.experiment_id, commit)
    dvc_stage = os.environ.get("DVC_STAGE", stage)
    tags = {"dvc.stage": dvc_stage, "git.commit": commit, "pipeline.role": "stage"}
    with mlflow.start_run(run_name=run_name or dvc_stage, parent_run_id=parent, tags=tags) as run:
        flat = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in flatten(params).items()}
        mlflow.log_params(flat)
        yield run.info.run_id
    client.set_terminated(parent, "FINISHED")


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log every numeric leaf of a nested mapping, flattened with dots."""
    flat = {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, int | float) and not isinstance(v, bool)}
    mlflow.log_metrics(flat, step=step)


def log_artifacts(paths: list[str | Path], artifact_path: str = "figures") -> None:
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)
