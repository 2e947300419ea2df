"""python -m pipeline.relock records the code deps a stage declares now, and nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.core.errors import StageError
from pipeline.relock import relocked


def entry(deps: list[dict], cmd: str = "python -m pipeline.stages.x") -> dict:
    return {"cmd": cmd, "deps": deps, "params": {"params.yaml": {"seed": 1}}, "outs": [{"path": "out", "md5": "o"}]}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pipeline/common").mkdir(parents=True)
    (tmp_path / "pipeline/common/io.py").write_text("x = 1\n")
    return tmp_path


def test_code_deps_get_their_hash_now_and_everything_else_stays(project: Path) -> None:
    data = {"path": "data/prepared/rect", "hash": "md5", "md5": "d.dir", "size": 9, "nfiles": 2}
    old = {"path": "pipeline/utils.py", "hash": "md5", "md5": "old", "size": 3}
    lock = {"schema": "2.0", "stages": {"s": entry([data, old])}}
    declared = {"s": ("python -m pipeline.stages.x", ["pipeline/common/io.py", "data/prepared/rect"])}
    new, changed = relocked(lock, declared)
    digest = hashlib.md5(b"x = 1\n").hexdigest()
    assert changed == ["s"]
    assert new["stages"]["s"]["deps"] == [
        data,
        {"path": "pipeline/common/io.py", "hash": "md5", "md5": digest, "size": 6},
    ]
    assert new["stages"]["s"]["params"] == {"params.yaml": {"seed": 1}} and new["stages"]["s"]["outs"][0]["md5"] == "o"
    assert relocked(new, declared)[1] == [], "a second relock changes nothing"


def test_a_changed_command_or_an_unrecorded_data_dep_is_refused(project: Path) -> None:
    lock = {"stages": {"s": entry([])}}
    with pytest.raises(StageError, match="command changed"):
        relocked(lock, {"s": ("python -m pipeline.stages.y", [])})
    with pytest.raises(StageError, match="holds no hash for its dep data/new"):
        relocked(lock, {"s": ("python -m pipeline.stages.x", ["data/new"])})
    with pytest.raises(StageError, match="pipeline/nope.py, which does not exist"):
        relocked(lock, {"s": ("python -m pipeline.stages.x", ["pipeline/nope.py"])})


def test_a_dropped_data_dep_is_refused(project: Path) -> None:
    lock = {"stages": {"s": entry([{"path": "data/old", "md5": "d"}])}}
    with pytest.raises(StageError, match="no longer declares the data deps"):
        relocked(lock, {"s": ("python -m pipeline.stages.x", [])})
