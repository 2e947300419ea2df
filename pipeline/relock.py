"""Record in dvc.lock the code deps each stage declares now, for a change that moved code but not outputs.

    python -m pipeline.relock --dry    # what would change
    python -m pipeline.relock          # rewrite dvc.lock's code deps

What `dvc commit` does for deps, without needing the stages' cached outputs on this machine: every dep under
`pipeline/` gets the file's current md5 and size, deps a stage no longer declares are dropped, and every other
dep (data, upstream outputs), the command, the params and the outputs stay as recorded. It refuses a stage whose
command changed or that declares a data dep dvc.lock does not hold. It is only honest after a proof that the
change leaves every output byte-identical: rerun a row and compare (docs/trust.md, "Relocking after a refactor").
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from pipeline.core.errors import StageError

CODE = "pipeline/"


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.relock", description=__doc__.splitlines()[0])
    parser.add_argument("--lock", default="dvc.lock", type=Path)
    parser.add_argument("--dry", action="store_true", help="print the stages that would change; write nothing")
    args = parser.parse_args(argv)
    from pipeline.core.cli import exits_on_bad_input

    with exits_on_bad_input("relock"):
        from dvc.utils.serialize import dumps_yaml

        from pipeline.check import read_lock
        from pipeline.common.io import atomic_path
        from pipeline.reach import declared_stages

        lock = read_lock(args.lock)
        declared = declared_stages()
        lock, changed = relocked(lock, declared)
        for name in changed:
            print(f"{'would record' if args.dry else 'recorded'} the code deps of {name}")
        if changed and not args.dry:
            with atomic_path(args.lock) as tmp:
                tmp.write_text(dumps_yaml(lock))
        print(f"{len(changed)} stage(s) {'to relock' if args.dry else 'relocked'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
