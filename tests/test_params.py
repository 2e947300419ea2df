"""params.yaml validation: bad input stops a stage before any work, naming key, value and rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.params import Params, ParamsError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def test_repo_params_are_valid() -> None:
    params = load_params(ROOT / "params.yaml")
    assert params.prepare.basic.train == 10_000
    assert params.prepare.basic.valid == 2_000
    assert params.prepare.basic.test == 50_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"sed": 1}, ["sed", "unknown key"]),
        ({"prepare": {"basic": {"trian": 5}}}, ["prepare.basic.trian", "unknown key"]),
        ({"seed": "abc"}, ["seed", "'abc'", "valid integer"]),
        ({"prepare": {"basic": {"train": 10.5}}}, ["prepare.basic.train", "10.5"]),
        ({"corrupt": {"masking": [0.1, 1.5]}}, ["corrupt.masking.1", "1.5", "less than or equal to 1"]),
        ({"corrupt": {"gaussian": [-0.2]}}, ["corrupt.gaussian.0", "-0.2", "greater than or equal to 0"]),
        ({"prepare": {"full": {"valid": 0}}}, ["prepare.full.valid", "0", "greater than 0"]),
        ({"prepare": {"basic": {"train": 30000, "valid": 2000, "test": 50000}}}, ["prepare.basic", "82000", "70,000"]),
        ({"prepare": {"full": {"test": 20000}}}, ["prepare.full", "10,000"]),
        ({"data": {"source": "cifar"}}, ["data.source", "'cifar'", "mnist"]),
    ],
)
def test_bad_params_name_key_value_and_rule(raw: dict, expected: list[str]) -> None:
    assert_params_error(raw, expected)


def assert_params_error(raw: dict, expected: list[str]) -> None:
    """Validating `raw` fails with a message that contains every fragment of `expected`."""
    with pytest.raises(ParamsError) as info:
        parse_params(raw)
    message = str(info.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_problem_is_listed_at_once() -> None:
    with pytest.raises(ParamsError) as info:
        parse_params({"sed": 1, "corrupt": {"masking": [2.0]}})
    assert "sed" in str(info.value) and "corrupt.masking.0" in str(info.value)


def test_missing_and_unparsable_files(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1, 2\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_defaults_fill_missing_sections() -> None:
    assert parse_params({"seed": 3}) == Params(seed=3)


@pytest.mark.parametrize("stage", ["prepare", "corrupt"])
def test_stage_stops_before_any_work_on_bad_params(tmp_path: Path, stage: str) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["corrupt"]["masking"] = [0.25, 1.7]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.stages.{stage}", *(["--dataset", "basic"] if stage == "corrupt" else [])],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 2
    assert "corrupt.masking.1 = 1.7" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "the stage wrote something"


@pytest.mark.parametrize("params_file", ["params.yaml", "tests/smoke_params.yaml"])
def test_every_param_a_stage_declares_is_in_the_params_file(params_file: str) -> None:
    """DVC needs each declared param key in the file itself (schema defaults do not count)."""
    from pipeline import wire

    raw = yaml.safe_load((ROOT / params_file).read_text())
    # the stages over python -m pipeline.wire's items (a row and a stack it runs; a row and its stacks' slots), and
    # dvc.yaml as wired for these params (a project with them: conftest.rewire)
    written = {
        "${pretrain_items}": wire.pretrain_items(ROOT / params_file),
        "${report_items}": wire.report_items(ROOT / params_file),
    }
    wired = wire.rewired((ROOT / "dvc.yaml").read_text(), wire.slots(written["${report_items}"]))
    stages = yaml.safe_load(wired)["stages"]
    # the entries one item of another foreach stands for: a row of the table (e.g. vincent.rows.<d>)
    items = {"${item}": raw["vincent"]["datasets"], "${item.dataset}": raw["vincent"]["datasets"]}

    def walk(node: object, parts: list[str], key: str, stage: str) -> None:
        if not parts:
            return
        part, rest = parts[0], parts[1:]
        if part in items:
            missing = [e for e in items[part] if not isinstance(node, dict) or e not in node]
            assert not missing, f"{params_file}: {key} (stage {stage}) has no entry for {missing}"
            for entry in items[part]:
                walk(node[entry], rest, key, stage)
            return
        if part.startswith("${"):  # another foreach item: the mapping above it must exist
            return
        assert isinstance(node, dict) and part in node, f"{params_file}: {key} (stage {stage}) is missing"
        walk(node[part], rest, key, stage)

    for name, stage in stages.items():
        body = stage.get("do", stage)
        if stage.get("foreach") in written:
            for item_key, item in written[stage["foreach"]].items():
                for key in body.get("params", []):
                    concrete = key.replace("${key}", item_key)
                    for k, v in item.items():
                        concrete = concrete.replace(f"${{item.{k}}}", v)
                    assert "${" not in concrete, f"{name}: {key} names no field of its items"
                    walk(raw, concrete.split("."), concrete, f"{name}@{item_key}")
            continue
        for key in body.get("params", []):
            walk(raw, key.split("."), key, name)


def test_every_row_of_the_table_must_be_made_and_listed_once() -> None:
    with pytest.raises(ParamsError, match=r"vincent.datasets: \['rect'\] must be made first.*benchmarks.datasets"):
        parse_params({"vincent": {"datasets": ["basic", "rect"]}})
    with pytest.raises(ParamsError, match=r"vincent.datasets = \['basic', 'basic'\]: a dataset is listed twice"):
        parse_params({"vincent": {"datasets": ["basic", "basic"]}})
    ok = parse_params(
        {"vincent": {"datasets": ["basic", "rect"]}, "benchmarks": {"datasets": {"rect": {"source": "generated"}}}}
    )
    assert ok.vincent.datasets == ["basic", "rect"]


def test_a_stack_no_model_uses_is_an_error_and_models_of_groups_the_columns() -> None:
    stacks = {
        "dbn": {"kind": "rbm", "layers": 3, "lr": [0.1], "epochs": [5]},
        "saa": {"kind": "ae", "layers": 3, "lr": [0.1], "epochs": [5]},
    }
    models = {"dbn": {"dbn1": {"layers": 1, "table_name": "DBN-1"}, "dbn3": {"layers": 3, "table_name": "DBN-3"}}}
    with pytest.raises(
        ParamsError, match=r"vincent.stacks \['saa'\]: no models are built on them; add vincent.models.saa"
    ):
        parse_params({"vincent": {"stacks": stacks, "models": models}})
    ok = parse_params({"vincent": {"stacks": {"dbn": stacks["dbn"]}, "models": models}})
    assert list(ok.vincent.models_of("dbn")) == ["dbn1", "dbn3"]
    assert ok.vincent.models["dbn3"].stack == "dbn", "a model's stack is its group's key"


def test_a_row_replaces_only_the_fine_tuning_keys_it_names() -> None:
    base = {"lr": [0.1, 0.2], "max_epochs": 50, "patience": 5, "batch_size": 32, "rungs": [5], "eta": 4}
    params = parse_params({"vincent": {"finetune": base, "rows": {"basic": {"finetune": {"batch_size": 8}}}}})
    row = params.vincent.finetune_for("basic")
    assert row.batch_size == 8 and row.model_dump() == base | {"batch_size": 8}
    assert params.vincent.finetune_for("rect") == params.vincent.finetune  # not listed: the defaults
    empty = parse_params({"vincent": {"finetune": base, "rows": {"basic": {}}}})
    assert empty.vincent.finetune_for("basic") == empty.vincent.finetune
    assert_params_error(
        {"vincent": {"rows": {"basic": {"finetune": {"bacth_size": 8}}}}},
        ["vincent.rows.basic.finetune.bacth_size", "unknown key"],
    )
    assert_params_error(
        {"vincent": {"rows": {"basic": {"finetune": {"batch_size": 0}}}}},
        ["vincent.rows.basic.finetune.batch_size", "0", "greater than 0"],
    )


def test_a_row_replaces_only_the_stack_grid_keys_it_names() -> None:
    stacks = {
        "dbn": {"kind": "rbm", "layers": 3, "lr": [0.01, 0.1], "epochs": [25, 100]},
        "sda": {"kind": "ae", "layers": 3, "lr": [0.1], "epochs": [100], "noise": [0.1, 0.25]},
    }
    models = {
        "dbn": {"dbn3": {"layers": 3, "table_name": "DBN-3"}},
        "sda": {"sda3": {"layers": 3, "table_name": "SdA-3"}},
    }
    rows = {"basic": {"stacks": {"dbn": {"lr": [0.1], "epochs": [100]}, "sda": {}}}}
    v = parse_params({"vincent": {"stacks": stacks, "models": models, "rows": rows}}).vincent
    replaced = {"lr": [0.1], "epochs": [100], "noise": [0.0], "top": "softmax"}
    assert v.stack_for("basic", "dbn").model_dump() == stacks["dbn"] | replaced
    assert v.stack_for("basic", "sda") == v.stacks["sda"]  # `{}`: the stack's own grid
    assert v.stack_for("rect", "dbn") == v.stacks["dbn"]  # a row not listed: the defaults
    bad = {"vincent": {"stacks": stacks, "models": models, "rows": {"basic": {"stacks": {"sad": {}}}}}}
    assert_params_error(bad, ["vincent.rows.basic.stacks.sad", "not a key of vincent.stacks", "['dbn', 'sda']"])
    bad["vincent"]["rows"] = {"basic": {"stacks": {"dbn": {"noise": [0.25]}}}}  # the stack's own rules still hold
    assert_params_error(bad, ["vincent.rows.basic.stacks.dbn", "only allowed for kind 'ae'"])
    bad["vincent"]["rows"] = {"basic": {"stacks": {"dbn": {"kind": "ae"}}}}  # kind and depth are the stack's
    assert_params_error(bad, ["vincent.rows.basic.stacks.dbn.kind", "unknown key"])
    bad["vincent"]["rows"] = {"basic": {"stacks": {"dbn": {"top": "joint"}}}}  # the head is the stack's too
    assert_params_error(bad, ["vincent.rows.basic.stacks.dbn.top", "unknown key"])
    joint = {"vincent": {"stacks": {**stacks, "dbn": {**stacks["dbn"], "top": "joint"}}, "models": models}}
    assert parse_params(joint).vincent.stacks["dbn"].top == "joint"
    joint["vincent"]["stacks"]["sda"]["top"] = "joint"
    assert_params_error(joint, ["vincent.stacks.sda", "only allowed for kind 'rbm'"])
    joint["vincent"]["stacks"]["sda"]["top"] = "softmax"
    joint["vincent"]["models"] = {**models, "dbn": {**models["dbn"], "dbn1": {"layers": 1, "table_name": "DBN-1"}}}
    assert_params_error(joint, ["vincent.models.dbn.dbn1.layers = 1", "joint top", "all its 3 layers"])
    bad["vincent"]["rows"] = {"basic": {"stacks": {"dbn": {"epochs": []}}}}
    assert_params_error(bad, ["vincent.rows.basic.stacks.dbn.epochs", "at least 1 item"])


def test_a_row_gives_the_layers_above_the_first_their_own_schedule() -> None:
    """`upper`: a first layer searched long and slowly, the layers above on one schedule (issue 38)."""
    stacks = {"dbn": {"kind": "rbm", "layers": 3, "lr": [0.1], "epochs": [100]}}
    models = {"dbn": {"dbn3": {"layers": 3, "table_name": "DBN-3"}}}
    slow = {"lr": [0.003], "epochs": [300, 600], "upper": {"lr": 0.01, "epochs": 100}}
    v = parse_params({"vincent": {"stacks": stacks, "models": models, "rows": {"basic": {"stacks": {"dbn": slow}}}}})
    row = v.vincent.stack_for("basic", "dbn")
    assert (row.lr, row.epochs, row.upper.lr, row.upper.epochs) == ([0.003], [300, 600], 0.01, 100)
    assert "upper" not in v.vincent.stacks["dbn"].model_dump()  # a stack without one dumps as before
    from pipeline.training.layer_kind import stack_specs

    assert [s.name for s in stack_specs([1000], row)] == [
        "h1000-lr0.003-e300-up0.01x100",
        "h1000-lr0.003-e600-up0.01x100",
    ]
    for upper, expected in [
        ({"lr": 0.0, "epochs": 100}, ["vincent.stacks.dbn.upper.lr", "greater than 0"]),
        ({"lr": 0.01}, ["vincent.stacks.dbn.upper.epochs", "required"]),
    ]:
        assert_params_error(
            {"vincent": {"stacks": {"dbn": {**stacks["dbn"], "upper": upper}}, "models": models}}, expected
        )
    one = {"dbn1": {"kind": "rbm", "layers": 1, "lr": [0.1], "epochs": [100], "upper": {"lr": 0.01, "epochs": 1}}}
    assert_params_error(
        {"vincent": {"stacks": one, "models": {"dbn1": {"dbn1": {"layers": 1, "table_name": "DBN-1"}}}}},
        ["vincent.stacks.dbn1", "no layer above the first"],
    )


def row_params(rows: dict, datasets: tuple[str, ...] = ("basic", "rect")) -> dict:
    """Three stacks (dbn with two columns), the rows of `datasets`, and `rows` as vincent.rows."""
    stacks = {
        "dbn": {"kind": "rbm", "layers": 3, "lr": [0.1], "epochs": [5]},
        "saa": {"kind": "ae", "layers": 3, "lr": [0.1], "epochs": [5]},
        "sda": {"kind": "ae", "layers": 3, "lr": [0.1], "epochs": [5], "noise": [0.25]},
    }
    models = {
        "dbn": {"dbn1": {"layers": 1, "table_name": "DBN-1"}, "dbn3": {"layers": 3, "table_name": "DBN-3"}},
        "saa": {"saa3": {"layers": 3, "table_name": "SAA-3"}},
        "sda": {"sda3": {"layers": 3, "table_name": "SdA-3"}},
    }
    benchmarks = {"datasets": {d: {"source": "generated"} for d in datasets if d not in ("basic", "full")}}
    vincent = {"datasets": list(datasets), "stacks": stacks, "models": models, "rows": rows}
    return {"vincent": vincent, "benchmarks": benchmarks}


def test_a_row_runs_the_stacks_it_lists_and_has_their_models() -> None:
    rows = {"basic": {"stacks": {"sda": {}, "dbn": {"lr": [0.01]}}}, "rect": {"finetune": {}}}
    v = parse_params(row_params(rows)).vincent
    assert v.stacks_of("basic") == ["dbn", "sda"], "in vincent.stacks order, not the row's"
    assert list(v.row_models("basic")) == ["dbn1", "dbn3", "sda3"], "the models of its stacks, in params order"
    assert v.stack_for("basic", "dbn").lr == [0.01]
    assert v.stacks_of("rect") == ["dbn", "saa", "sda"], "a row that lists no stack runs every one"
    assert list(v.row_models("rect")) == list(v.models)
    assert v.stacks_of("full") == ["dbn", "saa", "sda"], "so does a row not in vincent.rows"
    repo = load_params(ROOT / "params.yaml").vincent
    paper = ["dbn", "dbn1j", "dbn3j", "saa", "sda"]
    for d in repo.datasets:  # every row runs the paper's five stacks (the reports read what they read before)
        assert repo.stacks_of(d)[:5] == paper and set(repo.stacks_of(d)) - set(paper) <= {"cae2", "sdae_sp"}
    assert repo.stacks_of("rect")[5:] == ["cae2", "sdae_sp"], "rect runs the columns beyond the paper too"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            {"basic": {"stacks": {"cae2": {}}}, "rect": {}},
            ["vincent.rows.basic.stacks.cae2: not a key of vincent.stacks ['dbn', 'saa', 'sda']", "add the stack"],
        ),
        (
            {"basic": {"stacks": {}}, "rect": {}},
            ["vincent.rows.basic.stacks: lists no stack", "leave the key out for every stack"],
        ),
        (
            {"basic": {"stacks": {"dbn": {"noise": [0.25]}}}, "rect": {}},
            ["vincent.rows.basic.stacks.dbn", "only allowed for kind 'ae'"],
        ),
    ],
    ids=["an-unknown-stack", "no-stack", "a-bad-grid"],
)
def test_a_row_s_stacks_must_be_stacks_of_vincent_stacks(rows: dict, expected: list[str]) -> None:
    assert_params_error(row_params(rows), expected)


def test_a_stack_no_row_runs_is_allowed_and_has_no_stage() -> None:
    """A stack tried with python -m pipeline.extend before a row runs it (python -m pipeline.wire names it)."""
    from pipeline.params.rows import unused_stacks

    rows = {"basic": {"stacks": {"dbn": {}, "sda": {}}}, "rect": {"stacks": {"saa": {}}}}
    v = parse_params(row_params(rows)).vincent
    assert v.stacks_of("rect") == ["saa"] and unused_stacks(v.rows, v.datasets, v.stacks) == []
    v = parse_params(row_params(rows, ("basic",))).vincent  # rect lists saa, but rect is no row of the table
    assert unused_stacks(v.rows, v.datasets, v.stacks) == ["saa"]


# The committed params.yaml's columns as they were written before vincent.models was grouped by stack: the stages
# finetune/evaluate@<dataset>-<stack> must see the same models as they did then (and the table the same order).
FLAT_MODELS = {
    "dbn1": {"stack": "dbn", "layers": 1, "table_name": "DBN-1"},
    "dbn3": {"stack": "dbn", "layers": 3, "table_name": "DBN-3"},
    "dbn1j": {"stack": "dbn1j", "layers": 1, "table_name": "DBN-1"},
    "dbn3j": {"stack": "dbn3j", "layers": 3, "table_name": "DBN-3"},
    "saa3": {"stack": "saa", "layers": 3, "table_name": "SAA-3"},
    "sda3": {"stack": "sda", "layers": 3, "table_name": "SdA-3"},
}


def test_the_grouped_models_are_the_flat_form_s_stack_by_stack() -> None:
    v = load_params(ROOT / "params.yaml").vincent
    paper = {k: m.model_dump() for k, m in v.models.items() if m.stack in {f["stack"] for f in FLAT_MODELS.values()}}
    assert paper == FLAT_MODELS
    assert list(v.models)[: len(FLAT_MODELS)] == list(FLAT_MODELS), "the table's column order"
    for stack in {f["stack"] for f in FLAT_MODELS.values()}:
        expected = {k: m for k, m in FLAT_MODELS.items() if m["stack"] == stack}
        assert {k: m.model_dump() for k, m in v.models_of(stack).items()} == expected
        assert list(v.models_of(stack)) == list(expected)


def test_the_models_dump_grouped_and_read_back_the_same() -> None:
    v = load_params(ROOT / "params.yaml").vincent
    dumped = v.model_dump()
    assert dumped["models"]["dbn"] == {
        "dbn1": {"layers": 1, "table_name": "DBN-1"},
        "dbn3": {"layers": 3, "table_name": "DBN-3"},
    }
    assert list(dumped["models"]) == ["dbn", "dbn1j", "dbn3j", "saa", "sda", "cae2", "sdae_sp"]
    again = type(v).model_validate(dumped)
    assert again == v and list(again.models) == list(v.models)
    assert type(v).model_validate_json(v.model_dump_json()) == v
    assert type(v).model_validate(v.model_dump() | {"models": v.models}) == v, "flat ModelSpecs (from Python) pass"


def grouped(models: object) -> dict:
    """The committed params with vincent.models replaced."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["vincent"]["models"] = models
    return raw


MODELS = yaml.safe_load((ROOT / "params.yaml").read_text())["vincent"]["models"]
ENTRY = {"layers": 3, "table_name": "SdA-3"}
BAD_MODELS = {
    "not-a-stack": ({**MODELS, "sdb": {"sdb3": ENTRY}}, ["vincent.models.sdb: not a key of vincent.stacks", "'sda'"]),
    "a-name-under-two-stacks": (
        {**MODELS, "sda": {"sda3": ENTRY, "dbn1": ENTRY}},
        ["vincent.models.sda.dbn1", "under vincent.models.dbn too"],
    ),
    "not-a-mapping": ([MODELS], ["vincent.models = [{", "expected a mapping of each stack to its models"]),
    "a-group-not-a-mapping": (
        {**MODELS, "sda": ["sda3"]},
        ["vincent.models.sda = ['sda3']", "expected a mapping", "vincent.models.<stack>.<model>"],
    ),
    "an-entry-not-a-mapping": (
        {**MODELS, "sda": {"sda3": 3}},
        ["vincent.models.sda.sda3 = 3", "expected a mapping {layers, table_name}"],
    ),
    "an-empty-group": ({**MODELS, "sda": {}}, ["vincent.models.sda: no models", "stack 'sda'"]),
    "a-stack-without-a-group": (
        {k: v for k, v in MODELS.items() if k != "sda"},
        ["vincent.stacks ['sda']: no models are built on them", "add vincent.models.sda"],
    ),
    "a-bad-value": (
        {**MODELS, "sda": {"sda3": {**ENTRY, "layers": 0}}},
        ["vincent.models.sda.sda3.layers = 0", "greater than 0"],
    ),
    "an-unknown-key": (
        {**MODELS, "sda": {"sda3": {**ENTRY, "layerz": 3}}},
        ["vincent.models.sda.sda3.layerz", "unknown"],
    ),
    "a-missing-key": ({**MODELS, "sda": {"sda3": {"layers": 3}}}, ["vincent.models.sda.sda3.table_name", "missing"]),
    "the-stack-repeated": (
        {**MODELS, "sda": {"sda3": {**ENTRY, "stack": "sda"}}},
        ["vincent.models.sda.sda3.stack = 'sda'", "the stack is the group's", "remove the key"],
    ),
    "too-many-layers": (
        {**MODELS, "sda": {"sda3": {**ENTRY, "layers": 4}}},
        ["vincent.models.sda.sda3.layers = 4", "only 3"],
    ),
    "the-old-flat-form": (
        FLAT_MODELS,
        [
            "vincent.models: dbn1, dbn3, dbn1j, dbn3j, saa3, sda3 in the old flat form",
            "grouped by their stack (vincent.models.<stack>.<model>: {layers, table_name})",
            "dbn: {dbn1: {layers: 1, table_name: DBN-1}, dbn3: {layers: 3, table_name: DBN-3}}",
            "sda: {sda3: {layers: 3, table_name: SdA-3}}",
        ],
    ),
}


@pytest.mark.parametrize(("models", "expected"), BAD_MODELS.values(), ids=BAD_MODELS)
def test_bad_grouped_models_name_the_key(models: object, expected: list[str]) -> None:
    assert_params_error(grouped(models), expected)
    with pytest.raises(ParamsError) as info:
        parse_params(grouped(models))
    assert "'datasets'" not in str(info.value), "the message shows the models' key, not the section's whole input"
