"""`pipeline.repro --scheduler`: stages on a real Dask cluster on loopback (a `dask scheduler` and two one-thread
`dask worker`s as processes), and DVC's run cache between two clones sharing a directory remote; also the wide
search (`pipeline.explore --scheduler`) on the same workers.

What one machine can show: the same dvc.lock and outputs as a serial `dvc repro`, a worker killed mid-stage
(its command dies with it, the stage reruns on the other worker, nothing half-written is recorded), and a
stage restored from the run cache without its command. Speed-up: benchmarks/cluster.py (not asserted here).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import ROOT, dvc, smoke_env, smoke_project
from tests.test_repro import make_diamond

pytestmark = pytest.mark.slow

# A real stage of the smoke table; the whole table, serial and on two workers, with its wall-time ratio, is
# benchmarks/cluster.py (here each more stage costs the suite 10-20 s). Stages at once: the diamond below.
TARGETS = ["benchmark@rect"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """A Dask scheduler and one-thread workers, each a `dask` process on 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.workdir = workdir
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        self.scheduler = self._spawn(["scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1]])
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"dask-{len(list(self.workdir.glob('dask-*')))}.log", "w")  # noqa: SIM115
        return subprocess.Popen(
            ["dask", *args, "--no-dashboard"], cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def add_worker(self) -> subprocess.Popen:
        worker = self._spawn(
            ["worker", self.address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--memory-limit", "0"]
        )
        self.workers.append(worker)
        return worker

    def wait_for(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n, timeout=60)

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        cluster.add_worker()
        cluster.add_worker()
        cluster.wait_for(2)
        yield cluster
    finally:
        cluster.close()


def repro(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = (env or smoke_env(project)) | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pipeline.repro", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def outputs(project: Path) -> dict[str, bytes]:
    """Every file the stages wrote and git would track or DVC would cache (not logs, not MLflow's store)."""
    found = {}
    for folder in ("data/prepared", "models", "results", "metrics", "plots", "reports/figures"):
        for path in sorted((project / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(project))] = path.read_bytes()
    return found


def test_the_smoke_table_on_two_dask_workers_gives_the_serial_dvc_lock_and_outputs(
    cluster: Cluster, tmp_path: Path, mnist_mirror: Path
) -> None:
    serial = smoke_project(tmp_path / "serial", mnist_mirror)
    dvc(serial, "repro", *TARGETS)
    spread = smoke_project(tmp_path / "dask", mnist_mirror)
    # MLflow migrates a new sqlite store on first use, and two stages starting at once would both try (a team
    # uses one server: README); the serial run's store was made by its first stage
    MlflowClient(tracking_uri=smoke_env(spread)["MLFLOW_TRACKING_URI"]).search_experiments()
    result = repro(spread, "--scheduler", cluster.address, *TARGETS)
    logs = "".join(p.read_text()[-2000:] for p in (spread / "logs/repro").glob("*.log"))
    assert result.returncode == 0, result.stderr[-3000:] + logs
    assert "on the Dask cluster" in result.stderr
    lock = lambda p: yaml.safe_load((p / "dvc.lock").read_text())["stages"]  # noqa: E731
    assert lock(spread) == lock(serial)
    assert outputs(spread) == outputs(serial)
    assert all((spread / f"logs/repro/{name}.log").is_file() for name in TARGETS)


def test_independent_stages_run_at_once_on_the_two_workers_and_each_is_recorded(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import repro as local_repro

    monkeypatch.chdir(tmp_path)
    make_diamond()  # b and c each wait for the other to have started: they pass only side by side
    assert local_repro.main(["--scheduler", cluster.address]) == 0
    assert set(yaml.safe_load(Path("dvc.lock").read_text())["stages"]) == {"a", "b", "c", "d"}
    assert Path("d.txt").read_text() == "firstb1firstc1"  # each command on a one-thread worker: OMP_NUM_THREADS=1
    from dvc.repo import Repo

    assert Repo(".").status() == {}


def test_an_unreachable_scheduler_is_a_clear_error_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import dask.config

    from pipeline import repro as local_repro
    from pipeline.execution import cluster

    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: echo a\n")
    monkeypatch.chdir(tmp_path)
    address = f"tcp://127.0.0.1:{free_port()}"
    assert cluster.CONNECT_TIMEOUT_S < 30, "an unreachable scheduler must be an error within seconds"
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)  # Dask retries a refused connection until the timeout
    t0 = time.monotonic()
    # No --scheduler: Dask's own setting, which DASK_SCHEDULER_ADDRESS sets when Dask is imported (here long ago)
    with dask.config.set({"scheduler-address": address}):
        try:
            code = local_repro.main([])
        except SystemExit as exit_:
            code = exit_.code
    assert code == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert address in err and "Traceback" not in err, err
    assert not (tmp_path / "dvc.lock").exists()


def test_a_stopped_coordinator_stops_the_commands_on_the_workers_and_releases_their_dvc_locks(
    cluster: Cluster, tmp_path: Path
) -> None:
    import json

    project = one_stage_project(
        tmp_path,
        "import os, time\nfrom pathlib import Path\nPath('pid').write_text(str(os.getpid()))\n"
        "while True: time.sleep(0.1)\n",
    )
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "pipeline.repro", "--scheduler", cluster.address],
        cwd=project,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project / "pid").exists():
            assert time.monotonic() < deadline and coordinator.poll() is None, "the stage never started"
            time.sleep(0.1)
        coordinator.send_signal(signal.SIGTERM)
        assert coordinator.wait(timeout=90) == 128 + signal.SIGTERM
    finally:
        coordinator.kill()
    deadline = time.monotonic() + 10
    while alive(int((project / "pid").read_text())):
        assert time.monotonic() < deadline, "the stage's command was left running on its worker"
        time.sleep(0.1)
    assert not any(json.loads((project / ".dvc/tmp/rwlock").read_text()).values())
    assert not (project / "dvc.lock").exists()


# A stage that writes its output atomically; its first run hangs (until killed), the rerun finishes.
HANG_ONCE = textwrap.dedent(
    """
    import os, time
    from pathlib import Path
    with open("attempts", "a") as f:
        f.write(f"{os.getpid()} {os.getppid()}\\n")
    if len(Path("attempts").read_text().splitlines()) == 1:
        Path("out.txt.tmp").write_text("half")
        while True:
            time.sleep(0.1)
    Path("out.txt.tmp").write_text("whole")
    os.replace("out.txt.tmp", "out.txt")
    """
)


def one_stage_project(tmp_path: Path, step: str) -> Path:
    """A DVC project (no git) whose one stage `hang` runs `step` as step.py and writes out.txt."""
    project = tmp_path / "p"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=project, check=True)
    (project / "step.py").write_text(step)
    stage = {"cmd": f"{sys.executable} step.py", "deps": ["step.py"], "outs": ["out.txt"]}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"hang": stage}}))
    return project


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_worker_killed_mid_stage_leaves_nothing_half_written_and_the_stage_reruns(
    cluster: Cluster, tmp_path: Path
) -> None:
    project = one_stage_project(tmp_path, HANG_ONCE)
    coordinator = subprocess.Popen(
        [sys.executable, "-m", "pipeline.repro", "--scheduler", cluster.address],
        cwd=project,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (project / "attempts").exists():
            assert time.monotonic() < deadline and coordinator.poll() is None, "the stage never started"
            time.sleep(0.1)
        time.sleep(0.5)
        command, worker_pid = map(int, (project / "attempts").read_text().split())
        (worker,) = [w for w in cluster.workers if w.pid == worker_pid]
        worker.send_signal(signal.SIGKILL)  # the worker dies mid-stage, as a machine would
        worker.wait()
        out, _ = coordinator.communicate(timeout=120)
    finally:
        coordinator.kill()
    assert coordinator.returncode == 0, out
    assert not alive(command), "the dead worker's command kept running"
    assert len((project / "attempts").read_text().splitlines()) == 2, "the stage ran again, once"
    assert (project / "out.txt").read_text() == "whole"
    locked = yaml.safe_load((project / "dvc.lock").read_text())["stages"]["hang"]
    assert locked["outs"][0]["size"] == len("whole")
    cluster.workers.remove(worker)
    cluster.add_worker()  # back to two for any test after this one
    cluster.wait_for(2)


RUN_CACHE_DVC_YAML = """\
stages:
  cached:
    cmd: python -c "open('ran-cached', 'a').write('x'); open('out.txt', 'w').write(open('src.txt').read().upper())"
    deps: [src.txt]
    outs: [out.txt]
  git_tracked:
    cmd: python -c "open('ran-git-tracked', 'a').write('x'); open('res.json', 'w').write('{}')"
    deps: [src.txt]
    outs:
      - res.json:
          cache: false
"""


def test_a_second_clone_restores_a_stage_from_the_shared_run_cache_without_running_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dvc.repo import Repo

    remote = tmp_path / "remote"
    clones = [tmp_path / "a", tmp_path / "b"]
    for clone in clones:  # the same dvc.yaml and inputs, no dvc.lock: B has never run anything
        clone.mkdir()
        Repo.init(str(clone), no_scm=True).close()
        (clone / "dvc.yaml").write_text(RUN_CACHE_DVC_YAML)
        (clone / "src.txt").write_text("hello\n")
        (clone / ".dvc/config").write_text(
            f"[core]\n    no_scm = True\n    remote = shared\n['remote \"shared\"']\n    url = {remote}\n"
        )
    monkeypatch.chdir(clones[0])
    with Repo(str(clones[0])) as a:
        a.reproduce()
        a.push(run_cache=True)  # dvc push --run-cache
    monkeypatch.chdir(clones[1])
    with Repo(str(clones[1])) as b:
        b.reproduce(pull=True)  # dvc repro --pull
    assert not (clones[1] / "ran-cached").exists(), "restored from the run cache, its command not run"
    assert (clones[1] / "out.txt").read_text() == "HELLO\n"
    # a stage with a `cache: false` output (a git-tracked result) has no run cache: it runs again
    assert (clones[1] / "ran-git-tracked").exists()
    lock = lambda p: yaml.safe_load((p / "dvc.lock").read_text())  # noqa: E731
    assert lock(clones[1]) == lock(clones[0])


def test_the_wide_search_on_two_dask_workers_gives_the_one_worker_rows_and_selection(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client, get_task_stream

    from pipeline import explore
    from tests.test_explore import explore_project

    # two widths: four shards, and the ties between widths (the tiny data has many) broken as one worker breaks them
    monkeypatch.chdir(explore_project(tmp_path, hidden=[12, 8]))
    explore.main(["--out", "here", "--device", "cpu", "--no-progress"])
    with Client(cluster.address) as client, get_task_stream(client) as stream:
        workers = set(client.scheduler_info()["workers"])
        explore.main(["--out", "spread", "--device", "cpu", "--scheduler", cluster.address])
    assert Path("spread/basic.csv").read_bytes() == Path("here/basic.csv").read_bytes()  # rows, statuses, test errors
    assert untimed(json.loads(Path("spread/basic.json").read_text())) == untimed(
        json.loads(Path("here/basic.json").read_text())
    )  # selection, work entries and their order
    ran = {record["key"].rsplit("-", 1)[0]: record["worker"] for record in stream.data}
    assert ran.keys() == {f"explore-{kind}-h{hidden}" for kind in ("ae", "rbm") for hidden in (12, 8)}  # one per tree
    assert set(ran.values()) == workers, "the shards ran on both workers"


def untimed(summary: dict | object) -> dict | object:
    """The search's summary without its timings, the one thing a rerun changes."""
    if not isinstance(summary, dict):
        return summary
    return {k: untimed(v) for k, v in summary.items() if k not in ("seconds", "total_seconds")}
