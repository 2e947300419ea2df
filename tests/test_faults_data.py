"""Bad data a stage is given (widths, empty splits, one class, labels outside the row's classes), damaged zoo models
and widths that cannot fit in memory: each case's input, the exit code and the words the message must contain. The
harness is `tests/faults.py`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.faults import Case, Setup, check_case, make_base_project, npy, params_edit, set_key, torch_bytes, write

PRETRAIN = ["--dataset", "basic", "--stack", "sda"]
SVM = ["--dataset", "basic", "--kernel", "rbf"]
RECT_SVM = ["--dataset", "rect", "--kernel", "rbf"]
BASIC = "data/prepared/basic/{}.npy".format
RECT = "data/prepared/rect/{}.npy".format
ZOO_PT = "models/zoo/vae.pt"
STAGE = "pipeline.stages.{}".format


def pixels(n: int, width: int = 784) -> bytes:
    return npy((np.random.default_rng(n).random((n, width)) < 0.2).astype(np.uint8) * 255)


def labels(values: list[int], dtype: type = np.uint8) -> bytes:
    return npy(np.array(values, dtype=dtype))


def rect_row(train_labels: np.ndarray | None = None) -> Setup:
    """A tiny prepared binary `rect` (60/20/30, labels 0 and 1), listed in vincent.datasets."""

    def setup(project: Path) -> None:
        rng = np.random.default_rng(1)
        for split, n in (("train", 60), ("valid", 20), ("test", 30)):
            y = rng.integers(0, 2, n).astype(np.uint8)
            if split == "train" and train_labels is not None:
                y = train_labels
            write(RECT(f"x_{split}"), pixels(n))(project)
            write(RECT(f"y_{split}"), npy(y))(project)
        params_edit(set_key("vincent.datasets", ["basic", "rect"]))(project)

    return setup


def zoo_project(model: bytes) -> Setup:
    """zoo.variants of one VAE on the tiny basic, its results written, its model file `model`."""

    def setup(project: Path) -> None:
        params_edit(set_key("zoo.dataset", "basic"))(project)
        params_edit(set_key("zoo.variants", {"vae": {"kind": "vae", "sizes": [784, 32, 2], "epochs": 1}}))(project)
        params_edit(set_key("zoo.layers", {}))(project)
        write("results/zoo/vae.json", b"{}")(project)
        write(ZOO_PT, model)(project)

    return setup


def empty(split: str) -> Setup:
    """basic's `split` with no examples (x of shape (0, 784), y of shape (0,))."""

    def setup(project: Path) -> None:
        write(BASIC(f"x_{split}"), pixels(0))(project)
        write(BASIC(f"y_{split}"), labels([]))(project)

    return setup


def basic_train_labels(values: np.ndarray) -> Setup:
    return write(BASIC("y_train"), npy(values))


ONE_CLASS = np.full(120, 3, dtype=np.uint8)
RECT_TWELVE = np.array([0, 1] * 29 + [12, 1], dtype=np.uint8)
NEGATIVE = np.array([-1] + [1] * 39, dtype=np.int8)

CASES = [
    # Widths: every split 784 pixels wide
    Case(
        "data-width-test",
        STAGE("evaluate_svm"),
        SVM,
        [BASIC("x_test"), "783 pixels", "expected 784"],
        write(BASIC("x_test"), pixels(60, 783)),
    ),
    Case(
        "data-width-train",
        STAGE("pretrain"),
        PRETRAIN,
        [BASIC("x_train"), "785 pixels", "expected 784"],
        write(BASIC("x_train"), pixels(120, 785)),
    ),
    # Empty splits
    Case(
        "data-empty-train-svm",
        STAGE("evaluate_svm"),
        SVM,
        [BASIC("x_train"), "no examples", "train split"],
        empty("train"),
    ),
    Case("data-empty-train-pretrain", STAGE("pretrain"), PRETRAIN, [BASIC("x_train"), "no examples"], empty("train")),
    Case(
        "data-empty-valid",
        STAGE("finetune"),
        PRETRAIN,
        [BASIC("x_valid"), "no examples", "valid split"],
        empty("valid"),
    ),
    Case("data-empty-test", STAGE("evaluate_svm"), SVM, [BASIC("x_test"), "no examples", "test split"], empty("test")),
    # One class in the training split
    Case(
        "data-one-class-svm",
        STAGE("evaluate_svm"),
        SVM,
        [BASIC("y_train"), "classes found: [3]", "at least two"],
        basic_train_labels(ONE_CLASS),
    ),
    Case(
        "data-one-class-finetune",
        STAGE("finetune"),
        PRETRAIN,
        [BASIC("y_train"), "classes found: [3]"],
        basic_train_labels(ONE_CLASS),
    ),
    # Labels outside the row's classes
    Case(
        "data-label-binary-svm",
        STAGE("evaluate_svm"),
        RECT_SVM,
        [RECT("y_train"), "[12]", "2 classes", "0 to 1"],
        rect_row(RECT_TWELVE),
    ),
    Case(
        "data-label-binary-pretrain",
        STAGE("pretrain"),
        ["--dataset", "rect", "--stack", "sda"],
        [RECT("y_train"), "[12]", "0 to 1"],
        rect_row(RECT_TWELVE),
    ),
    Case(
        "data-label-negative-svm",
        STAGE("evaluate_svm"),
        SVM,
        [BASIC("y_valid"), "[-1]", "0 to 9"],
        write(BASIC("y_valid"), npy(NEGATIVE)),
    ),
    Case(
        "data-label-negative-finetune",
        STAGE("finetune"),
        PRETRAIN,
        [BASIC("y_valid"), "[-1]", "0 to 9"],
        write(BASIC("y_valid"), npy(NEGATIVE)),
    ),
    Case(
        "data-label-ten-test",
        STAGE("evaluate"),
        PRETRAIN,
        [BASIC("y_test"), "[10]", "0 to 9"],
        write(BASIC("y_test"), labels([10] + [0] * 59)),
    ),
    # Damaged zoo models
    Case(
        "model-zoo-garbage",
        STAGE("zoo_report"),
        [],
        [ZOO_PT, "cannot be read", "zoo_train@vae"],
        zoo_project(b"\x00garbage" * 64),
    ),
    Case(
        "model-zoo-truncated",
        STAGE("zoo_report"),
        [],
        [ZOO_PT, "truncated", "zoo_train@vae"],
        zoo_project(torch_bytes({"model": {"w": torch.zeros(64, 64)}})[:400]),
    ),
    Case(
        "model-zoo-wrong-weights",
        STAGE("zoo_report"),
        [],
        [ZOO_PT, "does not fit", "zoo_train@vae"],
        zoo_project(torch_bytes({"model": {"w": torch.zeros(2, 2)}})),
    ),
    Case(
        "model-zoo-wrong-layout",
        STAGE("zoo_report"),
        [],
        [ZOO_PT, "lacks ['model']", "zoo_train@vae"],
        zoo_project(torch_bytes({"weights": []})),
    ),
    # Widths that cannot fit in memory
    Case(
        "memory-hidden-typo",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.pretrain.hidden = 10000000", "vincent.stacks.sda", "GB of memory", "GB available"],
        params_edit(set_key("vincent.pretrain.hidden", [10_000_000])),
    ),
    Case(
        "memory-hidden-dbn",
        STAGE("pretrain"),
        ["--dataset", "basic", "--stack", "dbn"],
        ["vincent.pretrain.hidden = 1000000000", "vincent.stacks.dbn", "GB available"],
        params_edit(set_key("vincent.pretrain.hidden", [24, 1_000_000_000])),
    ),
]


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    return make_base_project(tmp_path_factory.mktemp("faults-data") / "base")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_data_stops_with_a_clear_message(
    case: Case, base_project: Path, tmp_path: Path, monkeypatch, capsys, isolated_mlflow, mlflow_store
):
    if case.id.startswith("memory-"):  # refused before anything is allocated (else the OOM killer ends the test run)
        from pipeline.training import search

        monkeypatch.setattr(search, "pretrain_stacks", lambda *a, **k: pytest.fail("pretraining started"))
    check_case(case, base_project, tmp_path, monkeypatch, capsys, mlflow_store)


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 31360000000 bytes. Error code 12 (Cannot allocate memory)"
        ),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 29.21 GiB"),
    ],
    ids=["cpu", "cuda"],
)
def test_memory_allocator_error_names_the_key(
    error: RuntimeError, base_project: Path, tmp_path: Path, monkeypatch, capsys, isolated_mlflow, mlflow_store
):
    """memory-allocator: where the estimate passes but the allocation still fails, the message names the key."""
    from pipeline.training import search

    def out_of_memory(*args, **kwargs):
        raise error

    monkeypatch.setattr(search, "pretrain_stacks", out_of_memory)
    case = Case("memory-allocator", STAGE("pretrain"), PRETRAIN, ["vincent.pretrain.hidden = [24]", "out of memory"])
    message = check_case(case, base_project, tmp_path, monkeypatch, capsys, mlflow_store)
    assert "allocate" in message


def test_other_runtime_errors_are_not_taken_for_memory() -> None:
    from pipeline.training.grid import is_out_of_memory

    assert not is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied (60x783 and 784x24)"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_the_estimate_passes_the_table_s_own_widths() -> None:
    """The default params' stacks (1000 units, 10,000 + 2,000 examples) need well under a gigabyte each on a CPU."""
    from pipeline.params import StackParams
    from pipeline.training.grid import pretrain_bytes

    s = StackParams(kind="ae", layers=3, lr=[0.01, 0.1], epochs=[10, 40], noise=[0.1, 0.25])
    kept, training = pretrain_bytes(1000, s, 12_000, 1)
    assert 0.1e9 < kept + training < 1e9
