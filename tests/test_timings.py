"""A stage's recorded time counts the runs of it that were killed part-way and that it resumed from."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.core import timings

KILLED_RUN = """
import time
from pipeline.core import timings
with timings.heartbeat("finetune@rot-sda", every=0.05):
    print("running", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "logs" / "timings"


def test_a_killed_run_s_time_is_added_to_the_run_that_finishes_the_stage(here: Path) -> None:
    killed = subprocess.Popen([sys.executable, "-c", KILLED_RUN], stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline() == "running\n"
    time.sleep(1.0)
    killed.send_signal(signal.SIGKILL)  # as a session's end does: no handler, no cleanup
    killed.wait()
    left = json.loads((here / "finetune@rot-sda.running.json").read_text())
    assert left["seconds"] >= 0.8 and left["runs"] == 1

    with timings.heartbeat("finetune@rot-sda", every=0.05):
        record = timings.finish("finetune@rot-sda", 2.0)
    assert record["this_run_seconds"] == 2.0 and record["interrupted_runs"] == 1
    assert record["interrupted_seconds"] == left["seconds"]
    assert record["seconds"] == pytest.approx(2.0 + left["seconds"], abs=0.1)
    assert json.loads((here / "finetune@rot-sda.json").read_text()) == record
    assert not (here / "finetune@rot-sda.running.json").exists()

    with timings.heartbeat("finetune@rot-sda", every=0.05):  # the next run starts from nothing
        assert timings.finish("finetune@rot-sda", 3.0)["seconds"] == 3.0


def test_a_failed_run_leaves_its_time_and_a_stage_without_a_timing_leaves_nothing(here: Path) -> None:
    with pytest.raises(RuntimeError), timings.heartbeat("evaluate@rot-sda", every=60):
        time.sleep(0.2)
        raise RuntimeError("out of memory")
    left = json.loads((here / "evaluate@rot-sda.running.json").read_text())
    assert left["runs"] == 1 and left["seconds"] >= 0.2  # counted to the failure, not to the last beat

    with timings.heartbeat("report@rot", every=0.05):
        time.sleep(0.1)
    assert not (here / "report@rot.running.json").exists()


def test_a_stage_run_by_hand_still_counts_a_killed_run(here: Path) -> None:
    here.mkdir(parents=True)
    (here / "pretrain@rot-sda.running.json").write_text(
        json.dumps({"interrupted_seconds": 60.0, "seconds": 30.0, "runs": 2})
    )
    record = timings.finish("pretrain@rot-sda", 10.0)
    assert (record["seconds"], record["interrupted_seconds"], record["interrupted_runs"]) == (100.0, 90.0, 2)


def test_restore_puts_back_a_row_s_committed_times_but_those_of_the_stacks_it_keeps(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = here.parent.parent / "results" / "report" / "rect-img.json"
    report.parent.mkdir(parents=True)
    committed = {
        "benchmark@rect-img": 5.3,
        "pretrain@rect-img-sda": 1435.3,
        "finetune@rect-img-sda": 241.1,
        "pretrain@rect-img-cae2": 900.0,
        "evaluate_svm@rect-img-rbf": None,
    }
    report.write_text(json.dumps({"stage_seconds": committed}))
    here.mkdir(parents=True)
    (here / "pretrain@rect-img-sda.json").write_text(json.dumps({"seconds": 2000.0}))  # this machine's regeneration
    (here / "pretrain@rect-img-cae2.json").write_text(json.dumps({"seconds": 1800.0}))  # a first run here

    timings.main(["restore", "rect-img", "--keep", "cae2", "benchmark"])

    def seconds(stage: str) -> float:
        return json.loads((here / f"{stage}.json").read_text())["seconds"]

    assert seconds("pretrain@rect-img-sda") == 1435.3 and seconds("finetune@rect-img-sda") == 241.1
    assert seconds("pretrain@rect-img-cae2") == 1800.0  # kept
    assert not (here / "benchmark@rect-img.json").exists() and not (here / "evaluate_svm@rect-img-rbf.json").exists()
    assert capsys.readouterr().out.splitlines() == [
        "restored pretrain@rect-img-sda: 1435.3 s",
        "restored finetune@rect-img-sda: 241.1 s",
    ]


def test_restore_reads_the_stack_after_the_row_s_name(here: Path) -> None:
    report = here.parent.parent / "rect-img.json"  # `img` is a word of the row, not a stack of benchmark@rect-img
    report.write_text(json.dumps({"stage_seconds": {"benchmark@rect-img": 5.3, "pretrain@rect-img-img": 9.0}}))
    assert timings.restore(report, ["img"]) == {"benchmark@rect-img": 5.3}


def test_restore_names_a_report_without_stage_times(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = here.parent.parent / "results" / "report" / "rot.json"
    report.parent.mkdir(parents=True)
    report.write_text(json.dumps({"stage_seconds": {"pretrain@rot-sda": "an hour"}}))
    with pytest.raises(SystemExit) as exit_:
        timings.main(["restore", "rot"])
    assert exit_.value.code == 2 and "rot.json" in capsys.readouterr().err
    with pytest.raises(timings.DamagedFileError, match=r"rot\.json.*'an hour', not a number"):
        timings.restore(report)
    report.write_text("[]")
    with pytest.raises(timings.DamagedFileError, match=r"rot\.json: expected a row report"):
        timings.restore(report)
