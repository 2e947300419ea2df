"""Write what dvc.yaml derives from the code and params.yaml, so that each stage depends on what it runs, no more.

    python -m pipeline.wire            # rewrite dvc.yaml's code deps and slots, and pipeline/stages/items.yaml
    python -m pipeline.wire --check    # change nothing; exit 1 naming what is out of date

1. **Code deps.** A stage's code deps are its script and every module of pipeline/ it imports, directly or not
   (read from the source), except the plumbing that cannot change what it computes (pipeline/core, pipeline/params)
   and docstring-only `__init__.py` files. The other deps of a stage (data, models) are left as they are.
2. **A kind's file is a dep of its own stacks only.** `pretrain` loads its stack's layer kind by name
   (pipeline/training/layer_kind.py), so its script declares what every kind needs besides the kinds' files and
   their families' (pipeline/training/families/), and each item declares its own two.
3. **A row has the stages of its own stacks.** The items of `pretrain`, `finetune` and `evaluate` are written out
   (`pretrain_items`): one per row of vincent.datasets and stack the row runs (`VincentParams.stacks_of`:
   vincent.rows.<row>.stacks), named as a matrix over rows x stacks would name them (`pretrain@<dataset>-<stack>`),
   with the stack's kind and family. DVC cannot read a matrix item's params, nor interpolate a list into `params:`.
   A stack no row runs has no stage (allowed, to try it with `python -m pipeline.extend` first): wire names it.
4. **A row's report declares its own stacks' params only.** `report_items`, one per row: its stacks in slots
   `s1`..`sN`, N the most stacks a row runs (a row with fewer repeats its last: DVC records a key declared twice
   once). The params of a stage that name a slot (`vincent.stacks.${item.s1}`) are rewritten to one per slot.
5. **The zoo's table-kind layers** (`zoo_layer_items`, one per entry of zoo.layers) declare their kind's and
   family's files as `pretrain` does.

Run it after adding an import to a stage's code, a dataset, a stack or a row's stack: `tests/test_layout.py` fails
until then.
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
ITEMS = "pipeline/stages/items.yaml"
KIND_DEPS = ["pipeline/training/families/${item.family}.py", "pipeline/training/kinds/${item.kind}.py"]
PER_KIND_PACKAGES = ("pipeline.training.kinds", "pipeline.training.families")
# stages whose kind's and family's files are item deps (KIND_DEPS): the table's pretraining, the zoo's table-kind layers
PER_KIND = {"pipeline.stages.pretrain", "pipeline.stages.zoo_layer"}


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
    """{"<dataset>-<stack>": {dataset, stack, kind, family}} per row of vincent.datasets and stack it runs, rows in
    vincent.datasets order, each row's stacks in vincent.stacks order (a matrix's order)."""
    from pipeline.params import load_params
    from pipeline.params.stacks import KINDS

    v = load_params(params_path).vincent
    return {
        f"{d}-{s}": {"dataset": d, "stack": s, "kind": v.stacks[s].kind, "family": KINDS[v.stacks[s].kind].family}
        for d in v.datasets
        for s in v.stacks_of(d)
    }


def zoo_layer_items(params_path: Path) -> dict[str, dict[str, str]]:
    """{"<name>": {layer, kind, family}} per entry of zoo.layers (stage zoo_layer@<name>), in params order."""
    from pipeline.params import load_params
    from pipeline.params.stacks import KINDS

    layers = load_params(params_path).zoo.layers
    return {n: {"layer": n, "kind": layer.kind, "family": KINDS[layer.kind].family} for n, layer in layers.items()}


def report_items(params_path: Path) -> dict[str, dict[str, str]]:
    """{"<dataset>": {s1: <stack>, ..., sN: <stack>}} per row of vincent.datasets: the stacks it runs in N slots, N the
    most stacks any row runs, a row with fewer repeating its last."""
    from pipeline.params import load_params

    v = load_params(params_path).vincent
    stacks = {d: v.stacks_of(d) for d in v.datasets}
    n = max(len(s) for s in stacks.values())
    return {d: {f"s{i + 1}": s[min(i, len(s) - 1)] for i in range(n)} for d, s in stacks.items()}


def slots(items: dict[str, dict[str, str]]) -> int:
    """How many slots each report item has."""
    return len(next(iter(items.values()))) if items else 0


def items_text(
    items: dict[str, dict[str, str]],
    reports: dict[str, dict[str, str]],
    zoo_layers: dict[str, dict[str, str]] | None = None,
) -> str:
    lines = [
        "# Written by `python -m pipeline.wire` from params.yaml (each row of vincent.datasets and the stacks it runs,",
        "# vincent.rows.<row>.stacks): do not edit. pretrain_items: dvc.yaml's pretrain, finetune and evaluate stages,",
        "# one per row and stack (pretrain depends on its stack's kind and family, pipeline/training/); report_items:",
        "# one report per row, its stacks in slots s1..sN (a row with fewer repeats its last); zoo_layer_items: one",
        "# zoo_layer stage per entry of zoo.layers, with its kind and family.",
    ]
    for name, entries in (("pretrain_items", items), ("report_items", reports), ("zoo_layer_items", zoo_layers or {})):
        lines += [f"{name}:" if entries else f"{name}: {{}}"]
        lines += [f"  {key}: {{{', '.join(f'{k}: {v}' for k, v in i.items())}}}" for key, i in entries.items()]
    return "\n".join(lines) + "\n"


STAGE = re.compile(r"^  (\w+):\s*$")
CMD = re.compile(r"cmd: python -m (pipeline\.stages\.\w+)")
SLOT = re.compile(r"^(\s*- )(.+)\.\$\{item\.s\d+\}\s*$")  # a param of one report slot: - vincent.stacks.${item.s1}


def rewired(text: str, n_slots: int) -> str:
    """dvc.yaml's text with every stage's pipeline/ deps replaced by `code_deps`, and each run of params naming a
    report slot (SLOT) by the same params for slots s1..s`n_slots`, each key's in turn; everything else as it was."""
    lines, out, i = text.splitlines(keepends=True), [], 0
    stage_module = None
    while i < len(lines):
        line = lines[i]
        if STAGE.match(line):
            stage_module = None
        if m := CMD.search(line):
            stage_module = m.group(1)
        if m := SLOT.match(line):
            indent, prefixes = m.group(1), []
            while i < len(lines) and (m := SLOT.match(lines[i])) and m.group(1) == indent:
                prefixes += [m.group(2)] if m.group(2) not in prefixes else []
                i += 1
            out += [f"{indent}{p}.${{item.s{k}}}\n" for p in prefixes for k in range(1, n_slots + 1)]
            continue
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


def stacks_no_row_runs(root: Path = ROOT) -> list[str]:
    """The stacks of vincent.stacks that no row of vincent.datasets runs: allowed (one tried with python -m
    pipeline.extend before a row runs it), but they have no stage."""
    from pipeline.params import load_params
    from pipeline.params.rows import unused_stacks

    v = load_params(root / "params.yaml").vincent
    return unused_stacks(v.rows, v.datasets, v.stacks)


def outdated(root: Path = ROOT) -> dict[Path, str]:
    """{file: its text as it should be} for each derived file that is not."""
    reports = report_items(root / "params.yaml")
    want = {
        root / "dvc.yaml": rewired((root / "dvc.yaml").read_text(), slots(reports)),
        root / ITEMS: items_text(pretrain_items(root / "params.yaml"), reports, zoo_layer_items(root / "params.yaml")),
    }
    return {p: text for p, text in want.items() if not p.exists() or p.read_text() != text}


def main(argv: list[str] | None = None) -> int:
    from pipeline.common.io import atomic_path

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a derived file is stale")
    args = parser.parse_args(argv)
    from pipeline.core.cli import exits_on_bad_input

    with exits_on_bad_input("wire"):  # params.yaml invalid: its error, exit 2
        stale = outdated()
        for stack in stacks_no_row_runs():
            print(
                f"note: no row runs vincent.stacks.{stack}, so it has no stage: list it under "
                f"vincent.rows.<row>.stacks of the rows that should (`{stack}: {{}}` for its own grid)"
            )
    for path, text in stale.items():
        name = path.relative_to(ROOT)
        if args.check:
            print(f"{name} is out of date with the code and params.yaml: run python -m pipeline.wire")
        else:
            with atomic_path(path) as tmp:
                tmp.write_text(text)
            print(f"wrote {name}")
    if not stale:
        print("dvc.yaml's code deps and report slots, and the stage items, match the code and params.yaml")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
