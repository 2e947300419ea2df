"""Bad input a user meets in the stages and the gate, each case: its input, the exit code and the words the message
must contain. The harness (the case runner, the setups, the tiny project) is `tests/faults.py`; the faults of the
tools, the reports and the machine have their own files beside this one (`tests/test_faults_*.py`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.faults import (
    Case,
    check_case,
    make_base_project,
    npy,
    params_edit,
    remove,
    report_csv,
    set_key,
    torch_bytes,
    truncate,
    write,
)

PRETRAIN = ["--dataset", "basic", "--stack", "sda"]
SDA_PT = "models/pretrain/basic/sda.pt"
STAGE = "pipeline.stages.{}".format

CASES = [
    # The params schema
    Case("params-missing", STAGE("pretrain"), ["--params", "nope.yaml", *PRETRAIN], ["nope.yaml", "not found"]),
    Case(
        "params-not-yaml",
        STAGE("pretrain"),
        PRETRAIN,
        ["params.yaml", "not valid YAML"],
        write("params.yaml", b"seed: [1, 2\nvincent: {"),
    ),
    Case(
        "params-unknown-key",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.pretrian"],
        params_edit(set_key("vincent.pretrian", {"hidden": [8]})),
    ),
    Case("params-seed-type", STAGE("pretrain"), PRETRAIN, ["seed", "abc"], params_edit(set_key("seed", "abc"))),
    Case("params-seed-negative", STAGE("pretrain"), PRETRAIN, ["seed", "-1"], params_edit(set_key("seed", -1))),
    Case(
        "params-eta-range",
        STAGE("finetune"),
        PRETRAIN,
        ["vincent.finetune.eta", "2"],
        params_edit(set_key("vincent.finetune.eta", 1)),
    ),
    Case(
        "params-lr-negative",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.stacks.sda.lr", "-0.1"],
        params_edit(set_key("vincent.stacks.sda.lr", [-0.1])),
    ),
    Case(
        "params-empty-grid",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.stacks.sda.epochs"],
        params_edit(set_key("vincent.stacks.sda.epochs", [])),
    ),
    Case(
        "params-device",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.device", "tpu"],
        params_edit(set_key("vincent.device", "tpu")),
    ),
    Case(
        "params-row-unknown-stack",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.rows.basic.stacks", "saa"],
        params_edit(set_key("vincent.rows.basic.stacks.saa", {"lr": [0.1]})),
    ),
    Case(
        "params-row-misspelt",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.rows.basic", "finetun"],
        params_edit(set_key("vincent.rows.basic.finetun", {})),
    ),
    Case(
        "params-row-noise-on-rbm",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.rows.basic.stacks.dbn", "noise"],
        params_edit(set_key("vincent.rows.basic.stacks.dbn", {"noise": [0.25]})),
    ),
    Case(
        "params-noise-above-one",
        STAGE("pretrain"),
        PRETRAIN,
        ["vincent.stacks.sda.noise", "1.5"],
        params_edit(set_key("vincent.stacks.sda.noise", [1.5])),
    ),
    Case(
        "params-check-negative",
        "pipeline.check",
        ["--report", "report.csv"],
        ["check.allowed_excess_pct", "-1"],
        lambda p: (report_csv()(p), params_edit(set_key("check.allowed_excess_pct", {"SdA-3": -1}))(p)),
    ),
    # The command line
    Case(
        "cli-unknown-dataset",
        STAGE("pretrain"),
        ["--dataset", "mnist", "--stack", "sda"],
        ["--dataset", "'mnist'", "vincent.datasets"],
    ),
    Case(
        "cli-unknown-stack",
        STAGE("pretrain"),
        ["--dataset", "basic", "--stack", "sdae"],
        ["--stack", "'sdae'", "vincent.stacks"],
    ),
    Case(
        "cli-stack-the-row-does-not-run",
        STAGE("finetune"),
        ["--dataset", "basic", "--stack", "sda"],
        ["--stack", "'sda'", "vincent.rows.basic.stacks", "the stacks the row runs", "['dbn']"],
        params_edit(set_key("vincent.rows.basic.stacks", {"dbn": {}})),
    ),
    Case("cli-missing-argument", STAGE("finetune"), ["--dataset", "basic"], ["--stack", "required"]),
    Case(
        "params-calibration-missing",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        ["benchmarks.datasets.rect.calibration", "reports/calibration/rect.md", "not found"],
        params_edit(set_key("benchmarks.datasets.rect.calibration", "reports/calibration/rect.md")),
    ),
    Case(
        "params-calibration-published",
        STAGE("benchmark"),
        ["--dataset", "rect"],
        ["benchmarks.datasets.rect", "generated datasets only"],
        params_edit(set_key("benchmarks.datasets.rect", {"source": "published", "calibration": "x.md"})),
    ),
    Case(
        "cli-benchmark-not-listed",
        STAGE("benchmark"),
        ["--dataset", "convex"],
        ["--dataset", "'convex'", "benchmarks.datasets"],
    ),
    Case(
        "cli-extend-batch",
        "pipeline.extend",
        ["--dataset", "basic", "--stack", "sda", "--finetune-batch-size", "0"],
        ["--finetune-batch-size 0", "positive"],
    ),
    # Damaged prepared data
    Case(
        "data-truncated",
        STAGE("pretrain"),
        PRETRAIN,
        ["data/prepared/basic/x_train.npy", "truncated"],
        truncate("data/prepared/basic/x_train.npy", 1000),
    ),
    Case(
        "data-not-npy",
        STAGE("pretrain"),
        PRETRAIN,
        ["data/prepared/basic/x_valid.npy", "cannot be read"],
        write("data/prepared/basic/x_valid.npy", b"this is not an array\n" * 50),
    ),
    Case(
        "data-missing-file",
        STAGE("pretrain"),
        PRETRAIN,
        ["data/prepared/basic/y_train.npy", "not found"],
        remove("data/prepared/basic/y_train.npy"),
    ),
    Case(
        "data-missing-folder",
        STAGE("finetune"),
        PRETRAIN,
        ["data/prepared/basic/x_train.npy", "not found"],
        remove("data/prepared/basic"),
    ),
    Case(
        "data-wrong-dtype",
        STAGE("pretrain"),
        PRETRAIN,
        ["data/prepared/basic/x_train.npy", "float64", "uint8"],
        write("data/prepared/basic/x_train.npy", npy(np.zeros((120, 784)))),
    ),
    Case(
        "data-label-count",
        STAGE("pretrain"),
        PRETRAIN,
        ["data/prepared/basic/y_valid.npy", "40 integer labels"],
        write("data/prepared/basic/y_valid.npy", npy(np.zeros(39, dtype=np.uint8))),
    ),
    # Damaged model files
    Case(
        "model-truncated",
        STAGE("finetune"),
        PRETRAIN,
        [SDA_PT, "truncated", "pretrain@basic-sda"],
        write(SDA_PT, torch_bytes({"candidates": [{"name": "x", "weights": [torch.zeros(8, 8)]}]})[:300]),
    ),
    Case("model-garbage", STAGE("evaluate"), PRETRAIN, [SDA_PT, "cannot be read"], write(SDA_PT, b"\x00garbage" * 64)),
    Case(
        "model-wrong-layout",
        STAGE("finetune"),
        PRETRAIN,
        [SDA_PT, "lacks ['candidates']", "pretrain@basic-sda"],
        write(SDA_PT, torch_bytes({"weights": []})),
    ),
    Case("model-missing", STAGE("finetune"), PRETRAIN, [SDA_PT, "not found", "pretrain@basic-sda"]),
    Case(
        "model-finetuned-layout",
        STAGE("evaluate"),
        PRETRAIN,
        ["models/finetune/basic/sda/sda3.pt", "lacks", "finetune@basic-sda"],
        lambda p: (
            write(SDA_PT, torch_bytes({"candidates": []}))(p),
            write("models/finetune/basic/sda/sda3.pt", torch_bytes({"sizes": [784, 10]}))(p),
        ),
    ),
    # Training that cannot succeed
    Case(
        "pretrain-all-diverged",
        STAGE("pretrain"),
        PRETRAIN,
        ["every candidate", "diverged", "vincent.stacks.sda"],
        params_edit(set_key("vincent.stacks.sda.lr", [1.0e8])),
    ),
    # The gate's inputs
    Case(
        "gate-cell-not-number",
        "pipeline.check",
        ["--report", "report.csv"],
        ["report.csv, line 2", "error_pct 'abc'", "not a number"],
        report_csv("abc"),
    ),
    Case(
        "gate-missing-column",
        "pipeline.check",
        ["--report", "report.csv"],
        ["report.csv", "paper_error_pct"],
        report_csv(header="dataset,model,error_pct,ci95_pct,paper"),
    ),
    Case("gate-report-missing", "pipeline.check", ["--report", "nothing.csv"], ["nothing.csv", "not found"]),
    Case(
        "gate-report-empty",
        "pipeline.check",
        ["--report", "report.csv"],
        ["report.csv", "not a readable CSV"],
        write("report.csv", b""),
    ),
    Case(
        "gate-reference-not-number",
        "pipeline.check",
        ["--report", "report.csv", "--reference", "ref.csv"],
        ["ref.csv, line 3", "error_pct '2,9'"],
        lambda p: (
            report_csv()(p),
            write("ref.csv", b'dataset,model,error_pct\nbasic,SdA-3,3.1\nbasic,DBN-1,"2,9"\n')(p),
        ),
    ),
    # The tracking server
    Case(
        "tracking-unknown-scheme",
        STAGE("pretrain"),
        PRETRAIN,
        ["MLFLOW_TRACKING_URI", "ftp://", "sqlite:///"],
        env={"MLFLOW_TRACKING_URI": "ftp://store.example/mlflow"},
    ),
    Case(
        "tracking-dead-server",
        STAGE("pretrain"),
        PRETRAIN,
        ["http://127.0.0.1:", "does not answer", "Start it"],
        env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:{port}"},
    ),
]


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    return make_base_project(tmp_path_factory.mktemp("bad-inputs") / "base")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_stops_with_a_clear_message(
    case: Case, base_project: Path, tmp_path: Path, monkeypatch, capsys, isolated_mlflow, mlflow_store
):
    check_case(case, base_project, tmp_path, monkeypatch, capsys, mlflow_store)


def test_the_suite_covers_every_kind_of_input() -> None:
    kinds = {c.id.split("-")[0] for c in CASES}
    assert {"params", "cli", "data", "model", "gate", "tracking", "pretrain"} <= kinds
    assert len(CASES) >= 30


def test_the_fault_suites_hold_at_least_80_cases() -> None:
    """Every `CASES` of this file and of tests/test_faults_*.py: the issue's floor, and no id used twice."""
    import importlib

    suites = [CASES] + [
        importlib.import_module(f"tests.{p.stem}").CASES for p in sorted(Path(__file__).parent.glob("test_faults_*.py"))
    ]
    ids = [c.id for suite in suites for c in suite]
    assert len(suites) >= 5 and len(ids) >= 80, f"{len(ids)} cases in {len(suites)} files"
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
