"""python -m pipeline.relock records the code deps a stage declares now, and nothing else."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline.core.errors import StageError
from pipeline.relock import moved_params, relocked


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


# --moved-params: a stage whose declared params keys moved gets them with their values now; one whose keys stayed
# keeps its entry, whatever its values.

FLAT = {"a1": {"stack": "a", "layers": 1}, "a3": {"stack": "a", "layers": 3}, "b3": {"stack": "b", "layers": 3}}
GROUPED = {"a": {"a1": {"layers": 1}, "a3": {"layers": 3}}, "b": {"b3": {"layers": 3}}}


def params_entry(params: dict) -> dict:
    return {"cmd": "c", "deps": [{"path": "d", "md5": "x"}], "params": {"params.yaml": params}, "outs": [{"path": "o"}]}


def test_moved_params_get_the_declared_keys_and_values_in_dvc_lock_s_order() -> None:
    lock = {"schema": "2.0", "stages": {"s": params_entry({"seed": 1, "models": FLAT}), "gone": params_entry({})}}
    declared = {"s": {"params.yaml": {"seed": 1, "models.a": GROUPED["a"]}, "other.yaml": {"lr": 0.1}}}
    new, changed = moved_params(lock, declared)
    assert changed == ["s"]
    entry = new["stages"]["s"]
    assert list(entry) == ["cmd", "deps", "params", "outs"]
    assert entry["params"] == {"params.yaml": {"models.a": GROUPED["a"], "seed": 1}, "other.yaml": {"lr": 0.1}}
    assert list(entry["params"]) == ["params.yaml", "other.yaml"], "params.yaml first, as DVC writes them"
    assert list(entry["params"]["params.yaml"]) == ["models.a", "seed"], "keys sorted, as DVC writes them"
    assert entry["deps"] == [{"path": "d", "md5": "x"}] and entry["outs"] == [{"path": "o"}] and entry["cmd"] == "c"
    assert new["stages"]["gone"] == params_entry({}), "a stage dvc.yaml no longer has is left alone"
    assert moved_params(new, declared)[1] == [], "a second run changes nothing"


def test_a_stage_whose_keys_stayed_is_never_touched_even_when_its_values_changed() -> None:
    lock = {"stages": {"s": params_entry({"seed": 1, "models": FLAT})}}
    new, changed = moved_params(lock, {"s": {"params.yaml": {"seed": 2, "models": GROUPED}}})
    assert changed == [] and new["stages"]["s"] == params_entry({"seed": 1, "models": FLAT})


def test_params_declared_first_or_no_longer_are_placed_or_dropped() -> None:
    bare = {"cmd": "c", "deps": [], "outs": [{"path": "o"}]}
    new, changed = moved_params({"stages": {"s": dict(bare)}}, {"s": {"params.yaml": {"seed": 1}}})
    assert changed == ["s"] and list(new["stages"]["s"]) == ["cmd", "deps", "params", "outs"]
    new, changed = moved_params(new, {"s": {}})
    assert changed == ["s"] and new["stages"]["s"] == bare


DVC_YAML = """stages:
  fit:
    matrix:
      stack: [a, b]
    cmd: echo ${item.stack} > fit-${item.stack}.txt
    params: [seed, "MODELS"]
    outs: ["fit-${item.stack}.txt"]
  report:
    cmd: echo report > report.txt
    params: [models]
    outs: [report.txt]
"""


def test_relocked_moved_params_are_what_dvc_records_and_only_they_stop_being_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a real DVC project: fit@<stack> declares `models` then `models.<stack>` (the models grouped by stack); after
    `--moved-params` DVC finds fit@a and fit@b up to date, and report, whose key `models` stayed but whose value is now
    grouped, still stale."""
    import json
    import subprocess
    import sys

    import yaml

    from pipeline import relock

    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], check=True)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML.replace("MODELS", "models"))
    flat = {k: {**m, "lr": [0.1, 0.025]} for k, m in FLAT.items()}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": 1, "models": flat}, sort_keys=False))
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], check=True)

    def status() -> dict:
        run = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], capture_output=True, text=True)
        return json.loads(run.stdout)

    assert status() == {}
    grouped = {s: {k: {**m, "lr": [0.1, 0.025]} for k, m in models.items()} for s, models in GROUPED.items()}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": 1, "models": grouped}, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text(DVC_YAML.replace("MODELS", "models.${item.stack}"))
    assert set(status()) == {"fit@a", "fit@b", "report"}
    assert relock.main(["--moved-params", "--dry"]) == 0 and set(status()) == {"fit@a", "fit@b", "report"}
    assert relock.main(["--moved-params"]) == 0
    assert status() == {"report": [{"changed deps": {"params.yaml": {"models": "modified"}}}]}
    locked = yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]
    assert locked["fit@a"]["params"] == {"params.yaml": {"models.a": grouped["a"], "seed": 1}}
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q", "--force", "--single-item", "fit@b"], check=True)
    assert yaml.safe_load((tmp_path / "dvc.lock").read_text())["stages"]["fit@b"] == locked["fit@b"], (
        "what dvc repro records when it reruns fit@b is what relock wrote"
    )
