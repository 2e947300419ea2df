"""Bad input a user meets in the tools outside `dvc repro` (calibrate, extend, seeds, explore) and in the params file
of stages and tools: each case stops before any training with exit 2, a message naming the flag, key, value or file
and what was expected, and no file changed. The harness is `tests/faults.py`."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from unittest import mock

import pytest
import torch

from pipeline.params import ParamsError, load_params
from tests.conftest import run_entry_point
from tests.faults import Case, Setup, check_case, make_base_project, params_edit, set_key, write

STAGE = "pipeline.stages.{}".format
PRETRAIN = ["--dataset", "basic", "--stack", "sda"]
CALIBRATE = ["--dry-run", "--train", "40", "--valid", "20"]
EXTEND = ["--dataset", "basic", "--stack", "sda", "--device", "cpu", "--no-progress", "--out", "out"]
SEEDS = ["--models", "sda3", "--seeds", "1", "--device", "cpu", "--no-progress"]
EXPLORE = ["--device", "cpu", "--no-progress", "--out", "out"]
NOT_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here: the device is not refused")


def committed_results(evaluate: bytes | None = None) -> Setup:
    """results/{finetune,evaluate}/basic/sda.json of a committed sda3 run (as tests/test_seeds.py's); `evaluate`
    replaces the evaluate file's bytes."""
    pretrain = {"kind": "ae", "hidden": 24, "lr": 0.05, "epochs": 2, "noise": 0.25}
    trial = {"name": "h24-lr0.05-e2-nu0.25-ftlr0.5", "lr": 0.5, "pretrain": pretrain}
    finetune = json.dumps({"sda3": {"selected": trial["name"], "trials": [trial]}}).encode()
    good = json.dumps({"sda3": {"record": {"valid_error": 0.5, "test_error": 0.6}}}).encode()

    def setup(project: Path) -> None:
        write("results/finetune/basic/sda.json", finetune)(project)
        write("results/evaluate/basic/sda.json", good if evaluate is None else evaluate)(project)

    return setup


def duplicate_key(project: Path) -> None:
    """params.yaml with `seed` given again at its end (yaml would keep the last; DVC refuses the file)."""
    with (project / "params.yaml").open("a") as f:
        f.write("seed: 3\n")


def extend_cache_truncated(project: Path) -> None:
    """models/extend/basic/sda/ filled by a first `pipeline.extend` run, then each file cut to 300 bytes."""
    with contextlib.chdir(project), mock.patch.dict(os.environ, {"OMP_NUM_THREADS": "1"}):  # the case's threads
        assert run_entry_point("pipeline.extend", EXTEND) == 0
    files = list((project / "models/extend").rglob("*.pt"))
    assert files, "the first extend run cached nothing"
    for path in files:
        path.write_bytes(path.read_bytes()[:300])


CASES = [
    # The params file, for the stages and the tools
    Case(
        "params-directory", STAGE("pretrain"), ["--params", "data", *PRETRAIN], ["data", "a directory", "params file"]
    ),
    Case("params-directory-tool", "pipeline.explore", ["--params", "data", *EXPLORE], ["data", "a directory"]),
    Case(
        "params-not-utf8",
        STAGE("pretrain"),
        PRETRAIN,
        ["params.yaml", "not UTF-8", "0xff"],
        write("params.yaml", b"seed: 7\n\xff\xfe\x00junk\n"),
    ),
    Case(
        "params-not-utf8-tool",
        "pipeline.calibrate",
        ["--dataset", "rect", *CALIBRATE],
        ["params.yaml", "not UTF-8"],
        write("params.yaml", b"seed: 7\n\xff\xfe\x00junk\n"),
    ),
    Case(
        "params-duplicate-key",
        STAGE("pretrain"),
        PRETRAIN,
        ["params.yaml", "'seed'", "twice", "line 1 and line"],
        duplicate_key,
    ),
    Case("params-duplicate-key-tool", "pipeline.seeds", SEEDS, ["params.yaml", "'seed'", "twice"], duplicate_key),
    Case(
        "params-duplicate-nested-key",
        STAGE("pretrain"),
        PRETRAIN,
        ["'device'", "twice", "line 2 and line 2"],
        write("params.yaml", b"seed: 7\nvincent: {device: cpu, device: cuda}\n"),
    ),
    Case(
        "params-explore-dataset",
        "pipeline.explore",
        EXPLORE,
        ["explore.dataset", "'nosuch'", "not a dataset"],
        params_edit(set_key("explore.dataset", "nosuch")),
    ),
    Case(
        "params-device-cuda",
        STAGE("pretrain"),
        PRETRAIN,
        ["'cuda'", "CUDA is not available", "auto"],
        params_edit(set_key("vincent.device", "cuda")),
    ),
    # calibrate
    Case(
        "tool-calibrate-unknown-dataset",
        "pipeline.calibrate",
        ["--dataset", "nosuch", *CALIBRATE],
        ["--dataset 'nosuch'", "not a generated row", "rect-img"],
    ),
    Case(
        "tool-calibrate-not-generated",
        "pipeline.calibrate",
        ["--dataset", "basic", *CALIBRATE],
        ["--dataset 'basic'", "not generated", "convex"],
    ),
    Case(
        "tool-calibrate-unknown-field",
        "pipeline.calibrate",
        ["--dataset", "rect", "--set", "colour=1", *CALIBRATE],
        ["--set colour", "RectRecipe has no field 'colour'", "min_side", "label_one"],
    ),
    Case(
        "tool-calibrate-field-type",
        "pipeline.calibrate",
        ["--dataset", "rect", "--set", "min_side=abc", *CALIBRATE],
        ["min_side='abc'", "RectRecipe.min_side expects int", "got str"],
    ),
    Case(
        "tool-calibrate-set-without-value",
        "pipeline.calibrate",
        ["--dataset", "rect", "--set", "min_side", *CALIBRATE],
        ["--set 'min_side'", "field=value"],
    ),
    Case(
        "tool-calibrate-negative-size",
        "pipeline.calibrate",
        ["--dataset", "rect", *CALIBRATE, "--valid", "-3"],
        ["--valid -3", "positive"],
    ),
    Case(
        "tool-calibrate-params-recipe",
        "pipeline.calibrate",
        ["--dataset", "rect", *CALIBRATE],
        ["benchmarks.datasets.rect.recipe", "colour", "min_side"],
        params_edit(set_key("benchmarks.datasets.rect.recipe", {"colour": 1})),
    ),
    # extend
    Case(
        "tool-extend-unknown-dataset",
        "pipeline.extend",
        [*EXTEND, "--dataset", "nosuch"],
        ["--dataset 'nosuch'", "vincent.datasets"],
    ),
    Case(
        "tool-extend-unknown-stack",
        "pipeline.extend",
        [*EXTEND, "--stack", "sdae"],
        ["--stack 'sdae'", "vincent.stacks", "sda"],
    ),
    Case(
        "tool-extend-negative-epochs", "pipeline.extend", [*EXTEND, "--epochs", "-1"], ["--epochs -1", "greater than 0"]
    ),
    Case(
        "tool-extend-noise-above-one",
        "pipeline.extend",
        [*EXTEND, "--noise", "1.5"],
        ["--noise 1.5", "less than or equal to 1"],
    ),
    Case(
        "tool-extend-noise-on-rbm",
        "pipeline.extend",
        [*EXTEND, "--stack", "dbn", "--noise", "0.2"],
        ["--noise 0.2", "kind 'ae'"],
    ),
    Case("tool-extend-zero-hidden", "pipeline.extend", [*EXTEND, "--hidden", "0"], ["--hidden 0", "greater than 0"]),
    Case(
        "tool-extend-all-diverged",
        "pipeline.extend",
        [*EXTEND, "--lr", "1e8"],
        ["every pretrained candidate diverged", "lower the pretraining learning rates"],
    ),
    Case(
        "tool-extend-cache-truncated",
        "pipeline.extend",
        EXTEND,
        ["models/extend/basic/sda/", "truncated or corrupt", "delete it", "pretrains that candidate again"],
        extend_cache_truncated,
    ),
    Case(
        "tool-extend-device-cuda",
        "pipeline.extend",
        [*EXTEND, "--device", "cuda"],
        ["--device 'cuda'", "CUDA is not available", "auto"],
    ),
    # seeds
    Case(
        "tool-seeds-unknown-dataset",
        "pipeline.seeds",
        [*SEEDS, "--dataset", "nosuch"],
        ["--dataset 'nosuch'", "vincent.datasets"],
        committed_results(),
    ),
    Case(
        "tool-seeds-unknown-model",
        "pipeline.seeds",
        [*SEEDS, "--models", "sda4"],
        ["--models 'sda4'", "vincent.models", "sda3", "claim"],
        committed_results(),
    ),
    Case(
        "tool-seeds-negative-seed",
        "pipeline.seeds",
        [*SEEDS, "--seeds", "-1"],
        ["--seeds -1", ">= 0"],
        committed_results(),
    ),
    Case("tool-seeds-results-missing", "pipeline.seeds", SEEDS, ["results/evaluate/basic/sda.json", "missing"]),
    Case(
        "tool-seeds-results-truncated",
        "pipeline.seeds",
        SEEDS,
        ["results/evaluate/basic/sda.json", "not valid JSON", "evaluate@basic-sda"],
        committed_results(b'{"sda3": {"record": {"valid_err'),
    ),
    Case(
        "tool-seeds-results-no-entry",
        "pipeline.seeds",
        SEEDS,
        ["results/evaluate/basic/sda.json", "'sda3'", "evaluate@basic-sda"],
        committed_results(b'{"dbn1": {}}'),
    ),
    Case(
        "tool-seeds-device-cuda",
        "pipeline.seeds",
        [*SEEDS, "--device", "cuda"],
        ["--device 'cuda'", "CUDA is not available"],
        committed_results(),
    ),
    # explore
    Case(
        "tool-explore-not-prepared",
        "pipeline.explore",
        EXPLORE,
        ["data/prepared/rect/", "not found"],
        params_edit(set_key("explore.dataset", "rect")),
    ),
    Case(
        "tool-explore-device-cuda",
        "pipeline.explore",
        [*EXPLORE, "--device", "cuda"],
        ["--device 'cuda'", "CUDA is not available", "auto"],
    ),
    Case(
        "tool-explore-device-unknown",
        "pipeline.explore",
        [*EXPLORE, "--device", "tpu"],
        ["--device 'tpu'", "not a device", "cpu"],
    ),
]
NEEDS_NO_CUDA = {"params-device-cuda", "tool-extend-device-cuda", "tool-seeds-device-cuda", "tool-explore-device-cuda"}


@pytest.fixture(scope="module")
def base_project(tmp_path_factory) -> Path:
    return make_base_project(tmp_path_factory.mktemp("faults-tools") / "base")


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[NOT_CUDA] if c.id in NEEDS_NO_CUDA else []) for c in CASES]
)
def test_bad_input_stops_with_a_clear_message(
    case: Case, base_project: Path, tmp_path: Path, monkeypatch, capsys, isolated_mlflow, mlflow_store
):
    check_case(case, base_project, tmp_path, monkeypatch, capsys, mlflow_store)


def test_the_cases_cover_every_tool() -> None:
    assert all(c.id.startswith(("tool-", "params-")) for c in CASES)
    assert {"calibrate", "extend", "seeds", "explore"} <= {c.module.removeprefix("pipeline.") for c in CASES}
    assert len(CASES) >= 22


def test_a_key_twice_is_refused_wherever_it_is(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\nvincent:\n  device: cpu\n  pretrain: {}\n  device: cpu\n")
    with pytest.raises(ParamsError, match=r"params.yaml.*'device' appears twice.*line 3 and line 5"):
        load_params(path)


def test_a_merged_key_given_again_is_no_duplicate(tmp_path: Path) -> None:
    """`<<: *anchor` merges a mapping in, and a key given beside it overrides the merged one, as yaml and DVC allow."""
    path = tmp_path / "params.yaml"
    path.write_text("tracking: &t {experiment: a}\nzoo:\n  <<: *t\n  experiment: b\n")
    params = load_params(path)
    assert (params.tracking.experiment, params.zoo.experiment) == ("a", "b")


def test_the_tools_help_still_answers(capsys) -> None:
    from pipeline import calibrate, explore, extend, seeds

    for tool in (calibrate, extend, seeds, explore):
        with pytest.raises(SystemExit) as stopped:
            tool.main(["--help"])
        assert stopped.value.code == 0
        assert "usage:" in capsys.readouterr().out
