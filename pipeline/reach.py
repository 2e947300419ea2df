"""How many stages an edit to each file under `pipeline/` would rerun: the stages whose DVC deps list it.

    python -m pipeline.reach             # every file, the most-reaching first
    python -m pipeline.reach pipeline/training/rbm.py

Read from DVC's own expansion of `dvc.yaml` (every matrix and foreach stage), so it is what `dvc repro` would do.
A training stage fits a model on the table's data (`evaluate_svm`, `pretrain`, `finetune`, `evaluate`); an edit
that reaches none of them costs no retraining.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

TRAINING = ("evaluate_svm", "pretrain", "finetune", "evaluate")


@dataclass(frozen=True)
class Reach:
    path: str
    stages: tuple[str, ...]

    @property
    def training(self) -> tuple[str, ...]:
        """The training stages of the table among `stages`."""
        return tuple(s for s in self.stages if s.split("@")[0] in TRAINING)


def declared_stages(root: str | Path = ".") -> dict[str, tuple[str, list[str]]]:
    """Every stage of `dvc.yaml` (matrix and foreach expanded): its command and the paths of its file deps (params
    are not files)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return {
            stage.addressing: (stage.cmd, [dep.def_path for dep in stage.deps if not isinstance(dep, ParamsDependency)])
            for stage in repo.index.stages
        }


def stage_deps(root: str | Path = ".") -> dict[str, list[str]]:
    """Every stage of `dvc.yaml` and the paths of its file deps."""
    return {name: deps for name, (_, deps) in declared_stages(root).items()}


def reach(deps: dict[str, list[str]], paths: Iterable[str]) -> list[Reach]:
    """For each path, the stages whose deps hold it (a folder dep holds every file below it)."""

    def holds(dep: str, path: str) -> bool:
        return path == dep or path.startswith(dep.rstrip("/") + "/")

    return [Reach(p, tuple(sorted(s for s, ds in deps.items() if any(holds(d, p) for d in ds)))) for p in paths]


def code_files(root: str | Path = ".") -> list[str]:
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in (root / "pipeline").rglob("*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.reach", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="files to look up (default: every .py file under pipeline/)")
    args = parser.parse_args(argv)
    from pipeline.core.cli import exits_on_bad_input

    with exits_on_bad_input("reach"):
        rows = reach(stage_deps(), args.paths or code_files())
        rows.sort(key=lambda r: (-len(r.stages), r.path))
        width = max(len(r.path) for r in rows)
        print(f"{'file':<{width}}  stages  training")
        for r in rows:
            print(f"{r.path:<{width}}  {len(r.stages):>6}  {len(r.training):>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
