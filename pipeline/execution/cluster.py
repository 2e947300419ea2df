"""`pipeline.repro` on a Dask cluster: each stage's command is a Dask task on whichever worker is free.

The coordinator (`python -m pipeline.repro --scheduler tcp://host:8786`, or with DASK_SCHEDULER_ADDRESS set) keeps
doing what it does on one machine: it decides which stages are ready and stale, holds their DVC locks and records
each finished stage with `dvc commit`. Only the commands move: `client.submit` runs one on a worker, in the
workspace (the same path on every worker: a shared mount), with the coordinator's MLflow and pipeline variables.
Stages that train (their command runs one of TRAINING) ask for one `GPU` resource when some worker declares it
(`dask worker ... --resources GPU=1`); on a CPU-only cluster nothing asks for it.

A lost worker is Dask's to handle: the scheduler gives the task to another worker (up to
`distributed.scheduler.allowed-failures` times), and the command the dead worker ran dies with it (PDEATHSIG), so
two copies never write at once; stages write atomically, so what it left is never recorded. A command killed by
a signal on a live worker (the OOM killer) is retried once (`retries=1`). Ctrl-C on the coordinator sets a Dask
`Event` that every task watches: each stops its command, and the coordinator releases the stages' DVC locks.

`run_tasks` is the same placement for Python functions (pipeline.explore's search shards): one task each, the
results back on the coordinator as they finish.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pipeline.core.cli import log
from pipeline.core.errors import StageError

TRAINING = (
    "pipeline.stages.pretrain",
    "pipeline.stages.finetune",
    "pipeline.stages.evaluate",
    "pipeline.stages.filters",
    "pipeline.stages.zoo_train",
)
FORWARDED = ("MLFLOW_", "PIPELINE_")  # the coordinator's variables a stage's command gets on every worker
CONNECT_TIMEOUT_S = 5
# Run as `python -c PRELUDE argv...`: the command dies with the worker thread that started it (Linux), then execs.
PRELUDE = (
    "import ctypes, os, signal, sys\n"
    "if sys.platform == 'linux':\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)\n"  # PR_SET_PDEATHSIG
    "    if os.getppid() == int(sys.argv[1]): os.execvp(sys.argv[2], sys.argv[2:])\n"
    "    sys.exit(137)\n"  # the parent already died
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


class ClusterError(StageError):
    """The scheduler cannot be reached, or its workers cannot run the stages: a message for the user."""


def configured_address() -> str | None:
    """The scheduler Dask itself would use: its `scheduler-address` setting (DASK_SCHEDULER_ADDRESS), if any."""
    import dask.config

    return dask.config.get("scheduler-address", None) or None


def connect(address: str, workspace: str) -> Any:
    """A `distributed.Client` on `address`, once every worker is seen to have the workspace folder."""
    from distributed import Client

    try:
        handshake(address, CONNECT_TIMEOUT_S)
        client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, ValueError, TypeError) as exc:
        raise ClusterError(
            f"cannot reach a Dask scheduler at {address!r} (expected the tcp://host:port of a running"
            f" `dask scheduler`): {exc}"
        ) from None
    seen = client.run(os.path.isdir, workspace)
    if missing := sorted(worker for worker, present in seen.items() if not present):
        client.close()
        raise ClusterError(
            f"workers {', '.join(missing)} do not see the workspace {workspace} (expected the same path on every"
            " worker, a shared mount; or give each machine its own clone and share a DVC remote: README)"
        )
    if not seen:
        log.warning("no Dask worker yet at %s: stages wait until one joins", address)
    return client


def handshake(address: str, seconds: float) -> None:
    """Connect to `address` and complete Dask's handshake within about `seconds` in all; else a ClusterError (an
    OSError where nothing answers there). A Client's own timeout bounds the connection but not the handshake after
    it: a peer that accepts TCP and never speaks Dask would hang it for good."""
    import asyncio

    from distributed.comm import connect as open_comm
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    scheme, location = parse_address(address)  # a ValueError for what is no address: the caller's message
    get_backend(scheme)
    if scheme in ("tcp", "tls"):
        parse_host_port(location)

    async def shake() -> None:
        # Dask retries a refused connection until `seconds`: the outer bound, a second later, is the handshake's
        comm = await asyncio.wait_for(open_comm(address, timeout=seconds), seconds + 1)
        await comm.close()

    expected = "expected the tcp://host:port of a running `dask scheduler`, not another service"
    try:
        asyncio.run(shake())
    except TimeoutError:
        raise ClusterError(
            f"{address!r} accepts connections but did not answer the Dask handshake within {seconds} s ({expected})"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, MemoryError) as exc:  # bytes, not Dask's
        raise ClusterError(
            f"{address!r} answered, but not in Dask's protocol (its reply reads as no Dask message: "
            f"{type(exc).__name__}; {expected})"
        ) from None


def gpu_declared(client: Any) -> bool:
    """Whether some worker declares a `GPU` resource: only then do training tasks ask for one (else none could run)."""
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return any(w.get("resources", {}).get("GPU") for w in workers)


def worker_threads() -> int:
    """On a worker: the threads one task may use, OMP_NUM_THREADS if set, else its share of the machine's cores."""
    from distributed import get_worker

    from pipeline.core.cli import cores_per_job

    return cores_per_job(get_worker().state.nthreads)


def run_tasks(
    client: Any,
    fn: Callable[..., Any],
    calls: Sequence[tuple[str, tuple]],
    on_result: Callable[[int, Any], None],
    *,
    training: bool = True,
) -> None:
    """Run `fn(*args)` for every (label, args) of `calls` as a Dask task, and `on_result(i, result)` on this machine as
    each finishes (in the order they finish). The earlier calls start first when workers are short; training tasks ask
    for one `GPU` as stages do. An error or Ctrl-C cancels the futures: calls not started never start (one already
    running finishes on its worker, which Dask cannot interrupt, and its result is dropped); the error is raised."""
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]
    resources = {"GPU": 1} if training and gpu_declared(client) else None
    futures = {
        client.submit(fn, *args, key=f"{label}-{run_id}", pure=False, priority=len(calls) - i, resources=resources): i
        for i, (label, args) in enumerate(calls)
    }
    try:
        for n, future in enumerate(as_completed(futures), start=1):
            on_result(futures[future], future.result())
            log.info("%s finished (%d of %d)", calls[futures[future]][0], n, len(calls))
    finally:
        client.cancel(list(futures))


def command_argv(cmd: str) -> list[str]:
    """The command's argv, run without a shell when it is a plain command (so PDEATHSIG reaches it), else via sh."""
    if any(char in cmd for char in ";&|<>$`()\n\\*?"):
        return ["/bin/sh", "-c", cmd]
    return shlex.split(cmd)


def run_command(cmd: str, cwd: str, log_path: str, env: dict[str, str], stop_event: str, poll_s: float = 1.0) -> int:
    """On a worker: run one stage's command in `cwd`, output to `log_path`; its exit status. Stops when asked."""
    from distributed import Event, get_worker

    threads = str(worker_threads())
    full_env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads) | env
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    stop = Event(stop_event)
    argv = [sys.executable, "-c", PRELUDE, str(os.getpid()), *command_argv(cmd)]
    with open(log_path, "w") as out:
        process = subprocess.Popen(
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=full_env, start_new_session=True
        )
    while True:
        try:
            code = process.wait(timeout=poll_s)
            break
        except subprocess.TimeoutExpired:
            if stop.is_set():
                os.killpg(process.pid, 15)
                process.wait()
                return -15
    if code < 0:  # killed by a signal on a live worker: an error, so that Dask's retries run it again
        raise RuntimeError(f"{cmd!r} was killed by signal {-code} on {get_worker().address}")
    return code


class DaskLauncher:
    """Starts stage commands as Dask tasks; the same three calls as pipeline.repro's local process launcher."""

    def __init__(self, client: Any, workspace: str, order: list[str]) -> None:
        self.client = client
        self.workspace = workspace
        self.run_id = uuid.uuid4().hex[:8]
        self.stop_event = f"pipeline-repro-stop-{self.run_id}"
        self.gpu = gpu_declared(client)
        self.priority = {name: len(order) - i for i, name in enumerate(order)}  # the plan's order, as locally
        self.env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}
        self.env["PIPELINE_INVOCATION"] = f"{os.uname().nodename}:{os.getpid()}:{self.run_id}"
        self.jobs = len(order)  # every ready stage is submitted: the scheduler places them as workers free up

    def start(self, name: str, cmd: str, log_path: Path) -> Any:
        training = any(f"{module} " in f"{cmd} " for module in TRAINING)
        return self.client.submit(
            run_command,
            cmd,
            self.workspace,
            str(Path(self.workspace) / log_path),
            self.env | {"DVC_STAGE": name, "DVC_ROOT": self.workspace},
            self.stop_event,
            key=f"stage-{name}-{self.run_id}",
            pure=False,
            retries=1,
            priority=self.priority.get(name, 0),
            resources={"GPU": 1} if self.gpu and training else None,
        )

    def poll(self, future: Any) -> int | None:
        if not future.done():
            return None
        try:
            return future.result()
        except Exception as exc:  # a task that erred or was lost too often (KilledWorker): the stage failed
            log.error("%s: %s: %s", future.key, type(exc).__name__, exc)
            return 1

    def wait(self, futures: list[Any], poll_s: float) -> None:
        from distributed import wait

        if not futures:
            time.sleep(poll_s)
            return
        try:
            wait(futures, timeout=poll_s, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass

    def stop(self, futures: list[Any]) -> None:
        """Tell every task to stop its command; wait (a minute at most) until they have."""
        from distributed import Event, wait

        Event(self.stop_event, client=self.client).set()
        try:
            wait(futures, timeout=60)
        except TimeoutError:
            log.error("some stages did not stop within a minute")
        self.client.cancel(futures)

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster and its workers go on)."""
        self.client.close()
