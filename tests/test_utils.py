"""The shared helpers' promises: atomic writes leave the mode a plain open() would, and nothing behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline import utils


@pytest.fixture
def group_umask():
    """umask 002, as on a machine where a team shares a DVC cache (`cache.shared group`)."""
    old = os.umask(0o002)
    utils.umask.cache_clear()
    yield
    os.umask(old)
    utils.umask.cache_clear()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_mode_open_gives(tmp_path: Path, group_umask) -> None:
    utils.write_json(tmp_path / "a.json", {"x": 1})
    utils.save_torch({"x": 1}, tmp_path / "a.pt")
    with open(tmp_path / "plain.txt", "w"):
        pass
    with utils.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("x")
    assert mode(tmp_path / "a.json") == mode(tmp_path / "a.pt") == mode(tmp_path / "plain.txt") == 0o664
    assert mode(tmp_path / "folder") == 0o775


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    utils.write_json(target, {"x": 1})
    with pytest.raises(RuntimeError), utils.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_a_curve_that_ends_early_leaves_its_later_cells_empty(tmp_path: Path) -> None:
    utils.write_history_csv(tmp_path / "h.csv", {"train_loss": [3.0], "valid_loss": [2.5, 1e9]})
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,train_loss,valid_loss", "1,3,2.5", "2,,1e+09"]
