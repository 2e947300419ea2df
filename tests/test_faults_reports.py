"""Faults of the reports and the gate: a report edited by hand (stale), a damaged dvc.lock, a row the `table` stage
cannot read, a read-only or full disk while writing. Each case exits 2 (1 where the gate rightly fails) with a message
naming the file and what was expected, no traceback, and every file as it was (the harness: `tests/faults.py`)."""

from __future__ import annotations

import errno
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import faults
from tests.conftest import ROOT, SMOKE_PARAMS, run_here
from tests.faults import Case, Setup, check_case, make_base_project, write

TABLE = "pipeline.stages.table"
ROW = "results/report/basic.csv"
ROW_TEXT = (ROOT / ROW).read_text()
LOCK = ["dvc.lock", "expected the mapping `dvc repro` writes"]


def row_edit(old: str, new: str) -> Setup:
    """The committed basic row with `old` replaced by `new` (once)."""
    assert old in ROW_TEXT
    return write(ROW, ROW_TEXT.replace(old, new, 1).encode())


def both(*setups: Setup) -> Setup:
    def setup(project: Path) -> None:
        for one in setups:
            one(project)

    return setup


# a row whose new numbers the table would show: a stage writing its outputs one by one would change them before failing
NEW_ROW = row_edit("basic,SVM_rbf,3.03,", "basic,SVM_rbf,3.10,")


def edit(rel: str, old: str, new: str) -> Setup:
    def setup(project: Path) -> None:
        text = (project / rel).read_text()
        assert old in text, f"{old!r} not in {rel}"
        (project / rel).write_text(text.replace(old, new, 1))

    return setup


# --- a real small tmpfs on a folder of the case's project (root only: skipped where mounting is not permitted) ---

MOUNTED: list[Path] = []


def mount_tmpfs(folder: Path, options: str) -> None:
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {result.stderr.strip()}")
    MOUNTED.append(folder)


def on_tmpfs(rel: str, full: bool = False, read_only: bool = False) -> Setup:
    """Move the project's folder `rel` onto a 1 MiB tmpfs, then fill it to the last byte or make it read-only."""

    def setup(project: Path) -> None:
        folder, saved = project / rel, project.parent / "saved"
        shutil.move(folder, saved)
        folder.mkdir()
        mount_tmpfs(folder, "size=1m")
        shutil.copytree(saved, folder, dirs_exist_ok=True)
        shutil.rmtree(saved)
        if full:
            with (folder / "filler").open("wb", buffering=0) as f:  # the disk's last bytes, so that any write fails
                with pytest.raises(OSError) as raised:
                    while f.write(b"\0" * 4096):
                        pass
                assert raised.value.errno == errno.ENOSPC
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)

    return setup


@pytest.fixture(autouse=True)
def unmount():
    yield
    while MOUNTED:
        subprocess.run(["umount", str(MOUNTED.pop())], check=True)


# --- the cases ------------------------------------------------------------------------------------------------

LOCK_CASES = [
    Case(
        "gate-lock-not-yaml",
        "pipeline.check",
        ["--stale"],
        [*LOCK, "not valid YAML", "line 3"],
        write("dvc.lock", b"schema: '2.0'\nstages: [table, {cmd: x\n"),
    ),
    Case("gate-lock-empty", "pipeline.check", ["--stale"], [*LOCK, "dvc.lock is empty"], write("dvc.lock", b"")),
    Case(
        "gate-lock-list",
        "pipeline.check",
        ["--stale"],
        [*LOCK, "dvc.lock holds a YAML list"],
        write("dvc.lock", b"- table\n- report@basic\n"),
    ),
    Case(
        "gate-lock-stages-list",
        "pipeline.check",
        ["--stale", "--fail-on-stale"],
        [*LOCK, "a YAML list under `stages`"],
        write("dvc.lock", b"schema: '2.0'\nstages: [table]\n"),
    ),
    Case(
        "gate-lock-binary",
        "pipeline.check",
        ["--stale"],
        [*LOCK, "not valid YAML"],
        write("dvc.lock", b"\x89PNG\r\n\x1a\n\xff\x00"),
    ),
]

# The `table` stage: each case fails before any output changes (the row CSVs are read first) or after its CSV and
# figure are written to temporaries (the times, the seeds), which output_batch then drops.
TABLE_CASES = [
    Case(
        "report-row-not-number",
        TABLE,
        [],
        [f"{ROW}, line 2 (basic, SVM_rbf)", "error_pct 'abc' is not a number", "a test error in percent"],
        row_edit("basic,SVM_rbf,3.03,", "basic,SVM_rbf,abc,"),
    ),
    Case(
        "report-row-binary",
        TABLE,
        [],
        [ROW, "not a readable CSV report"],
        write(ROW, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe" * 20),
    ),
    Case(
        "report-row-missing-column",
        TABLE,
        [],
        [ROW, "missing columns ['ci95_pct']"],
        row_edit("error_pct,ci95_pct,paper", "error_pct,ci_pct,paper"),
    ),
    Case(
        "report-row-mcnemar-not-number",
        TABLE,
        [],
        [f"{ROW}, line 3 (basic, SVM_poly)", "mcnemar_p 'p<0.01'", "expected a number"],
        row_edit(",2.05022869136164e-43", ",p<0.01"),
    ),
    Case(
        "report-row-times-not-json",
        TABLE,
        [],
        ["results/report/basic.json", "cannot be read", "rerun `dvc repro report@basic`"],
        both(NEW_ROW, write("results/report/basic.json", b'{"stage_seconds": {"prepare": 1.0,')),
    ),
    Case(
        "report-row-times-not-seconds",
        TABLE,
        [],
        ["results/report/basic.json", "stage_seconds of 'prepare' is '1 h'", "not a number of seconds"],
        both(NEW_ROW, write("results/report/basic.json", b'{"stage_seconds": {"prepare": "1 h"}}')),
    ),
    Case(
        "report-seeds-not-number",
        TABLE,
        [],
        ["reports/seeds/basic.csv, line 3 (SdA-3)", "test_error_pct '2,63' is not a number"],
        both(NEW_ROW, edit("reports/seeds/basic.csv", ",2.63,", ',"2,63",')),
    ),
]

DISK_CASES = [
    Case(
        "disk-full-reports",
        TABLE,
        [],
        ["reports/vincent2008.csv", "cannot be written", "No space left on device"],
        both(NEW_ROW, on_tmpfs("reports", full=True)),
    ),
    Case(
        "disk-readonly-reports",
        TABLE,
        [],
        ["reports/vincent2008.csv", "cannot be written", "Read-only file system"],
        on_tmpfs("reports", read_only=True),
    ),
    Case(
        "disk-readonly-results",
        "pipeline.stages.evaluate_svm",
        ["--dataset", "basic", "--kernel", "rbf"],
        ["results/evaluate/basic/svm_rbf.json", "cannot be written", "Read-only file system"],
        on_tmpfs("results", read_only=True),
    ),
]

# The gate on a DVC project whose dvc.lock records reports/vincent2008.csv (exit 1: the gate rightly fails).
STALE_CASES = [
    Case(
        "gate-stale-edited-report",
        "pipeline.check",
        ["--stale", "--fail-on-stale"],
        ["STALE REPORT", "table: output reports/vincent2008.csv modified since dvc.lock"],
        edit("reports/vincent2008.csv", "basic,SVM_rbf,3.03,", "basic,SVM_rbf,2.03,"),
        code=1,
    ),
]

CASES = LOCK_CASES + TABLE_CASES + DISK_CASES + STALE_CASES


@pytest.fixture(scope="module")
def table_project(tmp_path_factory, mlflow_store: str) -> Path:
    """The tiny project with the committed basic row, its times and seeds, and the outputs `table` wrote from them."""
    project = make_base_project(tmp_path_factory.mktemp("faults-reports") / "base")
    for rel in (ROW, "results/report/basic.json", "reports/seeds/basic.csv", "reports/reference/later_results.csv"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, project / rel)
    env = {"MLFLOW_TRACKING_URI": mlflow_store, "PIPELINE_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    assert run_here(project, TABLE, env=env) == 0
    committed = (ROOT / "reports/vincent2008.csv").read_text().splitlines(keepends=True)
    basic = "".join(line for i, line in enumerate(committed) if i == 0 or line.startswith("basic,"))
    assert (project / "reports/vincent2008.csv").read_text() == basic, "the committed table's basic row, byte for byte"
    return project


@pytest.fixture(scope="module")
def dvc_project(tmp_path_factory) -> Path:
    """A DVC project whose one stage `table` has the committed reports/vincent2008.csv as its output in dvc.lock."""
    project = tmp_path_factory.mktemp("faults-gate") / "base"
    (project / "reports").mkdir(parents=True)
    shutil.copy(SMOKE_PARAMS, project / "params.yaml")
    shutil.copy(ROOT / "reports/vincent2008.csv", project / "reports/vincent2008.csv")
    (project / "dvc.yaml").write_text(
        "stages:\n  table:\n    cmd: python -c pass\n    deps: [params.yaml]\n"
        "    outs:\n    - reports/vincent2008.csv: {cache: false, persist: true}\n"
    )
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "repro", "-q"]):
        subprocess.run(command, cwd=project, check=True, capture_output=True)
    return project


@pytest.mark.parametrize("case", LOCK_CASES + TABLE_CASES + DISK_CASES, ids=lambda c: c.id)
def test_a_fault_stops_with_a_clear_message_and_changes_nothing(
    case: Case, table_project: Path, tmp_path: Path, monkeypatch, capsys, isolated_mlflow, mlflow_store
) -> None:
    check_case(case, table_project, tmp_path, monkeypatch, capsys, mlflow_store)


def without_dvc_state(snapshot):
    """`dvc status` rewrites its lock files under .dvc/tmp: they are no output."""
    return lambda root: {k: v for k, v in snapshot(root).items() if not k.startswith(".dvc/tmp/")}


@pytest.mark.parametrize("case", STALE_CASES, ids=lambda c: c.id)
def test_the_gate_fails_on_an_output_edited_by_hand(
    case: Case, dvc_project: Path, tmp_path: Path, monkeypatch, capsys, mlflow_store
) -> None:
    monkeypatch.setattr(faults, "snapshot", without_dvc_state(faults.snapshot))
    check_case(case, dvc_project, tmp_path, monkeypatch, capsys, mlflow_store)


def stale_output(project: Path, monkeypatch, capsys, *argv: str) -> tuple[int, str]:
    monkeypatch.chdir(project)
    code = faults.run_entry_point("pipeline.check", ["--stale", *argv])
    return code, capsys.readouterr().out


def test_the_stale_check_names_an_edited_output_and_ignores_a_missing_one(
    dvc_project: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    project = shutil.copytree(dvc_project, tmp_path / "project")
    code, out = stale_output(project, monkeypatch, capsys)
    assert code == 0 and "dvc.lock matches the code and params" in out
    edit("reports/vincent2008.csv", "basic,SVM_rbf,3.03,", "basic,SVM_rbf,2.03,")(project)
    code, out = stale_output(project, monkeypatch, capsys)
    assert code == 0 and "table: output reports/vincent2008.csv modified since dvc.lock" in out, out
    (project / "reports/vincent2008.csv").unlink()  # as in a fresh clone without the output: not staleness
    code, out = stale_output(project, monkeypatch, capsys, "--fail-on-stale")
    assert code == 0 and "dvc.lock matches the code and params" in out, out


def test_the_suite_covers_the_gate_the_reports_and_the_disk() -> None:
    kinds = {c.id.split("-")[0] for c in CASES}
    assert kinds == {"gate", "report", "disk"} and len(CASES) >= 8
    assert len({c.id for c in CASES}) == len(CASES)
