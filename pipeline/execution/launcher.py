"""Where `python -m pipeline.repro` runs a stage's command: the interface, and the launcher for this machine.

A launcher starts a command and hands back a handle, says whether it has finished (its exit code), waits a little,
stops what it started, and lets go of what it holds. `LocalLauncher` runs the commands as processes here;
`pipeline.execution.cluster.DaskLauncher` submits them to a Dask cluster. A new engine is one more class with
these methods (CONTRIBUTING.md, "A new launcher").
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Protocol

from pipeline.core.cli import cores_per_job


class Launcher(Protocol):
    jobs: int
    """how many stages may run at once"""

    def start(self, name: str, cmd: str, log_path: Path) -> Any: ...

    def poll(self, handle: Any) -> int | None: ...

    def wait(self, handles: list[Any], poll_s: float) -> None: ...

    def stop(self, handles: list[Any]) -> None: ...

    def close(self) -> None: ...


def stage_env(jobs: int) -> dict[str, str]:
    """The environment of a stage's command: the cores split between the workers (OMP_NUM_THREADS, if set, wins)."""
    threads = str(cores_per_job(jobs))
    return dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)


class LocalLauncher:
    """Starts stage commands as processes on this machine, each in a session of its own."""

    def __init__(self, jobs: int, root: str) -> None:
        self.jobs, self.root, self.env = jobs, root, stage_env(jobs)

    def start(self, name: str, cmd: str, log_path: Path) -> subprocess.Popen:
        with open(log_path, "w") as out:
            # DVC_STAGE and DVC_ROOT as `dvc repro` sets them: MLflow runs are named after the stage. A session
            # of its own: the shell and the command under it (dash does not exec it) are stopped as one group.
            return subprocess.Popen(
                cmd,
                shell=True,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env | {"DVC_STAGE": name, "DVC_ROOT": self.root},
                start_new_session=True,
            )

    def poll(self, process: subprocess.Popen) -> int | None:
        return process.poll()

    def wait(self, processes: list[subprocess.Popen], poll_s: float) -> None:
        time.sleep(poll_s)

    def stop(self, processes: list[subprocess.Popen]) -> None:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait()

    def close(self) -> None:
        """Nothing to let go of: the processes are stopped or finished."""
