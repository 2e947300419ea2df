"""A DVC remote round trip: push in one clone, pull in a fresh one, and DVC sees nothing to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import dvc, smoke_project

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True
    )


def test_push_in_one_clone_and_pull_in_a_fresh_one(tmp_path: Path, mnist_mirror: Path) -> None:
    first = smoke_project(tmp_path / "first", mnist_mirror)
    dvc(first, "repro", "prepare")
    remote = tmp_path / "remote"
    dvc(first, "remote", "add", "--default", "local", str(remote))
    git(first, "add", "-A")
    git(first, "commit", "-q", "-m", "prepared data")
    dvc(first, "push", "prepare")

    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(first), str(fresh))
    assert not (fresh / "data/prepared").exists()
    dvc(fresh, "pull", "prepare")  # the stage that ran (a full run pushes and pulls everything)
    for split in ("train", "valid", "test"):
        name = f"data/prepared/basic/x_{split}.npy"
        assert (fresh / name).read_bytes() == (first / name).read_bytes()
    status = dvc(fresh, "status", "prepare")
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
