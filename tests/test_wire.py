"""python -m pipeline.wire: dvc.yaml's code deps and report slots, and the stage items, from the code and params.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipeline import wire

ROOT = Path(__file__).resolve().parents[1]


BEYOND = ("cae2", "sdae_sp")  # the columns beyond the paper, run by some rows only (rect so far)


def copy_wiring(tmp_path: Path) -> Path:
    """dvc.yaml, params.yaml and the items in `tmp_path`, as the paper's five stacks on every row (the later columns
    taken out, the report slots five), rewired: the starting point each test changes."""
    for name in ("dvc.yaml", "params.yaml", wire.ITEMS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    v = params["vincent"]
    for stack in BEYOND:
        v["stacks"].pop(stack, None), v["models"].pop(stack, None)
        for row in v["rows"].values():
            row.get("stacks", {}).pop(stack, None)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for path, text in wire.outdated(tmp_path).items():
        path.write_text(text)
    return tmp_path


def test_the_committed_wiring_is_current(capsys) -> None:
    assert wire.main(["--check"]) == 0
    assert "match the code and params.yaml" in capsys.readouterr().out


def test_a_new_stack_or_a_dropped_dep_is_out_of_date_until_rewired(tmp_path: Path) -> None:
    root = copy_wiring(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vincent"]["stacks"]["sda2"] = {"kind": "ae", "layers": 2, "lr": [0.1], "epochs": [10]}
    params["vincent"]["models"]["sda2"] = {"sda2": {"layers": 2, "table_name": "SdA-2"}}
    params["vincent"]["rows"]["rect"]["stacks"]["sda2"] = {}  # the new column, on one row
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    dvc_yaml = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(dvc_yaml.replace("        - pipeline/training/halving.py\n", "", 1))
    stale = wire.outdated(root)
    assert set(stale) == {root / "dvc.yaml", root / wire.ITEMS}
    # the dep comes back, and rect's sixth stack makes a sixth slot in report's params; nothing else moves
    expected = dvc_yaml
    for key in ("stacks", "models"):
        last = f"        - vincent.{key}.${{item.s5}}\n"
        expected = expected.replace(last, last + last.replace("s5", "s6"))
    assert stale[root / "dvc.yaml"] == expected
    written = yaml.safe_load(stale[root / wire.ITEMS])
    items = written["pretrain_items"]
    assert items["rect-sda2"] == {"dataset": "rect", "stack": "sda2", "kind": "ae", "family": "autoencoder"}
    assert [k for k in items if k.endswith("-sda2")] == ["rect-sda2"], "only the row that lists it runs it"
    assert len(items) == len(params["vincent"]["datasets"]) * 5 + 1
    reports = written["report_items"]
    assert reports["rect"] == {"s1": "dbn", "s2": "dbn1j", "s3": "dbn3j", "s4": "saa", "s5": "sda", "s6": "sda2"}
    assert reports["basic"]["s6"] == "sda", "a row with fewer stacks repeats its last"


def subset_params(root: Path) -> dict:
    """The committed params with rect running dbn, sda and a new stack cae2 (on rect alone)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    v = params["vincent"]
    v["stacks"]["cae2"] = {"kind": "cae", "layers": 2, "lr": [0.1], "epochs": [10], "options": {"contraction": [0.1]}}
    v["models"]["cae2"] = {"cae2": {"layers": 2, "table_name": "CAE-2"}}
    v["rows"]["rect"]["stacks"] = {"dbn": {"epochs": [25, 100]}, "sda": {}, "cae2": {}}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


def test_a_row_gets_the_stages_of_the_stacks_it_lists_only(tmp_path: Path) -> None:
    root = copy_wiring(tmp_path)
    subset_params(root)
    items = wire.pretrain_items(root / "params.yaml")
    assert [k for k, i in items.items() if i["dataset"] == "rect"] == ["rect-dbn", "rect-sda", "rect-cae2"], (
        "vincent.stacks order"
    )
    assert items["rect-cae2"] == {"dataset": "rect", "stack": "cae2", "kind": "cae", "family": "autoencoder"}
    assert [k for k in items if k.startswith("basic-")] == [
        f"basic-{s}" for s in ("dbn", "dbn1j", "dbn3j", "saa", "sda")
    ]
    assert [k for k, i in items.items() if i["stack"] == "cae2"] == ["rect-cae2"]
    reports = wire.report_items(root / "params.yaml")
    assert reports["rect"] == {"s1": "dbn", "s2": "sda", "s3": "cae2", "s4": "cae2", "s5": "cae2"}, (
        "padded with its last"
    )
    assert reports["basic"] == {"s1": "dbn", "s2": "dbn1j", "s3": "dbn3j", "s4": "saa", "s5": "sda"}


def test_the_report_slots_follow_the_row_with_the_most_stacks(tmp_path: Path) -> None:
    root = copy_wiring(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for row in params["vincent"]["rows"].values():
        row["stacks"] = {"dbn": row["stacks"]["dbn"], "sda": {}}  # every row: two stacks
    for stack in ("dbn1j", "dbn3j", "saa"):
        del params["vincent"]["stacks"][stack], params["vincent"]["models"][stack]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert wire.slots(wire.report_items(root / "params.yaml")) == 2
    text = wire.outdated(root)[root / "dvc.yaml"]
    report = yaml.safe_load(text)["stages"]["report"]
    assert report["foreach"] == "${report_items}"
    slotted = [p for p in report["do"]["params"] if "${item.s" in p]
    assert slotted == [f"vincent.{k}.${{item.s{i}}}" for k in ("stacks", "models") for i in (1, 2)]
    assert wire.rewired(text, 5) == (root / "dvc.yaml").read_text(), "and back to five"


def test_the_pretrain_items_are_the_matrix_dvc_would_make() -> None:
    """Every row runs every stack today: the same stage names as `matrix: {dataset: vincent.datasets, stack:
    vincent.stacks}` made (dvc.lock's keys), for pretrain, finetune and evaluate; one report per row."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["vincent"]
    items = wire.pretrain_items(ROOT / "params.yaml")
    assert list(items) == [
        f"{d}-{s}" for d in params["datasets"] for s in params["stacks"] if s in params["rows"][d]["stacks"]
    ]
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert {f"{stage}@{k}" for k in items for stage in ("pretrain", "finetune", "evaluate")} <= set(lock)
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert all(stages[s]["foreach"] == "${pretrain_items}" for s in ("pretrain", "finetune", "evaluate"))
    reports = wire.report_items(ROOT / "params.yaml")
    assert list(reports) == params["datasets"] and {f"report@{d}" for d in reports} <= set(lock)
    for d, r in reports.items():
        own = [s for s in params["stacks"] if s in params["rows"][d]["stacks"]]
        assert list(dict.fromkeys(r.values())) == own, "each row's stacks, padded with its last"


def test_wire_names_a_params_error(tmp_path: Path, monkeypatch, capsys) -> None:
    root = copy_wiring(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vincent"]["rows"]["rect"]["stacks"]["cae9"] = {}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    outdated = wire.outdated
    monkeypatch.setattr(wire, "outdated", lambda: outdated(root))
    with pytest.raises(SystemExit) as exit:
        wire.main(["--check"])
    assert exit.value.code == 2
    assert "vincent.rows.rect.stacks.cae9: not a key of vincent.stacks" in capsys.readouterr().err


def test_wire_names_a_stack_no_row_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    root = copy_wiring(tmp_path)
    params = subset_params(root)
    del params["vincent"]["rows"]["rect"]["stacks"]["cae2"]  # cae2 in vincent.stacks, on no row yet
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert wire.stacks_no_row_runs(root) == ["cae2"]
    assert not any(i["stack"] == "cae2" for i in wire.pretrain_items(root / "params.yaml").values())
    monkeypatch.setattr(wire, "stacks_no_row_runs", lambda: ["cae2"])
    wire.main(["--check"])
    assert "note: no row runs vincent.stacks.cae2, so it has no stage" in capsys.readouterr().out
