"""python -m pipeline.wire: dvc.yaml's code deps and pretrain items derived from the code and params.yaml."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from pipeline import wire

ROOT = Path(__file__).resolve().parents[1]


def copy_wiring(tmp_path: Path) -> Path:
    for name in ("dvc.yaml", "params.yaml", wire.ITEMS):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_committed_wiring_is_current(capsys) -> None:
    assert wire.main(["--check"]) == 0
    assert "match the code and params.yaml" in capsys.readouterr().out


def test_a_new_stack_or_a_dropped_dep_is_out_of_date_until_rewired(tmp_path: Path) -> None:
    root = copy_wiring(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vincent"]["stacks"]["sda2"] = {"kind": "ae", "layers": 2, "lr": [0.1], "epochs": [10]}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    dvc_yaml = (root / "dvc.yaml").read_text()
    (root / "dvc.yaml").write_text(dvc_yaml.replace("      - pipeline/training/halving.py\n", "", 1))
    stale = wire.outdated(root)
    assert set(stale) == {root / "dvc.yaml", root / wire.ITEMS}
    assert stale[root / "dvc.yaml"] == dvc_yaml  # the dep comes back, nothing else moves
    items = yaml.safe_load(stale[root / wire.ITEMS])["pretrain_items"]
    assert items["rect-sda2"] == {"dataset": "rect", "stack": "sda2", "kind": "ae", "family": "autoencoder"}
    assert len(items) == len(params["vincent"]["datasets"]) * len(params["vincent"]["stacks"])


def test_the_pretrain_items_are_the_matrix_dvc_would_make() -> None:
    """The same stage names as `matrix: {dataset: vincent.datasets, stack: vincent.stacks}` (dvc.lock's keys)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["vincent"]
    items = wire.pretrain_items(ROOT / "params.yaml")
    assert list(items) == [f"{d}-{s}" for d in params["datasets"] for s in params["stacks"]]
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    assert {f"pretrain@{k}" for k in items} <= set(lock)
