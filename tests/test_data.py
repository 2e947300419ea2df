"""The prepare stage: raw-file checks, the splits, byte-identical outputs, safety of good outputs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.data.arrays import DataFileError
from pipeline.data.mnist import load_raw, split_indices, stage_raw_files
from pipeline.params import BasicSplit, FullSplit
from tests.conftest import run_here

ROOT = Path(__file__).resolve().parents[1]
FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


@pytest.fixture(autouse=True)
def offline(monkeypatch) -> None:
    monkeypatch.setenv("PIPELINE_OFFLINE", "1")
    monkeypatch.delenv("PIPELINE_DATA_MIRROR", raising=False)


def make_mirror(src: Path, dest: Path, skip: str | None = None, truncate: str | None = None) -> Path:
    raw = dest / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in FILES:
        if name == skip:
            continue
        data = (src / "MNIST" / "raw" / name).read_bytes()
        (raw / name).write_bytes(data[: len(data) // 2] if name == truncate else data)
    return dest


def test_missing_raw_file_is_named(tmp_path: Path, mnist_mirror: Path) -> None:
    mirror = make_mirror(mnist_mirror, tmp_path / "mirror", skip="train-labels-idx1-ubyte.gz")
    with pytest.raises(DataFileError, match="train-labels-idx1-ubyte.gz: missing"):
        stage_raw_files("mnist", tmp_path / "root", [str(mirror)])


def test_truncated_gz_is_named_not_a_gzip_traceback(tmp_path: Path, mnist_mirror: Path) -> None:
    mirror = make_mirror(mnist_mirror, tmp_path / "mirror", truncate="t10k-images-idx3-ubyte.gz")
    with pytest.raises(DataFileError) as info:
        load_raw("mnist", tmp_path / "root", [str(mirror)])
    assert "t10k-images-idx3-ubyte.gz: md5" in str(info.value)
    assert "truncated or corrupted" in str(info.value)
    assert not (tmp_path / "root" / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").exists()


def test_corrupted_file_already_in_root_is_named(tmp_path: Path, mnist_mirror: Path) -> None:
    root = make_mirror(mnist_mirror, tmp_path / "root")
    target = root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    data = bytearray(target.read_bytes())
    data[5000] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataFileError, match=str(target)):
        stage_raw_files("mnist", root, [str(mnist_mirror)])


def test_mirror_serves_torchvision_and_counts_match(tmp_path: Path, mnist_mirror: Path) -> None:
    x, y = load_raw("mnist", tmp_path / "root", [str(mnist_mirror)])
    assert x.shape == (70_000, 784) and x.dtype == np.uint8
    assert np.bincount(y[:60_000]).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert int(x[60_000:].sum(dtype=np.int64)) == 264_923_200


def test_fashion_mnist_is_selectable_the_same_way(tmp_path: Path, mnist_mirror: Path) -> None:
    if not (mnist_mirror / "FashionMNIST" / "raw").is_dir():
        pytest.skip("no Fashion-MNIST in the mirror")
    x, y = load_raw("fashion_mnist", tmp_path / "root", [str(mnist_mirror)])
    assert x.shape == (70_000, 784)
    assert np.bincount(y).tolist() == [7_000] * 10
    assert int(x[:60_000].sum(dtype=np.int64)) == 3_431_114_169


def test_splits_are_disjoint_seeded_and_standard() -> None:
    basic = split_indices("basic", BasicSplit(), seed=1)
    assert [len(basic[s]) for s in ("train", "valid", "test")] == [10_000, 2_000, 50_000]
    assert len(np.unique(np.concatenate(list(basic.values())))) == 62_000
    assert np.array_equal(split_indices("basic", BasicSplit(), seed=1)["test"], basic["test"])
    assert not np.array_equal(split_indices("basic", BasicSplit(), seed=2)["test"], basic["test"])
    full = split_indices("full", FullSplit(), seed=1)
    assert full["train"][-1] == 49_999 and full["valid"][0] == 50_000 and full["test"][0] == 60_000


def write_params(workdir: Path, mirror: Path, **prepare) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["mirrors"] = [str(mirror)]
    params["prepare"]["basic"] = {"train": 500, "valid": 100, "test": 400}
    params["prepare"]["full"] = {"train": 500, "valid": 100, "test": 300}
    params["prepare"].update(prepare)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def prepare_env(workdir: Path) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir.parent / 'mlflow.db'}"}  # one store for the test's workdirs


def run_prepare(workdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.stages.prepare"],
        cwd=workdir,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **prepare_env(workdir)},
    )


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.npy"))}


@pytest.mark.slow
def test_prepare_is_byte_identical_and_a_failed_rerun_keeps_good_outputs(
    tmp_path: Path, mnist_mirror: Path, capsys
) -> None:
    # One run in a fresh interpreter, one in this one: the same bytes whatever the process (hash seed, imports).
    first, second = tmp_path / "a", tmp_path / "b"
    for workdir in (first, second):
        workdir.mkdir()
        write_params(workdir, mnist_mirror)
    result = run_prepare(first)
    assert result.returncode == 0, result.stderr
    assert run_here(second, "pipeline.stages.prepare", env=prepare_env(second)) == 0
    for name in ("basic", "full"):
        a, b = digests(first / "data/prepared" / name), digests(second / "data/prepared" / name)
        assert len(a) == 9 and a == b

    # A rerun that fails (raw file truncated in the data root) must leave the good outputs as they were.
    before = digests(first / "data/prepared/basic")
    gz = first / "data/raw/MNIST/raw/train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:1000])
    shutil.rmtree(first / "data/raw/MNIST/raw/train-images-idx3-ubyte", ignore_errors=True)
    (first / "data/raw/MNIST/raw/train-images-idx3-ubyte").unlink(missing_ok=True)
    write_params(first, mnist_mirror, basic={"train": 600, "valid": 100, "test": 400})
    capsys.readouterr()
    assert run_here(first, "pipeline.stages.prepare", env=prepare_env(first)) == 2
    stderr = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz: md5" in stderr and "Traceback" not in stderr
    assert digests(first / "data/prepared/basic") == before
    leftovers = [p.name for p in (first / "data/prepared").iterdir() if p.name.startswith(".")]
    assert leftovers == []
