"""One end-to-end `dvc repro table` of the Vincent table (two rows) on the smoke profile, with real MLflow logging.

The zoo's stages run in tests/test_zoo_e2e.py, in a project of their own (a parallel test worker).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import SMOKE_PARAMS, dvc, smoke_project

ROOT = Path(__file__).resolve().parents[1]
SMOKE = yaml.safe_load(SMOKE_PARAMS.read_text())
DATASETS = SMOKE["vincent"]["datasets"]
# The smoke profile's SdA stack on both rows, its DBN stack on rect alone: a row runs the stacks it lists
# (vincent.rows.<row>.stacks), so basic has no DBN stage and its report reads none. The DBN stack's stages run once
# (its RBM pretraining, fine-tuning and evaluation also run in-process in tests/test_joint.py): each stage process
# costs seconds of imports.
STACKS = {"basic": ["sda"], "rect": ["dbn", "sda"]}
VINCENT = {"rows": {d: {"finetune": {}, "stacks": {s: {} for s in STACKS[d]}} for d in DATASETS}}
COLUMNS = {  # per row, the columns it runs: the SVMs and its stacks' models
    d: {"SVM_rbf", "SVM_poly", *(m["table_name"] for s in STACKS[d] for m in SMOKE["vincent"]["models"][s].values())}
    for d in DATASETS
}
STAGES = [
    "prepare",
    "corrupt@basic",
    "filters",
    "table",
    *(f"benchmark@{d}" for d in DATASETS if d != "basic"),
    *(f"report@{d}" for d in DATASETS),
    *(f"evaluate_svm@{d}-{k}" for d in DATASETS for k in ("rbf", "poly")),
    *(f"{stage}@{d}-{s}" for stage in ("pretrain", "finetune", "evaluate") for d in DATASETS for s in STACKS[d]),
]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_mirror: Path) -> Path:
    project = smoke_project(tmp_path_factory.mktemp("smoke"), mnist_mirror, vincent=VINCENT)
    dvc(project, "repro", "table", "corrupt@basic")
    return project


def test_every_stage_ran(project: Path) -> None:
    locked = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert sorted(locked) == sorted(STAGES)


def test_outputs_exist(project: Path) -> None:
    for name in ("basic", "full"):
        assert (project / f"data/prepared/{name}/x_train.npy").is_file()
    assert (project / "data/corrupted/basic/masking-0.25/x_test.npy").is_file()
    assert (project / "reports/figures/prepare_samples.png").stat().st_size > 10_000
    assert (project / "reports/figures/corrupt/basic.png").stat().st_size > 10_000
    assert (project / "dvc.lock").is_file()
    for name in ("vincent_filters", "vincent_ours_vs_paper"):
        assert (project / f"reports/figures/{name}.png").stat().st_size > 5_000
    for d in DATASETS:
        for name in ("probes", "finetune_curves", "pretrain_curves", "reconstructions"):
            assert (project / f"reports/figures/vincent/{d}/{name}.png").stat().st_size > 5_000
        assert "McNemar" in (project / f"reports/vincent/{d}.md").read_text()


def test_report_has_every_column_and_the_csv_its_schema(project: Path) -> None:
    table = pd.read_csv(project / "reports/vincent2008.csv")
    assert list(table.columns) == [
        "dataset",
        "model",
        "error_pct",
        "ci95_pct",
        "paper_error_pct",
        "paper_ci95_pct",
        "delta_pct",
        "valid_error_pct",
        "mcnemar_b",
        "mcnemar_c",
        "mcnemar_p",
    ]
    assert list(table["dataset"].unique()) == DATASETS, "a row per dataset, in params order"
    sda = table["model"] == "SdA-3"
    assert (
        table[sda]["mcnemar_p"].isna().all()
        and table[~sda].dropna(subset=["error_pct"])["mcnemar_p"].between(0, 1).all()
    )
    for dataset, row in table.groupby("dataset"):
        assert list(row["model"]) == ["SVM_rbf", "SVM_poly", "DBN-1", "SAA-3", "DBN-3", "SdA-3"]
        ran = set(row.dropna(subset=["error_pct"])["model"])
        assert ran == COLUMNS[dataset], "a column for every model the row runs, and only those"
    assert (table["delta_pct"] - (table["error_pct"] - table["paper_error_pct"])).abs().max() < 0.011
    markdown = (project / "reports/vincent2008.md").read_text()
    assert "| basic |" in markdown and "| rect † |" in markdown, "generated rows are marked as substitutes"
    assert f"{sum(map(len, COLUMNS.values()))} of {6 * len(DATASETS)} cells filled" in markdown
    basic = next(line for line in markdown.splitlines() if line.startswith("| basic |"))
    assert basic.split("|")[4].strip() == "—", "basic does not run dbn: its DBN-1 cell is a dash"
    assert "| dataset | SdA-3 % | best other |" in markdown, "the claim per row, against the best other column"
    assert "## Stage time" in markdown and "| **all rows** |" in markdown
    assert "params hash" in (project / "reports/vincent/basic.md").read_text()
    for dataset in DATASETS:
        metrics = yaml.safe_load((project / f"metrics/vincent/{dataset}.json").read_text())
        assert set(metrics) == COLUMNS[dataset]
    basic_report = (project / "reports/vincent/basic.md").read_text()
    assert "`sda` ae" in basic_report and "`dbn` rbm" not in basic_report, "basic's report names its own stacks only"
    assert (
        "finetune@basic-dbn" not in basic_report
        and "finetune@rect-dbn" in (project / "reports/vincent/rect.md").read_text()
    )


def test_mlflow_has_one_parent_with_a_child_per_stage(project: Path) -> None:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("pipeline.role") == "parent"]
    children = [r for r in runs if r.data.tags.get("pipeline.role") == "stage"]
    assert len(parents) == 1
    assert sorted(r.data.tags["dvc.stage"] for r in children) == sorted(STAGES)
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert child.info.status == "FINISHED"
        assert len(child.data.tags["git.commit"]) >= 40
    by_stage = {r.data.tags["dvc.stage"]: r for r in children}
    assert by_stage["prepare"].data.params["prepare.basic.train"] == "600"
    assert by_stage["corrupt@basic"].data.params["corrupt.masking"] == "0.25"
    assert by_stage["prepare"].data.metrics["basic.train.n"] == 600
    assert "masking-0.25.changed_fraction" in by_stage["corrupt@basic"].data.metrics
    artifacts = [a.path for a in client.list_artifacts(by_stage["corrupt@basic"].info.run_id, "figures")]
    assert "figures/basic.png" in artifacts
    # Candidates are nested runs with the same metric keys, so MLflow charts compare them.
    candidates = [r for r in runs if r.data.tags.get("pipeline.role") == "candidate"]
    pretrain_id = by_stage["pretrain@basic-sda"].info.run_id
    stacks = [r for r in candidates if r.data.tags["mlflow.parentRunId"] == pretrain_id]
    assert len(stacks) == 2 and all({f"layer{k}.train_loss" for k in (1, 2, 3)} <= set(r.data.metrics) for r in stacks)
    layer1 = client.get_metric_history(stacks[0].info.run_id, "layer1.valid_loss")  # layers numbered from 1
    assert [m.step for m in layer1] == list(range(1, len(layer1) + 1))
    trial = next(
        r for r in candidates if r.data.tags["mlflow.parentRunId"] == by_stage["finetune@basic-sda"].info.run_id
    )
    curve = client.get_metric_history(trial.info.run_id, "valid_error_pct")  # error rates in percent, as in DVC
    assert [m.step for m in curve] == list(range(1, len(curve) + 1)) and len(curve) >= 2
    assert all(0 <= m.value <= 100 for m in curve) and max(m.value for m in curve) > 1
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert parents[0].info.run_name.startswith("params-")
    inputs = client.get_run(pretrain_id).inputs.dataset_inputs
    assert sorted(i.dataset.name for i in inputs) == ["basic/train", "basic/valid"]
    parent_artifacts = [a.path for a in client.list_artifacts(parents[0].info.run_id, "report")]
    assert "report/vincent2008.md" in parent_artifacts
    assert "basic.SdA-3.error_pct" in client.get_run(parents[0].info.run_id).data.metrics


def test_the_fine_tuned_network_is_an_mlflow_model_that_predicts_digits(project: Path) -> None:
    import mlflow
    import numpy as np

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    client = MlflowClient()
    runs = client.search_runs(
        [client.get_experiment_by_name("smoke").experiment_id], "tags.`dvc.stage` = 'finetune@basic-sda'"
    )
    models = mlflow.search_logged_models(experiment_ids=[runs[0].info.experiment_id], output_format="list")
    model = next(m for m in models if m.source_run_id == runs[0].info.run_id)
    info = mlflow.models.get_model_info(model.model_uri)
    assert info.signature is not None and info.saved_input_example_info is not None
    x = np.load(project / "data/prepared/basic/x_test.npy")[:20].astype(np.float32) / 255
    digits = mlflow.pyfunc.load_model(model.model_uri).predict(x)
    labels = np.load(project / "data/prepared/basic/y_test.npy")[:20]
    assert digits.shape == (20,) and set(np.unique(digits)) <= set(range(10))
    assert (digits == labels).mean() > 0.2, "the smoke network predicts better than chance"


def test_smoke_metrics_are_within_tolerance_of_the_committed_reference(project: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.check",
            "--report",
            "reports/vincent2008.csv",
            "--reference",
            str(ROOT / "tests/smoke_reference.csv"),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stale_check_names_the_stage_whose_code_changed(project: Path) -> None:
    def stale() -> str:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.check", "--stale"],
            cwd=project,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(project)},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "is current" in stale()
    script = project / "pipeline/stages/report.py"
    original = script.read_text()
    script.write_text(original + "\n# a change\n")
    try:
        out = stale()
        assert "STALE REPORT" in out and "report@rect: pipeline/stages/report.py modified" in out
        assert "pretrain@" not in out
    finally:
        script.write_text(original)


def test_second_repro_does_nothing_and_a_corrupt_param_reruns_only_corrupt_identically(project: Path) -> None:
    """A second repro runs nothing; a new noise level reruns corrupt@basic alone, and the copies it had already
    made come out byte-identical (each level draws from its own seeded stream)."""
    again = dvc(project, "repro", "table", "corrupt@basic")
    assert "Running stage" not in again.stdout
    assert "Data and pipelines are up to date" in again.stdout
    copies = lambda: {str(p): p.read_bytes() for p in sorted((project / "data/corrupted/basic").rglob("*.npy"))}  # noqa: E731
    before = copies()
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["corrupt"]["salt_and_pepper"] = [0.2]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = dvc(project, "repro", "table", "corrupt@basic")
    assert changed.stdout.count("Running stage") == 1 and "Running stage 'corrupt@basic'" in changed.stdout
    assert (project / "data/corrupted/basic/salt_and_pepper-0.2/x_test.npy").is_file()
    after = copies()
    kept = [name for name in before if "salt_and_pepper" not in name]
    assert kept and all(after[name] == before[name] for name in kept), "a rerun changed a fixed corrupted copy"


def test_a_failed_report_leaves_the_previous_one_in_place(project: Path) -> None:
    """DVC deletes a stage's outputs before running it unless they persist: the table's do."""
    report = project / "reports/vincent2008.md"
    before = report.read_bytes()
    params_file = project / "params.yaml"
    good = params_file.read_text()
    params = yaml.safe_load(good)
    params.setdefault("check", {})[
        "smoke_tolerance_pct"
    ] = -1  # invalid: every stage stops at once (exit 2), after DVC started it
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}"}
        failed = subprocess.run(
            ["dvc", "repro", "--force", "--single-item", "table"], cwd=project, capture_output=True, text=True, env=env
        )
        assert failed.returncode != 0 and "check.smoke_tolerance_pct" in failed.stdout + failed.stderr
        assert report.read_bytes() == before
        assert (project / "reports/figures/vincent_ours_vs_paper.png").is_file()
    finally:
        params_file.write_text(good)
