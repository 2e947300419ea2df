"""Record in dvc.lock the code deps each stage declares now, for a change that moved code but not outputs.

    python -m pipeline.relock --dry    # what would change
    python -m pipeline.relock          # rewrite dvc.lock's code deps
    python -m pipeline.relock --moved-params --dry   # also the params whose keys moved (the same values, regrouped)

What `dvc commit` does for deps, without needing the stages' cached outputs on this machine: every dep under
`pipeline/` gets the file's current md5 and size, deps a stage no longer declares are dropped, and every other
dep (data, upstream outputs), the command, the params and the outputs stay as recorded. It refuses a stage whose
command changed or that declares a data dep dvc.lock does not hold. It is only honest after a proof that the
change leaves every output byte-identical: rerun a row and compare (docs/trust.md, "Relocking after a refactor").

`--moved-params` also records the params of each stage whose declared params keys (dvc.yaml, per params file) are
not the keys dvc.lock records: the keys it declares now, each with its value in the params file now, as `dvc repro`
records them. This is for params that moved, not changed: `vincent.models` grouped by stack, each finetune@ and
evaluate@<dataset>-<stack> declaring `vincent.models.<stack>` where it declared all of `vincent.models`. A stage
whose keys are the same is never touched, whatever its values: a value that differs is a change of params, and the
stage reruns. It is only honest after a proof that every stage it relocks reads the same values as before from the
keys it declares now (for the grouping: tests/test_params.py, each stack's models as the flat form gave them).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from pipeline.core.errors import StageError

CODE = "pipeline/"
DEFAULT_PARAMS = "params.yaml"  # DVC's default params file, first in dvc.lock


def code_dep(path: str) -> dict:
    data = Path(path).read_bytes()
    return {"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def relocked(lock: dict, declared: dict[str, tuple[str, list[str]]]) -> tuple[dict, list[str]]:
    """`lock` (dvc.lock, parsed) with each stage's deps as `declared` ({stage: (cmd, dep paths)}); the stages changed."""
    changed = []
    for name, entry in lock.get("stages", {}).items():
        if name not in declared:
            continue  # a stage dvc.yaml no longer has: DVC ignores its entry
        cmd, paths = declared[name]
        if entry.get("cmd") != cmd:
            raise StageError(f"dvc.lock, {name}: its command changed ({entry.get('cmd')!r} -> {cmd!r}): rerun it")
        old = {d["path"]: d for d in entry.get("deps", [])}
        new = []
        for path in sorted(paths):
            if path.startswith(CODE):
                if not Path(path).is_file():
                    raise StageError(f"dvc.yaml, {name}: declares {path}, which does not exist")
                new.append(code_dep(path))
            elif path in old:
                new.append(old[path])
            else:
                raise StageError(f"dvc.lock, {name}: holds no hash for its dep {path}: rerun the stage")
        dropped = [p for p in old if p not in paths and not p.startswith(CODE)]
        if dropped:
            raise StageError(f"dvc.lock, {name}: no longer declares the data deps {dropped}: rerun the stage")
        if new != entry.get("deps", []):
            entry["deps"] = new
            changed.append(name)
    return lock, changed


def declared_params(root: str | Path = ".") -> dict[str, dict[str, dict[str, Any]]]:
    """Every stage of `dvc.yaml` (matrix and foreach expanded): per params file it declares, each key it declares with
    the value the file holds now, read as DVC reads them for dvc.lock; a StageError for a key the file lacks."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    declared: dict[str, dict[str, dict[str, Any]]] = {}
    with Repo(str(root)) as repo:
        for stage in repo.index.stages:
            files: dict[str, dict[str, Any]] = {}
            for dep in stage.deps:
                if not isinstance(dep, ParamsDependency):
                    continue
                values = dep.read_params()
                missing = [k for k in dep.params if k not in values]
                if missing:
                    raise StageError(f"{dep.def_path}: has no {', '.join(missing)}, which {stage.addressing} declares")
                files[dep.def_path] = {k: values[k] for k in dep.params} if dep.params else values
            declared[stage.addressing] = files
    return declared


def lock_params(files: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A stage's params as dvc.lock writes them: params.yaml first, then the other files by name; keys sorted."""
    order = sorted(files, key=lambda f: (f != DEFAULT_PARAMS, f))
    return {f: {k: files[f][k] for k in sorted(files[f])} for f in order}


def moved_params(lock: dict, declared: dict[str, dict[str, dict[str, Any]]]) -> tuple[dict, list[str]]:
    """`lock` where each stage whose declared params keys (`declared`: {stage: {params file: {key: value now}}}) differ
    from the keys it records gets the declared keys and values instead; the stages changed. A stage whose keys are the
    same keeps its entry, whatever its values (their change is a change of params: the stage reruns)."""
    changed = []
    for name, entry in lock.get("stages", {}).items():
        if name not in declared:
            continue  # a stage dvc.yaml no longer has: DVC ignores its entry
        recorded = {f: set(keys) for f, keys in entry.get("params", {}).items()}
        if recorded == {f: set(keys) for f, keys in declared[name].items()}:
            continue
        params = lock_params(declared[name])
        items = [(k, v) for k, v in entry.items() if k != "params"]
        if params:  # where dvc.lock has it: after the command and the deps
            at = max((i + 1 for i, (k, _) in enumerate(items) if k in ("cmd", "deps")), default=0)
            items.insert(at, ("params", params))
        lock["stages"][name] = dict(items)  # a new entry: the one recorded is not changed in place
        changed.append(name)
    return lock, changed


def param_keys(entry: dict) -> set[str]:
    """The params keys a lock entry records (`file:key` for a file other than params.yaml)."""
    return {k if f == DEFAULT_PARAMS else f"{f}:{k}" for f, keys in entry.get("params", {}).items() for k in keys}


def key_moves(before: dict, after: dict) -> str:
    """What moved between two lock entries of one stage: `the keys removed -> the keys added`."""
    removed, added = sorted(param_keys(before) - param_keys(after)), sorted(param_keys(after) - param_keys(before))
    return f"{', '.join(removed) or '-'} -> {', '.join(added) or '-'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.relock", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", default="dvc.lock", type=Path)
    parser.add_argument("--dry", action="store_true", help="print the stages that would change; write nothing")
    parser.add_argument(
        "--moved-params",
        action="store_true",
        help="also record the params of the stages whose declared params keys are not dvc.lock's (their values now); "
        "only after a proof that they read the same values (the docstring)",
    )
    args = parser.parse_args(argv)
    from pipeline.core.cli import exits_on_bad_input

    with exits_on_bad_input("relock"):
        from dvc.utils.serialize import dumps_yaml

        from pipeline.check import read_lock
        from pipeline.common.io import atomic_path
        from pipeline.reach import declared_stages

        lock = read_lock(args.lock)
        verb = "would record" if args.dry else "recorded"
        declared = declared_stages()
        lock, changed = relocked(lock, declared)
        for name in changed:
            print(f"{verb} the code deps of {name}")
        if args.moved_params:
            before = dict(lock.get("stages", {}))
            lock, moved = moved_params(lock, declared_params())
            for name in moved:
                print(f"{verb} the moved params of {name}: {key_moves(before[name], lock['stages'][name])}")
            changed += [name for name in moved if name not in changed]
        if changed and not args.dry:
            with atomic_path(args.lock) as tmp:
                tmp.write_text(dumps_yaml(lock))
        print(f"{len(changed)} stage(s) {'to relock' if args.dry else 'relocked'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
