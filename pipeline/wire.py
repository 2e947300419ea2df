"""Write what dvc.yaml derives from the code and params.yaml, so that each stage depends on what it runs, no more.

    python -m pipeline.wire            # rewrite dvc.yaml's code deps and pipeline/stages/pretrain_items.yaml
    python -m pipeline.wire --check    # change nothing; exit 1 naming what is out of date

1. **Code deps.** A stage's code deps are its script and every module of pipeline/ it imports, directly or not
   (read from the source), except the plumbing that cannot change what it computes (pipeline/core, pipeline/params)
   and docstring-only `__init__.py` files. The other deps of a stage (data, models) are left as they are.
2. **A kind's file is a dep of its own stacks only.** `pretrain` loads its stack's layer kind by name
   (pipeline/training/layer_kind.py), so its script declares what every kind needs besides the kinds' files and
   their families' (pipeline/training/families/), and each item declares its own two. DVC cannot read a matrix item's
   params, so the items are written out: one per (dataset, stack) of vincent.datasets x vincent.stacks, named as the
   matrix named them (`pretrain@<dataset>-<stack>`), with the stack's kind and family.

Run it after adding an import to a stage's code, a dataset or a stack: `tests/test_layout.py` fails until then.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
ITEMS = "pipeline/stages/pretrain_items.yaml"
KIND_DEPS = ["pipeline/training/families/${item.family}.py", "pipeline/training/kinds/${item.kind}.py"]
PER_KIND_PACKAGES = ("pipeline.training.kinds", "pipeline.training.families")
PER_KIND = {"pipeline.stages.pretrain"}  # stages whose kind's and family's files are item deps (KIND_DEPS)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def is_plumbing(module: str) -> bool:
    return module.startswith(("pipeline.params", "pipeline.core"))


@cache
def imports(module: str) -> frozenset[str]:
    """The pipeline modules `module` imports (anywhere in the file), resolved to module names."""
    known, found = modules(), set()
    for node in ast.walk(ast.parse(known[module].read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("pipeline")]
        found |= {n for n in names if n in known and n != "pipeline"}
    return frozenset(found - {module})


def closure(module: str, through_plumbing: bool = True) -> set[str]:
    """Every pipeline module `module` imports, directly or not (not looking inside the plumbing when asked)."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if not through_plumbing and is_plumbing(current):
            continue
        for m in imports(current):
            if m not in seen:
                seen.add(m)
                todo.append(m)
    return seen


def docstring_only(path: Path) -> bool:
    """A package's __init__.py that only documents the package: no code a stage could depend on."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body
    )


def kind_modules() -> list[str]:
    """The kinds' and families' modules: each a dep of its own stacks' pretrain stages only."""
    return [m for m in modules() if m.startswith(tuple(p + "." for p in PER_KIND_PACKAGES))]


def code_deps(stage: str) -> list[str]:
    """The code deps of stage module `stage` as dvc.yaml lists them: the script, then the rest sorted (for a PER_KIND
    stage, what every kind imports besides the kinds' and families' files, and then KIND_DEPS)."""
    used = closure(stage, through_plumbing=False)
    if stage in PER_KIND:
        for kind in kind_modules():
            used |= {kind} | closure(kind, through_plumbing=False)
        used -= set(kind_modules())
    known = modules()
    rest = sorted(str(known[m].relative_to(ROOT)) for m in used if not is_plumbing(m) and not docstring_only(known[m]))
    return [str(known[stage].relative_to(ROOT)), *rest] + (KIND_DEPS if stage in PER_KIND else [])


def pretrain_items(params_path: Path) -> dict[str, dict[str, str]]:
    """{"<dataset>-<stack>": {dataset, stack, kind, family}} for vincent.datasets x vincent.stacks, in the matrix's
    order."""
    import yaml

    from pipeline.params.stacks import KINDS

    vincent = yaml.safe_load(params_path.read_text())["vincent"]
    items = {}
    for d in vincent["datasets"]:
        for s, spec in vincent["stacks"].items():
            family = KINDS[spec["kind"]].family if spec.get("kind") in KINDS else "unknown"
            items[f"{d}-{s}"] = {"dataset": d, "stack": s, "kind": spec["kind"], "family": family}
    return items


def items_text(items: dict[str, dict[str, str]]) -> str:
    lines = [
        "# Written by `python -m pipeline.wire` from params.yaml (vincent.datasets x vincent.stacks): do not edit.",
        "# dvc.yaml's pretrain stages, one per item, each depending on its stack's kind and family (pipeline/training/).",
        "pretrain_items:",
    ]
    lines += [f"  {key}: {{{', '.join(f'{k}: {v}' for k, v in i.items())}}}" for key, i in items.items()]
    return "\n".join(lines) + "\n"


STAGE = re.compile(r"^  (\w+):\s*$")
CMD = re.compile(r"cmd: python -m (pipeline\.stages\.\w+)")


def rewired(text: str) -> str:
    """dvc.yaml's text with every stage's pipeline/ deps replaced by `code_deps`; everything else as it was."""
    lines, out, i = text.splitlines(keepends=True), [], 0
    stage_module = None
    while i < len(lines):
        line = lines[i]
        if STAGE.match(line):
            stage_module = None
        if m := CMD.search(line):
            stage_module = m.group(1)
        out.append(line)
        i += 1
        if line.strip() == "deps:" and stage_module is not None:
            indent = line[: len(line) - len(line.lstrip())] + "  - "
            block = []
            while i < len(lines) and lines[i].startswith(indent):
                block.append(lines[i][len(indent) :].strip())
                i += 1
            others = [d for d in block if not d.startswith("pipeline/")]
            out += [f"{indent}{d}\n" for d in code_deps(stage_module) + others]
    return "".join(out)


def outdated(root: Path = ROOT) -> dict[Path, str]:
    """{file: its text as it should be} for each derived file that is not."""
    want = {
        root / "dvc.yaml": rewired((root / "dvc.yaml").read_text()),
        root / ITEMS: items_text(pretrain_items(root / "params.yaml")),
    }
    return {p: text for p, text in want.items() if not p.exists() or p.read_text() != text}


def main(argv: list[str] | None = None) -> int:
    from pipeline.common.io import atomic_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a derived file is stale")
    args = parser.parse_args(argv)
    stale = outdated()
    for path, text in stale.items():
        name = path.relative_to(ROOT)
        if args.check:
            print(f"{name} is out of date with the code and params.yaml: run python -m pipeline.wire")
        else:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            print(f"wrote {name}")
    if not stale:
        print("dvc.yaml's code deps and pretrain items match the code and params.yaml")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
