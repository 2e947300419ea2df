"""Shared fixtures: where the raw MNIST files come from, and a copy of the project to run DVC in."""

from __future__ import annotations

import functools
import importlib.util
import os
import runpy
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

# pytest-xdist runs test files in parallel workers (pyproject addopts); on a 2-core machine two torch
# processes with two OpenMP threads each thrash. One thread per process (inherited by the stage
# subprocesses the end-to-end tests start) keeps every worker at full speed.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# DVC sets up its log handlers when first imported, on the sys.stdout of that moment. Imported first inside a test
# that captures output (capsys: an in-process `pipeline.repro` in the fault suites), they would keep that test's
# stream, closed once it ends, and every later DVC log line of the worker fails. Imported here, they keep the
# session's stream.
import dvc.logger  # noqa: E402, F401

# The longest test files first: xdist hands each worker the next file when it is free, so starting with
# the long ones (longest processing time first) keeps both workers busy to the end.
SLOWEST_FIRST = [
    "test_pipeline_e2e.py",
    "test_zoo_e2e.py",
    "test_server.py",
    "test_cluster.py",
    "test_docs.py",  # its transcripts: DVC over the full project (172 stages), ~50 s
    "test_resume.py",
    "test_data.py",
    "test_remote.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)


def mirror_root() -> Path | None:
    """A folder in torchvision layout holding MNIST/raw/*.gz: $PIPELINE_DATA_MIRROR, else ../shared/data."""
    for candidate in [os.environ.get("PIPELINE_DATA_MIRROR"), ROOT.parent / "shared" / "data"]:
        if candidate and (Path(candidate) / "MNIST" / "raw").is_dir():
            return Path(candidate).resolve()
    return None


@pytest.fixture(scope="session")
def mnist_mirror(tmp_path_factory) -> Path:
    """A read-only source of the raw files; downloads once through torchvision where no mirror is present."""
    found = mirror_root()
    if found is not None:
        return found
    from torchvision import datasets

    root = tmp_path_factory.mktemp("mnist-download")
    datasets.MNIST(str(root), download=True)
    return root


SMOKE_PARAMS = ROOT / "tests/smoke_params.yaml"


def smoke_env(project: Path) -> dict[str, str]:
    """Environment of a stage or dvc command in a smoke project: its own MLflow store, no downloads."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}", "PIPELINE_OFFLINE": "1"}
    env.pop("PIPELINE_DATA_MIRROR", None)
    return env


def dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    """Run `dvc <args>` in `project`; fail the test with DVC's output if it fails."""
    result = subprocess.run(["dvc", *args], cwd=project, capture_output=True, text=True, env=smoke_env(project))
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def smoke_project(dest: Path, mirror: Path, **overrides: dict) -> Path:
    """A copy of the project with the smoke profile as params.yaml (sections updated from `overrides`)."""
    import yaml

    project = copy_project(dest)
    params = yaml.safe_load(SMOKE_PARAMS.read_text())
    params["data"]["mirrors"] = [str(mirror)]
    for section, values in overrides.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return rewire(project)


def rewire(project: Path) -> Path:
    """What `python -m pipeline.wire` writes, for a copy with params of its own: its stage items (one pretrain, finetune
    and evaluate per row and stack the row runs, one report per row) and the report's slots in dvc.yaml."""
    from pipeline import wire

    for path, text in wire.outdated(project).items():
        path.write_text(text)
    return project


@functools.cache
def docs_transcripts() -> ModuleType:
    """docs/transcripts.py as a module (a script run as `python docs/transcripts.py`, not a package)."""
    spec = importlib.util.spec_from_file_location("docs_transcripts", ROOT / "docs" / "transcripts.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def copy_project(dest: Path) -> Path:
    """Copy the tracked project files (no outputs, no data, no state) into `dest` and make it a git + DVC repo: one
    empty commit, every file untracked (docs/transcripts.py's copy_tracked)."""
    return docs_transcripts().copy_tracked(dest, outputs=False, track=False)


def tiny_prepared(
    root: Path, sizes: tuple[tuple[str, int], ...] = (("train", 120), ("valid", 40), ("test", 60))
) -> None:
    """A learnable synthetic `basic` under root/data/prepared (pixel density grows with the label), seeded."""
    import numpy as np

    rng = np.random.default_rng(0)
    folder = root / "data/prepared/basic"
    folder.mkdir(parents=True)
    for split, n in sizes:
        y = rng.integers(0, 10, n).astype(np.uint8)
        np.save(folder / f"x_{split}.npy", (rng.random((n, 784)) < 0.1 + 0.05 * y[:, None]).astype(np.uint8) * 255)
        np.save(folder / f"y_{split}.npy", y)


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> str:
    """One sqlite MLflow store for the in-process stage tests of a worker: its schema is made once (seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


def reset_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget MLflow's process-wide experiment (and its variable) and URI until `monkeypatch` undoes it."""
    import mlflow.tracking._tracking_service.utils as uri_state
    import mlflow.tracking.fluent as fluent

    monkeypatch.setattr(fluent, "_active_experiment_id", None)
    monkeypatch.setattr(uri_state, "_tracking_uri", None)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)


@pytest.fixture(autouse=True)
def isolated_mlflow(monkeypatch):
    """A stage run in a test's process sets MLflow's process-wide experiment (and its variable) and URI: every test
    starts without them and leaves none behind, so no test depends on which ran before it in its worker."""
    reset_mlflow(monkeypatch)


def run_entry_point(module: str, argv: list[str]) -> int:
    """Run `python -m module argv...` in this process; its exit code (an uncaught exception fails the test)."""
    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        pytest.fail(f"python -m {module} {' '.join(argv)} raised instead of exiting:\n{traceback.format_exc()}")
    finally:
        sys.argv = saved
    return 0


def run_here(project: Path, module: str, *argv: str, env: Mapping[str, str]) -> int:
    """`python -m module argv...` run in this process, in `project`, with `env` set: its exit code.

    A stage's process spends seconds importing torch, MLflow and scikit-learn; a test that needs no process of its
    own (no kill, no fresh interpreter) saves them here, where the worker has imported them once.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        for key, value in env.items():
            patch.setenv(key, value)
        reset_mlflow(patch)
        return run_entry_point(module, list(argv))
