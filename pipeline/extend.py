"""What one row's compact search would select if a stack's grid grew, at the cost of the new candidates only.

    python -m pipeline.extend --dataset basic --stack sda --lr 0.1 0.3 [--epochs 100 300] [--noise ...]
                              [--hidden ...] [--finetune-lr ...] [--finetune-batch-size B] [--rungs ...]
                              [--tag NAME] [--out reports/search]

Changing `vincent.stacks` reruns that stack's stages on every row that runs it (hours on a CPU); this tries the
change on one row first, or a stack on a row that does not run it yet. The grid is params.yaml's for the stack, with
the options given replacing its values. The candidates `pretrain@<dataset>-<stack>` already trained are read from its
output (only when the row runs the stack and dvc.lock says that stage is current, i.e. trained from these params and
code); the others are pretrained here as the stage would (same seed, batch size and shared prefixes). Then each
model of `vincent.models` on the stack is fine-tuned over every (candidate, rate) pair by the same successive halving
as `finetune@`, on the validation split only; once selection is final, the test error of each model's `top` best is
measured.

Writes <out>/<dataset>-<stack>-<tag>.csv (every candidate: pretraining settings, rate, validation error,
status, whether its stack is new; test error for the best few) and the same name .md (the grid, and per
model its best candidates on validation, the new ones marked). Nothing under dvc's control is written.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pipeline.core.cli import configure_logging, exits_on_bad_input, tool_parser

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("pipeline.extend")
Model = TypeVar("Model", bound="BaseModel")


def committed_is_current(stage: str) -> bool:
    """Whether dvc.lock records `stage` with this checkout's code, params and outputs (so its output can be reused)."""
    from pipeline.check import dvc_status

    try:
        return not dvc_status(stage)
    except RuntimeError:  # not a DVC project, or dvc failed: nothing is known to be current
        return False


ROOT = Path(__file__).resolve().parents[1]


def pretrain_code(kind: str) -> list[str]:
    """The code a pretrained candidate of `kind` depends on: the pretrain stage's .py deps in dvc.yaml, its own kind's
    and family's."""
    import yaml

    from pipeline.params.stacks import KINDS

    deps = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["pretrain"]["do"]["deps"]
    item = {"${item.kind}": kind, "${item.family}": KINDS[kind].family}
    for key, value in item.items():
        deps = [d.replace(key, value) for d in deps]
    return [d for d in deps if d.endswith(".py")]


def replaced(section: Model, updates: dict[str, list], flags: dict[str, str]) -> Model:
    """`section` (a params model) with `updates` (field -> the values of the flag `flags[field]`), validated as the
    params file's values are: a StageError naming the flag, the value and what is allowed."""
    from pydantic import ValidationError

    from pipeline.core.errors import StageError

    try:
        return type(section).model_validate(section.model_dump() | updates)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():  # a rule across fields (loc ()) names every flag given
            fields = [e["loc"][0]] if e["loc"] and e["loc"][0] in updates else list(updates)
            given = ", ".join(f"{flags[f]} {' '.join(map(str, updates[f]))}" for f in fields)
            problems.append(f"{given}: {e['msg'].removeprefix('Value error, ')}")
        raise StageError("; ".join(problems)) from None


@exits_on_bad_input("extend")
def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(__doc__, "reports/search")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--stack", required=True)
    for name, kind in (("hidden", int), ("lr", float), ("epochs", int), ("noise", float), ("finetune-lr", float)):
        parser.add_argument(f"--{name}", type=kind, nargs="+", help="replaces the params' grid")
    parser.add_argument("--finetune-batch-size", type=int, help="replaces the row's fine-tuning batch size")
    parser.add_argument("--rungs", type=int, nargs="*", help="halving rungs (none given: every candidate to the end)")
    parser.add_argument("--top", type=int, default=5, help="per model, test errors of the best on validation")
    parser.add_argument("--tag", default="extended", help="output name: <dataset>-<stack>-<tag>")
    args = parser.parse_args(argv)
    if args.finetune_batch_size is not None and args.finetune_batch_size < 1:
        parser.error(f"--finetune-batch-size {args.finetune_batch_size}: expected a positive number of rows")
    if args.top < 1:
        parser.error(f"--top {args.top}: expected a positive number of candidates to test per model")
    configure_logging()

    from pipeline.common.io import atomic_path, load_torch, write_csv
    from pipeline.common.seeding import get_device
    from pipeline.core import paths
    from pipeline.core.cli import check_choice, set_threads
    from pipeline.data.arrays import load_splits
    from pipeline.params import load_params
    from pipeline.training.grid import group_size
    from pipeline.training.layer_kind import stack_specs
    from pipeline.training.search import pretrain_stacks
    from pipeline.training.select import select_and_test
    from pipeline.training.stack_cache import StackCache

    set_threads()
    params = load_params(args.params)
    v = params.vincent
    check_choice("--dataset", args.dataset, "vincent.datasets", v.datasets)
    check_choice("--stack", args.stack, "vincent.stacks", list(v.stacks))
    grid = {k: getattr(args, k) for k in ("lr", "epochs", "noise") if getattr(args, k)}
    stack = replaced(v.stack_for(args.dataset, args.stack), grid, {k: f"--{k}" for k in grid})
    pretrain = replaced(v.pretrain, {"hidden": args.hidden} if args.hidden else {}, {"hidden": "--hidden"})
    tuning = {k: value for k, value in (("lr", args.finetune_lr), ("rungs", args.rungs)) if value is not None}
    f = replaced(v.finetune_for(args.dataset), tuning, {"lr": "--finetune-lr", "rungs": "--rungs"})
    lrs, rungs = f.lr, f.rungs
    batch = args.finetune_batch_size or f.batch_size
    specs = stack_specs(pretrain.hidden, stack)
    device = get_device(args.device, "--device")
    splits = load_splits(paths.prepared(args.dataset), device)
    train, valid, test = splits["train"], splits["valid"], splits["test"]

    stage = f"pretrain@{args.dataset}-{args.stack}"
    trained: dict[str, list] = {}
    diverged: set[str] = set()  # candidates whose pretraining diverged: never fine-tuned
    committed = paths.pretrained_model(args.dataset, args.stack)
    if args.stack in v.stacks_of(args.dataset) and committed.is_file() and committed_is_current(stage):
        for c in load_torch(committed, stage, ("candidates",))["candidates"]:
            trained[c["name"]] = c["weights"]
            if c.get("status", "ok") != "ok":
                diverged.add(c["name"])
    new = [s for s in specs if s.name not in trained]
    code = [ROOT / f for f in pretrain_code(stack.kind)]
    cache = StackCache(
        args.dataset, args.stack, stack.layers, params.seed, v.pretrain.batch_size, device, train.x, valid.x, code
    )
    cached = {s.name: w for s in new if (w := cache.load(s)) is not None}
    trained |= cached
    log.info(
        "%s: %d candidates, %d read from %s, %d from %s, %d to pretrain",
        stage,
        len(specs),
        len(specs) - len(new),
        committed,
        len(cached),
        cache.root,
        len(new) - len(cached),
    )
    start = time.perf_counter()
    if to_train := [s for s in new if s.name not in cached]:
        stacks, _ = pretrain_stacks(
            to_train,
            stack.layers,
            train.x,
            valid.x,
            seed=params.seed,
            batch_size=v.pretrain.batch_size,
            device=device,
            group_size=group_size(v, device),
            progress=not args.no_progress,
            labels=(train.y, valid.y),
        )
        for s in to_train:
            trained[s.name] = stacks[s.name].weights
            if stacks[s.name].diverged is not None:
                log.warning("%s: pretraining diverged (%s); not fine-tuned", s.name, stacks[s.name].diverged)
                diverged.add(s.name)
            else:
                cache.save(s, stacks[s.name].weights)
    by_name = {s.name: s for s in specs}
    rows = []
    for spec in v.models_of(args.stack).values():
        selection = select_and_test(
            {s.name: trained[s.name] for s in specs},
            lrs,
            train,
            valid,
            test,  # read only once the ranking is final, for the best `top`
            layers=spec.layers,
            top=args.top,
            device=device,
            diverged=diverged,
            max_epochs=f.max_epochs,
            patience=f.patience,
            rungs=rungs,
            eta=f.eta,
            batch_size=batch,
            seed=params.seed,
            group_size=group_size(v, device),
            progress=not args.no_progress,
        )
        for i, (t, rank) in enumerate(zip(selection.trials, selection.ranks, strict=True)):
            s = by_name[t.stack]
            error = selection.test_errors.get(i)
            rows.append(
                {
                    "model": spec.table_name,
                    "candidate": t.name,
                    "new_stack": s in new,
                    "hidden": s.hidden,
                    "pretrain_lr": s.lr,
                    "pretrain_epochs": s.epochs,
                    "noise": s.noise,
                    "finetune_lr": t.lr,
                    "finetune_batch_size": batch,
                    "valid_error_pct": round(100 * t.best_error, 3),
                    "valid_rank": rank,
                    "best_epoch": t.best_epoch,
                    "epochs_trained": t.epochs,
                    "status": t.status,
                    "test_error_pct": "" if error is None else round(100 * error, 3),
                }
            )
    seconds = time.perf_counter() - start
    name = f"{args.dataset}-{args.stack}-{args.tag}"
    write_csv(args.out / f"{name}.csv", rows)
    with atomic_path(args.out / f"{name}.md") as tmp:
        tmp.write_text(
            summary_markdown(name, args, pretrain.hidden, stack, lrs, batch, rungs, rows, len(new), seconds, device)
        )
    for r in rows:
        if r["valid_rank"] == 1:
            log.info(
                "%s: selected %s, validation %.2f%%, test %.2f%%",
                r["model"],
                r["candidate"],
                r["valid_error_pct"],
                r["test_error_pct"],
            )


def summary_markdown(name, args, hidden, stack, lrs, batch, rungs, rows, new: int, seconds: float, device) -> str:
    """The grid tried, and per model its best candidates on validation (test errors measured after selection)."""
    from pipeline.reporting.tables import markdown_table

    lines = [
        f"# `{name}`: the {args.stack} grid grown on {args.dataset}",
        "",
        f"`python -m pipeline.extend --dataset {args.dataset} --stack {args.stack}` with units {list(hidden)}, lr "
        f"{stack.lr}, epochs {stack.epochs}, masking {stack.noise}, fine-tuning rates {list(lrs)} at batch size "
        f"{batch} (halving rungs {rungs}); new "
        f"pretraining candidates: {new}, "
        f"{seconds / 60:.0f} minutes on {device}. Selection on the validation split; test errors of the best after.",
        "",
    ]
    for model in dict.fromkeys(r["model"] for r in rows):
        best = sorted((r for r in rows if r["model"] == model), key=lambda r: r["valid_rank"])[: args.top]
        table = [
            [
                str(r["valid_rank"]),
                r["candidate"],
                "yes" if r["new_stack"] else "",
                f"{r['valid_error_pct']:.2f}",
                f"{r['test_error_pct']:.2f}",
                str(r["best_epoch"]),
                r["status"],
            ]
            for r in best
        ]
        header = ["rank", "candidate", "new", "valid error %", "test error %", "best epoch", "status"]
        lines += [f"## {model}", "", markdown_table(header, table), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
