"""MLflow tracking: one parent run per pipeline invocation, one child run per stage, nested runs per candidate.

The stages of one `dvc repro`, `dvc exp run` or `pipeline.repro` share a parent run, found by a tag naming that
process; a stage alone gets its own; `PIPELINE_PARENT_RUN_ID` overrides both. Named `DVC_EXP_NAME`, else params' hash.

Conventions MLflow users expect: the experiment is tagged for model training (the UI opens on its runs); metric
keys are the same across candidates (a candidate is a nested run, named and tagged); prepared datasets are run
inputs; trained networks are MLflow models with a signature and an input example (`pyfunc ... .predict(x)`).

The store is `MLFLOW_TRACKING_URI` when set, else the sqlite file `mlflow.db` at the repo root. Parallel workers
share one `mlflow server`; a server that does not answer, or a URI MLflow cannot use, stops the stage at once.
The server is probed before use (`pipeline.core.probe`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import psutil
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from pipeline.core import paths, timings

PARENT_ENV = "PIPELINE_PARENT_RUN_ID"
INVOCATION_TAG = "pipeline.invocation"
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else mlflow.db at the repo root (DVC_ROOT: queued experiments run in a temp copy)."""
    root = Path(os.environ.get("DVC_ROOT") or Path.cwd())
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"


def git_commit() -> str:
    """HEAD's hash, with '-dirty' when the code or settings differ from it; 'unknown' outside git.

    Outputs (metrics/, results/, reports/, dvc.lock) change during every run, so they do not count as dirty.
    """
    code = ["pipeline", "params.yaml", "dvc.yaml", "pyproject.toml"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "-uno", "--", *code], capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.strip() + ("-dirty" if dirty.strip() else "")


def params_hash(path: str | Path = "params.yaml") -> str:
    """The first 8 hex digits of the params file's SHA-256: names a parent run outside `dvc exp run`."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:8]
    except OSError:
        return "unknown"


def invocation_key() -> str:
    """The pipeline invocation this process belongs to: its nearest `dvc` or `pipeline.repro` ancestor, else itself."""
    if key := os.environ.get("PIPELINE_INVOCATION"):  # set by a Dask coordinator: a worker's stage has no ancestor
        return key
    process = psutil.Process()
    for ancestor in process.parents():
        try:
            cmdline = " ".join(ancestor.cmdline())
        except psutil.Error:
            continue
        dvc = "dvc" in Path(ancestor.name()).name or "/dvc " in f"{cmdline} " or " -m dvc" in cmdline
        if dvc or " -m pipeline.repro" in cmdline:
            process = ancestor
            break
    key = f"{os.uname().nodename}:{process.pid}:{process.create_time():.3f}"
    return key + (f":{exp}" if (exp := os.environ.get("DVC_EXP_NAME")) else "")


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


def metric_key(name: str) -> str:
    """`name` with every character MLflow refuses in a key (it allows letters, digits, _ - . space : /) as '_'."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name)


def _create_store(uri: str) -> None:
    """Create (or migrate) a sqlite store one process at a time: two stages making a fresh `mlflow.db` at once (a first
    `pipeline.repro -j 2`) raced in MLflow's schema migrations and one failed (AttributeError in alembic)."""
    if not uri.startswith("sqlite:///"):
        return
    with open(Path(tempfile.gettempdir()) / f"pipeline-mlflow-store-{os.getuid()}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        MlflowClient(uri).search_experiments(max_results=1)


def _parent_run_id(client: MlflowClient, experiment_id: str, commit: str) -> str:
    if run_id := os.environ.get(PARENT_ENV):
        return run_id
    key = invocation_key()
    # The key names a process on this machine, so its stages run here: a lock file makes find-or-create one step
    # when two start at once (pipeline.repro -j 2; else each may create a parent). Released when closed.
    with open(Path(tempfile.gettempdir()) / f"pipeline-parent-run-{os.getuid()}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        query = f"tags.`{INVOCATION_TAG}` = '{key}'"
        if found := client.search_runs([experiment_id], filter_string=query, max_results=1):
            return found[0].info.run_id
        name = os.environ.get("DVC_EXP_NAME") or f"params-{params_hash()}"
        tags = {INVOCATION_TAG: key, "git.commit": commit, "pipeline.role": "parent", "params.hash": params_hash()}
        return client.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def _experiment(name: str) -> str:
    """Set (creating if new) the experiment, tagged for model training (by the first of stages starting at once)."""
    exp = mlflow.set_experiment(name)
    # The loser of two processes creating it at once gets it back not made active (MLflow 3.17's RESOURCE_ALREADY_EXISTS
    # branch): its runs would land in Default. Set by id, it always is.
    mlflow.set_experiment(experiment_id=exp.experiment_id)
    if exp.tags.get(EXPERIMENT_KIND_TAG) is None:
        with contextlib.suppress(mlflow.MlflowException):  # the other stage's tag, inserted first: the same value
            MlflowClient().set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    return exp.experiment_id


@contextlib.contextmanager
def stage_run(stage: str, experiment: str, params: Mapping[str, Any], run_name: str | None = None) -> Iterator[str]:
    """Start the MLflow child run of `stage` (params logged flat); yield its run id. The DVC stage name comes from
    DVC's own `DVC_STAGE` variable when present (so matrix stages are named like `pretrain@sda-25`), else `stage`."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = tracking_uri()
    from pipeline.core.probe import check_server

    check_server(uri)
    _create_store(uri)
    mlflow.set_tracking_uri(uri)
    experiment_id = _experiment(experiment)
    client = MlflowClient()
    commit = git_commit()
    parent = _parent_run_id(client, experiment_id, commit)
    dvc_stage = os.environ.get("DVC_STAGE", stage)
    tags = {"dvc.stage": dvc_stage, "git.commit": commit, "pipeline.role": "stage"}
    beat = timings.heartbeat(dvc_stage) if "DVC_STAGE" in os.environ else contextlib.nullcontext()
    with beat, mlflow.start_run(run_name=run_name or dvc_stage, parent_run_id=parent, tags=tags) as run:
        log_params(params)
        yield run.info.run_id
    client.set_terminated(parent, "FINISHED")


@contextlib.contextmanager
def candidate_run(name: str, params: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> Iterator[str]:
    """A nested run for one candidate of a stage's grid (params logged, tagged `candidate` and `tags`); yields its id.
    Its metric keys are the same for every candidate (`layer0.valid_loss`), so the MLflow UI compares them in one chart.
    """
    with mlflow.start_run(
        run_name=name, nested=True, tags={"candidate": name, "pipeline.role": "candidate", **(tags or {})}
    ) as run:
        log_params(params)
        yield run.info.run_id


def log_params(params: Mapping[str, Any]) -> None:
    flat = {k: (",".join(map(str, v)) if isinstance(v, list) else v) for k, v in flatten(params).items()}
    mlflow.log_params(flat)


def as_percent(key: str, value: float) -> tuple[str, float]:
    """Error rates in one unit everywhere (MLflow, DVC, the reports): a key ending in `error` (or a `ci95` half-width),
    which the stages pass as a fraction, is logged as `<key>_pct` in percent."""
    if key.endswith("error") or key.endswith("ci95"):
        return f"{key}_pct", 100 * value
    return key, value


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    """Log every numeric leaf of a nested mapping, flattened with dots, under keys MLflow accepts (errors in %)."""
    flat = dict(
        as_percent(metric_key(k), float(v))
        for k, v in flatten(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    )
    mlflow.log_metrics(flat, step=step)


def log_artifacts(paths: list[str | Path], artifact_path: str = "figures") -> None:
    for path in paths:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def log_model(module: Any, name: str, x_example: Any) -> str:
    """Log a torch module as an MLflow model with a signature and an input example; return its model URI.

    `mlflow.pyfunc.load_model(uri).predict(x)` then runs `module(x)` on float32 rows of 784 pixels.
    """
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", False) is None:
        # MLflow checks each given requirement against a map of every installed distribution, built on
        # first use (3 s in an environment with CUDA torch); torch is our only requirement, so map just it.
        requirements_utils._MODULES_TO_PACKAGES = {"torch": ["torch"]}

    module = module.cpu().eval()
    with torch.no_grad():
        out = module(x_example)
    signature = infer_signature(x_example.numpy(), out.numpy())
    return mlflow.pytorch.log_model(
        module,
        name=name,
        signature=signature,
        input_example=x_example.numpy(),
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
    ).model_uri


def log_history(history: Mapping[str, list[float]]) -> None:
    """Log per-epoch curves (key -> values for epochs 1, 2, ...) to the active run in batched calls (errors in %)."""
    run_id = mlflow.active_run().info.run_id
    now = int(time.time() * 1000)
    metrics = [
        Metric(*as_percent(metric_key(k), float(x)), now, step)
        for k, values in history.items()
        for step, x in enumerate(values, 1)
    ]
    client = mlflow.MlflowClient()
    for i in range(0, len(metrics), 1000):  # MLflow's limit per log_batch call
        client.log_batch(run_id, metrics=metrics[i : i + 1000])


def log_timing(stage: str, seconds: float) -> None:
    """Record a stage's wall time: logs/timings/<DVC stage>.json (pipeline.core.timings: with what killed runs of it spent)
    and the MLflow metric `seconds` (the same total). The Vincent report's time table reads these files."""
    record = timings.finish(os.environ.get("DVC_STAGE", stage), seconds)
    mlflow.log_metric("seconds", record["seconds"])


def log_splits(splits: Mapping[str, Any], dataset: str) -> None:
    """Log each split of a prepared dataset (objects with .x and .y tensors) as an input of the active run: name,
    digest, shape, source. Two stages of a row starting at once (pipeline.repro -j 2) may both insert a split new
    to the store (sqlite or PostgreSQL); the later insert fails, and its retry finds the split and links it."""
    import mlflow.data
    from mlflow.exceptions import MlflowException

    for split, data in splits.items():
        context = {"train": "training", "valid": "validation", "test": "testing"}.get(split, split)
        source, name = local_source(str(paths.prepared(dataset))), f"{dataset}/{split}"
        inputs = mlflow.data.from_numpy(features=data.x.numpy(), targets=data.y.numpy(), source=source, name=name)
        try:
            mlflow.log_input(inputs, context=context)
        except MlflowException as exc:
            if not re.search("UNIQUE constraint failed|duplicate key value violates unique", str(exc)):
                raise
            mlflow.log_input(inputs, context=context)


def local_source(path: str) -> Any:
    """A local folder as an MLflow dataset source, built directly: given the path alone, MLflow resolves it through a
    registry that lists its local source twice and warns "can be interpreted in multiple ways" in every stage."""
    from mlflow.data.dataset_source_registry import get_registered_sources

    return next(s for s in get_registered_sources() if s._get_source_type() == "local")(path)


def log_to_parent(
    run_id: str, artifacts: list[str | Path], metrics: Mapping[str, float], artifact_path: str = "report"
) -> None:
    """Log artifacts and metrics to the parent (pipeline) run of the stage run `run_id`, where there is one."""
    if parent := mlflow.get_run(run_id).data.tags.get("mlflow.parentRunId"):
        client = MlflowClient()
        for path in artifacts:
            client.log_artifact(parent, str(path), artifact_path)
        for key, value in metrics.items():
            client.log_metric(parent, metric_key(key), float(value))
