"""The layout is the architecture: stages on top, libraries below, imports only downward, deps declared.

Read from the source (AST), not by importing: stage scripts import their libraries inside `main`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline import wire

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "pipeline"
# Plumbing every stage uses that cannot change what a stage computes: not DVC deps.
MAX_LINES = 300


MODULES = wire.modules()
PLUMBING = {m for m in MODULES if wire.is_plumbing(m)}
STAGES = sorted(m for m in MODULES if m.startswith("pipeline.stages.") and not m.endswith("__init__"))
imports, closure, docstring_only = wire.imports, wire.closure, wire.docstring_only


def test_stages_import_libraries_and_libraries_never_import_stages() -> None:
    for module in MODULES:
        stage_imports = {m for m in imports(module) if m.startswith("pipeline.stages")}
        assert not stage_imports, f"{module} imports stage scripts {sorted(stage_imports)}"


# The layers, bottom up: a module imports only modules of its own layer or below. The commands a user types
# (`python -m pipeline.<tool>`) are the modules at the top of pipeline/, above everything.
LAYERS = [
    ("pipeline.core.errors",),
    ("pipeline.common",),
    ("pipeline.core", "pipeline.params"),
    ("pipeline.data",),
    ("pipeline.models", "pipeline.evaluation"),
    ("pipeline.training", "pipeline.reporting"),
    ("pipeline.zoo",),
    ("pipeline.stages", "pipeline.execution"),
]


def layer(module: str) -> int:
    """The rank in LAYERS of the most specific package holding `module`; a tool at the top of pipeline/ is above all."""
    found = [
        (len(p), rank)
        for rank, packages in enumerate(LAYERS)
        for p in packages
        if module == p or module.startswith(p + ".")
    ]
    if found:
        return max(found)[1]
    assert module.count(".") == 1, f"{module}: in no layer of LAYERS"
    return len(LAYERS)


def test_imports_run_downward() -> None:
    upward = {m: sorted(i for i in imports(m) if layer(i) > layer(m)) for m in MODULES if m != "pipeline"}
    upward = {m: up for m, up in upward.items() if up}
    assert not upward, f"modules importing a layer above their own: {upward}"


def test_every_package_has_an_init() -> None:
    missing = [
        str(d.relative_to(ROOT))
        for d in PACKAGE.rglob("*")
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")) and not (d / "__init__.py").is_file()
    ]
    assert not missing, f"packages without __init__.py: {missing}"


def test_no_import_cycles() -> None:
    for module in MODULES:
        assert module not in closure(module), f"{module} imports itself through {sorted(closure(module))}"


def test_no_module_is_long() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def declared_deps() -> dict[str, list[str]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for stage in stages.values():
        body = stage.get("do", stage)
        module = body["cmd"].split()[2]
        out[module] = [d for d in body["deps"] if d.startswith("pipeline/")]
    return out


def test_every_stage_script_is_a_dvc_stage_and_declares_the_code_it_runs() -> None:
    deps = declared_deps()
    assert sorted(deps) == STAGES
    for stage, declared in deps.items():
        used = {stage} | closure(stage, through_plumbing=False)
        needed = {str(MODULES[m].relative_to(ROOT)) for m in used - PLUMBING if not docstring_only(MODULES[m])}
        assert needed <= set(declared), f"{stage}: missing {sorted(needed - set(declared))}"
        assert declared == wire.code_deps(stage), f"{stage}: dvc.yaml's deps are stale: run python -m pipeline.wire"


def test_pretrain_declares_its_own_kind_and_what_every_kind_imports() -> None:
    """A kind is loaded by name (layer_kind.load_kind), not imported: each pretrain item declares its kind's file and
    its family's, and the stage what the kinds import besides those, so no kind is a dep of another kind's stacks."""
    declared = declared_deps()["pipeline.stages.pretrain"]
    per_kind = ("/kinds/", "/families/")
    assert all(d in declared for d in wire.KIND_DEPS)
    assert not any(p in d and "${" not in d for d in declared for p in per_kind)
    families = [m for m in wire.kind_modules() if ".families." in m]
    for kind in wire.kind_modules():
        needed = {str(MODULES[m].relative_to(ROOT)) for m in closure(kind, through_plumbing=False) - PLUMBING}
        assert {d for d in needed if not any(p in d for p in per_kind)} <= set(declared), kind
        others = {m for m in closure(kind) if m in wire.kind_modules() and m not in families}
        assert not others, f"{kind} imports another kind: {others}"
        if kind in families:
            assert not {m for m in closure(kind) if m in families}, f"the family {kind} imports another family"


def test_dvc_yaml_and_the_pretrain_items_are_wired() -> None:
    assert not wire.outdated(), "run python -m pipeline.wire"


@pytest.mark.parametrize("stage", STAGES)
def test_help_is_the_stage_docstring_and_fast(stage: str) -> None:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", stage, "--help"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    first_line = MODULES[stage].read_text().split('"""')[1].splitlines()[0]
    assert first_line in result.stdout
    assert "torch" not in closure_imported_at_top(stage), "heavy imports must wait until after parsing"
    assert seconds < 5, f"--help took {seconds:.1f} s"


def closure_imported_at_top(stage: str) -> set[str]:
    """Third-party top-level packages imported at module level by `stage` and the pipeline modules it
    imports at module level: what `--help` pays for."""
    seen, todo, external = set(), [stage], set()
    while todo:
        module = todo.pop()
        for node in ast.parse(MODULES[module].read_text()).body:
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for n in names:
                if n in MODULES and n not in seen and n != "pipeline":
                    seen.add(n)
                    todo.append(n)
                elif not n.startswith("pipeline"):
                    external.add(n.split(".")[0])
    return external
