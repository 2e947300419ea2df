"""One end-to-end `dvc repro zoo_report` of the autoencoder zoo on the smoke profile, with real MLflow logging."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import SMOKE_PARAMS, dvc, smoke_project

SMOKE = yaml.safe_load(SMOKE_PARAMS.read_text())
VARIANTS = list(SMOKE["zoo"]["variants"])
LAYERS = list(SMOKE["zoo"]["layers"])
STAGES = [
    "prepare",
    "corrupt@full",
    "zoo_report",
    *(f"zoo_train@{v}" for v in VARIANTS),
    *(f"zoo_layer@{n}" for n in LAYERS),
]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_mirror: Path) -> Path:
    project = smoke_project(tmp_path_factory.mktemp("zoo"), mnist_mirror)
    dvc(project, "repro", "zoo_report")
    return project


def test_every_zoo_stage_ran_and_logged_one_run(project: Path) -> None:
    assert sorted(yaml.safe_load((project / "dvc.lock").read_text())["stages"]) == sorted(STAGES)
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name(SMOKE["zoo"]["experiment"]).experiment_id])
    stages = sorted(r.data.tags["dvc.stage"] for r in runs if r.data.tags.get("pipeline.role") == "stage")
    assert stages == sorted(s for s in STAGES if s.startswith("zoo"))
    assert all(r.info.status == "FINISHED" for r in runs)


def test_zoo_report_has_a_row_per_variant(project: Path) -> None:
    zoo = pd.read_csv(project / "reports/zoo.csv")
    assert set(VARIANTS + LAYERS) <= set(zoo["variant"]) and zoo["test_mse"].notna().all()
    markdown = (project / "reports/zoo.md").read_text()
    assert "zoo_codes_2d.png" in markdown and "nan" not in markdown.lower().split()
    assert "## The table's layer kinds" in markdown
    for name in ("zoo_codes_2d", "zoo_reconstructions", "zoo_denoising", "zoo_loss_curves", "zoo_vae"):
        assert (project / f"reports/figures/{name}.png").stat().st_size > 5_000, name


def zoo_outputs(project: Path) -> dict[str, bytes]:
    files = [p for folder in ("results/zoo", "metrics/zoo", "plots/zoo") for p in sorted((project / folder).glob("*"))]
    return {str(f.relative_to(project)): f.read_bytes() for f in files + [project / "dvc.lock"]}


def test_a_forced_rerun_of_a_denoising_variant_gives_identical_metrics(project: Path) -> None:
    """Initial weights, minibatch order and the noise drawn every minibatch rerun identically."""
    before = zoo_outputs(project)
    rerun = dvc(project, "repro", "--force", "--single-item", "zoo_train@denoise_masking")
    assert rerun.stdout.count("Running stage") == 1
    assert zoo_outputs(project) == before
