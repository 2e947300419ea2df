"""The seven generated benchmarks (rot, bg-rand, bg-img, rot-bg-img, rect, rect-img, convex) and the published-file loader."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from pipeline.data.arrays import DataFileError, load_split
from pipeline.data.benchmarks import (
    DATASETS,
    PUBLISHED_SIZES,
    Sizes,
    generate,
    make_recipe,
    write_benchmark,
    write_published,
)
from pipeline.data.benchmarks.convex import class_means, is_convex
from pipeline.data.benchmarks.mnist_variants import RotRecipe, rotate, select_digits
from pipeline.data.benchmarks.published import PUBLISHED, find_zip, load_published

SMALL = Sizes(200, 50, 200)
MNIST_BASED = ("rot", "bg-rand", "bg-img", "rot-bg-img")


@pytest.fixture(scope="module")
def mnist(mnist_mirror, tmp_path_factory) -> tuple[np.ndarray, np.ndarray]:
    from pipeline.data.mnist import load_raw

    return load_raw("mnist", tmp_path_factory.mktemp("mnist_root"), [str(mnist_mirror)])


def make(name: str, mnist, sizes: Sizes = SMALL, seed: int = 0, record: dict | None = None, **recipe):
    return generate(name, sizes, seed, *mnist, record=record, **recipe)


@pytest.mark.parametrize("name", DATASETS)
def test_shapes_ranges_and_labels(name, mnist):
    record: dict = {}
    out = make(name, mnist, record=record)
    for split, n in SMALL.as_dict().items():
        x, y = out[split]
        assert x.shape == (n, 784) and x.dtype == np.uint8 and y.shape == (n,) and y.dtype == np.uint8
        assert x.max() > 0
        if name in MNIST_BASED:
            idx = record[split]["source_index"]
            assert np.array_equal(y, mnist[1][idx])  # labels are the digits' own
            assert len(np.unique(y)) == 10
        else:
            assert np.bincount(y, minlength=2).tolist() == [n - n // 2, n // 2]  # exactly balanced
        if name in ("rect", "convex"):
            assert set(np.unique(x)) <= {0, 255}
    if name in ("bg-rand", "bg-img", "rot-bg-img"):
        assert out["train"][0].min(1).mean() > 0  # a background behind every digit


def test_published_sizes_are_defaults():
    assert PUBLISHED_SIZES["rect"] == Sizes(1000, 200, 50000)
    assert PUBLISHED_SIZES["convex"] == Sizes(6000, 2000, 50000)
    assert all(PUBLISHED_SIZES[n] == Sizes(10000, 2000, 50000) for n in (*MNIST_BASED, "rect-img"))


def test_digit_selection_at_published_sizes():
    digits = select_digits(PUBLISHED_SIZES["rot"], 0, "rot")
    every = np.concatenate(list(digits.values()))
    assert len(np.unique(every)) == len(every) == 62_000  # no digit twice
    assert (np.concatenate([digits["train"], digits["valid"]]) < 60_000).all()
    assert (digits["test"] >= 60_000).sum() == 10_000  # all test-file digits, then unused train-file ones
    with pytest.raises(ValueError):
        select_digits(Sizes(50_000, 2_000, 20_000), 0, "rot")


@pytest.mark.parametrize("name", DATASETS)
def test_deterministic(name, mnist):
    sizes = Sizes(60, 20, 60)
    a, b, c = make(name, mnist, sizes, seed=3), make(name, mnist, sizes, seed=3), make(name, mnist, sizes, seed=4)
    for split in a:
        assert a[split][0].tobytes() == b[split][0].tobytes() and a[split][1].tobytes() == b[split][1].tobytes()
        assert a[split][0].tobytes() != c[split][0].tobytes()


def test_rect_geometry(mnist):
    record: dict = {}
    out = make("rect", mnist, record=record)
    for split, (x, y) in out.items():
        h, w = record[split]["height"], record[split]["width"]
        assert (np.abs(h - w) >= 3).all() and (h >= 2).all() and (h <= 28).all()
        assert np.array_equal(y, (h > w).astype(np.uint8))
        img = x.reshape(-1, 28, 28) > 0
        rows, cols = img.any(2).sum(1), img.any(1).sum(1)  # bounding box measured on the image
        assert np.array_equal(rows, h) and np.array_equal(cols, w)


def test_rect_img_geometry(mnist):
    record: dict = {}
    out = make("rect-img", mnist, record=record)
    for split, (_, y) in out.items():
        r = record[split]
        h, w = r["height"], r["width"]
        area = h * w / 784
        assert (area >= 0.25).all() and (area <= 0.75).all()
        assert (h >= 10).all() and (w >= 10).all() and (np.abs(h - w) >= 5).all()
        assert np.array_equal(y, (h > w).astype(np.uint8))
        assert (r["fg_image"] != r["bg_image"]).all()


def test_convex_classes_and_balance(mnist, capsys):
    out = make("convex", mnist, Sizes(1000, 0, 0))
    x, y = out["train"]
    on = x > 127
    assert all(is_convex(img) for img in on[y == 1][:200])
    assert not any(is_convex(img) for img in on[y == 0][:200])
    assert (on[y == 1].sum(1) >= 19).all()
    means = class_means(x, y)
    with capsys.disabled():
        print(f"\nconvex on-pixel means (1000 examples): {means}")
    assert abs(means["convex"] - means["nonconvex"]) < 0.15 * means["nonconvex"]


def test_rotation_angles_uniform_and_exact(mnist):
    record: dict = {}
    make("rot", mnist, Sizes(2000, 0, 0), record=record)
    angles = record["train"]["angle"]
    assert angles.min() >= 0 and angles.max() < 2 * math.pi
    assert stats.kstest(angles / (2 * math.pi), "uniform").pvalue > 1e-3
    digits = mnist[0][:20]
    same = rotate(digits, np.zeros(20), RotRecipe())
    half = rotate(digits, np.full(20, math.pi), RotRecipe())
    assert np.allclose(same * 255, digits)
    flipped = digits.reshape(-1, 28, 28)[:, ::-1, ::-1].reshape(20, -1)  # pi about (13.5, 13.5)
    assert np.allclose(half * 255, flipped, atol=1e-6)


def test_write_benchmark_folder_and_manifest(mnist, tmp_path):
    folder = tmp_path / "bg-img"
    manifest = write_benchmark(folder, "bg-img", Sizes(30, 10, 30), 1, *mnist)
    split = load_split(folder, "valid")
    assert split.x.shape == (10, 784) and 0 <= split.x.min() and split.x.max() <= 1
    saved = json.loads((folder / "manifest.json").read_text())
    assert saved == json.loads(json.dumps(manifest))
    assert saved["recipe"]["std_threshold"] == 0.05 and saved["recipe"]["combine"] == "max"
    assert len(saved["images"]) == 20 and all(len(i["sha256"]) == 64 for i in saved["images"])
    assert sum(sum(i["patches"].values()) for i in saved["images"]) == 70
    assert (np.load(folder / "idx_valid.npy") < 60_000).all()  # MNIST indices of the digits


def test_the_folder_depends_on_the_data_alone_not_on_package_versions(mnist, tmp_path, monkeypatch):
    """Another numpy or torch with the same arrays must not change the folder's bytes (its DVC hash): the versions
    go to provenance(), which the stage writes to results/benchmark/<dataset>.json."""
    from pipeline.data.benchmarks import manifest as manifest_module

    def folder_bytes(folder):
        return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}

    write_benchmark(tmp_path / "a", "bg-img", Sizes(20, 10, 20), 1, *mnist)
    monkeypatch.setattr(manifest_module, "package_versions", lambda: {"numpy": "0.0-other", "torch": "9.9"})
    write_benchmark(tmp_path / "b", "bg-img", Sizes(20, 10, 20), 1, *mnist)
    assert folder_bytes(tmp_path / "a") == folder_bytes(tmp_path / "b")
    assert "packages" not in json.loads((tmp_path / "a/manifest.json").read_text())
    described = manifest_module.provenance("bg-img", make_recipe("bg-img"))
    assert described["packages"]["numpy"] == "0.0-other" and len(described["rejected_fraction"]) == 20


# --- the published-file loader, on small synthetic fixtures ---------------------------------------


def write_zip(tmp_path, name: str, rows: dict[str, np.ndarray], truncate: bool = False):
    spec = PUBLISHED[name]
    path = tmp_path / spec.zip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for part, table in rows.items():
            text = "\n".join(" ".join(f"{v:.6g}" for v in row) for row in table) + "\n"
            if truncate and part == "test":
                text = text[: len(text) - 700]
            zf.writestr(getattr(spec, part), text)
    return path, hashlib.sha1(path.read_bytes()).hexdigest()


def synthetic(n: int, seed: int, labels: int = 10) -> np.ndarray:
    g = np.random.default_rng(seed)
    x = np.round(g.random((n, 784)) * 255) / 255
    return np.column_stack([x, g.integers(0, labels, n)])


def test_published_loader_reads_and_orients(tmp_path):
    train, test = synthetic(30, 0), synthetic(12, 1)
    path, sha1 = write_zip(tmp_path, "bg-img", {"train": train, "test": test})
    out = load_published("bg-img", path, expected_sha1=sha1, valid=10)
    assert [len(out[s][1]) for s in ("train", "valid", "test")] == [20, 10, 12]
    x_valid = np.rint(train[20:, :784] * 255).astype(np.uint8).reshape(-1, 28, 28)
    assert np.array_equal(out["valid"][0], x_valid.transpose(0, 2, 1).reshape(-1, 784))  # stored transposed
    assert np.array_equal(out["test"][1], test[:, 784].astype(np.uint8))
    plain = load_published("bg-img", path, expected_sha1=sha1, valid=10, transpose=False)
    assert np.array_equal(plain["valid"][0], x_valid.reshape(-1, 784))
    written = write_published(tmp_path / "prepared", "bg-img", path, expected_sha1=sha1, valid=10)
    assert written["source"] == "published" and written["zip_sha1"] == sha1


def test_published_loader_sha1_mismatch(tmp_path):
    path, _ = write_zip(tmp_path, "rect", {"train": synthetic(10, 0, 2), "test": synthetic(5, 1, 2)})
    with pytest.raises(DataFileError, match=str(path)):
        load_published("rect", path)  # the published SHA1 cannot match a fixture
    mirror = tmp_path / "mirror" / "larochelle2007"
    mirror.mkdir(parents=True)
    shutil.copy(path, mirror / path.name)
    with pytest.raises(DataFileError, match="rectangles.zip"):
        find_zip("rect", [mirror.parent])
    with pytest.raises(DataFileError, match="convex.zip: missing"):
        find_zip("convex", [tmp_path / "nowhere"])


def test_published_loader_truncated(tmp_path):
    path, sha1 = write_zip(tmp_path, "convex", {"train": synthetic(10, 0, 2), "test": synthetic(5, 1, 2)}, True)
    with pytest.raises(DataFileError, match="convex_test.amat"):
        load_published("convex", path, expected_sha1=sha1, valid=2)
    whole, _ = write_zip(tmp_path, "rot", {"train": synthetic(10, 0), "test": synthetic(5, 1)})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole.read_bytes()[:-200])
    with pytest.raises(DataFileError, match="cut.zip"):
        load_published("rot", cut, expected_sha1=None, valid=2)


@pytest.mark.slow
def test_the_benchmark_stage_writes_the_folder_its_figure_and_results(tmp_path: Path, monkeypatch) -> None:
    import argparse

    from pipeline.core.errors import StageError
    from pipeline.params import parse_params
    from pipeline.stages import benchmark

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    spec = {"sizes": {"train": 40, "valid": 10, "test": 40}}
    params = parse_params({"seed": 3, "benchmarks": {"examples_per_class": 3, "datasets": {"rect": spec}}})
    benchmark.main(params, argparse.Namespace(dataset="rect"))
    folder = tmp_path / "data/prepared/rect"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *(f"{a}_{s}.npy" for a in ("x", "y", "idx") for s in ("train", "valid", "test"))]
    )
    results = json.loads((tmp_path / "results/benchmark/rect.json").read_text())
    assert results["source"] == "generated" and results["train"]["class_counts"] == [20, 20]
    assert results["provenance"]["packages"]["numpy"] == np.__version__
    assert (tmp_path / "reports/figures/datasets/rect.png").stat().st_size > 2_000

    bad = parse_params({"benchmarks": {"datasets": {"rect": {**spec, "recipe": {"no_such_field": 1}}}}})
    with pytest.raises(StageError, match="benchmarks.datasets.rect"):
        benchmark.main(bad, argparse.Namespace(dataset="rect"))
