"""Kill-and-resume and determinism of the training stages, on a slightly enlarged smoke profile.

A stage killed with SIGKILL mid-training resumes from its last (atomic) checkpoint and ends with
exactly the weights and metrics of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import copy_project, rewire, run_here

ROOT = Path(__file__).resolve().parents[1]
DATASET, STACK, MODEL = "basic", "sda", "sda3"
ROW = ("--dataset", DATASET, "--stack", STACK)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_mirror: Path) -> Path:
    project = copy_project(tmp_path_factory.mktemp("resume"))
    params = yaml.safe_load((ROOT / "tests/smoke_params.yaml").read_text())
    params["data"]["mirrors"] = [str(mnist_mirror)]
    params["prepare"]["basic"] = {"train": 1500, "valid": 300, "test": 300}
    v = params["vincent"]
    v["pretrain"].update(hidden=[200])
    v["datasets"] = [DATASET]
    v["stacks"]["sda"].update(epochs=[3, 6], noise=[0.25])
    v["finetune"].update(max_epochs=10, patience=10)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rewire(project)
    run(project, "prepare")
    return project


def env(project: Path) -> dict[str, str]:
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}", "PIPELINE_OFFLINE": "1"}


def run(project: Path, stage: str, *args: str) -> None:
    """The stage in this process (only a run the test kills needs a process of its own)."""
    assert run_here(project, f"pipeline.stages.{stage}", *args, env=env(project)) == 0


def run_and_kill(project: Path, stage: str, args: list[str], checkpoints: Path, pattern: str) -> Path:
    """Start a stage, SIGKILL it as soon as a checkpoint matching `pattern` exists, i.e. in the middle of training."""
    process = subprocess.Popen(
        [sys.executable, "-m", f"pipeline.stages.{stage}", *args],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(project), **env(project)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (found := sorted(checkpoints.glob(pattern))):
        assert process.poll() is None, f"{stage} finished before {pattern} appeared"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    return found[0]


def snapshot(project: Path, stage: str) -> tuple[dict, dict]:
    model = "" if stage == "pretrain" else f"/{MODEL}"
    saved = torch.load(project / f"models/{stage}/{DATASET}/{STACK}{model}.pt", weights_only=False)
    tensors = (
        saved["state_dict"]
        if stage == "finetune"
        else {f"{i}.{j}": t for i, c in enumerate(saved["candidates"]) for j, t in enumerate(sum(c["weights"], ()))}
    )
    results = json.loads((project / f"results/{stage}/{DATASET}/{STACK}.json").read_text())
    return tensors, results


def assert_same(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    assert a[0].keys() == b[0].keys()
    for key in a[0]:
        assert torch.equal(a[0][key], b[0][key]), f"{key} differs"
    assert a[1] == b[1]


def test_pretrain_and_finetune_resume_after_sigkill_to_identical_results(project: Path) -> None:
    run(project, "pretrain", *ROW)
    run(project, "finetune", *ROW)
    reference = {stage: snapshot(project, stage) for stage in ("pretrain", "finetune")}

    # Killed while training a second layer, then resumed.
    checkpoints = project / "models/checkpoints/pretrain" / DATASET / STACK
    run_and_kill(project, "pretrain", list(ROW), checkpoints, "layer1-*.pt")
    assert sorted(checkpoints.glob("layer0-*.pt")), "the first layer's checkpoint is kept"
    run(project, "pretrain", *ROW)
    assert_same(snapshot(project, "pretrain"), reference["pretrain"])
    assert not checkpoints.exists(), "checkpoints are removed once the stage has written its output"

    # The fine-tuning search killed after its first finished segment, then resumed.
    checkpoints = project / "models/checkpoints/finetune" / DATASET / MODEL
    checkpoint = run_and_kill(project, "finetune", list(ROW), checkpoints, "search.pt")
    done = torch.load(checkpoint, weights_only=False)["done"]
    assert 1 <= len(done) < 8, done  # 2 stacks x 2 learning rates: 4 first segments, then the survivors'
    run(project, "finetune", *ROW)
    assert_same(snapshot(project, "finetune"), reference["finetune"])


def test_a_truncated_checkpoint_is_named_and_never_used(project: Path, capsys) -> None:
    checkpoint = project / "models/checkpoints/finetune" / DATASET / MODEL / "search.pt"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    good = project / "good.pt"
    torch.save({"format": 1, "epoch": 3}, good)
    checkpoint.write_bytes(good.read_bytes()[:100])
    assert run_here(project, "pipeline.stages.finetune", *ROW, env=env(project)) == 2
    stderr = capsys.readouterr().err
    assert str(checkpoint.relative_to(project)) in stderr and "unusable" in stderr
    assert "Traceback" not in stderr
    shutil.rmtree(checkpoint.parent)
