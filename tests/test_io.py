"""The shared helpers' promises: atomic writes leave the mode a plain open() would, and nothing behind on failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeline.common import io as file_io


@pytest.fixture
def group_umask():
    """umask 002, as on a machine where a team shares a DVC cache (`cache.shared group`)."""
    old = os.umask(0o002)
    file_io.umask.cache_clear()
    yield
    os.umask(old)
    file_io.umask.cache_clear()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_get_the_mode_open_gives(tmp_path: Path, group_umask) -> None:
    file_io.write_json(tmp_path / "a.json", {"x": 1})
    file_io.save_torch({"x": 1}, tmp_path / "a.pt")
    with open(tmp_path / "plain.txt", "w"):
        pass
    with file_io.atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("x")
    assert mode(tmp_path / "a.json") == mode(tmp_path / "a.pt") == mode(tmp_path / "plain.txt") == 0o664
    assert mode(tmp_path / "folder") == 0o775


def test_a_failed_atomic_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    file_io.write_json(target, {"x": 1})
    with pytest.raises(RuntimeError), file_io.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == '{\n  "x": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_an_output_batch_puts_every_file_in_place_at_its_end_or_none(tmp_path: Path) -> None:
    old = tmp_path / "a.json"
    file_io.write_json(old, {"x": 1})
    with pytest.raises(RuntimeError), file_io.output_batch() as batch:
        file_io.write_json(old, {"x": 2})
        file_io.write_csv(tmp_path / "new/deep/b.csv", [{"x": 1}])
        with file_io.atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "inside.txt").write_text("x")
        assert batch.writes(old) and batch.writes(tmp_path / "new/deep/b.csv") and not batch.writes(tmp_path / "c")
        assert old.read_text() == '{\n  "x": 1\n}\n', "inside the batch the target keeps its old content"
        raise RuntimeError("a later step fails")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json"], "no temporary, no new folder left"
    assert old.read_text() == '{\n  "x": 1\n}\n'
    with file_io.output_batch():
        file_io.write_json(old, {"x": 2})
        with file_io.output_batch():  # joins the outer batch
            file_io.write_json(tmp_path / "b.json", 1)
        assert not (tmp_path / "b.json").exists()
    assert old.read_text() == '{\n  "x": 2\n}\n' and (tmp_path / "b.json").read_text() == "1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_another_thread_s_writes_are_not_part_of_a_batch(tmp_path: Path) -> None:
    import threading

    with file_io.output_batch():
        thread = threading.Thread(target=file_io.write_json, args=(tmp_path / "beat.json", 1))
        thread.start()
        thread.join()
        assert (tmp_path / "beat.json").exists()


def test_an_os_error_while_writing_names_the_target_not_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    with pytest.raises(OSError) as raised, file_io.atomic_path(target):
        raise OSError(28, "No space left on device")  # a write reports no file name
    assert (raised.value.filename, raised.value.strerror) == (
        str(target),
        "cannot be written (No space left on device)",
    )
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as raised:
        file_io.write_json(tmp_path / "file/b.json", 1)  # its folder cannot be made
    assert raised.value.filename == str(tmp_path / "file/b.json")
    with pytest.raises(OSError) as raised, file_io.atomic_dir(tmp_path / "folder") as tmp:
        raise OSError(30, "Read-only file system", str(tmp / "inside.png"))
    assert raised.value.filename == str(tmp_path / "folder/inside.png")
    with pytest.raises(FileNotFoundError) as raised, file_io.atomic_path(target):
        (tmp_path / "missing.txt").read_text()  # another file's error passes unchanged
    assert raised.value.filename == str(tmp_path / "missing.txt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_curve_that_ends_early_leaves_its_later_cells_empty(tmp_path: Path) -> None:
    file_io.write_history_csv(tmp_path / "h.csv", {"train_loss": [3.0], "valid_loss": [2.5, 1e9]})
    assert (tmp_path / "h.csv").read_text().splitlines() == ["epoch,train_loss,valid_loss", "1,3,2.5", "2,,1e+09"]
