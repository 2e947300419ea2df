"""python -m pipeline.extend on a tiny synthetic row: a grown stack grid is fine-tuned like finetune@, the committed
candidates are read rather than trained again, and only the best few are tested after selection."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

import pipeline.training.search as search
from pipeline import extend
from tests.conftest import tiny_prepared

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--dataset", "basic", "--stack", "sda", "--out", "out", "--device", "cpu", "--no-progress", "--top", "2"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tiny_prepared(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    v = params["vincent"]
    v["datasets"] = ["basic"]
    v["pretrain"] |= {"hidden": [8]}
    v["stacks"]["sda"] |= {"lr": [0.1], "epochs": [2], "noise": [0.25]}
    v["finetune"] |= {"lr": [0.1, 0.3], "max_epochs": 3, "patience": 2, "rungs": [1], "eta": 2}
    v["rows"] = {"basic": {}}  # the repo's basic row has its own fine-tuning grid; here the one above
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_grown_grid_is_searched_and_only_the_best_are_tested(project: Path) -> None:
    extend.main([*ARGS, "--lr", "0.1", "0.3", "--tag", "lr"])
    rows = pd.read_csv(project / "out/basic-sda-lr.csv")
    assert set(rows["model"]) == {"SdA-3"}
    assert sorted(rows["candidate"]) == sorted(
        f"h8-lr{lr}-e2-nu0.25-ftlr{ft}" for lr in ("0.1", "0.3") for ft in ("0.1", "0.3")
    )
    assert rows["new_stack"].all()  # no committed pretrain@basic-sda here: everything is trained
    tested = rows.dropna(subset=["test_error_pct"])
    assert sorted(tested["valid_rank"]) == [1, 2]
    assert tested["valid_error_pct"].max() <= rows.drop(tested.index)["valid_error_pct"].min()
    assert "## SdA-3" in (project / "out/basic-sda-lr.md").read_text()


def test_committed_candidates_are_read_not_trained(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A committed stack whose weights are all zero: a network built on it cannot be the one trained here.
    zeros = [
        (torch.zeros(8, 784), torch.zeros(8)),
        (torch.zeros(8, 8), torch.zeros(8)),
        (torch.zeros(8, 8), torch.zeros(8)),
    ]
    committed = project / "models/pretrain/basic/sda.pt"
    committed.parent.mkdir(parents=True)
    torch.save({"candidates": [{"name": "h8-lr0.1-e2-nu0.25", "weights": zeros}]}, committed)
    monkeypatch.setattr(extend, "committed_is_current", lambda stage: stage == "pretrain@basic-sda")
    seen: list[list[str]] = []
    original = search.pretrain_stacks  # extend imports it inside main, so patching the library's name reaches it

    def spy(specs, *a, **k):
        seen.append([s.name for s in specs])
        return original(specs, *a, **k)

    monkeypatch.setattr(search, "pretrain_stacks", spy)
    extend.main([*ARGS, "--lr", "0.1", "0.3", "--tag", "lr"])
    assert seen == [["h8-lr0.3-e2-nu0.25"]]  # only the new candidate is pretrained
    rows = pd.read_csv(project / "out/basic-sda-lr.csv").set_index("candidate")
    assert (
        not rows.loc["h8-lr0.1-e2-nu0.25-ftlr0.1", "new_stack"] and rows.loc["h8-lr0.3-e2-nu0.25-ftlr0.1", "new_stack"]
    )


def test_without_rungs_every_candidate_trains_to_the_end(project: Path) -> None:
    extend.main([*ARGS, "--rungs", "--tag", "full"])
    rows = pd.read_csv(project / "out/basic-sda-full.csv")
    assert len(rows) == 2 and not rows["status"].str.startswith("pruned").any()
    assert "(halving rungs [])" in (project / "out/basic-sda-full.md").read_text()


def test_finetune_batch_size_reaches_the_search_and_the_summary(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.training.halving as halving

    seen: list[int] = []
    original = halving.halving_search

    def spy(*a, **k):
        seen.append(k["batch_size"])
        return original(*a, **k)

    monkeypatch.setattr(halving, "halving_search", spy)
    extend.main([*ARGS, "--finetune-batch-size", "10", "--tag", "b10"])
    assert seen == [10]
    assert set(pd.read_csv(project / "out/basic-sda-b10.csv")["finetune_batch_size"]) == {10}
    assert "at batch size 10" in (project / "out/basic-sda-b10.md").read_text()
    with pytest.raises(SystemExit):
        extend.main([*ARGS, "--finetune-batch-size", "0"])


def test_a_follow_up_reads_the_stacks_it_pretrained(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extend.main([*ARGS, "--tag", "first"])
    cached = sorted(p.name for p in (project / "models/extend/basic/sda").iterdir())
    assert len(cached) == 1 and cached[0].startswith("h8-lr0.1-e2-nu0.25-")
    seen: list[list[str]] = []
    original = search.pretrain_stacks

    def spy(specs, *a, **k):
        seen.append([s.name for s in specs])
        return original(specs, *a, **k)

    monkeypatch.setattr(search, "pretrain_stacks", spy)
    extend.main([*ARGS, "--finetune-batch-size", "4", "--tag", "again"])
    assert seen == []  # the same candidate, params and data: read, not trained
    first = pd.read_csv(project / "out/basic-sda-first.csv")
    again = pd.read_csv(project / "out/basic-sda-again.csv")
    assert list(first["candidate"]) == list(again["candidate"]) and (again["finetune_batch_size"] == 4).all()
    extend.main([*ARGS, "--epochs", "3", "--tag", "other"])  # another epoch count is another candidate
    assert seen == [["h8-lr0.1-e3-nu0.25"]]
    params = yaml.safe_load((project / "params.yaml").read_text())  # another seed: a miss, not a stale hit
    (project / "params.yaml").write_text(yaml.safe_dump(params | {"seed": params["seed"] + 1}))
    extend.main([*ARGS, "--tag", "seed"])
    assert seen[-1] == ["h8-lr0.1-e2-nu0.25"]


def test_a_row_of_its_own_fine_tunes_with_its_batch_size(project: Path) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["vincent"]["rows"]["basic"] = {"finetune": {"batch_size": 4}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    extend.main([*ARGS, "--tag", "row"])
    assert (pd.read_csv(project / "out/basic-sda-row.csv")["finetune_batch_size"] == 4).all()


def test_a_row_of_its_own_pretrains_its_grid_unless_a_flag_replaces_it(project: Path) -> None:
    def pretraining_rates(tag: str) -> set[str]:
        return set(pd.read_csv(project / f"out/basic-sda-{tag}.csv")["candidate"].str.split("-").str[1])

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["vincent"]["rows"]["basic"] = {"stacks": {"sda": {"lr": [0.3]}}}
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    extend.main([*ARGS, "--tag", "row-stack"])
    assert pretraining_rates("row-stack") == {"lr0.3"}
    extend.main([*ARGS, "--lr", "0.1", "--tag", "row-stack-flag"])
    assert pretraining_rates("row-stack-flag") == {"lr0.1"}
