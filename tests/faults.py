"""The harness of the bad-input suites (`tests/test_bad_inputs.py`, `tests/test_faults_*.py`).

A `Case` runs a real entry point (`python -m pipeline.stages.<stage>`, a tool) in-process through runpy, in its own
copy of a tiny project, and `check_case` asserts three things: the exit code, a message naming the file, key or
value and what was expected, with no traceback; and that every file that existed before the case is byte-identical
after it, with no file added (nothing half-written, nothing lost).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from tests.conftest import SMOKE_PARAMS, run_entry_point, tiny_prepared

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class Case:
    id: str
    module: str
    argv: list[str]
    words: list[str]
    setup: Setup = lambda project: None
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)


# --- what a case changes in its project --------------------------------------------------------------------


def params_edit(edit: Callable[[dict], None]) -> Setup:
    def setup(project: Path) -> None:
        params = yaml.safe_load((project / "params.yaml").read_text())
        edit(params)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    return setup


def write(rel: str, data: bytes) -> Setup:
    def setup(project: Path) -> None:
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(data)

    return setup


def truncate(rel: str, keep: int) -> Setup:
    def setup(project: Path) -> None:
        path = project / rel
        path.write_bytes(path.read_bytes()[:keep])

    return setup


def remove(rel: str) -> Setup:
    def setup(project: Path) -> None:
        target = project / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()

    return setup


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def torch_bytes(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def report_csv(cell: str = "3.10", header: str = "dataset,model,error_pct,ci95_pct,paper_error_pct") -> Setup:
    rows = f"{header}\nbasic,SdA-3,{cell},0.15,2.80\nbasic,SVM_rbf,3.03,0.15,3.03\n"
    return write("report.csv", rows.encode())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_key(path: str, value: object) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        *parents, last = path.split(".")
        node = params
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def make_base_project(project: Path) -> Path:
    """params.yaml of the smoke profile (one basic row) and a tiny prepared `basic`."""
    project.mkdir(parents=True)
    params = yaml.safe_load(SMOKE_PARAMS.read_text())
    params["vincent"]["datasets"] = ["basic"]
    params["vincent"]["rows"] = {"basic": params["vincent"]["rows"]["basic"]}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    tiny_prepared(project)
    return project


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def check_case(case: Case, base_project: Path, tmp_path: Path, monkeypatch, capsys, mlflow_store: str) -> str:
    """Run `case` in a copy of `base_project`; assert its exit code, words, no traceback, no file changed, < 30 s.

    Returns the message (stderr and stdout) for a test's further checks."""
    project = tmp_path / "project"
    shutil.copytree(base_project, project)
    case.setup(project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)  # outside the project
    monkeypatch.setenv("PIPELINE_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(port=closed_port()))
    before = snapshot(project)
    start = time.perf_counter()
    code = run_entry_point(case.module, case.argv)
    seconds = time.perf_counter() - start
    out = capsys.readouterr()
    message = out.err + out.out
    assert code == case.code, f"exit {code}, expected {case.code}:\n{message}"
    assert "Traceback" not in message, message
    for word in case.words:
        assert word in message, f"{word!r} not in the message:\n{message}"
    assert snapshot(project) == before, "files changed, added or removed by a failed run"
    assert seconds < 30, f"took {seconds:.0f} s to fail"
    return message
