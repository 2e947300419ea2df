"""The code is ruff-clean: lint rules and formatting of pyproject.toml, with the ruff version the test extra pins."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff")
    command = [exe] if exe else [sys.executable, "-m", "ruff"]
    return subprocess.run([*command, *args], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("args", [("check", "."), ("format", "--check", ".")], ids=["lint", "format"])
def test_ruff_passes(args):
    result = _ruff(*args)
    assert result.returncode == 0, (
        f"ruff {' '.join(args)} (fix with `ruff {args[0]} .`):\n{result.stdout}{result.stderr}"
    )
