"""What an edit reruns: the rules a contributor relies on, read from DVC's own expansion of dvc.yaml."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from pipeline.reach import Reach, code_files, reach, stage_deps

ROOT = Path(__file__).resolve().parents[1]


@cache
def reaches() -> dict[str, Reach]:
    return {r.path: r for r in reach(stage_deps(ROOT), code_files(ROOT))}


def test_reach_counts_a_folder_dep_for_every_file_below_it() -> None:
    deps = {"a@1": ["pipeline/x.py", "data/d"], "pretrain@r-s": ["pipeline/"], "table": ["data/d/f.csv"]}
    rows = {r.path: r for r in reach(deps, ["pipeline/x.py", "pipeline/y/z.py", "data/d/f.csv", "other.py"])}
    assert rows["pipeline/x.py"].stages == ("a@1", "pretrain@r-s")
    assert rows["pipeline/y/z.py"].stages == ("pretrain@r-s",) and rows["pipeline/y/z.py"].training == ("pretrain@r-s",)
    assert rows["data/d/f.csv"].stages == ("a@1", "table") and rows["other.py"].stages == ()


def test_the_zoo_reporting_and_figures_rerun_no_training_stage_of_the_table() -> None:
    for path, r in reaches().items():
        if path.startswith(("pipeline/zoo/", "pipeline/reporting/")) or path == "pipeline/common/figures.py":
            assert not r.training, f"an edit to {path} reruns training stages {r.training[:5]}..."


def test_plumbing_and_tools_rerun_nothing() -> None:
    for path, r in reaches().items():
        top_level_tool = path.count("/") == 1
        if path.startswith(("pipeline/core/", "pipeline/params/")) or top_level_tool:
            assert not r.stages, f"an edit to {path} reruns {len(r.stages)} stages: {r.stages[:5]}..."


def test_the_zoo_autoencoder_is_no_dep_of_the_table() -> None:
    for path in ("pipeline/models/dense_ae.py", "pipeline/models/conv_ae.py", "pipeline/models/vae.py"):
        assert all(s.startswith("zoo_") for s in reaches()[path].stages), reaches()[path].stages


def test_the_search_is_a_dep_of_pretraining_alone() -> None:
    """StackSpec and propagate live in a leaf (training/stack.py): fine-tuning and evaluation read stacks without
    depending on how they were searched. The layer loop also trains the zoo's table-kind layers (zoo_layer)."""
    assert {s.split("@")[0] for s in reaches()["pipeline/training/search.py"].stages} <= {"pretrain", "filters"}
    for path in ("pipeline/training/layer_group.py", "pipeline/training/layer_kind.py"):
        assert {s.split("@")[0] for s in reaches()[path].stages} <= {"pretrain", "filters", "zoo_layer"}, path


def stacks_of_kind(kind: str) -> set[str]:
    import yaml

    stacks = yaml.safe_load((ROOT / "params.yaml").read_text())["vincent"]["stacks"]
    return {name for name, s in stacks.items() if s["kind"] == kind}


def stacks_of_family(family: str) -> set[str]:
    from pipeline.params.stacks import KINDS

    return {s for k, traits in KINDS.items() if traits.family == family for s in stacks_of_kind(k)}


def zoo_layers_of(*kinds: str) -> set[str]:
    """The zoo_layer stages of zoo.layers' entries of these kinds (the table's kinds on the zoo's digits)."""
    import yaml

    layers = yaml.safe_load((ROOT / "params.yaml").read_text())["zoo"].get("layers", {})
    return {f"zoo_layer@{name}" for name, layer in layers.items() if layer["kind"] in kinds}


@pytest.mark.parametrize(
    ("path", "stacks", "also"),
    [
        ("kinds/rbm.py", lambda: stacks_of_kind("rbm"), set),
        ("families/rbm.py", lambda: stacks_of_family("rbm"), set),
        ("kinds/ae.py", lambda: stacks_of_kind("ae"), lambda: {"filters"} | zoo_layers_of("ae")),
        (
            "families/autoencoder.py",
            lambda: stacks_of_family("autoencoder"),
            lambda: {"filters"} | zoo_layers_of("ae", "cae", "dae_sp"),
        ),
        ("kinds/cae.py", lambda: stacks_of_kind("cae"), lambda: zoo_layers_of("cae")),
        ("kinds/dae_sp.py", lambda: stacks_of_kind("dae_sp"), lambda: zoo_layers_of("dae_sp")),
    ],
)
def test_a_kind_is_a_dep_of_its_own_stacks_pretraining_only(path: str, stacks, also) -> None:
    """An edit to the RBM reruns only DBN stages, to the autoencoder only SAA/SdA (and the filters figure), a new kind
    nothing but its own stacks: each kind's file, and its family's, is a dep of the pretrain stages of its own stacks
    (dvc.yaml's pretrain items), of the zoo's layers of that kind (zoo.layers), and of no fine-tuning."""
    stages = set(reaches()[f"pipeline/training/{path}"].stages)
    pretrain = {s for s in stages if s.startswith("pretrain@")}
    assert {s.rsplit("-", 1)[1] for s in pretrain} == stacks(), pretrain
    assert stages - pretrain == also()


def test_fine_tuning_code_reruns_no_pretraining() -> None:
    for path in ("pipeline/training/mlp_group.py", "pipeline/training/halving.py", "pipeline/training/select.py"):
        assert {s.split("@")[0] for s in reaches()[path].stages} == {"finetune"}, path
