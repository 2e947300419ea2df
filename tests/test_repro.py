"""`python -m pipeline.repro`: a parallel `dvc repro` on a four-stage diamond in a scratch DVC project."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline import repro

# a <- src.txt; b and c <- a; d <- b, c. b and c each wait for the other to have started, so they pass only
# when they run at the same time; c fails while fail.flag exists.
STEP = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    name = sys.argv[1]
    Path(f"{name}.started").touch()
    if name == "a":
        Path("a.txt").write_text(Path("src.txt").read_text().splitlines()[0])
    elif name in ("b", "c"):
        if name == "c" and Path("fail.flag").exists():
            sys.exit(3)
        other = "c" if name == "b" else "b"
        deadline = time.monotonic() + 30
        while not Path(f"{other}.started").exists():
            if time.monotonic() > deadline:
                sys.exit(f"{other} never started beside {name}")
            time.sleep(0.05)
        Path(f"{name}.txt").write_text(Path("a.txt").read_text() + os.environ["DVC_STAGE"] + os.environ["OMP_NUM_THREADS"])
    else:
        Path("d.txt").write_text(Path("b.txt").read_text() + Path("c.txt").read_text())
    """
)


def make_diamond() -> None:
    """The diamond above as a DVC project (no git) in the current directory."""
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], check=True)
    Path("step.py").write_text(STEP)
    Path("src.txt").write_text("first\nsecond\n")

    def stage(name: str, deps: list[str]) -> dict:
        return {"cmd": f"{sys.executable} step.py {name}", "deps": ["step.py", *deps], "outs": [f"{name}.txt"]}

    stages = {
        "a": stage("a", ["src.txt"]),
        "b": stage("b", ["a.txt"]),
        "c": stage("c", ["a.txt"]),
        "d": stage("d", ["b.txt", "c.txt"]),
    }
    Path("dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    make_diamond()
    return tmp_path


def ran(*names: str) -> None:
    """Forget which stages started, so the next run shows which ones it ran."""
    for name in names:
        Path(f"{name}.started").unlink(missing_ok=True)


def started() -> set[str]:
    return {p.stem for p in Path(".").glob("*.started")}


def locked() -> set[str]:
    return set(yaml.safe_load(Path("dvc.lock").read_text())["stages"]) if Path("dvc.lock").exists() else set()


def test_runs_independent_stages_at_once_and_records_each_in_dvc_lock(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert repro.main(["-j", "2"]) == 0
    assert locked() == {"a", "b", "c", "d"}
    threads = str(max(1, (os.cpu_count() or 1) // 2))
    assert Path("d.txt").read_text() == f"firstb{threads}firstc{threads}"
    from dvc.repo import Repo

    assert Repo(".").status() == {}  # what `dvc status` says: everything current


def test_a_second_run_runs_nothing_and_a_change_reruns_only_what_it_changes(project: Path) -> None:
    assert repro.main(["-j", "2"]) == 0
    ran("a", "b", "c", "d")
    assert repro.main(["-j", "2"]) == 0
    assert started() == set()

    Path("src.txt").write_text("first\nchanged\n")  # a reruns, but a.txt comes out the same
    assert repro.main(["-j", "2"]) == 0
    assert started() == {"a"}

    ran("a")
    Path("src.txt").write_text("new first\n")
    assert repro.main(["-j", "2"]) == 0
    assert started() == {"a", "b", "c", "d"}
    assert Path("d.txt").read_text().startswith("new firstb")


def test_a_failing_stage_stops_its_dependants_only(project: Path) -> None:
    Path("fail.flag").touch()
    assert repro.main(["-j", "2"]) == 1
    assert locked() == {"a", "b"}
    assert not Path("d.txt").exists()
    assert Path("logs/repro/c.log").exists()  # every stage's output has a log, the failed one's too


def test_targets_limit_the_run_to_them_and_their_upstream_and_dry_runs_nothing(project: Path) -> None:
    assert repro.main(["--dry", "d"]) == 0
    assert started() == set() and locked() == set()
    Path("fail.flag").touch()  # c would fail, but only a is asked for
    assert repro.main(["-j", "1", "a"]) == 0
    assert locked() == {"a"}


def test_bad_arguments_are_clear_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        repro.main(["-j", "0"])
    assert "--jobs must be at least 1, got 0" in capsys.readouterr().err
    assert repro.main(["no-such-stage"]) == 2
    assert "no-such-stage" in capsys.readouterr().err


def test_the_cores_are_split_between_the_workers_unless_omp_num_threads_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    assert repro.stage_env(4)["OMP_NUM_THREADS"] == "4"
    assert repro.stage_env(32)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert repro.stage_env(4)["OMP_NUM_THREADS"] == "3"


@contextlib.contextmanager
def repro_of_a_in_another_process() -> Iterator[subprocess.Popen]:
    """`python -m pipeline.repro a` in another process, given once it has started stage a; killed at the end."""
    env = dict(os.environ, PYTHONPATH=str(Path(repro.__file__).parents[1]))
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.repro", "a"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not Path("a.started").exists():
            assert time.monotonic() < deadline and process.poll() is None, "the other pipeline.repro never started a"
            time.sleep(0.1)
        yield process
    finally:
        process.kill()


def test_a_stage_another_process_is_running_is_waited_for_not_run_twice(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    Path("step.py").write_text(
        "import time\nfrom pathlib import Path\nPath('a.started').touch()\n"
        "with open('runs', 'a') as f: f.write('a')\n"
        "while not Path('go').exists(): time.sleep(0.05)\nPath('a.txt').write_text('first')\n"
    )
    with repro_of_a_in_another_process() as other:
        monkeypatch.setattr(repro, "BUSY_RECHECK_S", 0.5)
        threading.Timer(3, lambda: Path("go").touch()).start()
        assert repro.main(["a"]) == 0  # waits while the other runs a, then finds it current
        assert other.wait(timeout=60) == 0
    assert Path("runs").read_text() == "a"
    assert locked() == {"a"}


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, which PID 1 in a container may never reap, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_stopped_run_stops_its_stages_and_releases_their_dvc_locks(project: Path) -> None:
    import json
    import signal

    Path("step.py").write_text(
        "import os, time\nfrom pathlib import Path\nPath('a.pid').write_text(str(os.getpid()))\n"
        "Path('a.started').touch()\nwhile True: time.sleep(0.05)\n"
    )
    with repro_of_a_in_another_process() as run:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while alive(int(Path("a.pid").read_text())):
        assert time.monotonic() < deadline, "the stage's command was left running"
        time.sleep(0.1)
    holders = json.loads(Path(".dvc/tmp/rwlock").read_text())
    assert not any(holders.values()), holders  # nothing left locked: a dead pid would keep the files busy
    assert locked() == set()


def test_a_stage_starts_without_its_old_outputs_as_under_dvc_repro(project: Path) -> None:
    # one stage writing a folder with a file named after its input: a rerun must not keep the old file
    step = "import sys; from pathlib import Path; Path('out').mkdir(exist_ok=True); Path('out', Path('src.txt').read_text().split()[0]).touch()"
    stages = {"w": {"cmd": f'{sys.executable} -c "{step}"', "deps": ["src.txt"], "outs": [{"out": {"cache": False}}]}}
    Path("dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    assert repro.main(["-j", "1"]) == 0
    assert sorted(p.name for p in Path("out").iterdir()) == ["first"]
    Path("src.txt").write_text("again\n")
    assert repro.main(["-j", "1"]) == 0
    assert sorted(p.name for p in Path("out").iterdir()) == ["again"]
    from dvc.repo import Repo

    assert Repo(".").status() == {}
