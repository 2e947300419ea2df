"""Is the tracking store usable? Checked before a stage opens its MLflow run, in seconds, with a message.

A server is probed before use (its /health and one REST call, within PROBE_DEADLINE_S in all, however slowly its
bytes come), and unless the user set them, MLflow's own requests get HTTP_DEFAULTS: each attempt waits at most
30 s for the connection and for each next byte, and a request makes two attempts at most, so one that meets a server
gone silent fails within about a minute (MLflow's defaults: 120 s and 8 attempts with growing pauses, about 20
minutes). That bound is per byte, not in total: a server that trickles bytes mid-stage is caught by the probe only.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from pipeline.core.errors import StageError


class TrackingError(StageError):
    """The tracking store cannot be used; the message says which and what to do (a stage exits 2 with it)."""


SERVER_TIMEOUT_S = 5.0
PROBE_DEADLINE_S = 10.0  # the whole probe of a server: its health check and one REST call, reply bytes included
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
SQLITE_HEADER = b"SQLite format 3\x00"
SCHEMES = ("", "file", "sqlite", "postgresql", "mysql", "mssql", "http", "https", "databricks", "databricks-uc", "uc")


def check_server(uri: str, timeout: float = SERVER_TIMEOUT_S) -> None:
    """Raise TrackingError at once for a URI MLflow cannot use, an sqlite file that is not a database, or an HTTP
    tracking server that does not answer its health check and one REST call, whole, within PROBE_DEADLINE_S (MLflow's
    own client retries a dead server for minutes before failing with a traceback)."""
    if (scheme := uri.split("://")[0].split("+")[0] if "://" in uri else "") not in SCHEMES:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI {uri!r}: MLflow has no store for {scheme}://; expected one of "
            "sqlite:///<file>, postgresql://..., http(s)://<host>:<port>, file:<folder> or a folder"
        )
    if scheme == "sqlite":
        check_sqlite(uri)
    if scheme not in ("http", "https"):
        return
    # Set before the probe, which makes its REST call through MLflow's client: a server that dies mid-stage, or
    # answers the probe and then stalls, fails a request within about a minute, not half an hour.
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    step = ["/health"]
    try:
        within(PROBE_DEADLINE_S, lambda: _probe(uri, timeout, step))
    except TimeoutError:
        raise TrackingError(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) accepts connections but did not answer {step[0]} "
            f"within {PROBE_DEADLINE_S:g} s in all; expected an `mlflow server` that replies at once. Restart it, "
            "or unset MLFLOW_TRACKING_URI to log to the local file mlflow.db."
        ) from None


def _probe(uri: str, timeout: float, step: list[str]) -> None:
    """The health check, then one REST call (the experiment lookup every stage makes first); `step` says which ran."""
    from mlflow.exceptions import MlflowException

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            reply.read()
    except Exception as exc:  # connection refused, timeout, DNS, HTTP error: all mean the same here
        raise TrackingError(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer ({exc}). Start it, e.g. "
            "`python -m pipeline.server`, or unset MLFLOW_TRACKING_URI "
            "to log to the local file mlflow.db."
        ) from None
    step[0] = "its REST API (GET /api/2.0/mlflow/experiments/get-by-name)"
    try:
        MlflowClient(uri).get_experiment_by_name("Default")  # None when there is none: an answer all the same
    except (MlflowException, OSError) as exc:
        if getattr(exc, "error_code", None) == "PERMISSION_DENIED":  # MLflow's own answer: a user kept off Default
            return
        reason = re.sub(r"\s+", " ", str(exc))
        reason = reason if len(reason) <= 300 else f"{reason[:150]} ... {reason[-150:]}"
        raise TrackingError(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) answers /health but not its REST API: GET "
            f"/api/2.0/mlflow/experiments/get-by-name failed ({reason}). Expected an `mlflow server` at that "
            "address (not another service); check the address, or unset MLFLOW_TRACKING_URI to log to mlflow.db."
        ) from None


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """`call()`'s result or error, or TimeoutError when it has not returned within `seconds` in all. It runs in a
    daemon thread, which a hung call keeps until its socket gives up: the process never waits for it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:  # handed to the caller's thread, raised there
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="tracking-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def check_sqlite(uri: str) -> None:
    """An sqlite store's file, where there is one, must be an SQLite database (else SQLAlchemy's traceback later)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        database = make_url(uri).database
    except ArgumentError as exc:
        raise TrackingError(f"MLFLOW_TRACKING_URI {uri!r}: {exc}; expected sqlite:///<file>") from None
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise TrackingError(f"MLFLOW_TRACKING_URI {uri}: {path} is a folder, not an SQLite database file")
    if not path.is_file() or path.stat().st_size == 0:  # MLflow makes a new store there
        return
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    if head != SQLITE_HEADER:
        raise TrackingError(
            f"MLFLOW_TRACKING_URI {uri}: {path} is not an SQLite database (it begins {head!r}, expected "
            f"{SQLITE_HEADER!r}); move it aside (MLflow then makes a new store there) or point MLFLOW_TRACKING_URI "
            "at the store"
        )
